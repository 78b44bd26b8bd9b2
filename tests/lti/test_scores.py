"""Assignment and Grade Services: after each graded attempt the learner's quiz score reaches the
platform's line item; late or repeated deliveries never send an older score; platform faults are
retried, refusals are not."""
from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from lti_tool.models import LtiLineItem
from pylti1p3.exception import LtiServiceException
from pytest_django.fixtures import DjangoCaptureOnCommitCallbacks

from grader.events import attempt_graded
from grader.models import Submission
from lti import receivers, scores
from lti.models import QuizLink, ScoreSent
from lti.tasks import publish_score
from lti.tool import PlatformUnavailable
from quiz.models import Item, Quiz
from tests.factories import ItemFactory, QuizFactory, UserFactory

from .conftest import Launcher
from .platform import AGS, ROLE_LEARNER, Platform

CONTEXT = "course-101"


@pytest.fixture
def quiz(db: None) -> Quiz:
    quiz = QuizFactory.create(slug="two-items", title="Two items")
    ItemFactory.create(quiz=quiz, slug="first-item")
    ItemFactory.create(quiz=quiz, slug="second-item")
    return quiz


def launch_learner(client: Any, platform: Platform, quiz: Any, *, sub: str = "learner-7",
                   line_item: bool = True, **claims: Any) -> tuple[Any, QuizLink]:
    """A learner's launch of a link to the quiz (placed with a line item, as deep linking does)."""
    url = platform.line_item_create(CONTEXT, label=quiz.title, resource_link_id="link-1") if line_item else None
    response = Launcher(client, platform).launch(platform.claims(sub=sub, roles=[ROLE_LEARNER], context_id=CONTEXT,
                                                                 custom={"quiz": quiz.slug}, line_item=url, **claims))
    assert response.status_code == 302, response.content[:500]
    link = QuizLink.objects.select_related("resource_link__context__course_link__course").get()
    return link.resource_link.context.course_link.course, link


def graded(user: Any, course: Any, item_slug: str, final_score: float, *, minutes_ago: float = 0,
           attempt: int = 1) -> Submission:
    """A stored verdict, as the grading pipeline leaves it."""
    return Submission.objects.create(
        user=user, item=Item.objects.get(slug=item_slug), course=course, code="# graded",
        status="passed" if final_score == 1 else "failed", score=final_score, final_score=final_score,
        attempt=attempt, finished_at=timezone.now() - timedelta(minutes=minutes_ago))


def learner_of(sub: str) -> Any:
    return get_user_model().objects.get(lti_users__sub=sub)


def test_the_quiz_score_goes_to_the_line_item_and_an_older_verdict_never_follows_a_newer(
        client: Client, live_platform: Platform, quiz: Quiz) -> None:
    course, link = launch_learner(client, live_platform, quiz)
    ada = learner_of("learner-7")
    first = graded(ada, course, "first-item", 0.5, minutes_ago=2)

    assert scores.score_publish(link_id=link.pk, user_id=ada.pk, submission_id=first.pk) == "sent"
    [sent] = live_platform.scores_for("learner-7")
    assert sent["scoreGiven"] == 25.0 and sent["scoreMaximum"] == 100.0  # mean of 0.5 and 0 (not tried)
    assert (sent["activityProgress"], sent["gradingProgress"]) == ("Submitted", "FullyGraded")
    assert first.finished_at is not None and sent["timestamp"] == first.finished_at.isoformat()

    second = graded(ada, course, "second-item", 1.0, minutes_ago=1)
    assert scores.score_publish(link_id=link.pk, user_id=ada.pk, submission_id=second.pk) == "sent"
    assert live_platform.scores_for("learner-7")[-1]["scoreGiven"] == 75.0
    assert live_platform.scores_for("learner-7")[-1]["activityProgress"] == "Completed"

    # The first attempt's task delivered again, late: not sent.
    assert scores.score_publish(link_id=link.pk, user_id=ada.pk, submission_id=first.pk) == "stale"
    assert len(live_platform.scores_for("learner-7")) == 2
    # The newest delivered twice: the same score again, harmless.
    assert scores.score_publish(link_id=link.pk, user_id=ada.pk, submission_id=second.pk) == "sent"
    assert [s["scoreGiven"] for s in live_platform.scores_for("learner-7")] == [25.0, 75.0, 75.0]
    record = ScoreSent.objects.get()
    assert (record.score, record.submission_id, record.verdict_at) == (0.75, second.pk, second.finished_at)


