"""Browser tests: Playwright driving Debian's Chromium (headless) against live_server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run `python3 dev.py test`, which installs it"
        )
    with sync_playwright() as pw:
        args = [
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--no-sandbox")
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    p = context.new_page()
    p.set_default_timeout(15_000)
    yield p
    context.close()


@pytest.fixture
def admin_login(page, live_server, django_user_model):
    """Log in through the real login form; returns a function opening admin paths."""
    django_user_model.objects.create_superuser("e2e", "e2e@example.org", "e2e-password-123")
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "e2e")
    page.fill("#id_password", "e2e-password-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")

    def open_path(path: str) -> None:
        page.goto(f"{live_server.url}{path}")

    return open_path


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
