"""The gradebook: each learner's best score per item, and per-quiz totals (reads only).

Columns: `learner`, then one column per item slug (quizzes in their order, items
in quiz order), then one `<quiz-slug> total` column per quiz. A cell holds the
learner's best score in [0, 1] over their attempts (quiz.selectors.ATTEMPT_STATUSES),
empty when they made none; a total is the sum of the quiz's best scores (an
item without an attempt counts 0). Rows: every learner (a user who is not staff)
with at least one attempt on these items, by username. Archived items are not
part of their quiz any more and get no column.
"""
from __future__ import annotations

import csv
import io
from collections import defaultdict

from django.contrib.auth import get_user_model
from django.db.models import Max, QuerySet

from quiz.models import Item, Quiz
from quiz.selectors import ATTEMPT_STATUSES

from .models import Submission

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _number(value: float) -> str:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _text(value: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    return "'" + value if value.startswith(FORMULA_START) else value


def gradebook_table(*, quizzes: QuerySet[Quiz] | None = None) -> list[list[str]]:
    """The gradebook as rows of cells, the header first."""
    quizzes = list((quizzes if quizzes is not None else Quiz.objects.all()).order_by("order", "slug"))
    items_by_quiz = defaultdict(list)
    for item in Item.objects.filter(quiz__in=quizzes, archived=False).order_by("order", "slug"):
        items_by_quiz[item.quiz_id].append(item)
    columns = [item for quiz in quizzes for item in items_by_quiz[quiz.pk]]
    best: dict[int, dict[int, float | None]] = defaultdict(dict)
    rows = (Submission.objects.filter(item__in=columns, status__in=ATTEMPT_STATUSES, user__is_staff=False)
            .values("user_id", "item_id").annotate(best=Max("score")))
    for row in rows:
        best[row["user_id"]][row["item_id"]] = row["best"]
    learners = get_user_model().objects.filter(pk__in=best.keys()).order_by("username")
    table = [["learner", *(item.slug for item in columns), *(f"{quiz.slug} total" for quiz in quizzes)]]
    for learner in learners:
        scores = best[learner.pk]
        cells = [_text(learner.get_username())]
        for item in columns:
            cells.append("" if item.pk not in scores else _number(scores[item.pk] or 0.0))
        for quiz in quizzes:
            cells.append(_number(sum(scores.get(item.pk) or 0.0 for item in items_by_quiz[quiz.pk])))
        table.append(cells)
    return table


def gradebook_csv(*, quizzes: QuerySet[Quiz] | None = None) -> str:
    """The gradebook as CSV text (RFC 4180: comma-separated, CRLF line ends)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(gradebook_table(quizzes=quizzes))
    return buffer.getvalue()
