"""`POST /api/v1/submissions/` with an Idempotency-Key: a retry returns the first submission and stores
nothing new (issue 14, point 2)."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from courses.models import CourseQuiz
from grader import services
from grader.models import Submission
from quiz.models import Item
from tests.factories import CourseFactory, CourseQuizFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/submissions/"
CODE = "import torch\nx = torch.tensor(2.0, requires_grad=True)\n(x ** 2 + 3 * x + 1).backward()\n"


def post(client: APIClient, body: dict[str, Any], key: str | None = None) -> Any:
    headers: dict[str, Any] = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(URL, body, format="json", **headers)


def test_a_retry_with_the_same_key_returns_the_first_submission(api: APIClient) -> None:
    first = post(api, {"item": "poly", "code": CODE}, key="7f1c0a52-retry")
    again = post(api, {"item": "poly", "code": CODE}, key="7f1c0a52-retry")
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() and again["Location"] == first["Location"]
    assert "Idempotent-Replayed" not in first and again["Idempotent-Replayed"] == "true"
    submission = Submission.objects.get()
    assert submission.idempotency_key == "7f1c0a52-retry" and submission.attempt == 1


def test_a_retry_after_grading_answers_with_the_verdict(api: APIClient) -> None:
    first = post(api, {"item": "poly", "code": CODE}, key="k-graded").json()
    Submission.objects.filter(pk=first["id"]).update(status="passed", score=1.0, final_score=1.0)
    again = post(api, {"item": "poly", "code": CODE}, key="k-graded")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first["id"] and again.json()["status"] == "passed"
    assert Submission.objects.count() == 1


def test_a_choice_answer_is_replayed_with_its_verdict(api: APIClient, choice_item: Item) -> None:
    right = choice_item.choices.get(correct=True).pk
    first = post(api, {"item": "pick", "choices": [right]}, key="choice-1")
    again = post(api, {"item": "pick", "choices": [right, right]}, key="choice-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.json()["status"] == "passed"
    assert Submission.objects.count() == 1


def test_the_replay_is_not_refused_by_the_rules_that_refuse_a_new_attempt(api: APIClient, code_item: Item) -> None:
    CourseQuiz.objects.filter(quiz=code_item.quiz).update(max_attempts=1)
    first = post(api, {"item": "poly", "code": CODE}, key="only-attempt")
    assert first.status_code == 202
    # The retry is neither "no attempts left" nor "a repeat of an earlier answer": it is the first request.
    again = post(api, {"item": "poly", "code": CODE}, key="only-attempt")
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
    other = post(api, {"item": "poly", "code": CODE + "# changed\n"}, key="a-new-key")
    assert other.status_code == 400 and "attempt" in other.json()["error"]["message"]
    assert Submission.objects.count() == 1


def test_without_a_key_every_post_is_a_new_submission(api: APIClient) -> None:
    post(api, {"item": "poly", "code": CODE})
    post(api, {"item": "poly", "code": CODE + "y = 1\n"})
    assert Submission.objects.count() == 2 and not Submission.objects.exclude(idempotency_key=None).exists()


@pytest.mark.parametrize("body", [
    {"item": "poly", "code": CODE + "# another answer\n"},
    {"item": "pick", "choices": []},
])
def test_the_same_key_for_another_request_is_a_422(api: APIClient, choice_item: Item, body: dict[str, Any]) -> None:
    if body.get("choices") == []:
        first = choice_item.choices.first()
        assert first is not None
        body["choices"] = [first.pk]
    post(api, {"item": "poly", "code": CODE}, key="reused")
    response = post(api, body, key="reused")
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "idempotency_key_reused" and "new key" in error["message"]
    assert Submission.objects.count() == 1


def test_keys_belong_to_one_learner(api: APIClient, code_item: Item) -> None:
    other = APIClient()
    other.force_authenticate(UserFactory.create(username="grace"))
    mine = post(api, {"item": "poly", "code": CODE}, key="shared-key").json()
    theirs = post(other, {"item": "poly", "code": CODE}, key="shared-key")
    assert theirs.status_code == 202 and "Idempotent-Replayed" not in theirs
    assert theirs.json()["id"] != mine["id"] and Submission.objects.count() == 2


@pytest.mark.parametrize("key", ["", "x" * 101, "has space", "naïve", "tab\there"])
def test_a_malformed_key_is_a_400(api: APIClient, key: str) -> None:
    response = post(api, {"item": "poly", "code": CODE}, key=key)
    assert response.status_code == 400, response.content
    assert "Idempotency-Key" in response.json()["error"]["fields"]
    assert not Submission.objects.exists()


def test_a_key_of_100_characters_is_kept(api: APIClient) -> None:
    key = "k" * 100
    assert post(api, {"item": "poly", "code": CODE}, key=key).status_code == 202
    assert Submission.objects.get().idempotency_key == key


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_store_one_submission(code_item: Item, learner: Any, unthrottled: None) -> None:
    """Eight copies of one request at once (a client retrying impatiently): one row, one id for all."""
    results: list[tuple[int, int, bool]] = []
    barrier = threading.Barrier(8)

    def send() -> None:
        client = APIClient()
        client.force_authenticate(learner)
        barrier.wait()
        try:
            response = post(client, {"item": "poly", "code": CODE}, key="racing-key")
            results.append((response.status_code, response.json()["id"], "Idempotent-Replayed" in response))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 8
    # One request stored the row (202, queued); the seven replays see it as it is by then: still queued (202),
    # or already graded (201) when the worker was quicker than a late thread.
    assert [status for status, _, replayed in results if not replayed] == [202]
    assert {status for status, _, replayed in results if replayed} <= {201, 202}
    assert len({pk for _, pk, _ in results}) == 1
    assert Submission.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_same_key_for_two_courses_at_once_stores_one(code_item: Item, learner: Any, unthrottled: None) -> None:
    """Two courses lock apart, so the database's unique key decides: one stores, the other is told the key
    went to another request (never a 500, never two rows)."""
    other = CourseFactory.create(slug="other-course")
    CourseQuizFactory.create(course=other, quiz=code_item.quiz)
    MembershipFactory.create(course=other, user=learner)
    statuses: list[int] = []
    barrier = threading.Barrier(2)

    def send(course: str) -> None:
        client = APIClient()
        client.force_authenticate(learner)
        barrier.wait()
        try:
            statuses.append(post(client, {"item": "poly", "code": CODE, "course": course}, key="two-courses")
                            .status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(course,)) for course in ("default", "other-course")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(statuses) == [202, 422]
    assert Submission.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("second_course", ["default", "other-course"])
def test_a_retry_while_the_first_is_uncommitted_waits_for_it(code_item: Item, learner: Any,
                                                              second_course: str) -> None:
    """The first request has stored its row but not committed when the retry arrives: the retry waits for the
    learner's lock, then finds the row: a replay (not "a repeat of an earlier answer"), or, sent for another
    course, a 422 saying where the key went. (Should a writer ever skip that lock, the unique key in the
    database still stops the second row: submission_create_once turns its IntegrityError into the same answer.)"""
    other = CourseFactory.create(slug="other-course")
    CourseQuizFactory.create(course=other, quiz=code_item.quiz)
    MembershipFactory.create(course=other, user=learner)
    stored, retry_started = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                outcome["first"] = services.submission_create(user=learner, item=code_item, code=CODE,
                                                              course="default", idempotency_key="held")
                stored.set()
                retry_started.wait(10)
                time.sleep(0.5)  # the retry is blocked in the database by now
        finally:
            connection.close()

    def retry() -> None:
        stored.wait(10)
        retry_started.set()
        try:
            outcome["retry"] = services.submission_create_once(user=learner, item=code_item, code=CODE,
                                                               course=second_course, idempotency_key="held")
        except services.IdempotencyKeyReused as exc:
            outcome["retry"] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=retry)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert Submission.objects.count() == 1
    if second_course == "default":
        assert isinstance(outcome["retry"], services.Created) and outcome["retry"].replayed
        assert outcome["retry"].submission.pk == outcome["first"].pk
    else:
        assert isinstance(outcome["retry"], services.IdempotencyKeyReused), outcome["retry"]
        assert "another course (default)" in str(outcome["retry"])


def test_the_schema_documents_the_header(client: Any) -> None:
    schema = client.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/submissions/"]["post"]
    header = [p for p in operation["parameters"] if p["in"] == "header"]
    assert [p["name"] for p in header] == ["Idempotency-Key"] and "retry" in header[0]["description"]
    assert {"413", "422", "503"} <= set(operation["responses"])
