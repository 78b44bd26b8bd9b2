"""Courses: who takes part (with a role per course), which quizzes they run, and under which rules.

A quiz is content and can be assigned to several courses; a CourseQuiz carries
the dates and the assessment policy of one assignment. Rules are read through
courses.policy.Policy, never from these fields directly, so the item's defaults
and the product's defaults apply in one place.
"""
from __future__ import annotations

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from quiz.models import Quiz

DEFAULT_COURSE_SLUG = "default"


def new_join_code() -> str:
    return secrets.token_urlsafe(6).replace("-", "x").replace("_", "y")[:8].upper()


def parse_penalties(text: str) -> list[float]:
    """'0, 10, 20, 50' -> [0.0, 10.0, 20.0, 50.0]: percent taken off by attempt, the last one repeating."""
    if not text.strip():
        return []
    values = []
    for part in text.split(","):
        try:
            value = float(part.strip().rstrip("%"))
        except ValueError:
            raise ValidationError(f"{part.strip()!r} is not a number: write percentages like 0, 10, 20, 50") from None
        if not 0 <= value <= 100:
            raise ValidationError(f"{value:g} is not a percentage between 0 and 100")
        values.append(value)
    return values


def validate_penalties(text: str) -> None:
    parse_penalties(text)


class Course(models.Model):
    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    join_code = models.CharField(max_length=16, unique=True, default=new_join_code,
                                 help_text="Learners enrol by typing this code on the site")
    self_enrol = models.BooleanField(default=False, help_text="Everyone who signs up on the site is enrolled as a "
                                     "learner (the default course of an install)")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["title", "slug"]

    def __str__(self) -> str:
        return self.title


class Membership(models.Model):
    class Role(models.TextChoices):
        INSTRUCTOR = "instructor", "Instructor"
        TA = "ta", "Teaching assistant"
        LEARNER = "learner", "Learner"

    STAFF_ROLES = (Role.INSTRUCTOR, Role.TA)

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=12, choices=Role.choices, default=Role.LEARNER)
    source = models.CharField(max_length=12, default="site", help_text="How the member joined: site, code, lti, admin")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["course", "role", "user__username"]
        constraints = [models.UniqueConstraint(fields=["course", "user"], name="one_membership_per_course")]

    def __str__(self) -> str:
        return f"{self.user} in {self.course.slug} ({self.role})"

    @property
    def is_staff_role(self) -> bool:
        return self.role in self.STAFF_ROLES


class CourseQuiz(models.Model):
    """A quiz assigned to a course, with its dates and its assessment policy.

    Empty policy fields fall back to the item's default (where an item has one),
    then to the product's default: see courses.policy.
    """

    class ScoreCounts(models.TextChoices):
        BEST = "best", "Best attempt"
        LAST = "last", "Last attempt"

    class Late(models.TextChoices):
        REFUSE = "refuse", "Refused after the due date"
        PENALTY = "penalty", "Accepted with the late penalty"

    class Feedback(models.TextChoices):
        FULL = "full", "Full feedback"
        PASS_FAIL = "pass_fail", "Passed or not only"
        AFTER_DUE = "after_due", "Hidden until the due date"

    class Reveal(models.TextChoices):
        AFTER_PASS = "after_pass", "After passing"
        AFTER_DUE = "after_due", "After the due date"
        AFTER_ATTEMPTS = "after_attempts", "After passing or N attempts"

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="course_quizzes")
    quiz = models.ForeignKey(Quiz, on_delete=models.CASCADE, related_name="course_quizzes")
    order = models.IntegerField(default=0)
    opens_at = models.DateTimeField(null=True, blank=True, help_text="Hidden from learners before this")
    due_at = models.DateTimeField(null=True, blank=True)

    max_attempts = models.PositiveIntegerField(null=True, blank=True,
                                               help_text="Graded attempts per item; empty: the item's default "
                                               "(unlimited if it has none)")
    penalties = models.CharField(max_length=200, blank=True, validators=[validate_penalties],
                                 help_text="Percent off by attempt, e.g. 0, 10, 20, 50 (the last repeats); "
                                 "empty: none")
    cooldown_seconds = models.PositiveIntegerField(default=0, help_text="Wait between graded attempts of an item")
    score_counts = models.CharField(max_length=8, choices=ScoreCounts.choices, default=ScoreCounts.BEST)
    late = models.CharField(max_length=8, choices=Late.choices, default=Late.REFUSE)
    late_penalty = models.FloatField(default=0, help_text="Percent off work handed in after the due date "
                                     "(late: accepted with penalty)")
    time_limit_minutes = models.PositiveIntegerField(null=True, blank=True,
                                                     help_text="Counted from when the learner starts the quiz")
    feedback = models.CharField(max_length=10, choices=Feedback.choices, default=Feedback.FULL)
    reveal = models.CharField(max_length=16, choices=Reveal.choices, default=Reveal.AFTER_ATTEMPTS)
    reveal_attempts = models.PositiveIntegerField(null=True, blank=True,
                                                  help_text="After attempts: this many distinct gradable attempts; "
                                                  "empty: the item's default")

    class Meta:
        ordering = ["course", "order", "quiz__order", "quiz__slug"]
        verbose_name = "course quiz"
        constraints = [models.UniqueConstraint(fields=["course", "quiz"], name="one_assignment_per_course"),
                       models.CheckConstraint(condition=models.Q(late_penalty__gte=0, late_penalty__lte=100),
                                              name="late_penalty_percent")]

    def __str__(self) -> str:
        return f"{self.quiz.slug} in {self.course.slug}"

    def clean(self) -> None:
        if self.opens_at and self.due_at and self.due_at <= self.opens_at:
            raise ValidationError({"due_at": "the due date must come after the opening date"})


class QuizStart(models.Model):
    """When a learner started a timed course quiz (the time limit counts from here)."""

    course_quiz = models.ForeignKey(CourseQuiz, on_delete=models.CASCADE, related_name="starts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    started_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["course_quiz", "user"], name="one_start_per_learner")]
