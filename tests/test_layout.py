"""Structure guarantees: the product never imports the dev app, every package says what it
is for, and production settings do not install the dev app.

(scoring/ importing no Django is tests/scoring/test_purity.py.)
"""

from __future__ import annotations

import ast
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.opsportal.test_settings_and_entry_points import deployment_env

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("remediation", "opsportal", "scoring")
DEV = ROOT / "remediation" / "dev"
DEV_MODULE = "remediation.dev"
# Directories whose shape Django dictates (their __init__.py is plumbing, not a layer).
DJANGO_PLUMBING = {"management", "commands", "migrations", "templatetags"}


def product_files() -> list[Path]:
    files = []
    for top in PRODUCT:
        for path in sorted((ROOT / top).rglob("*.py")):
            if DEV in path.parents:
                continue
            files.append(path)
    return files


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def resolve(path: Path, node: ast.ImportFrom) -> str:
    """The absolute module of a `from ... import`, relative ones resolved."""
    if not node.level:
        return node.module or ""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def is_dev(name: str) -> bool:
    return name == DEV_MODULE or name.startswith(DEV_MODULE + ".")


def dev_imports(path: Path, source: str | None = None) -> list[str]:
    """Every import of remediation.dev in the file, at any depth (functions included)."""
    if source is None:
        source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names if is_dev(a.name)]
        elif isinstance(node, ast.ImportFrom):
            module = resolve(path, node)
            names = [f"{module}.{a.name}" for a in node.names]
            if is_dev(module) or any(is_dev(n) for n in names):
                found.append(f"{node.lineno}: from {module} import ...")
        elif isinstance(node, ast.Call):
            # importlib.import_module("remediation.dev...") / __import__("remediation.dev...")
            func = node.func
            called = getattr(func, "attr", None) or getattr(func, "id", None)
            if called in ("import_module", "__import__") and node.args:
                first = node.args[0]
                literal = isinstance(first, ast.Constant) and isinstance(first.value, str)
                if literal and is_dev(first.value):
                    found.append(f"{node.lineno}: {called}({first.value!r})")
    return found


def test_the_scan_sees_every_kind_of_import():
    """The detector itself: each way of importing the dev app is caught, others are not."""
    sample = (
        "import remediation.dev.demo\n"
        "from remediation.dev import emulation\n"
        "from remediation import dev\n"
        "from .. import dev as d\n"
        "from ..dev.demo import seed_demo\n"
        "def later():\n"
        "    from remediation.dev.edge_emulator import Faults\n"
        "    import importlib\n"
        "    importlib.import_module('remediation.dev.demo')\n"
        "from remediation.devices import x\n"
        "from remediation import jobs\n"
        "from . import base\n"
        "DEV_TOOLS_APP = 'remediation.dev'\n"
    )
    # As if the file were remediation/admin/probe.py (relative imports resolve from there).
    found = dev_imports(ROOT / "remediation" / "admin" / "probe.py", sample)
    assert sorted(int(line.split(":")[0]) for line in found) == [1, 2, 3, 4, 5, 7, 9]


def test_the_product_imports_nothing_from_the_dev_app():
    files = product_files()
    assert len(files) > 50 and not any(DEV in f.parents for f in files)
    offenders = {}
    for path in files:
        found = dev_imports(path)
        if found:
            offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}


def packages() -> list[Path]:
    """Every directory under remediation/ holding Python modules."""
    return sorted(
        d
        for d in (ROOT / "remediation").rglob("*")
        if d.is_dir() and "__pycache__" not in d.parts and any(d.glob("*.py"))
    )


def test_every_package_under_remediation_has_an_init_with_a_docstring():
    dirs = packages()
    names = {str(d.relative_to(ROOT)) for d in dirs}
    assert {
        "remediation/pipeline",
        "remediation/selectors",
        "remediation/services",
        "remediation/integrations",
        "remediation/jobs",
        "remediation/admin",
        "remediation/fixes",
        "remediation/dev",
    } <= names
    missing_init = [str(d.relative_to(ROOT)) for d in dirs if not (d / "__init__.py").is_file()]
    assert missing_init == []
    undocumented = []
    for d in dirs:
        if d.name in DJANGO_PLUMBING:
            continue
        tree = ast.parse((d / "__init__.py").read_text(encoding="utf-8"))
        doc = ast.get_docstring(tree)
        if not doc or not doc.strip():
            undocumented.append(str(d.relative_to(ROOT)))
    assert undocumented == []


PROBE = (
    "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'opsportal.settings'; "
    "django.setup(); from django.conf import settings; "
    "print('remediation.dev' in settings.INSTALLED_APPS)"
)


def settings_env(**values: str) -> dict[str, str]:
    env = deployment_env(SECRET_KEY="prod-" + secrets.token_urlsafe(40))
    env.pop("DEV_TOOLS", None)
    env["DATABASE_URL"] = "postgres://portal:pw@db.invalid:5432/portal"
    env["PIPELINE_DATABASE_URL"] = "postgres://pipe:pw@pipeline.invalid:5432/postgres"
    env.update(values)
    return env


@pytest.mark.parametrize(
    ("values", "installed"),
    [
        ({"DEBUG": "false"}, "False"),
        ({"DEBUG": "true"}, "True"),
        ({"DEBUG": "true", "DEV_TOOLS": "false"}, "False"),
        ({"DEBUG": "false", "DEV_TOOLS": "true"}, "True"),
    ],
)
def test_production_settings_exclude_the_dev_app(values, installed):
    proc = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=settings_env(**values),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == installed, (values, proc.stderr)


def test_production_django_setup_never_loads_the_dev_app():
    """With DEBUG off, setting Django up (every app's models and admin) imports no dev module."""
    code = (
        PROBE.replace("print('remediation.dev' in settings.INSTALLED_APPS)", "")
        + "import sys; from django.contrib import admin; admin.autodiscover(); "
        "import remediation.services, remediation.jobs, remediation.selectors, "
        "remediation.integrations, remediation.views, opsportal.urls; "
        "print(sorted(m for m in sys.modules if m == 'remediation.dev' "
        "or m.startswith('remediation.dev.')))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=settings_env(DEBUG="false"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
