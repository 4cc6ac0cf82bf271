"""Settings for the PRISM ops portal, read once from the environment (django-environ).

Importing this module only reads the environment: it starts, connects to and writes
nothing. Every variable is listed with a comment in `.env.example`. With no database URL
set, both databases live in an embedded PostgreSQL (opsportal/embedded_pg.py), which
manage.py, dev.py and the test setup start; tests use opsportal.test_settings.
"""

from __future__ import annotations

import importlib.util
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import environ

from opsportal import embedded_pg
from opsportal.secrets import Secret

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
ENV_FILE = Path(os.environ.get("OPSPORTAL_ENV_FILE", BASE_DIR / ".env"))
if ENV_FILE.is_file():
    environ.Env.read_env(ENV_FILE, overwrite=False)


def _set(name: str) -> bool:
    """An empty value (as in .env.example) means "use the default", never "off"."""
    return bool(os.environ.get(name, "").strip())


DEBUG = env.bool("DEBUG", default=False)
# A fixed development key is only accepted with DEBUG on; opsportal.checks refuses it
# otherwise, so a production deployment cannot start with it.
DEV_SECRET_KEY = "django-insecure-opsportal-development-key-do-not-use-in-production"  # noqa: S105
SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Databases -----------------------------------------------------------------
# `default`: the portal's own state. `pipeline`: the Supabase Postgres (unmanaged
# models only, see opsportal.routers).
# An empty value (as in .env.example) means the default folder, never the working directory.
EMBEDDED_PG_DIR = Path(env.str("EMBEDDED_PG_DIR", default="") or BASE_DIR / ".pgdata")
_urls = {
    "default": env.str("DATABASE_URL", default=""),
    "pipeline": env.str("PIPELINE_DATABASE_URL", default=""),
}
# The aliases without a URL live in the embedded server; its entries are computed here,
# the server itself is started by opsportal.embedded_pg.ensure_running().
EMBEDDED_PG_ALIASES = tuple(alias for alias, url in _urls.items() if not url)
EMBEDDED_PG_USED = bool(EMBEDDED_PG_ALIASES)
_embedded = embedded_pg.database_entries(EMBEDDED_PG_DIR, EMBEDDED_PG_ALIASES)

PIPELINE_STATEMENT_TIMEOUT_MS = env.int("PIPELINE_STATEMENT_TIMEOUT_MS", default=30_000)
# How long a finalize waits for a session another finalize or backfill holds.
PIPELINE_ROW_LOCK_TIMEOUT = env.str("PIPELINE_ROW_LOCK_TIMEOUT", default="5s")

