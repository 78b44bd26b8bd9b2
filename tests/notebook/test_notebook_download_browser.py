"""The learner's way in, in a real browser (Debian's headless Chromium): the quiz page's "Download as
notebook" link saves a valid notebook of that course's quiz. E2E_SKIP=1 skips it, as the other browser
tests."""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from django.contrib.auth.models import User
from pytest_django.live_server_helper import LiveServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

CHROMIUM = Path("/usr/bin/chromium")


def test_the_quiz_page_link_downloads_the_notebook(
        live_server: LiveServer, seed_quiz: None, learner: User, tmp_path: Path) -> None:
    if os.environ.get("E2E_SKIP") == "1":
        pytest.skip("E2E_SKIP=1: browser tests skipped")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium`, or set E2E_SKIP=1.", pytrace=False)
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an asyncio loop on this thread
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                                 args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_context(base_url=live_server.url, accept_downloads=True).new_page()
            page.goto("/accounts/login/?next=/quizzes/autograd-basics/")
            page.get_by_label("Username").fill("ada")
            page.get_by_label("Password").fill("pass-word-123")
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url("**/quizzes/autograd-basics/")
            with page.expect_download() as download:
                page.get_by_role("link", name="Download as notebook").click()
            saved = tmp_path / download.value.suggested_filename
            download.value.save_as(saved)
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous

    assert saved.name == "autograd-basics.ipynb"
    notebook = nbformat.read(saved, as_version=nbformat.NO_CONVERT)
    nbformat.validate(notebook)
    assert f"%quiz_login {live_server.url} --course default" in notebook.cells[1].source
