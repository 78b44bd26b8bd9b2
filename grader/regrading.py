"""Regrading: send graded submissions through the grading queue again, keeping
the verdict each one had in its history (SubmissionGrading).

A regrade grades against the item as it is now (its current checks, reference
values and version), so after an instructor fixed an item its old verdicts can
be brought up to date. Code submissions go back to the Celery queue and are
graded in parallel by the workers; choice answers are graded again at once,
since grading them takes no sandbox.
"""
from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from quiz.models import Item

from .models import RegradeBatch, Submission, SubmissionGrading
from courses.policy import Policy

from .services import SubmissionRefused, attempt_announce, choice_grade, submissions_enqueue

logger = logging.getLogger(__name__)
Status = Submission.Status


def _history_row(submission: Submission, batch: RegradeBatch) -> SubmissionGrading:
    verdict = {name: getattr(submission, name) for name in SubmissionGrading.VERDICT_FIELDS}
    return SubmissionGrading(submission=submission, batch=batch, graded_at=submission.finished_at, **verdict)


def _choice_regrade(submission: Submission, now: Any) -> None:
    """Grade a choice answer again against the item's current choices."""
    item = submission.item
    try:
        grade = choice_grade(item=item, selected=submission.selected).grade
        values = {"status": grade.status, "score": grade.score, "checks": grade.checks, "error": "",
                  "final_score": Policy.final_score(grade.score, submission.penalty)}
    except SubmissionRefused as exc:  # its choices were deleted since
        values = {"status": Status.REJECTED, "score": None, "final_score": None, "checks": [],
                  "error": f"This answer cannot be graded against the item as it is now: {exc}."}
    Submission.objects.filter(pk=submission.pk).update(
        **values, stdout="", error_line=None, duration_ms=0, item_version=item.version, claim="",
        started_at=now, finished_at=now, queued_at=None,
    )
    attempt_announce(submission)  # the course's gradebook and the LMS follow the new verdict


def submissions_regrade(*, submissions: QuerySet[Submission], requested_by: Any,
                        label: str = "") -> RegradeBatch:
    """Regrade submissions against their items as they are now; returns the batch.

    Each submission's current verdict is copied to its history (one
    SubmissionGrading per submission, in this batch). Code submissions are reset
    to queued (verdict cleared, claim '', deliveries 0, started/finished cleared,
    queued_at now) and sent to the grading queue once the transaction commits;
    choice answers are graded again at once. Submissions still queued or running
    are left out: they are being graded against the current item already.
    """
    now = timezone.now()
    with transaction.atomic():
        rows = list(submissions.exclude(status__in=Submission.PENDING).select_for_update(of=("self",))
                    .select_related("item").order_by("pk"))
        batch = RegradeBatch.objects.create(requested_by=requested_by, total=len(rows),
                                            label=label or f"{len(rows)} submission(s)")
        SubmissionGrading.objects.bulk_create([_history_row(s, batch) for s in rows])
        code_ids = [s.pk for s in rows if s.item.kind == Item.Kind.CODE]
        for submission in rows:
            if submission.item.kind == Item.Kind.CHOICE:
                _choice_regrade(submission, now)
        Submission.objects.filter(pk__in=code_ids).update(
            status=Status.QUEUED, score=None, final_score=None, checks=[], stdout="", error="", error_line=None, duration_ms=None,
            item_version=None, claim="", deliveries=0, started_at=None, finished_at=None, queued_at=now,
        )
        transaction.on_commit(lambda: submissions_enqueue(code_ids))
    logger.info("regrade batch %s by %s: %d submission(s), %d queued", batch.pk, requested_by, len(rows),
                len(code_ids))
    return batch


def items_label(items: QuerySet[Item]) -> str:
    slugs = sorted(items.values_list("slug", flat=True))
    more = f" and {len(slugs) - 5} more item(s)" if len(slugs) > 5 else ""
    return f"all submissions of {', '.join(slugs[:5])}{more}"


def items_regrade(*, items: QuerySet[Item], requested_by: Any,
                  submissions: QuerySet[Submission] | None = None) -> RegradeBatch:
    """Regrade every submission of the given items (among `submissions`, e.g. one course's) against the
    items as they are now."""
    scope = submissions if submissions is not None else Submission.objects.all()
    return submissions_regrade(submissions=scope.filter(item__in=items), requested_by=requested_by,
                               label=items_label(items))
