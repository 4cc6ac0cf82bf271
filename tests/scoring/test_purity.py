"""scoring/ is a pure library: importing it and every submodule never imports Django."""

from __future__ import annotations

import subprocess
import sys

from .conftest import HERE

CHECK = """
import importlib, pkgutil, sys
import scoring
names = [m.name for m in pkgutil.walk_packages(scoring.__path__, "scoring.")]
for name in names:
    if name != "scoring.__main__":
        importlib.import_module(name)
assert "scoring.engine" in sys.modules and "scoring.cli" in sys.modules, names
assert "numpy" not in sys.modules  # the engine is plain Python
bad = sorted(m for m in sys.modules if m == "django" or m.startswith("django."))
assert not bad, bad
print(len(names))
"""


def test_importing_scoring_does_not_import_django() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CHECK],
        capture_output=True,
        text=True,
        cwd=HERE.parent.parent,
        env={"PATH": "", "DJANGO_SETTINGS_MODULE": "opsportal.settings"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) >= 10  # every submodule was imported


def test_results_and_inputs_are_frozen() -> None:
    import dataclasses

    import pytest

    from scoring import Event, KeyEntry, Response, Scorer

    r = Scorer([KeyEntry(1, "Ti_S", "LIKERT_1_5")]).score([Response(1, 4)])
    for obj in (r, r.top_types[0], r.events[0], Response(1, 4)):
        assert dataclasses.is_dataclass(obj)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, dataclasses.fields(obj)[0].name, "x")
    with pytest.raises(TypeError):
        r.strengths["Ti"] = 1.0  # type: ignore[index]
    assert isinstance(r.events[0], Event)
