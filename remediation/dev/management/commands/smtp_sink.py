import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from remediation.dev.smtp_sink import SinkHandler, start_sink


class Command(BaseCommand):
    help = (
        "A local SMTP sink on loopback (aiosmtpd) that accepts every message and keeps it as "
        ".eml files, for the demo (point EMAIL_URL at it, EMAIL_SINK_DIR at its folder)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=1025)
        parser.add_argument("--dir", default=settings.EMAIL_SINK_DIR or ".mail-sink")

    def handle(self, *args, host, port, dir, **opts):
        folder = Path(dir).resolve()
        controller, port = start_sink(SinkHandler(folder=folder), host, port)
        self.stdout.write(f"SMTP sink on {host}:{port}, keeping messages in {folder}")
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            controller.stop()
