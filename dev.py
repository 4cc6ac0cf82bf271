#!/usr/bin/env python3
"""One entry point for a fresh clone (needs only python3 and pip).

    python3 dev.py up      # venv + install (demo extra), embedded PostgreSQL, demo incident,
                           # portal + job cluster + edge emulator + local SMTP sink
    python3 dev.py test    # venv + install (dev and demo extras), Chromium if missing, the
                           # static gates and the whole test suite on the test PostgreSQL

Everything else goes through manage.py inside .venv.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
CHROMIUM = Path("/usr/bin/chromium")
SMTP_SINK_PORT = 1025  # dev.py up: the local SMTP sink (aiosmtpd) on 127.0.0.1


def say(msg: str) -> None:
    print(f"[dev] {msg}", flush=True)


def ensure_venv(extras: str) -> None:
    """Create .venv and install the project when pyproject.toml changed since last time.

    `extras` is pip's comma-separated list ("demo", "dev,demo"); each set has its stamp.
    """
    if not PY.exists():
        say("creating .venv")
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / f".installed-{extras.replace(',', '-') or 'base'}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    say("installing dependencies (first run takes a minute)")
    target = f".[{extras}]" if extras else "."
    run([str(PY), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    run([str(PY), "-m", "pip", "install", "--quiet", "-e", target])
    stamp.write_text(digest)


def ensure_env_file() -> None:
    """A local .env for the demo: DEBUG on, a random secret key, the edge emulator's URL."""
    env_file = ROOT / ".env"
    if env_file.exists():
        return
    example = (ROOT / ".env.example").read_text()
    lines = []
    for line in example.splitlines():
        if line.startswith("SECRET_KEY="):
            line = f"SECRET_KEY={secrets.token_urlsafe(48)}"
        elif line.startswith("DEBUG="):
            line = "DEBUG=true"
        elif line.startswith("SUPABASE_SERVICE_ROLE_KEY="):
            line = f"SUPABASE_SERVICE_ROLE_KEY=demo-{secrets.token_urlsafe(24)}"
        lines.append(line)
    env_file.write_text("\n".join(lines) + "\n")
    env_file.chmod(0o600)
    say("wrote .env for the demo (DEBUG on, random SECRET_KEY)")


def env_value(name: str) -> str:
    """A setting as the portal reads it: the process environment, else the .env file."""
    if os.environ.get(name):
        return os.environ[name]
    env_file = Path(os.environ.get("OPSPORTAL_ENV_FILE", ROOT / ".env"))
    if env_file.is_file():
        for line in env_file.read_text().splitlines():
            if line.startswith(f"{name}="):
                return line.split("=", 1)[1].strip()
    return ""


