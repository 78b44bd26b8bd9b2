"""Accessibility of the learner pages, checked in Chromium with axe-core (vendored: tests/e2e/vendor,
MPL-2.0): no serious or critical violation of WCAG 2.1 A/AA rules on any learner page, as a visitor, a
learner answering, and with a verdict on screen."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import log_in
from .test_learner_site import ITEM, NO_BACKWARD, VERDICT_TIMEOUT, final_verdict, set_code

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).parent / "vendor" / "axe-4.10.3.min.js"
SERIOUS = ("serious", "critical")


def violations(page: Any) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => await axe.run(document, {
        runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})""")
    return [f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v["impact"] in SERIOUS]


def test_the_learner_pages_have_no_serious_accessibility_violations(
        new_page: Callable[..., Any], ada: Any, seed_quiz: None, celery_worker: object) -> None:
    page = new_page()
    page.set_content('<html lang="en"><head><title>t</title></head><body><main><img src="data:,"></main></body></html>')
    assert any(v.startswith("image-alt (critical)") for v in violations(page))  # the check itself can fail
    found = {}
    for url in ("/", "/accounts/login/", "/accounts/signup/"):
        page.goto(url)
        found[url] = violations(page)
    log_in(page)
    for url in ("/", "/quizzes/autograd-basics/", f"/items/{ITEM}/", "/items/autograd-how-it-works/"):
        page.goto(url)
        found[url] = violations(page)
    page.goto(f"/items/{ITEM}/")
    set_code(page, NO_BACKWARD)
    page.get_by_role("button", name="Run and check").click()
    expect(final_verdict(page)).to_have_attribute("data-status", "failed", timeout=VERDICT_TIMEOUT)
    found["item page with a verdict"] = violations(page)
    assert {url: v for url, v in found.items() if v} == {}
