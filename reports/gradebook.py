"""The gradebook of a course: what counts for each learner on each item, with the raw score, the penalty
and lateness behind it, and per-quiz totals (reads only).

One row per (course, learner): every learner enrolled in the course, attempts or not. Columns: `course`,
`learner`, then per item (quizzes in course order, items in quiz order) four: `<item>` (the score that
counts: best or last graded attempt after its penalty, as the course quiz's policy says; empty without
one), `<item> raw` (that attempt's score before the penalty), `<item> penalty` (percent taken off) and
`<item> late` ("late" when handed in after the due date); then `<quiz> total` per quiz (the sum of what
counts, an item without an attempt counting 0). Archived items get no column. The numbers come from
grader.scores, as the learner's pages and the LMS grade passback do.
"""
from __future__ import annotations

import csv
import io
from collections import defaultdict

from django.db.models import QuerySet

from courses.models import CourseQuiz, Membership
from grader.scores import ItemScore, item_scores
from quiz.models import Item

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _number(value: float) -> str:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _text(value: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    return "'" + value if value.startswith(FORMULA_START) else value


def _cells(score: ItemScore | None) -> list[str]:
    if score is None or score.score is None:
        return ["", "", "", ""]
    return [_number(score.score), _number(score.raw or 0.0), _number(score.penalty), "late" if score.late else ""]


def gradebook_table(*, course_quizzes: QuerySet[CourseQuiz]) -> list[list[str]]:
    """The gradebook of these course quizzes as rows of cells, the header first."""
    rows = list(course_quizzes.select_related("course", "quiz").order_by("course__slug", "order", "quiz__slug"))
    quizzes = list({cq.quiz_id: cq.quiz for cq in rows}.values())
    items_by_quiz: dict[int, list[Item]] = defaultdict(list)
    for item in Item.objects.filter(quiz__in=quizzes, archived=False).order_by("order", "slug"):
        items_by_quiz[item.quiz_id].append(item)
    columns = [item for quiz in quizzes for item in items_by_quiz[quiz.pk]]
    header = ["course", "learner"]
    for item in columns:
        header += [item.slug, f"{item.slug} raw", f"{item.slug} penalty", f"{item.slug} late"]
    table = [header + [f"{quiz.slug} total" for quiz in quizzes]]
    by_course: dict[int, list[CourseQuiz]] = defaultdict(list)
    for course_quiz in rows:
        by_course[course_quiz.course_id].append(course_quiz)
    for course_quizzes_of_course in by_course.values():
        course = course_quizzes_of_course[0].course
        learners = Membership.objects.filter(course=course, role=Membership.Role.LEARNER).select_related("user")
        for membership in learners.order_by("user__username"):
            scores: dict[int, ItemScore] = {}
            for course_quiz in course_quizzes_of_course:
                scores.update(item_scores(user_id=membership.user_id, course_quiz=course_quiz,
                                          items=items_by_quiz[course_quiz.quiz_id]))
            cells = [_text(course.slug), _text(membership.user.get_username())]
            for item in columns:
                cells += _cells(scores.get(item.pk))
            for quiz in quizzes:
                in_course = any(cq.quiz_id == quiz.pk for cq in course_quizzes_of_course)
                cells.append(_number(sum((scores[i.pk].score or 0.0) for i in items_by_quiz[quiz.pk]
                                         if i.pk in scores)) if in_course else "")
            table.append(cells)
    return table


def gradebook_csv(*, course_quizzes: QuerySet[CourseQuiz]) -> str:
    """The gradebook as CSV text (RFC 4180: comma-separated, CRLF line ends)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(gradebook_table(course_quizzes=course_quizzes))
    return buffer.getvalue()
