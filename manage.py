#!/usr/bin/env python
"""Django's command-line utility for the PRISM ops portal."""

import os
import sys

# Commands that never need a database: with no database URL set, they do not start the
# embedded PostgreSQL (`check --database ...` does).
NO_DATABASE = {"help", "version", "--help", "--version", "-h", "check"}


def needs_database(args: list[str]) -> bool:
    if not args:
        return False
    if args[0] == "embedded_pg":  # `status` reports a running server; `stop` starts none
        return args[1:2] != ["stop"]
    return args[0] not in NO_DATABASE or "--database" in args


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsportal.settings")
    from django.core.management import execute_from_command_line

    if needs_database(sys.argv[1:]):
        from opsportal import embedded_pg

        embedded_pg.ensure_running()
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
