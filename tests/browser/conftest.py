"""Browser fixtures: Debian's Chromium (the live server comes from tests/live_server.py)."""

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM_PATH = Path(os.environ.get("CLICKME_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS_DIR = Path(os.environ.get("CLICKME_SHOTS_DIR", "/tmp/clickme-shots"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (per module: Playwright's sync API holds
    an event loop on the main thread while it runs, which asyncio tests must not meet)."""
    if not CHROMIUM_PATH.exists():
        if os.environ.get("CI"):
            pytest.fail(f"Chromium missing in CI: {CHROMIUM_PATH}")
        pytest.skip(f"Chromium not found: {CHROMIUM_PATH}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM_PATH), args=CHROMIUM_ARGS
        )
        _watch_csp(chromium)
        yield chromium
        chromium.close()


# What the browser refused under the Content-Security-Policy, in every context of every test.
CSP_VIOLATIONS: list[str] = []


def _watch_csp(chromium: Browser) -> None:
    """Every context made from this browser records the CSP violations its pages report."""
    new_context = chromium.new_context

    def watched_context(**options):
        context = new_context(**options)
        context.on(
            "console",
            lambda message: (
                CSP_VIOLATIONS.append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )
        return context

    chromium.new_context = watched_context  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def no_csp_violations() -> Iterator[None]:
    """The game and the console work under their CSP: nothing is refused by it."""
    CSP_VIOLATIONS.clear()
    yield
    assert not CSP_VIOLATIONS, CSP_VIOLATIONS


@pytest.fixture(scope="session")
def shots_dir() -> Path:
    """Where the tests leave screenshots of the layouts to look at."""
    SHOTS_DIR.mkdir(parents=True, exist_ok=True)
    return SHOTS_DIR


def wait_until(
    page: Page, condition: Callable[[], bool], failure: str, timeout_s: float = 30
) -> None:
    """Until the condition holds, the page's events handled meanwhile (the sync API runs route
    handlers and event listeners only inside its own calls); the test fails if time runs out."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, failure
        page.wait_for_timeout(50)