def test_a_link_without_a_line_item_finds_or_creates_one_on_the_platform(
        client: Client, live_platform: Platform, quiz: Quiz) -> None:
    course, link = launch_learner(client, live_platform, quiz, line_item=False)
    ada = learner_of("learner-7")
    attempt = graded(ada, course, "first-item", 1.0)

    assert scores.score_publish(link_id=link.pk, user_id=ada.pk, submission_id=attempt.pk) == "sent"
    [(url, line_item)] = live_platform.line_items.items()
    assert (line_item["label"], line_item["resourceLinkId"], line_item["scoreMaximum"]) == ("Two items", "link-1", 100)
    assert LtiLineItem.objects.get().url == url
    assert live_platform.recorded.scores[-1].line_item == url
    assert scores.score_publish(link_id=link.pk, user_id=ada.pk, submission_id=attempt.pk) == "sent"
    assert len(live_platform.line_items) == 1, "found again, not created twice"


def test_a_platform_fault_is_retryable_and_a_refusal_is_not(
        client: Client, live_platform: Platform, quiz: Quiz) -> None:
    course, link = launch_learner(client, live_platform, quiz)
    ada = learner_of("learner-7")
    attempt = graded(ada, course, "first-item", 1.0)

    for status in (503, 429):
        live_platform.fail_scores = [status]
        with pytest.raises(PlatformUnavailable, match=str(status)):
            scores.score_publish(link_id=link.pk, user_id=ada.pk, submission_id=attempt.pk)
    assert ScoreSent.objects.filter(sent_at__isnull=False).count() == 0, "nothing recorded as sent"

    live_platform.line_items.clear()  # the platform deleted the gradebook column: 404
    with pytest.raises(LtiServiceException, match="404"):
        scores.score_publish(link_id=link.pk, user_id=ada.pk, submission_id=attempt.pk)


def test_no_score_without_the_score_scope_or_an_lti_identity(
        client: Client, live_platform: Platform, quiz: Quiz) -> None:
    claims_ags = live_platform.claims(sub="x", context_id=CONTEXT)[AGS]
    claims_ags["scope"] = [s for s in claims_ags["scope"] if not s.endswith("/score")]
    course, link = launch_learner(client, live_platform, quiz, **{AGS: claims_ags})
    ada = learner_of("learner-7")
    attempt = graded(ada, course, "first-item", 1.0)
    assert scores.score_publish(link_id=link.pk, user_id=ada.pk, submission_id=attempt.pk) == "no score scope"

    local = UserFactory.create(username="grace")
    assert scores.score_publish(link_id=link.pk, user_id=local.pk, submission_id=attempt.pk) == "no LTI identity"
    assert live_platform.recorded.scores == []


def test_a_graded_attempt_queues_one_task_per_linked_quiz_holding_the_item(
        client: Client, platform: Platform, quiz: Quiz, monkeypatch: pytest.MonkeyPatch,
        django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks) -> None:
    course, link = launch_learner(client, platform, quiz)
    ada = learner_of("learner-7")
    queued: list[tuple[int, int, int]] = []
    monkeypatch.setattr(receivers.publish_score, "delay", lambda *args: queued.append(args))
    attempt = graded(ada, course, "first-item", 1.0)
    other_quiz_item = ItemFactory.create(slug="elsewhere")
    local = UserFactory.create(username="grace")

    with django_capture_on_commit_callbacks(execute=True):
        attempt_graded.send(sender=Submission, submission_id=attempt.pk, user_id=ada.pk, course_id=course.pk,
                            item_id=attempt.item_id)
        attempt_graded.send(sender=Submission, submission_id=0, user_id=local.pk, course_id=course.pk,
                            item_id=attempt.item_id)  # no identity on the platform
        attempt_graded.send(sender=Submission, submission_id=0, user_id=ada.pk, course_id=course.pk,
                            item_id=other_quiz_item.pk)  # not in the linked quiz
    assert queued == [(link.pk, ada.pk, attempt.pk)]


def test_a_learner_without_an_lti_identity_costs_one_plain_query(
        client: Client, platform: Platform, quiz: Quiz, django_assert_num_queries: Any) -> None:
    course, _ = launch_learner(client, platform, quiz)
    local = UserFactory.create(username="grace")
    item = Item.objects.get(slug="first-item")
    with django_assert_num_queries(1):
        assert scores.links_for_attempt(user_id=local.pk, course_id=course.pk, item_id=item.pk) == []


def wait_for(condition: Any, timeout: float = 45.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.worker
def test_the_worker_retries_when_the_platform_answers_503_once(
        client: Client, live_platform: Platform, quiz: Quiz, celery_worker: object) -> None:
    course, link = launch_learner(client, live_platform, quiz)
    ada = learner_of("learner-7")
    attempt = graded(ada, course, "first-item", 1.0)
    live_platform.fail_scores = [503]

    publish_score.delay(link.pk, ada.pk, attempt.pk)

    wait_for(lambda: live_platform.scores_for("learner-7"), what="the score after a retry")
    assert live_platform.recorded.score_answers == [503, 200]
    assert live_platform.scores_for("learner-7")[0]["scoreGiven"] == 50.0
