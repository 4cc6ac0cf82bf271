"""A worker process for the crash-injection tests: drives one run batch by batch, in this
process, until it stops. With OPSPORTAL_CRASH_AT set it kills itself with SIGKILL at that
commit boundary (remediation/jobs/crashpoints.py), exactly as `kill -9` would.

    python -m tests.crash_worker <run id>
"""

from __future__ import annotations

import os
import sys

import django


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsportal.test_settings")
    django.setup()
    from remediation.jobs.engine import run_until_done

    run = run_until_done(int(sys.argv[1]))
    print(run.state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
