"""What counts for a learner in a course: per item, the best or the last graded attempt's final score
(after penalties), as the course quiz's policy says; per quiz, the mean over its items. Reads only: the
gradebook, the learner's pages and the LMS grade passback all take their numbers from here."""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from courses.models import CourseQuiz
from quiz.models import Item

from .models import Submission
from .sandbox import ATTEMPT_VERDICTS


def counted_attempts(*, user_id: int, course_id: int, item_ids: list[int]) -> QuerySet[Submission]:
    """Graded attempts that count: numbered (they cost an attempt) and judged."""
    return Submission.objects.filter(user_id=user_id, course_id=course_id, item_id__in=item_ids,
                                     attempt__isnull=False, status__in=ATTEMPT_VERDICTS)


@dataclass(frozen=True)
class ItemScore:
    item_id: int
    score: float | None  # what counts (None: no graded attempt yet)
    raw: float | None  # that attempt's score before its penalty
    penalty: float
    late: bool
    attempts: int
    submission_id: int | None


def item_scores(*, user_id: int, course_quiz: CourseQuiz, items: list[Item] | None = None) -> dict[int, ItemScore]:
    """Per item of the course quiz: what counts for the learner, under the quiz's score_counts rule."""
    items = items if items is not None else list(course_quiz.quiz.items.filter(archived=False))
    rows = counted_attempts(user_id=user_id, course_id=course_quiz.course_id, item_ids=[i.pk for i in items]).values(
        "id", "item_id", "final_score", "score", "penalty", "late", "created_at").order_by("created_at", "id")
    by_item: dict[int, list[dict]] = {i.pk: [] for i in items}
    for row in rows:
        by_item[row["item_id"]].append(row)
    scores = {}
    for item_id, attempts in by_item.items():
        chosen = None
        if attempts:
            if course_quiz.score_counts == CourseQuiz.ScoreCounts.LAST:
                chosen = attempts[-1]
            else:  # best: the highest final score, the earliest of equals
                chosen = max(attempts, key=lambda r: (r["final_score"] or 0.0, -r["id"]))
        scores[item_id] = ItemScore(
            item_id=item_id, score=chosen["final_score"] if chosen else None, raw=chosen["score"] if chosen else None,
            penalty=chosen["penalty"] if chosen else 0.0, late=bool(chosen and chosen["late"]),
            attempts=len(attempts), submission_id=chosen["id"] if chosen else None)
    return scores


def quiz_score(*, user_id: int, course_quiz: CourseQuiz) -> float:
    """The learner's score on a course quiz in [0, 1]: the mean of what counts per item (0 where none)."""
    scores = item_scores(user_id=user_id, course_quiz=course_quiz)
    if not scores:
        return 0.0
    return round(sum(s.score or 0.0 for s in scores.values()) / len(scores), 6)
