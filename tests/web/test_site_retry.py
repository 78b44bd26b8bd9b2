"""The item page's JavaScript sends an Idempotency-Key with each answer, and the same key again when it resends
an answer whose reply it never got (issue 14, point 2): in a real browser against the live server."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from grader.models import Submission
from quiz.models import Item
from tests.e2e.conftest import DESKTOP, ada, browser, log_in  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture
def page(browser: Any, live_server: Any) -> Iterator[Any]:  # noqa: F811
    # Not tests.e2e's new_page: this test makes a request fail on purpose.
    context = browser.new_context(viewport=DESKTOP, base_url=live_server.url)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def test_a_resent_answer_whose_reply_was_lost_is_stored_once(page: Any, ada: Any,  # noqa: F811
                                                             choice_item: Item) -> None:
    sent: list[str] = []
    lose_reply = [True]

    def intercept(route: Any) -> None:
        if route.request.method != "POST":
            return route.continue_()
        sent.append(route.request.headers.get("idempotency-key", ""))
        response = route.fetch()  # the server stores the answer ...
        if lose_reply[0]:
            lose_reply[0] = False
            # ... and the reply is lost on the way back (a proxy timing out, a dropped connection).
            return route.fulfill(status=502, content_type="application/json",
                                 body=json.dumps({"error": {"code": "bad_gateway", "message": "lost"}}))
        return route.fulfill(response=response)

    page.route(re.compile(r"/api/v1/submissions/(\?.*)?$"), intercept)
    log_in(page, next_url="/items/pick/")
    right = choice_item.choices.get(correct=True)
    page.locator(f"input[name=choices][value='{right.pk}']").check()
    page.get_by_role("button", name="Check my answer").click()
    expect(page.locator("#form-error")).to_contain_text("HTTP 502")
    assert Submission.objects.count() == 1, "the first try was stored"

    page.get_by_role("button", name="Check my answer").click()  # the learner tries again, same answer
    expect(page.locator("#verdict .verdict")).to_have_attribute("data-status", "passed")
    assert len(sent) == 2 and UUID.match(sent[0]) and sent[1] == sent[0], sent
    stored = Submission.objects.get()
    assert stored.idempotency_key == sent[0] and stored.attempt == 1

    wrong = choice_item.choices.filter(correct=False).first()
    assert wrong is not None
    page.locator(f"input[name=choices][value='{wrong.pk}']").check()
    page.get_by_role("button", name="Check my answer").click()
    expect(page.locator("#verdict .verdict")).to_have_attribute("data-status", "failed")
    assert len(sent) == 3 and UUID.match(sent[2]) and sent[2] != sent[0], "a new answer, a new key"
    assert Submission.objects.count() == 2
