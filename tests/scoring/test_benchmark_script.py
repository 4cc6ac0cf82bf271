"""The benchmark script still runs (a smoke run on a few sessions; no timing asserted)."""

from __future__ import annotations

import subprocess
import sys

from .conftest import HERE

ROOT = HERE.parent.parent


def test_benchmark_script_smoke_run() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "benchmarks/bench_scoring.py",
            "--sessions",
            "24",
            "--chunk",
            "12",
            "--repeat",
            "1",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "24 sessions x 248 answers = 5952 answers" in out
    assert "cpu:" in out and "python:" in out and "sessions/s" in out
    assert "batch results equal one-at-a-time results: True" in out