def ensure_chromium() -> None:
    """The browser tests drive Debian's Chromium; install it when we can."""
    if CHROMIUM.exists() or os.environ.get("CHROMIUM_PATH"):
        return
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        say("installing Debian's chromium for the browser tests")
        run(["apt-get", "update", "-qq"])
        run(
            ["apt-get", "install", "-y", "-qq", "chromium"],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        return
    sys.exit(
        "[dev] the browser tests need Chromium at /usr/bin/chromium "
        "(sudo apt-get install chromium) or CHROMIUM_PATH set"
    )


def ensure_redis_server() -> None:
    """The Redis-broker tests need a Redis: a running one, or redis-server to start."""
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
        return
    except OSError:
        pass
    if shutil.which("redis-server") or Path("/usr/bin/redis-server").exists():
        return
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        say("installing Debian's redis-server for the Redis-broker tests")
        run(["apt-get", "update", "-qq"])
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run(["apt-get", "install", "-y", "-qq", "redis-server"], env=env)


def port_in_use(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def run(cmd: list[str], **kwargs: object) -> None:
    subprocess.run(cmd, check=True, cwd=ROOT, **kwargs)  # type: ignore[call-overload]


def manage(*args: str) -> list[str]:
    return [str(PY), str(ROOT / "manage.py"), *args]


def cmd_up(argv: list[str]) -> int:
    port = argv[0] if argv else os.environ.get("PORT", "8000")
    ensure_venv("demo")
    ensure_env_file()
    run(manage("demo_setup"))  # manage.py starts the embedded PostgreSQL (no URL set)
    if port_in_use(int(port)):
        sys.exit(f"[dev] port {port} is in use: python3 dev.py up <another port>")
    # Results notifications go to a local SMTP sink on loopback (nothing leaves the machine)
    # and the portal lists what it received; EMAIL_URL set in the environment wins.
    sink = not os.environ.get("EMAIL_URL")
    child_env = dict(os.environ)
    if sink:
        child_env["EMAIL_URL"] = f"smtp://127.0.0.1:{SMTP_SINK_PORT}"
        child_env["EMAIL_SINK_DIR"] = str(ROOT / ".mail-sink")
    essential = [
        subprocess.Popen(manage("qcluster"), cwd=ROOT, env=child_env),
        subprocess.Popen(
            manage("runserver", f"127.0.0.1:{port}", "--noreload"), cwd=ROOT, env=child_env
        ),
    ]
    procs = list(essential)
    if sink and port_in_use(SMTP_SINK_PORT):
        say(f"port {SMTP_SINK_PORT} is in use: assuming it is an SMTP sink already running")
    elif sink:
        sink_cmd = manage(
            "smtp_sink", "--port", str(SMTP_SINK_PORT), "--dir", str(ROOT / ".mail-sink")
        )
        procs.append(subprocess.Popen(sink_cmd, cwd=ROOT, env=child_env))
    if port_in_use(54321):
        say(
            "port 54321 is in use: the edge-function emulator is not started (the local backend works)"
        )
    else:
        procs.append(subprocess.Popen(manage("edge_emulator", "--port", "54321"), cwd=ROOT))
    login = (ROOT / ".demo-login").read_text().split()
    time.sleep(1.5)
    say(f"portal: http://127.0.0.1:{port}/admin/  login: {login[0]} / {login[1]}")
    say(f"orphaned sessions: http://127.0.0.1:{port}/admin/remediation/orphanedsession/")
    say(f"IR-07 runbook:     http://127.0.0.1:{port}/admin/runbook/")
    say(f"pipeline health:   http://127.0.0.1:{port}/admin/health/")
    token = env_value("METRICS_TOKEN")
    if token:
        say(
            f"metrics:           curl -H 'Authorization: Bearer {token}' http://127.0.0.1:{port}/metrics"
        )
    if sink:
        say(
            f"mail sink:         http://127.0.0.1:{port}/admin/remediation/resultsnotification/sink/"
        )
    say("Ctrl-C stops the portal, the job cluster, the edge-function emulator and the SMTP sink")

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM stops the children like Ctrl-C does

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(p.poll() is None for p in essential):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
    return 0


def cmd_test(argv: list[str]) -> int:
    """Static gates (migrations in sync, ruff, ruff format, mypy), then pytest with any
    given arguments; stops the test PostgreSQL afterwards when this run started it."""
    ensure_venv("dev,demo")
    ensure_chromium()
    ensure_redis_server()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "opsportal.test_settings"}
    embedded = [str(PY), "-m", "opsportal.embedded_pg"]
    # Started here (not running before): stopped again when the run ends.
    started = subprocess.run(
        [*embedded, "start"], cwd=ROOT, env=env, check=True, stdout=subprocess.PIPE, text=True
    ).stdout.split()[-1:] == ["started"]
    try:
        if not argv:
            gates = {
                "makemigrations --check": manage("makemigrations", "--check", "--dry-run"),
                "ruff check": [str(PY), "-m", "ruff", "check", "."],
                "ruff format --check": [str(PY), "-m", "ruff", "format", "--check", "."],
                "mypy": [str(PY), "-m", "mypy", "."],
            }
            for name, gate in gates.items():
                say(f"gate: {name}")
                if subprocess.call(gate, cwd=ROOT, env={**env, "DEBUG": "true"}) != 0:
                    say("a static gate failed; fix it before the tests run")
                    return 1
        return subprocess.call([str(PY), "-m", "pytest", *argv], cwd=ROOT, env=env)
    finally:
        if started:
            say("stopping the test PostgreSQL this run started")
            subprocess.call([*embedded, "stop"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("up", "test"):
        print(__doc__)
        return 2
    return {"up": cmd_up, "test": cmd_test}[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
