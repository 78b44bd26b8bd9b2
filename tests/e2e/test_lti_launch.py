"""A learner comes in from a learning platform (the emulated LMS of tests/lti/platform.py) in a real
browser: the LTI launch logs them in on the course's quiz page, they pass an item graded by a real
Celery worker, and the platform's gradebook receives the quiz score."""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from courses.models import Course
from quiz.models import Item
from tests.lti.platform import ROLE_INSTRUCTOR, ROLE_LEARNER, Platform

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ITEM = "grad-of-polynomial"
CORRECT = "import torch\n\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\ny.backward()\n"
VERDICT_TIMEOUT = 45_000  # ms


def set_code(page: Any, code: str) -> None:
    page.locator(".answer .CodeMirror").evaluate("(el, code) => el.CodeMirror.setValue(code)", code)


@pytest.fixture
def lms(live_server: Any) -> Iterator[Platform]:
    """The emulated platform, on the same host name as the live server: this test runs over plain HTTP,
    where the tool's state cookie cannot be SameSite=None (that needs HTTPS, as in production), so the
    platform's form post must be a same-site one for the browser to send it."""
    host = re.match(r"https?://([^:/]+)", live_server.url)
    assert host is not None, live_server.url
    platform = Platform(tool_url=live_server.url, tool_jwks_url=f"{live_server.url}/lti/jwks/", url_host=host.group(1))
    platform.register()
    yield platform
    platform.stop()


def test_a_learner_launched_from_the_platform_gets_their_score_back_there(
        new_page: Callable[..., Any], screenshot: Callable[[Any, str], Path], lms: Platform, seed_quiz: None,
        celery_worker: object) -> None:
    line_item = lms.line_item_create("course-101", label="Autograd basics", resource_link_id="link-1")
    claims = lms.claims(sub="learner-42", roles=[ROLE_LEARNER], given_name="Ada", family_name="Lovelace",
                        custom={"quiz": "autograd-basics"}, line_item=line_item)
    page = new_page()

    # The learner clicks the link in their course: login initiation, the platform's authorization, the launch.
    page.goto(lms.start_url(claims))
    expect(page).to_have_url(re.compile(r"/quizzes/autograd-basics/\?course=course-101-[0-9a-f]{10}$"))
    course = Course.objects.get(lti_contexts__isnull=False)
    expect(page.get_by_text("Signed in as")).to_contain_text("lti-")
    expect(page.locator(".item-row")).to_have_count(Item.objects.filter(quiz__slug="autograd-basics",
                                                                        archived=False).count())
    screenshot(page, "lti-01-launched-onto-the-quiz")

    page.goto(f"/items/{ITEM}/?course={course.slug}")
    expect(page.locator(".answer .CodeMirror")).to_be_visible()
    set_code(page, CORRECT)
    page.get_by_role("button", name="Run and check").click()
    expect(page.locator("#verdict .verdict")).to_have_attribute("data-status", "passed", timeout=VERDICT_TIMEOUT)
    screenshot(page, "lti-02-passed")

    end = time.monotonic() + 45
    while not lms.scores_for("learner-42") and time.monotonic() < end:
        time.sleep(0.1)
    [score] = lms.scores_for("learner-42")
    items = Item.objects.filter(quiz__slug="autograd-basics", archived=False).count()
    assert score["scoreGiven"] == pytest.approx(100 / items, abs=1e-3)
    assert (score["activityProgress"], score["gradingProgress"]) == ("Submitted", "FullyGraded")
    assert lms.recorded.scores[0].line_item == line_item
    assert lms.recorded.refused == []


def test_an_instructor_picks_a_quiz_for_the_course_with_deep_linking(
        new_page: Callable[..., Any], screenshot: Callable[[Any, str], Path], lms: Platform, seed_quiz: None) -> None:
    page = new_page()
    page.goto(lms.start_url(lms.claims(sub="teacher-1", roles=[ROLE_INSTRUCTOR], given_name="Grace",
                                       family_name="Hopper", deep_linking=True)))
    expect(page.get_by_role("heading", name="Choose a quiz for Deep learning 101")).to_be_visible()
    screenshot(page, "lti-03-deep-linking-picker")

    page.get_by_label("Autograd basics").check()
    page.get_by_role("button", name="Add to the course").click()
    # The signed answer posts itself back to the platform, which verifies it against /lti/jwks/.
    expect(page.get_by_role("heading", name="Added: Autograd basics")).to_be_visible()
    [placed] = lms.placed
    assert placed.custom == {"quiz": "autograd-basics"} and placed.line_item
    assert lms.recorded.refused == []
