"""Regrades: through the real Celery worker for code, at once for choice answers;
the verdict before is kept in the submission's history."""
from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from grader.models import RegradeBatch, Submission, SubmissionGrading
from grader.services import submission_create
from quiz.models import Choice, Item

from .conftest import form_data

CORRECT = "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\ny.backward()\n"
NO_BACKWARD = "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\n"
SOLUTION_X3 = "import torch\n\nx = torch.tensor(3.0, requires_grad=True)\ny = x ** 2 + 3 * x + 1\ny.backward()\n"


def wait_until_graded(ids: list[int], timeout: float = 60.0) -> list[Submission]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        submissions = list(Submission.objects.filter(pk__in=ids).order_by("pk"))
        if all(not s.is_pending for s in submissions):
            return submissions
        time.sleep(0.05)
    raise AssertionError(f"no verdicts within {timeout} s: {[(s.pk, s.status) for s in submissions]}")


def wait_for_progress(client: Client, url: str, timeout: float = 60.0) -> dict[str, Any]:
    seen = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        response = client.get(url)
        assert response.status_code == 200 and response["Content-Type"] == "application/json"
        progress = response.json()
        seen.append(progress["finished"])
        if progress["finished"] == progress["total"]:
            assert progress["done"] is True
            assert seen == sorted(seen)  # progress never goes back
            return progress
        assert progress["done"] is False
        time.sleep(0.1)
    raise AssertionError(f"the regrade did not finish within {timeout} s: {progress}")


def change_solution(client: Client, item: Item, solution: str) -> None:
    url = f"/admin/quiz/item/{item.pk}/change/"
    data = form_data(client.get(url))
    data["solution_code"] = solution
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_regrade_after_an_item_changed_keeps_the_old_verdict_and_uses_the_new_version(
        instructor_client: Client, learner: User, seed_quiz: None, celery_worker: object) -> None:
    item = Item.objects.get(slug="grad-of-polynomial")
    ids = [submission_create(user=learner, item=item, code=code).pk for code in (CORRECT, NO_BACKWARD)]
    right, wrong = wait_until_graded(ids)
    assert (right.status, right.score, right.item_version) == ("passed", 1.0, 1)
    assert (wrong.status, wrong.item_version) == ("failed", 1)

    change_solution(instructor_client, item, SOLUTION_X3)  # x = 3: dy/dx is 9 now
    item.refresh_from_db()
    assert item.version == 2
    view = instructor_client.get(f"/admin/grader/submission/{right.pk}/change/").content.decode()
    assert "graded against item version 1, now version 2" in view

    response = instructor_client.post("/admin/grader/submission/", {
        "action": "regrade_selected", "_selected_action": ids, "confirm": "yes"})
    batch = RegradeBatch.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/admin/grader/submission/regrade/{batch.pk}/"
    progress = wait_for_progress(instructor_client, f"/admin/grader/submission/regrade/{batch.pk}/progress.json")
    assert progress == {"batch": batch.pk, "total": 2, "finished": 2, "done": True, "statuses": {"failed": 2},
                        "changed": 1}  # the right answer no longer passes

    history = {g.submission_id: g for g in SubmissionGrading.objects.filter(batch=batch)}
    assert (history[right.pk].status, history[right.pk].score, history[right.pk].item_version) == ("passed", 1.0, 1)
    assert history[right.pk].checks == right.checks and history[right.pk].graded_at == right.finished_at
    assert (history[wrong.pk].status, history[wrong.pk].item_version) == ("failed", 1)
    right, wrong = wait_until_graded(ids)
    assert (right.status, right.item_version, right.deliveries) == ("failed", 2, 1)
    grad = next(c for c in right.checks if c["name"] == "x.grad")
    assert not grad["passed"] and "expected 9.0" in grad["message"]
    assert (wrong.status, wrong.item_version) == ("failed", 2)
    assert batch.requested_by is not None and batch.requested_by.username == "prof"

    page = instructor_client.get(f"/admin/grader/submission/regrade/{batch.pk}/").content.decode()
    assert "<strong><span id=\"regrade-finished\">2</span> of <span id=\"regrade-total\">2</span></strong>" in page
    assert page.count("v1 → v2") == 2 and "graded against item version 1" not in page  # regraded: no stale note
    assert 'data-done="true"' in page and 'id="regrade-changed">' in page
    view = instructor_client.get(f"/admin/grader/submission/{right.pk}/change/").content.decode()
    assert "version 2 (current)" in view and f"regrade #{batch.pk}" in view

    # Every submission of the item, from the item list: history grows, the old batch stays finished.
    confirm = instructor_client.post("/admin/quiz/item/", {"action": "regrade_submissions",
                                                           "_selected_action": [item.pk]})
    assert 'id="regrade-count">2<' in confirm.content.decode() and not RegradeBatch.objects.exclude(pk=batch.pk)
    response = instructor_client.post("/admin/quiz/item/", {"action": "regrade_submissions",
                                                            "_selected_action": [item.pk], "confirm": "yes"})
    second = RegradeBatch.objects.exclude(pk=batch.pk).get()
    assert response["Location"] == f"/admin/grader/submission/regrade/{second.pk}/"
    assert second.label == "all submissions of grad-of-polynomial"
    assert wait_for_progress(instructor_client, f"/admin/grader/submission/regrade/{second.pk}/progress.json") == {
        "batch": second.pk, "total": 2, "finished": 2, "done": True, "statuses": {"failed": 2}, "changed": 0}
    assert SubmissionGrading.objects.filter(submission=right).count() == 2
    assert instructor_client.get(f"/admin/grader/submission/regrade/{batch.pk}/progress.json").json()["finished"] == 2


