from django.core.management.base import BaseCommand

from remediation.dev.edge_emulator import EmulatorServer, Faults


class Command(BaseCommand):
    help = (
        "Serve the finalizeAssessment edge-function contract over the pipeline database, "
        "defects included, with switchable faults (also at run time: POST /__emulator/faults)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=54321)
        parser.add_argument("--latency-ms", type=int, default=0)
        parser.add_argument("--hang-seconds", type=float, default=0.0)
        parser.add_argument(
            "--status", type=int, default=0, help="answer this status with an HTML body"
        )
        parser.add_argument("--malformed-json", action="store_true")
        parser.add_argument("--rate-limit-times", type=int, default=0)
        parser.add_argument("--redirect-to", default="")

    def handle(self, *args, host, port, **opts):
        faults = Faults(
            latency_ms=opts["latency_ms"],
            hang_seconds=opts["hang_seconds"],
            status=opts["status"],
            malformed_json=opts["malformed_json"],
            rate_limit_times=opts["rate_limit_times"],
            redirect_to=opts["redirect_to"],
        )
        server = EmulatorServer((host, port), faults)
        self.stdout.write(f"edge-function emulator on {server.url}/functions/v1/finalizeAssessment")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
