"""Submissions and their verdicts."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.db import models

from courses.models import Course
from quiz.models import Item

from .sandbox import VERDICT_LABELS, VERDICTS


def answer_normalised(code: str) -> str:
    """Code as the repeat rule compares it: line ends, trailing blanks and surrounding blank lines do not count."""
    return "\n".join(line.rstrip() for line in code.replace("\r\n", "\n").strip().splitlines())


def answer_digest(*, code: str, selected: list[int], params: dict[str, Any]) -> str:
    """sha256 of an answer as the repeat rule compares answers: the normalised code, the chosen choices (in any
    order) and the parameter values it was drawn with. A code item's answer has no choices and a choice item's
    no code, so one digest serves both kinds. Stored with every submission (Submission.answer_digest), so a
    repeat is one equality in the query that counts the learner's attempts at the item (on the index over
    course, user and item) instead of reading and comparing their earlier answers."""
    text = json.dumps([answer_normalised(code), sorted(selected), params], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class Verdict(models.Model):
    """What grading gave: shared by a submission and the earlier verdicts in its history."""

    score = models.FloatField(null=True, blank=True)
    final_score = models.FloatField(null=True, blank=True, help_text="The score after the submission's penalty: "
                                    "what counts")
    checks = models.JSONField(default=list, blank=True)
    stdout = models.TextField(blank=True)
    error = models.TextField(blank=True)
    error_line = models.IntegerField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    item_version = models.PositiveIntegerField(null=True, blank=True, help_text="Item version it was graded against")

    VERDICT_FIELDS = ("status", "score", "final_score", "checks", "stdout", "error", "error_line", "duration_ms", "item_version")

    class Meta:
        abstract = True


class Submission(Verdict):
    # Waiting, then one of the sandbox's verdicts (grader.sandbox.VERDICTS): Status.QUEUED ... Status.INTERNAL_ERROR.
    Status = models.TextChoices("Status", [("QUEUED", ("queued", "Queued")), ("RUNNING", ("running", "Running")),
                                           *((v.upper(), (v, VERDICT_LABELS[v])) for v in VERDICTS)])

    PENDING = (Status.QUEUED, Status.RUNNING)

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="submissions")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="submissions")
    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="submissions",
                               help_text="The course the attempt was made in (its policy applies)")
    code = models.TextField(blank=True)
    selected = models.JSONField(default=list, blank=True, help_text="Choice items: the chosen choice ids")
    params = models.JSONField(default=dict, blank=True, help_text="Items with variants: the learner's parameter values")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True)
    attempt = models.PositiveIntegerField(null=True, blank=True, help_text="Its number among the learner's graded "
                                          "attempts at the item in the course; empty: it cost no attempt")
    penalty = models.FloatField(default=0, help_text="Percent taken off the score (attempt and late penalties)")
    late = models.BooleanField(default=False, help_text="Handed in after the due date")
    deliveries = models.PositiveSmallIntegerField(default=0, help_text="Times a worker started grading it")
    claim = models.CharField(max_length=64, blank=True, editable=False, help_text="Id of the task grading it")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    queued_at = models.DateTimeField(null=True, blank=True, help_text="Last time it was sent to the grading queue")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Recovery in seconds (grader.services.submissions_requeue_stuck): a running submission's claim is a lease that
    # the grading task renews; once it runs out, its worker is presumed dead and the sweep sends the submission again.
    lease_until = models.DateTimeField(null=True, blank=True, editable=False,
                                       help_text="While running: the claim holds until then unless its task renews it")
    requeued_at = models.DateTimeField(null=True, blank=True, editable=False,
                                       help_text="Last time the sweep sent it again (its worker died or its queue "
                                       "message was lost); equal to queued_at while that sending is the latest")
    idempotency_key = models.CharField(
        max_length=100, null=True, blank=True, editable=False,
        help_text="The client's Idempotency-Key: a retry that sends it again gets this submission back")
    answer_digest = models.CharField(max_length=64, blank=True, editable=False,
                                     help_text="sha256 of the answer as the repeat rule compares answers; kept by "
                                     "save() from code, selected and params")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "item", "-created_at"], name="submission_user_item"),
            models.Index(fields=["course", "user", "item"], name="submission_course_user_item"),
            models.Index(fields=["status", "created_at"], name="submission_status_created"),
        ]
        constraints = [
            # In the database, not only checked in code: two concurrent retries cannot both store an attempt.
            models.UniqueConstraint(fields=["user", "idempotency_key"], condition=models.Q(idempotency_key__isnull=False),
                                    name="unique_idempotency_key_per_user"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.item.slug} by {self.user} ({self.status})"

    def set_answer_digest(self) -> Submission:
        """Compute answer_digest from the answer (saving does it; config.sql.insert does not)."""
        self.answer_digest = answer_digest(code=self.code or "", selected=self.selected or [], params=self.params or {})
        return self

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.set_answer_digest()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and not {"code", "selected", "params"}.isdisjoint(update_fields):
            kwargs["update_fields"] = {*update_fields, "answer_digest"}
        super().save(*args, **kwargs)

    @property
    def is_pending(self) -> bool:
        return self.status in self.PENDING


class RegradeBatch(models.Model):
    """One regrade request: the submissions it sent back to the grading queue."""

    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    label = models.CharField(max_length=300, blank=True, help_text="What was regraded, for the progress page")
    total = models.PositiveIntegerField(default=0, help_text="Submissions regraded in this batch")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "regrade batches"
        permissions = [("regrade_submission", "Can regrade submissions")]

    def __str__(self) -> str:
        return f"Regrade #{self.pk}: {self.label}"


class SubmissionGrading(Verdict):
    """A verdict a submission had before a regrade replaced it (its grading history)."""

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="gradings")
    batch = models.ForeignKey(RegradeBatch, on_delete=models.CASCADE, related_name="gradings")
    status = models.CharField(max_length=20, choices=Submission.Status.choices)
    graded_at = models.DateTimeField(null=True, blank=True, help_text="When this verdict was given")
    replaced_at = models.DateTimeField(auto_now_add=True, help_text="When a regrade replaced it")

    class Meta:
        ordering = ["-replaced_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["submission", "batch"], name="unique_grading_per_batch")]

    def __str__(self) -> str:
        return f"#{self.submission_id} {self.status} (item v{self.item_version})"
