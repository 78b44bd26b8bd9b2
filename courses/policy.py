"""The assessment rules of one item in one course, resolved once: the course quiz's setting, else the
item's default, else the product's. Pure: no queries, so the service layer, the pages and the API
compute the same answers from the same facts."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from quiz.models import Item

from .models import CourseQuiz, parse_penalties

Reveal = CourseQuiz.Reveal
Feedback = CourseQuiz.Feedback


@dataclass(frozen=True)
class Policy:
    opens_at: datetime | None
    due_at: datetime | None
    max_attempts: int | None
    penalties: tuple[float, ...]
    cooldown: timedelta
    score_counts: str
    late: str
    late_penalty: float
    time_limit: timedelta | None
    feedback: str
    reveal: str
    reveal_attempts: int

    @classmethod
    def of(cls, course_quiz: CourseQuiz, item: Item) -> Policy:
        return cls(
            opens_at=course_quiz.opens_at, due_at=course_quiz.due_at,
            max_attempts=course_quiz.max_attempts if course_quiz.max_attempts is not None else item.max_attempts,
            penalties=tuple(parse_penalties(course_quiz.penalties)),
            cooldown=timedelta(seconds=course_quiz.cooldown_seconds),
            score_counts=course_quiz.score_counts, late=course_quiz.late, late_penalty=course_quiz.late_penalty,
            time_limit=(timedelta(minutes=course_quiz.time_limit_minutes)
                        if course_quiz.time_limit_minutes else None),
            feedback=course_quiz.feedback, reveal=course_quiz.reveal,
            reveal_attempts=(course_quiz.reveal_attempts if course_quiz.reveal_attempts is not None
                             else item.reveal_after_attempts),
        )

    # -- what the rules say, given the facts -----------------------------------------------
    def is_open(self, now: datetime) -> bool:
        return self.opens_at is None or now >= self.opens_at

    def is_late(self, now: datetime) -> bool:
        return past_due(self.due_at, now)

    def attempt_penalty(self, attempt: int) -> float:
        """Percent off the attempt numbered `attempt` (from 1) under the penalty regime."""
        if not self.penalties:
            return 0.0
        return self.penalties[min(attempt, len(self.penalties)) - 1]

    def penalty(self, attempt: int, late: bool) -> float:
        """Everything taken off one attempt, in percent (the attempt's and the late penalty add up, at most 100)."""
        return min(100.0, self.attempt_penalty(attempt) + (self.late_penalty if late else 0.0))

    def attempts_left(self, used: int) -> int | None:
        return None if self.max_attempts is None else max(0, self.max_attempts - used)

    def time_left(self, started_at: datetime | None, now: datetime) -> timedelta | None:
        if self.time_limit is None or started_at is None:
            return None
        return max(timedelta(0), started_at + self.time_limit - now)

    def feedback_shown(self, now: datetime) -> str:
        """What a learner sees of a verdict now: full, pass_fail, or hidden (until the due date)."""
        return feedback_shown(feedback=self.feedback, due_at=self.due_at, now=now)

    def revealed(self, *, passed: bool, attempts: int, now: datetime) -> bool:
        """Whether the explanation and reference solution show (attempts: distinct gradable attempts)."""
        if self.reveal == Reveal.AFTER_DUE:
            return self.is_late(now)
        if passed:
            return True
        return self.reveal == Reveal.AFTER_ATTEMPTS and self.reveal_attempts > 0 and attempts >= self.reveal_attempts

    @staticmethod
    def final_score(raw: float | None, penalty: float) -> float | None:
        return None if raw is None else round(raw * (1 - penalty / 100), 6)


def past_due(due_at: datetime | None, now: datetime) -> bool:
    return due_at is not None and now > due_at


def feedback_shown(*, feedback: str, due_at: datetime | None, now: datetime) -> str:
    """Policy.feedback_shown from the only two settings it reads (a query that read just those columns)."""
    if feedback == Feedback.AFTER_DUE and not past_due(due_at, now):
        return "hidden"
    return Feedback.PASS_FAIL if feedback == Feedback.PASS_FAIL else Feedback.FULL
