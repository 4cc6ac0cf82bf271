"""Worker processes for the crash-injection tests: each drives one run batch by batch, in
its own process, until it stops. With CRASH_AT set it kills itself with SIGKILL at that
commit boundary (remediation/jobs/crashpoints.py), exactly as `kill -9` would.

Starting Django for every crash costs seconds, so a test session starts one server:

    python -m tests.crash_worker serve

It sets Django up once (no database connection opened), then reads one JSON request a line
on stdin, {"run_id": 12, "settings": {"CRASH_AT": "pipeline.committed@2", ...}}, forks a
worker child per request and answers one JSON line on stdout, {"returncode": -9,
"output": "..."}: the child's exit status as subprocess reports it (-9: killed by SIGKILL)
and what it printed. The child opens its own connections, runs with `settings` applied
(override_settings) and dies at the boundary; the server itself never touches a database.

    python -m tests.crash_worker <run id>     # one worker, settings from the environment
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

import django


def _work(run_id: int) -> None:
    from remediation.jobs.engine import run_until_done

    print(run_until_done(run_id).state, flush=True)


def _child(request: dict, out_fd: int) -> None:
    """In the forked child: output to `out_fd`, the request's settings, the run."""
    from django.test import override_settings

    from opsportal.secrets import Secret

    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    values = dict(request.get("settings", {}))
    if "SUPABASE_SERVICE_ROLE_KEY" in values:
        values["SUPABASE_SERVICE_ROLE_KEY"] = Secret(values["SUPABASE_SERVICE_ROLE_KEY"])
    with override_settings(**values):
        _work(int(request["run_id"]))


def serve() -> int:
    # What every worker needs, imported once here; the children inherit it.
    import remediation.jobs.engine  # noqa: F401

    for line in sys.stdin:
        request = json.loads(line)
        with tempfile.TemporaryFile() as out:
            pid = os.fork()
            if pid == 0:  # the worker
                code = 0
                try:
                    _child(request, out.fileno())
                except BaseException:
                    import traceback

                    traceback.print_exc()
                    code = 1
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            out.seek(0)
            output = out.read().decode(errors="replace")
        returncode = os.waitstatus_to_exitcode(status)  # -9 when SIGKILL ended it
        print(json.dumps({"returncode": returncode, "output": output[-4000:]}), flush=True)
    return 0


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsportal.test_settings")
    django.setup()
    if sys.argv[1:] == ["serve"]:
        return serve()
    _work(int(sys.argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
