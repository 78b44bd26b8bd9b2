"""From submit to verdict on screen, in Chromium against the production web server (gunicorn with
config/gunicorn.conf.py, static files by whitenoise) and a real worker. The page asks for the verdict on the
submit itself (POST ?wait=) and long-polls a slower one, so the verdict shows as soon as it is stored, not at
a timer's next tick. The figure is printed with where the time went (speed is a benchmark's business, and this
machine is shared); what is asserted is that no polling happens."""
from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from grader.models import Submission

from tests.web.server import GunicornProcess

from .conftest import log_in
from .test_learner_site import ITEM, VERDICT_TIMEOUT, final_verdict, set_code

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROUNDS = 9
ANSWER = "import torch\n\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\ny.backward()\n"
API_CALLS = "performance.getEntriesByType('resource').filter(e => /\\/api\\/v1\\/submissions\\/(\\d+\\/)?\\?wait=/.test(e.name)).length"


@pytest.fixture
def web_server(gunicorn: Callable[..., GunicornProcess]) -> GunicornProcess:
    """gunicorn as deployed, with the static files collected for whitenoise to serve."""
    call_command("collectstatic", interactive=False, verbosity=0)
    return gunicorn()


def test_the_verdict_comes_back_on_the_submit_without_polling(
        new_page: Callable[..., Any], web_server: GunicornProcess, ada: Any, seed_quiz: None,
        celery_worker: object) -> None:
    page = new_page(base_url=web_server.url)
    log_in(page, next_url=f"/items/{ITEM}/")
    expect(page.locator(".answer .CodeMirror")).to_be_visible()
    set_code(page, ANSWER + "# warm-up\n")  # the first job of a fresh worker process warms its zygote
    page.get_by_role("button", name="Run and check").click()
    expect(final_verdict(page)).to_have_attribute("data-status", "passed", timeout=VERDICT_TIMEOUT)
    timings, calls = [], []
    for n in range(ROUNDS):
        set_code(page, ANSWER + f"# round {n}\n")  # each a new answer: a repeat would be refused unrun
        before, requests = page.evaluate("performance.getEntriesByName('verdict-shown').length"), page.evaluate(API_CALLS)
        page.get_by_role("button", name="Run and check").click()
        page.wait_for_function(f"performance.getEntriesByName('verdict-shown').length > {before}",
                               timeout=VERDICT_TIMEOUT)
        expect(final_verdict(page)).to_have_attribute("data-status", "passed")
        timings.append(page.evaluate("performance.getEntriesByName('verdict-shown').at(-1).duration"))
        calls.append(page.evaluate(API_CALLS) - requests)
    print(f"\nsubmit to verdict on screen, {ROUNDS} submissions: p50 {statistics.median(timings):.0f} ms, "
          f"max {max(timings):.0f} ms; requests per verdict: {calls}")
    # Where the time went, from the submissions' own timestamps (the rest is the browser, the web request and
    # the wait's wake-up): in the queue (stored to claimed by the worker) and in the worker (claimed to stored).
    graded = list(Submission.objects.filter(user=ada).order_by("pk"))[-ROUNDS:]
    queued: list[float] = []
    grading: list[float] = []
    for s in graded:
        assert s.started_at is not None and s.finished_at is not None, f"submission {s.pk} has no verdict"
        queued.append((s.started_at - s.created_at).total_seconds() * 1000)
        grading.append((s.finished_at - s.started_at).total_seconds() * 1000)
    print(f"of which p50 {statistics.median(queued):.0f} ms stored to claimed, "
          f"{statistics.median(grading):.0f} ms claimed to verdict stored")
    # One request per verdict (the POST that waits), two when grading outlasted its wait: never a poll loop.
    assert all(1 <= c <= 2 for c in calls) and statistics.median(calls) == 1, calls
