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