DATABASES: dict[str, dict[str, Any]] = {
    alias: env.db_url_config(url) if url else _embedded[alias] for alias, url in _urls.items()
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["pipeline"]["CONN_MAX_AGE"] = env.int("PIPELINE_CONN_MAX_AGE", default=0)
_pipeline_options: dict[str, object] = dict(DATABASES["pipeline"].get("OPTIONS") or {})
_pipeline_options.setdefault("application_name", "prism-opsportal")
# The portal's own bookkeeping in the pipeline database (django_migrations of the Fix A/D/E
# migrations) lives in this schema, never in `public`; unqualified pipeline tables still
# resolve to `public`. Needs a direct (or session-pooler) connection.
PIPELINE_PORTAL_SCHEMA = env.str("PIPELINE_PORTAL_SCHEMA", default="opsportal")
# Every pipeline statement, reads included, is bounded: a locked table makes a page or a
# task fail within the timeouts instead of waiting without limit. The limits are added to
# options a URL brings (`?options=...`: later `-c` settings win, so its search_path wins
# over the default one and the configured limits win over its timeouts).
_pipeline_options["options"] = " ".join(
    part
    for part in (
        f"-c search_path={PIPELINE_PORTAL_SCHEMA},public",
        str(_pipeline_options.get("options") or ""),
        f"-c statement_timeout={PIPELINE_STATEMENT_TIMEOUT_MS}",
        f"-c lock_timeout={PIPELINE_ROW_LOCK_TIMEOUT}",
    )
    if part
)
# Seconds the portal keeps the pipeline tables' shape (their columns) before reading it again.
PIPELINE_SCHEMA_TTL = env.int("PIPELINE_SCHEMA_TTL", default=60)
# The orphan ledger (remediation/selectors/orphan_ledger.py): minutes between its scheduled
# refreshes, and how far before a refresh the list still reads completions live (the tail).
ORPHAN_LEDGER_REFRESH_MINUTES = env.int("ORPHAN_LEDGER_REFRESH_MINUTES", default=5)
ORPHAN_LEDGER_TAIL_MARGIN_MINUTES = env.int("ORPHAN_LEDGER_TAIL_MARGIN_MINUTES", default=10)
# Longest the runbook migrations wait for a lock on a pipeline table before giving up.
PIPELINE_LOCK_TIMEOUT = env.str("PIPELINE_LOCK_TIMEOUT", default="3s")
DATABASES["pipeline"]["OPTIONS"] = _pipeline_options
DATABASE_ROUTERS = ["opsportal.routers.PipelineRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Supabase ------------------------------------------------------------------
SUPABASE_URL = env.str("SUPABASE_URL", default="http://127.0.0.1:54321").rstrip("/")
SUPABASE_SERVICE_ROLE_KEY = Secret(env.str("SUPABASE_SERVICE_ROLE_KEY", default=""))
RESULTS_BASE_URL = env.str("RESULTS_BASE_URL", default="http://localhost:3000").rstrip("/")
# The emulated Supabase database (demo and tests): does service_role get BYPASSRLS?
# Hosted Supabase: yes. The incident as the IR-07 plan describes it: no.
EMULATE_SERVICE_ROLE_BYPASSRLS = env.bool("EMULATE_SERVICE_ROLE_BYPASSRLS", default=False)
# ...and does profiles carry the recursive update_fc_metrics_trigger?
EMULATE_FC_METRICS_TRIGGER = env.bool("EMULATE_FC_METRICS_TRIGGER", default=True)
# Which emulated pipeline schema manage.py load_emulated_schema / seed_demo build:
# "emulation" (the spec's database, with the two knobs above) or "rebuilt" (the database
# rebuilt from the pipeline's migration files, issue 14; the knobs do not apply to it).
EMULATED_SCHEMA = env.str("EMULATED_SCHEMA", default="emulation")

# A session with no scorable answer gets the engine's all-zero profile (as the original
# engine returns it); the portal refuses to write it unless this is on.
WRITE_UNSCORABLE_PROFILES = env.bool("WRITE_UNSCORABLE_PROFILES", default=False)

# --- Edge function client ------------------------------------------------------
EDGE_CONNECT_TIMEOUT = env.float("EDGE_CONNECT_TIMEOUT", default=3.05)
EDGE_READ_TIMEOUT = env.float("EDGE_READ_TIMEOUT", default=30.0)
EDGE_MAX_RETRIES = env.int("EDGE_MAX_RETRIES", default=3)
EDGE_BACKOFF_BASE = env.float("EDGE_BACKOFF_BASE", default=0.5)
EDGE_RETRY_AFTER_CAP = env.float("EDGE_RETRY_AFTER_CAP", default=30.0)

# --- django-q2 -----------------------------------------------------------------
Q_BROKER = env.str("Q_BROKER", default="orm")  # "orm" (the portal database) or "redis"
Q_CLUSTER: dict[str, object] = {
    "name": env.str("Q_CLUSTER_NAME", default="opsportal"),
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT", default=300),
    "retry": env.int("Q_RETRY", default=360),
    "max_attempts": env.int("Q_MAX_ATTEMPTS", default=3),
    "ack_failures": True,
    "catch_up": False,
    "save_limit": env.int("Q_SAVE_LIMIT", default=1000),
    "poll": env.float("Q_POLL", default=0.5),
    "label": "Job queue",
}
if Q_BROKER == "redis":
    Q_CLUSTER["redis"] = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
else:
    Q_CLUSTER["orm"] = "default"

# --- Backfills ----------------------------------------------------------------------
# Largest run (sessions) anyone may start; 0 = no limit.
BACKFILL_MAX_SESSIONS = env.int("BACKFILL_MAX_SESSIONS", default=100_000)
# A running batch updates the run's heartbeat; older than this, the worker is presumed dead.
BACKFILL_STALE_SECONDS = env.int("BACKFILL_STALE_SECONDS", default=120)
# Longest pause a throttled run takes inside one task between batches.
BACKFILL_MAX_SLEEP = env.float("BACKFILL_MAX_SLEEP", default=60.0)
# A session another transaction holds ("busy") is tried again after 0.5 s, 1 s, 2 s, … (at
# most 15 s apart), for at most this many seconds of waiting in all; then it fails as busy.
BACKFILL_BUSY_RETRY_SECONDS = env.float("BACKFILL_BUSY_RETRY_SECONDS", default=60.0)
BACKFILL_BUSY_BACKOFF_BASE = env.float("BACKFILL_BUSY_BACKOFF_BASE", default=0.5)
# A batch's time budget: a batch of edge calls stops taking sessions after this many
# seconds (the rest go to the next task), so a task ends well before Q_TIMEOUT kills it;
# the system check requires budget + the slowest edge call < Q_TIMEOUT.
BACKFILL_BATCH_SECONDS = env.float("BACKFILL_BATCH_SECONDS", default=45.0)
# A task's time budget: one django-q2 task processes batch after batch (no queue hop
# between them) and hands the run to the next task once this many seconds have passed;
# an edge batch's budget ends with the task's. The system check requires budget + the
# slowest edge call < Q_TIMEOUT.
BACKFILL_TASK_SECONDS = env.float("BACKFILL_TASK_SECONDS", default=30.0)
# Batches of one backfill in flight at once (each lane is its own chain of tasks over the
# items whose ordinal % lanes is its number; Python and PostgreSQL work side by side).
# A throttled run has one lane. More lanes than Q_WORKERS only queue.
BACKFILL_LANES = env.int("BACKFILL_LANES", default=2)
# Edge backfills: at most this many calls to the function at once per batch.
EDGE_CONCURRENCY = env.int("EDGE_CONCURRENCY", default=8)
# Tests only: kill the worker at this commit boundary ("point" or "point@N"), as kill -9
# would (remediation/jobs/crashpoints.py lists the points). Empty: never.
CRASH_AT = env.str("OPSPORTAL_CRASH_AT", default="")

# --- Health and alerts ----------------------------------------------------------------
# Conversion alerts are computed over this trailing window (hours), once it holds at
# least ALERT_MIN_SESSIONS completed sessions.
ALERT_WINDOW_HOURS = env.int("ALERT_WINDOW_HOURS", default=24)
ALERT_MIN_SESSIONS = env.int("ALERT_MIN_SESSIONS", default=3)
# Profile write errors alert while any happened within this many minutes.
ALERT_ERRORS_WINDOW_MINUTES = env.int("ALERT_ERRORS_WINDOW_MINUTES", default=60)
# Where alerts go: a JSON POST (Slack-compatible {"text": ...}) and/or email.
ALERT_WEBHOOK_URL = env.str("ALERT_WEBHOOK_URL", default="")
ALERT_WEBHOOK_RETRIES = env.int("ALERT_WEBHOOK_RETRIES", default=2)
ALERT_WEBHOOK_BACKOFF = env.float("ALERT_WEBHOOK_BACKOFF", default=1.0)
ALERT_EMAILS = env.list("ALERT_EMAILS", default=[])
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="opsportal@localhost")
EMAIL_TIMEOUT = EMAIL_CONFIG.get("EMAIL_TIMEOUT") or env.float("EMAIL_TIMEOUT", default=10.0)

# --- Results notifications (remediation/jobs/notify.py) ------------------------------------
# Messages per minute a notify run sends at most (per worker); SMTP tries per message on
# temporary failures (4xx, connection errors), the first wait between them (doubling).
NOTIFY_PER_MINUTE = env.int("NOTIFY_PER_MINUTE", default=60)
NOTIFY_MAX_TRIES = env.int("NOTIFY_MAX_TRIES", default=4)
NOTIFY_RETRY_BACKOFF = env.float("NOTIFY_RETRY_BACKOFF", default=2.0)
NOTIFY_BATCH_SIZE = env.int("NOTIFY_BATCH_SIZE", default=20)
NOTIFY_FROM_EMAIL = env.str("NOTIFY_FROM_EMAIL", default="") or DEFAULT_FROM_EMAIL
# List-Unsubscribe: a mailto address (default: the sender) and an optional one-click URL.
NOTIFY_UNSUBSCRIBE_MAILTO = env.str("NOTIFY_UNSUBSCRIBE_MAILTO", default="") or NOTIFY_FROM_EMAIL
NOTIFY_UNSUBSCRIBE_URL = env.str("NOTIFY_UNSUBSCRIBE_URL", default="")
# Alert when more than this share of the messages of the last NOTIFY_ALERT_WINDOW_MINUTES
# failed, once at least NOTIFY_ALERT_MIN_MESSAGES were tried.
NOTIFY_ALERT_FAILURE_RATE = env.float("NOTIFY_ALERT_FAILURE_RATE", default=0.2)
NOTIFY_ALERT_MIN_MESSAGES = env.int("NOTIFY_ALERT_MIN_MESSAGES", default=5)
NOTIFY_ALERT_WINDOW_MINUTES = env.int("NOTIFY_ALERT_WINDOW_MINUTES", default=60)
# The local SMTP sink of `dev.py up` writes what it receives here; when set, the portal lists
# it (/admin/remediation/resultsnotification/sink/). Empty: no such page.
EMAIL_SINK_DIR = env.str("EMAIL_SINK_DIR", default="")
SNAPSHOT_RETENTION_DAYS = env.int("SNAPSHOT_RETENTION_DAYS", default=30)
# --- Write-path canary, fresh orphans and auto-heal ------------------------------------
# Seconds between canary passes (the django-q2 schedule runs in whole minutes, at least 1).
CANARY_INTERVAL_SECONDS = env.int("CANARY_INTERVAL_SECONDS", default=300)
# Days of canary results kept (older ones are pruned by each pass).
CANARY_RETENTION_DAYS = env.int("CANARY_RETENTION_DAYS", default=14)
# Sessions completed more than this many minutes ago without a profile are "fresh orphans"
# (counted over the last ORPHAN_ALERT_HOURS hours): they open an alert.
ORPHAN_ALERT_MINUTES = env.int("ORPHAN_ALERT_MINUTES", default=15)
ORPHAN_ALERT_HOURS = env.int("ORPHAN_ALERT_HOURS", default=6)
# Auto-heal: off by default; when this is true an Engineer may switch it on in the admin.
AUTO_HEAL_ENABLED = env.bool("AUTO_HEAL_ENABLED", default=False)
AUTO_HEAL_MAX_SESSIONS = env.int("AUTO_HEAL_MAX_SESSIONS", default=200)
AUTO_HEAL_BATCH_SIZE = env.int("AUTO_HEAL_BATCH_SIZE", default=50)
AUTO_HEAL_THROTTLE_PER_MINUTE = env.int("AUTO_HEAL_THROTTLE_PER_MINUTE", default=120)
# The circuit breaker switches auto-heal off when a heal run fails for more than this share
# of its processed sessions (once AUTO_HEAL_BREAKER_MIN_SESSIONS are processed).
AUTO_HEAL_MAX_FAILURE_SHARE = env.float("AUTO_HEAL_MAX_FAILURE_SHARE", default=0.2)
AUTO_HEAL_BREAKER_MIN_SESSIONS = env.int("AUTO_HEAL_BREAKER_MIN_SESSIONS", default=5)
# Also send the results of the sessions a heal run wrote (results notifications).
AUTO_HEAL_SEND_RESULTS = env.bool("AUTO_HEAL_SEND_RESULTS", default=False)
# The dashboard and /metrics serve the newest snapshot younger than this (seconds), else
# compute one: on a million sessions a full computation takes about two seconds.
DASHBOARD_MAX_AGE = env.int("DASHBOARD_MAX_AGE", default=600)
# /metrics (Prometheus text) answers only requests carrying this token; empty = disabled.
METRICS_TOKEN = Secret(env.str("METRICS_TOKEN", default=""))
# /healthz calls the job cluster dead when its scheduler is this late (seconds).
CLUSTER_STALE_SECONDS = env.int("CLUSTER_STALE_SECONDS", default=180)

# --- Django ----------------------------------------------------------------------
INSTALLED_APPS = [
    "opsportal.apps.OpsAdminConfig",  # django.contrib.admin with the portal's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_q",
    "pgtrigger",
    "axes",
    "opsportal",
    "remediation",
    "remediation.fixes",
]
# The pipeline fixes' migrations are applied one at a time by the runbook (through the
# migration executor), never by `manage.py migrate`.
MIGRATION_MODULES = {"pipeline_fixes": None}
# Demo and test doubles (remediation.dev: demo seeding, the edge-function emulator, the
# emulated schemas): on with DEBUG unless set; production settings never install them.
DEV_TOOLS = env.bool("DEV_TOOLS") if _set("DEV_TOOLS") else DEBUG
DEV_TOOLS_APP = "remediation.dev"
if DEV_TOOLS and importlib.util.find_spec(DEV_TOOLS_APP) is not None:
    INSTALLED_APPS.append(DEV_TOOLS_APP)

MIDDLEWARE = [
    # First: every response, static files and error pages included, carries the CSP.
    "opsportal.middleware.ContentSecurityPolicyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Crafted URLs (NUL bytes, absurd date-hierarchy parts) get 400 before any view.
    "opsportal.middleware.HostileRequestMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # A pipeline lock or statement timeout is a 503 page with a clear message, not a 500.
    "opsportal.middleware.PipelineTimeoutMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes prescribes: answers a locked-out login with 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "opsportal.urls"
WSGI_APPLICATION = "opsportal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# Every date-time the portal shows is in this zone (an IANA name: "Europe/Berlin"), in one
# format with the zone's name beside it (opsportal/formats: `2026-12-01 09:38:24 UTC`); the
# footer of every admin page names it. Stored times are UTC (USE_TZ).
TIME_ZONE = env.str("TIME_ZONE", default="") or "UTC"
USE_I18N = False
USE_TZ = True
FORMAT_MODULE_PATH = ["opsportal.formats"]

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default="") or BASE_DIR / "staticfiles")
# WhiteNoise serves the admin's static files in production (after collectstatic).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}