@pytest.mark.django_db
def test_a_choice_answer_is_regraded_at_once(instructor_client: Client, learner: User, seed_quiz: None) -> None:
    item = Item.objects.get(slug="requires-grad-true-vs-false")
    choices = list(item.choices.order_by("order"))
    submission = submission_create(user=learner, item=item, selected=[choices[1].pk])
    assert submission.status == "failed"
    Choice.objects.filter(item=item).update(correct=False)
    Choice.objects.filter(pk=choices[1].pk).update(correct=True)
    Item.objects.filter(pk=item.pk).update(version=2)
    response = instructor_client.post("/admin/grader/submission/", {
        "action": "regrade_selected", "_selected_action": [submission.pk], "confirm": "yes"})
    batch = RegradeBatch.objects.get()
    assert response["Location"] == f"/admin/grader/submission/regrade/{batch.pk}/"
    submission.refresh_from_db()
    assert (submission.status, submission.score, submission.item_version) == ("passed", 1.0, 2)
    assert list(batch.gradings.values_list("status", "item_version")) == [("failed", 1)]
    assert instructor_client.get(f"/admin/grader/submission/regrade/{batch.pk}/progress.json").json() == {
        "batch": batch.pk, "total": 1, "finished": 1, "done": True, "statuses": {"passed": 1}, "changed": 1}
    grading = batch.gradings.get()
    page = instructor_client.get(f"/admin/grader/submissiongrading/{grading.pk}/change/").content.decode()
    assert '<tr class="check-failed"><td>Choice 2</td><td>✗ failed</td>' in page
    assert f'">#{submission.pk}</a>' in page
    assert 'name="_save"' not in page


@pytest.mark.django_db
def test_submissions_still_being_graded_are_left_out(
        instructor_client: Client, known_submissions: dict[str, Any]) -> None:
    poly = known_submissions["poly"]
    pending = Submission.objects.get(item=poly, status="queued")
    instructor_client.post("/admin/quiz/item/", {"action": "regrade_submissions", "_selected_action": [poly.pk], "confirm": "yes"})
    batch = RegradeBatch.objects.get()
    assert batch.total == 11  # 12 submissions, one of them queued already
    assert sorted(batch.gradings.values_list("submission_id", flat=True)) == sorted(
        Submission.objects.filter(item=poly).exclude(pk=pending.pk).values_list("pk", flat=True))
    assert Submission.objects.filter(item=poly, status="queued").count() == 12
    first = batch.gradings.first()
    assert first is not None
    reset = Submission.objects.get(pk=first.submission_id)
    assert (reset.claim, reset.deliveries, reset.started_at, reset.finished_at, reset.score, reset.checks) == (
        "", 0, None, None, None, [])
    assert reset.queued_at is not None
    progress = instructor_client.get(f"/admin/grader/submission/regrade/{batch.pk}/progress.json").json()
    assert (progress["total"], progress["finished"], progress["done"]) == (11, 0, False)
    page = instructor_client.get(f"/admin/grader/submission/regrade/{batch.pk}/")
    assert 'data-done="false"' in page.content.decode() and "grader/regrade-progress.js" in page.content.decode()
