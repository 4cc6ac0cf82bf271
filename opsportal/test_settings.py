"""Settings for the test suite: the portal's settings plus what tests need.

pytest uses this module (pyproject.toml); so do the subprocesses the tests start
(manage.py commands, django-q2 clusters), through DJANGO_SETTINGS_MODULE.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

from opsportal import embedded_pg
from opsportal.settings import *  # noqa: F403
from opsportal.settings import (
    BASE_DIR,
    DATABASES,
    DEV_TOOLS_APP,
    EMBEDDED_PG_ALIASES,
    INSTALLED_APPS,
    LOGGING,
    Q_CLUSTER,
    env,
)

# The test suite gets its own embedded server: the emulated Supabase roles are
# cluster-wide and tests flip BYPASSRLS, which must never touch the demo's.
EMBEDDED_PG_DIR = Path(env.str("EMBEDDED_PG_DIR", default="") or BASE_DIR / ".pgdata-test")
DATABASES = copy.deepcopy(DATABASES)
for _alias, _entry in embedded_pg.database_entries(EMBEDDED_PG_DIR, EMBEDDED_PG_ALIASES).items():
    DATABASES[_alias].update(_entry)

# The pipeline test database gets its schema from remediation/dev/sql/ (the emulated schemas),
# never from Django migrations.
DATABASES["pipeline"]["TEST"] = {"MIGRATE": False}

# The test client speaks plain HTTP.
SECURE_SSL_REDIRECT = False

LOG_FORMAT = env.str("LOG_FORMAT", default="") or "text"
LOGGING = copy.deepcopy(LOGGING)
LOGGING["handlers"]["console"]["formatter"] = LOG_FORMAT

DEV_TOOLS = True
if DEV_TOOLS_APP not in INSTALLED_APPS and importlib.util.find_spec(DEV_TOOLS_APP) is not None:
    INSTALLED_APPS = [*INSTALLED_APPS, DEV_TOOLS_APP]

# Hundreds of tests create users and log in: a fast hasher, as Django advises for test
# suites (PBKDF2 costs ~0.3 s a hash here). PBKDF2 stays listed: its hashes still verify.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

# The django-q2 guard loop's period (seconds). Its scheduler pass comes once the loop has
# counted 30 s; a test cluster that waits for scheduled tasks sets Q_GUARD_CYCLE=30, so the
# scheduler runs as the cluster starts and every 30 s after (tests/cluster.py).
Q_CLUSTER = {**Q_CLUSTER, "guard_cycle": env.float("Q_GUARD_CYCLE", default=0.5)}
