"""A learner's standing on one item of one course quiz: the facts (graded attempts, passed, when the last
one was made, when the quiz was started) read once, and the course policy's answers on them (attempts
left, the penalty on the next attempt, cooldown, time left, lateness, feedback, reveal, and why a graded
attempt is refused now). The service layer enforces with it; the pages and the API show the same object,
so what a learner is told is what is enforced."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from config import sql
from courses import roles
from courses import selectors as course_selectors
from courses.models import CourseQuiz
from courses.policy import Policy
from quiz.models import Item

from .models import Submission
from .selectors import FREE_STATUSES, ItemProgress, item_progress


@dataclass(frozen=True)
class Standing:
    course_quiz: CourseQuiz
    policy: Policy
    staff: bool  # the course's instructors and TAs are not limited (they try their own quizzes out)
    now: datetime
    attempts: int  # graded attempts made (pending ones included: they are being graded)
    passed: bool
    last_attempt_at: datetime | None
    started_at: datetime | None
    # Asked for by standing_for_attempt (answer_digest): the number of the graded attempt that already sent that
    # answer, else None.
    repeat_of: int | None = None

    @property
    def course(self) -> Any:
        return self.course_quiz.course

    @property
    def late(self) -> bool:
        return self.policy.is_late(self.now)

    @property
    def attempts_left(self) -> int | None:
        return None if self.staff else self.policy.attempts_left(self.attempts)

    @property
    def next_penalty(self) -> float:
        """Percent off the next graded attempt (attempt and late penalties)."""
        if self.staff:
            return 0.0
        return self.policy.penalty(self.attempts + 1, self.late)

    @property
    def cooldown_left(self) -> timedelta:
        if self.staff or not self.policy.cooldown or self.last_attempt_at is None:
            return timedelta(0)
        return max(timedelta(0), self.last_attempt_at + self.policy.cooldown - self.now)

    @property
    def time_left(self) -> timedelta | None:
        return None if self.staff else self.policy.time_left(self.started_at, self.now)

    @property
    def feedback(self) -> str:
        return "full" if self.staff else self.policy.feedback_shown(self.now)

    @property
    def revealed(self) -> bool:
        # While feedback is held back, passing must not show through an unlocked solution.
        passed = self.passed and self.feedback != "hidden"
        return self.staff or self.policy.revealed(passed=passed, attempts=self.attempts, now=self.now)

    def refusal(self, *, counted: bool = True) -> str | None:
        """Why a new graded attempt is not accepted now, or None. counted=False: an answer that costs no
        attempt (a syntax error, the unchanged starter), which only the quiz's dates and time limit stop."""
        if self.staff:
            return None
        policy = self.policy
        if not policy.is_open(self.now):
            return f"this quiz opens on {_when(policy.opens_at)}"
        if self.late and policy.late == CourseQuiz.Late.REFUSE:
            return f"the due date ({_when(policy.due_at)}) has passed; this quiz takes no late work"
        if self.time_left is not None and not self.time_left:
            return f"your {_minutes(policy.time_limit)} time limit for this quiz is over"
        if not counted:
            return None
        if self.attempts_left == 0:
            return (f"you have used all {policy.max_attempts} graded attempt{'s' if policy.max_attempts != 1 else ''}"
                    " at this item")
        if self.cooldown_left:
            seconds = int(self.cooldown_left.total_seconds()) + 1
            return (f"wait {seconds} s before your next graded attempt (this course allows one every "
                    f"{int(policy.cooldown.total_seconds())} s)")
        return None

    def as_dict(self) -> dict[str, Any]:
        """What the learner is shown (the API's `policy` object)."""
        policy = self.policy
        return {
            "course": self.course.slug,
            "opens_at": policy.opens_at, "due_at": policy.due_at, "late": self.late,
            "late_work": policy.late, "late_penalty": policy.late_penalty,
            "max_attempts": None if self.staff else policy.max_attempts,
            "attempts": self.attempts, "attempts_left": self.attempts_left,
            "next_penalty": self.next_penalty, "penalties": list(policy.penalties),
            "cooldown_seconds": int(policy.cooldown.total_seconds()),
            "cooldown_left_seconds": int(self.cooldown_left.total_seconds()),
            "time_limit_minutes": int(policy.time_limit.total_seconds() // 60) if policy.time_limit else None,
            "time_left_seconds": int(self.time_left.total_seconds()) if self.time_left is not None else None,
            "score_counts": policy.score_counts, "feedback": self.feedback, "reveal": policy.reveal,
            "refusal": self.refusal(),
        }


def _when(moment: datetime | None) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z") if moment else "?"


def _minutes(limit: timedelta | None) -> str:
    return f"{int(limit.total_seconds() // 60)}-minute" if limit else ""


def course_progress(*, user: Any, items: list[Item], course_quiz: CourseQuiz,
                    now: datetime | None = None) -> dict[int, ItemProgress]:
    """A learner's progress on a course quiz's items, as the course lets them see it: while feedback is held
    back until the due date, how many attempts they made, but neither scores nor passes."""
    progress = item_progress(user=user, items=items, course_id=course_quiz.course_id)
    held_back = (course_quiz.feedback == CourseQuiz.Feedback.AFTER_DUE
                 and not (course_quiz.due_at is not None and (now or timezone.now()) > course_quiz.due_at)
                 and not roles.is_course_staff(user=user, course_id=course_quiz.course_id))
    if held_back:
        return {pk: ItemProgress(attempts=p.attempts) for pk, p in progress.items()}
    return progress


def standing_of(*, user: Any, item: Item, course_quiz: CourseQuiz, now: datetime | None = None) -> Standing:
    """Read the facts of one learner on one item of one course quiz (three small queries)."""
    return _standing(user=user, item=item, course_quiz=course_quiz, now=now or timezone.now(),
                     staff=roles.is_course_staff(user=user, course_id=course_quiz.course_id),
                     started_at=course_selectors.quiz_started_at(course_quiz=course_quiz, user=user))


def standing_for_attempt(*, user: Any, item: Item, enrolment: course_selectors.Enrolment, now: datetime,
                         answer_digest: str | None = None) -> Standing:
    """standing_of for an attempt about to be stored, in one query: the enrolment (course_selectors.
    enrolment_lock) brings the role and the start. With answer_digest (grader.models.answer_digest), the same
    query finds the graded attempt that already sent this answer: Standing.repeat_of."""
    return _standing(user=user, item=item, course_quiz=enrolment.course_quiz, now=now, staff=enrolment.staff,
                     started_at=enrolment.started_at, answer_digest=answer_digest)


def _standing(*, user: Any, item: Item, course_quiz: CourseQuiz, now: datetime, staff: bool,
              started_at: datetime | None, answer_digest: str | None = None) -> Standing:
    attempts, last, passed, repeat_of = _attempt_facts(user_id=user.pk, course_id=course_quiz.course_id,
                                                       item_id=item.pk, answer_digest=answer_digest)
    return Standing(
        course_quiz=course_quiz, policy=Policy.of(course_quiz, item), staff=staff, now=now,
        attempts=attempts, passed=passed > 0, last_attempt_at=last, started_at=started_at, repeat_of=repeat_of,
    )


def _attempt_facts(*, user_id: int, course_id: int, item_id: int, answer_digest: str | None,
                   using: str = "default") -> tuple[int, datetime | None, int, int | None]:
    """The learner's graded attempts at an item in a course: how many, the last one's time, how many passed, and
    (with answer_digest) the highest number among those that sent that answer, else None. Pending attempts
    count (they are being graded); the grader's refusals and failures (FREE_STATUSES) do not.

    In SQL (config.sql says why): every attempt reads it, and the ORM's aggregate cost five times as much CPU.
    """
    status, attempt = sql.column(Submission, "status"), sql.column(Submission, "attempt")
    free = ", ".join(["%s"] * len(FREE_STATUSES))
    repeat = (f", MAX(CASE WHEN {sql.column(Submission, 'answer_digest')} = %s THEN {attempt} END)"
              if answer_digest is not None else ", NULL")
    query = (f"SELECT COUNT(*), MAX({sql.column(Submission, 'created_at')}),"
             f" COUNT(CASE WHEN {status} = %s THEN 1 END){repeat} FROM {sql.table(Submission)}"
             f" WHERE {sql.column(Submission, 'user')} = %s AND {sql.column(Submission, 'course')} = %s"
             f" AND {sql.column(Submission, 'item')} = %s AND {attempt} IS NOT NULL AND {status} NOT IN ({free})")
    digest = [] if answer_digest is None else [answer_digest]
    [found] = sql.fetch(query, [Submission.Status.PASSED, *digest, user_id, course_id, item_id, *FREE_STATUSES],
                        using)  # an aggregate: always one row
    count, last, passed, repeat_of = sql.row(
        [None, Submission._meta.get_field("created_at"), None, None], found, using)
    return count, last, passed, repeat_of
