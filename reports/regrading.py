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
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from courses.policy import Policy
from grader.models import RegradeBatch, Submission, SubmissionGrading
from grader.selectors import version_note
from grader.services import SubmissionRefused, attempt_announce, choice_grade, submissions_enqueue
from quiz.models import Item

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


# The progress of a batch ----------------------------------------------------------------------------------------


@dataclass
class RegradeProgress:
    batch_id: int
    total: int
    finished: int
    statuses: dict[str, int] = field(default_factory=dict)  # verdicts of the finished ones
    changed: int = 0  # finished ones whose verdict (status or score) is not the one they had

    @property
    def done(self) -> bool:
        return self.finished >= self.total

    def as_dict(self) -> dict[str, Any]:
        return {"batch": self.batch_id, "total": self.total, "finished": self.finished, "done": self.done,
                "statuses": self.statuses, "changed": self.changed}


def _batch_rows(batch: RegradeBatch) -> QuerySet[SubmissionGrading]:
    later = SubmissionGrading.objects.filter(submission=OuterRef("submission"), batch_id__gt=batch.pk)
    return SubmissionGrading.objects.filter(batch=batch).annotate(superseded=Exists(later))


def regrade_progress(*, batch: RegradeBatch) -> RegradeProgress:
    """How many submissions of a batch have their new verdict (or were regraded again since)."""
    statuses: Counter[str] = Counter()
    finished = changed = 0
    for row in _batch_rows(batch).values("superseded", "submission__status", "submission__score", "status", "score"):
        status = row["submission__status"]
        if row["superseded"] or status not in Submission.PENDING:
            finished += 1
            statuses["regraded again" if row["superseded"] else status] += 1
            changed += not row["superseded"] and (status, row["submission__score"]) != (row["status"], row["score"])
    return RegradeProgress(batch_id=batch.pk, total=batch.total, finished=finished,
                           statuses=dict(sorted(statuses.items())), changed=changed)


@dataclass
class RegradeRow:
    submission: Submission
    previous: SubmissionGrading
    superseded: bool

    @property
    def finished(self) -> bool:
        return self.superseded or not self.submission.is_pending

    @property
    def changed(self) -> bool:
        return self.finished and not self.superseded and (
            (self.submission.status, self.submission.score) != (self.previous.status, self.previous.score))

    @property
    def version_note(self) -> str:
        """Before the new verdict: 'graded against item version N, now version M' when the old verdict is from
        another version; once regraded: 'vN → vM' when the version changed, else nothing."""
        if self.finished and not self.superseded:
            old, new = self.previous.item_version, self.submission.item_version
            return f"v{old} → v{new}" if old is not None and new is not None and old != new else ""
        return version_note(self.previous.item_version, self.submission.item.version)


def regrade_rows(*, batch: RegradeBatch) -> list[RegradeRow]:
    """The submissions of a batch with the verdict each had before, in submission order."""
    rows = _batch_rows(batch).select_related("submission__item__quiz", "submission__user").order_by("submission_id")
    return [RegradeRow(submission=r.submission, previous=r, superseded=r.superseded) for r in rows]
