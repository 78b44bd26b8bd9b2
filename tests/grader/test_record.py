"""Storing a verdict: whatever learner code printed or raised reaches the database.

PostgreSQL's text and jsonb types refuse U+0000 and no driver encodes a lone
surrogate; such a verdict used to raise in submission_record, leaving the
submission `running` until the sweep. Run these with DATABASE_URL pointing at
PostgreSQL as well as on SQLite.
"""
from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from grader.models import Submission
from grader.sandbox import CheckResult, Grade
from grader.services import submission_claim, submission_record
from grader.tasks import grade_submission
from quiz.models import Item
from tests.factories import SubmissionFactory

# print a NUL, then raise an exception whose message holds a NUL and a lone surrogate
NUL_CODE = 'print("before\\x00after")\nraise ValueError("bad\\x00value \\ud800")\n'


@pytest.mark.django_db(transaction=True)  # the task closes unusable connections, as in a worker
def test_a_nul_printed_and_raised_is_stored_with_a_visible_symbol(seed_quiz: None, learner: User) -> None:
    submission = SubmissionFactory.create(user=learner, item=Item.objects.get(slug="grad-of-polynomial"), code=NUL_CODE)
    assert grade_submission.apply(args=(submission.pk,)).get() == "error"
    stored = Submission.objects.get(pk=submission.pk)
    assert stored.status == "error" and stored.deliveries == 1 and stored.finished_at is not None
    assert stored.stdout == "before␀after\n"
    assert stored.error.splitlines()[-1] == "ValueError: bad␀value \ufffd"
    assert stored.error_line == 2 and stored.checks == [] and stored.score == 0.0


@pytest.mark.django_db
def test_nul_in_check_names_and_messages_is_stored_with_a_visible_symbol() -> None:
    submission = submission_claim(submission_id=SubmissionFactory.create().pk, task_id="task-a")
    assert submission is not None
    grade = Grade(status="failed", score=0.5, stdout="a\x00b", error="e\x00", checks=[
        CheckResult("x\x00.grad", False, "x.grad is a W (\x00\ud800)"), CheckResult("y", True, "")])
    assert submission_record(submission=submission, grade=grade, task_id="task-a")
    stored = Submission.objects.get(pk=submission.pk)
    assert (stored.status, stored.score, stored.stdout, stored.error) == ("failed", 0.5, "a␀b", "e␀")
    assert stored.checks == [
        {"name": "x␀.grad", "passed": False, "message": "x.grad is a W (␀\ufffd)", "hidden": False, "weight": 1.0},
        {"name": "y", "passed": True, "message": "", "hidden": False, "weight": 1.0},
    ]
