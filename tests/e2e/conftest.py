"""Browser tests: Debian's headless Chromium, driven by Playwright, against pytest-django's
live_server and a real Celery worker.

A missing /usr/bin/chromium fails these tests with a message saying how to install it;
set E2E_SKIP=1 to skip them instead. Screenshots of every step land in
test-artifacts/screenshots/ (git-ignored).
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache

from grader.apis import SubmissionRateThrottle

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def browser(django_db_setup: None) -> Iterator[Any]:
    """One headless Chromium per test module."""
    if os.environ.get("E2E_SKIP") == "1":
        pytest.skip("E2E_SKIP=1: browser tests skipped")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing, so the browser tests cannot run. Install Debian's Chromium with "
                    "`apt-get install -y chromium` (.ci/run does), or set E2E_SKIP=1 to skip them.", pytrace=False)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop running on this thread; the ORM calls
    # made by fixtures and tests meanwhile are ordinary synchronous code.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class PageProblems:
    """JavaScript errors and failed requests seen by a page: a test fails on any."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def watch(self, page: Any) -> None:
        page.on("pageerror", lambda error: self.items.append(f"page error: {error}"))
        page.on("console", lambda msg: self.items.append(f"console {msg.type}: {msg.text}")
                if msg.type == "error" else None)
        # The draft save on leaving a page is best effort: closing the browser may cut it off (and nothing is lost
        # that the learner sent). Any other failed request is a problem.
        page.on("requestfailed", lambda request: self.items.append(f"request failed: {request.url}")
                if not request.url.endswith(("/favicon.ico", "/state/")) else None)


@pytest.fixture
def new_page(browser: Any, live_server: Any) -> Iterator[Callable[..., Any]]:
    """Open pages in fresh browser contexts; asserts none of them logged a JavaScript error."""
    contexts = []
    problems = PageProblems()

    def open_page(**context_options: Any) -> Any:
        options = {"viewport": DESKTOP, "base_url": live_server.url, **context_options}
        context = browser.new_context(**options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        problems.watch(page)
        return page

    yield open_page
    for context in contexts:
        context.close()
    # A 400 or 429 answer is a console error in Chromium, but tests that expect them check them.
    unexpected = [p for p in problems.items if not re.search(r"status of (400|429)", p)]
    assert unexpected == [], unexpected


@pytest.fixture
def screenshot() -> Callable[[Any, str], Path]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str, full_page: bool = True) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take


@pytest.fixture
def ada(learner: Any) -> Any:
    """The learner, with a fresh submission budget (the throttle lives in the shared Redis cache)."""
    cache.delete(SubmissionRateThrottle.cache_format % {"scope": "submissions", "ident": learner.pk})
    return learner


def log_in(page: Any, username: str = "ada", password: str = "pass-word-123", next_url: str = "/") -> None:
    page.goto(f"/accounts/login/?next={next_url}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(re.escape(next_url) + r"$"))