# --- Production hardening (all on when DEBUG is off; each can be set explicitly) ------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT") if _set("SECURE_SSL_REDIRECT") else not DEBUG
SESSION_COOKIE_SECURE = (
    env.bool("SESSION_COOKIE_SECURE") if _set("SESSION_COOKIE_SECURE") else not DEBUG
)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE") if _set("CSRF_COOKIE_SECURE") else not DEBUG
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
SECURE_HSTS_SECONDS = (
    env.int("SECURE_HSTS_SECONDS") if _set("SECURE_HSTS_SECONDS") else 0 if DEBUG else 31_536_000
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Every page: scripts and styles only from the portal's own static files (no inline script,
# style or event handler anywhere in the templates; the admin's own JS is external files).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self';"
    " form-action 'self'; frame-ancestors 'none'"
)
SILENCED_SYSTEM_CHECKS = ["security.W021"]  # HSTS preload is an opt-in (SECURE_HSTS_PRELOAD)

# Login throttling (django-axes): this many failed logins for one username from one
# client address lock that combination out until the window has passed since its last
# failure; a successful login resets the count. Other addresses can still log in.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_FAILURE_WINDOW_SECONDS = env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=900)
# Reverse proxies in front of the portal that append to X-Forwarded-For (the TLS proxy of
# docs/deployment.md: 1). 0: the client address is REMOTE_ADDR and X-Forwarded-For is
# ignored, so nobody can choose their address by sending the header.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=LOGIN_FAILURE_WINDOW_SECONDS)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The address from TRUSTED_PROXY_COUNT (not ipware's proxy count, which wants the proxies'
# own addresses in X-Forwarded-For and finds no client behind a single TLS proxy).
AXES_CLIENT_IP_CALLABLE = "opsportal.security.client_ip"

# Support staff (without the run_large_backfill permission) may start backfills of at most
# this many sessions in all within SUPPORT_BACKFILL_WINDOW_MINUTES (per person, over all
# their runs; dry runs write nothing and do not count), and no re-score runs; engineers
# up to BACKFILL_MAX_SESSIONS per run.
SUPPORT_MAX_BACKFILL = env.int("SUPPORT_MAX_BACKFILL", default=500)
SUPPORT_BACKFILL_WINDOW_MINUTES = env.int("SUPPORT_BACKFILL_WINDOW_MINUTES", default=60)

# Optional error reporting; events are scrubbed of secrets before they leave.
SENTRY_DSN = Secret(env.str("SENTRY_DSN", default=""))

LOG_FORMAT = env.str("LOG_FORMAT", default="") or ("text" if DEBUG else "json")
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "opsportal.security.RedactSecretsFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "opsportal.security.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["redact"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"pgserver": {"level": "WARNING"}},
}

if SENTRY_DSN:
    from opsportal.security import init_sentry

    init_sentry(SENTRY_DSN.reveal(), env.str("SENTRY_ENVIRONMENT", default="production"))
