"""The ASGI entry point. It starts no embedded PostgreSQL: set the database URLs, or
start one with manage.py or dev.py first."""

import os

from django.core.asgi import get_asgi_application

from opsportal.checks import refuse_development_key

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsportal.settings")
# Refuse the development SECRET_KEY with DEBUG off, as manage.py does (opsportal.E001).
refuse_development_key()
application = get_asgi_application()
