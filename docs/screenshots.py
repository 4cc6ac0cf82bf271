"""Take the README's screenshots from a running demo (`python3 dev.py up`), at 1280 px.

    .venv/bin/python docs/screenshots.py [http://127.0.0.1:8000]

Logs in with the demo's login (`.demo-login`), opens each page as a new support person or
engineer would, and writes docs/<name>.png. Debian's Chromium (/usr/bin/chromium, or
CHROMIUM_PATH), headless. Reads only; it changes nothing in the demo.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = {
    "orphans": "/admin/remediation/orphanedsession/",
    "session": "/admin/remediation/assessmentsession/618c5ea6-aeda-4084-9156-0aac9643afd3/change/",
    "runbook": "/admin/runbook/",
    "health": "/admin/health/",
}


def main() -> int:
    from playwright.sync_api import sync_playwright

    base = (sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000").rstrip("/")
    username, password = (ROOT / ".demo-login").read_text().split()[:2]
    args = ["--disable-gpu", "--disable-background-networking", "--no-first-run"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"),
            headless=True,
            args=args,
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{base}/admin/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("input[type=submit]")
        page.wait_for_selector("#site-name")
        for name, path in PAGES.items():
            page.goto(base + path)
            page.wait_for_load_state("networkidle")
            out = ROOT / "docs" / f"{name}.png"
            page.screenshot(path=str(out))
            print(f"{out.relative_to(ROOT)}: {path}")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
