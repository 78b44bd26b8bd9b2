"""Statistics of learners' submissions per quiz and per item (selectors: reads only).

Counted: attempts, that is submissions whose code or answer was judged
(grader.selectors.ATTEMPT_STATUSES: not queued, running, rejected or an internal
error), by learners (users who are not staff: an instructor trying an item out
is not a learner). Per item, and per quiz over all its current items:

- attempts and learners (distinct users with at least one attempt);
- pass rate: the share of (learner, item) pairs with an attempt that have a
  passed one; for an item that is the share of its learners who passed it;
- median attempts to pass: over the (learner, item) pairs that passed, the
  number of attempts up to and including the first pass;
- the most frequently failing check: the check (by name) that failed in the
  most attempts; for a quiz it is named "item-slug: check";
- the most frequent error: the summary line of `error` shared by the most
  attempts (see `error_summary`).
Ties are broken alphabetically, so the result does not depend on row order.
"""
from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet

from courses.models import Course
from grader.models import Submission
from grader.selectors import ATTEMPT_STATUSES
from quiz.models import Item, Quiz

ERROR_SUMMARY_LENGTH = 200


def error_summary(error: str) -> str:
    """The first line of an error, the line that names it.

    A Python traceback starts with "Traceback (most recent call last):" and a
    syntax error with "  line N"; what they have in common is then on their last
    line ("NameError: name 'y' is not defined"), so that line is taken instead.
    """
    lines = [line for line in error.splitlines() if line.strip()]
    if not lines:
        return ""
    first = lines[0]
    if first.startswith("Traceback (most recent call last):") or first.startswith("  line "):
        first = lines[-1]
    first = first.strip()
    return first if len(first) <= ERROR_SUMMARY_LENGTH else first[: ERROR_SUMMARY_LENGTH - 1] + "…"


def _most_common(counter: Counter[str]) -> tuple[str, int] | None:
    if not counter:
        return None
    return min(counter.items(), key=lambda kv: (-kv[1], kv[0]))


@dataclass
class Stats:
    """The numbers of one item, or of a whole quiz."""

    attempts: int = 0
    learners: int = 0
    passed: int = 0  # (learner, item) pairs with a passed attempt
    pairs: int = 0  # (learner, item) pairs with an attempt
    median_attempts_to_pass: float | None = None
    failing_check: tuple[str, int] | None = None  # (check name, attempts it failed in)
    frequent_error: tuple[str, int] | None = None  # (summary line, attempts)

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.pairs if self.pairs else None


@dataclass
class ItemStats:
    item: Item
    stats: Stats


@dataclass
class QuizStats:
    quiz: Quiz
    totals: Stats
    items: list[ItemStats] = field(default_factory=list)


class _Tally:
    def __init__(self) -> None:
        self.attempts = 0
        self.learners: set[int] = set()
        self.tries: dict[tuple[int, int], int] = defaultdict(int)  # attempts so far per (learner, item)
        self.to_pass: dict[tuple[int, int], int] = {}  # attempts up to the first pass
        self.checks: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()

    def add(self, row: dict[str, Any], check_prefix: str = "") -> None:
        pair = (row["user_id"], row["item_id"])
        self.attempts += 1
        self.learners.add(row["user_id"])
        self.tries[pair] += 1
        if row["status"] == Submission.Status.PASSED and pair not in self.to_pass:
            self.to_pass[pair] = self.tries[pair]
        for check in row["checks"] or []:
            if isinstance(check, dict) and not check.get("passed", True):
                self.checks[check_prefix + str(check.get("name", "?"))] += 1
        summary = error_summary(row["error"] or "")
        if summary:
            self.errors[summary] += 1

    def stats(self) -> Stats:
        return Stats(
            attempts=self.attempts, learners=len(self.learners), passed=len(self.to_pass), pairs=len(self.tries),
            median_attempts_to_pass=statistics.median(self.to_pass.values()) if self.to_pass else None,
            failing_check=_most_common(self.checks), frequent_error=_most_common(self.errors),
        )


def _attempts(items: list[Item], courses: QuerySet[Course] | None = None) -> Any:
    rows = Submission.objects.filter(item__in=items, status__in=ATTEMPT_STATUSES, user__is_staff=False)
    if courses is not None:
        rows = rows.filter(course__in=courses)
    return rows.order_by("created_at", "id").values("user_id", "item_id", "status", "checks", "error").iterator()


def quiz_statistics(*, quiz: Quiz, courses: QuerySet[Course] | None = None) -> QuizStats:
    """Statistics of a quiz and of each of its current items, in quiz order, over the attempts made in
    `courses` (every course when None)."""
    items = list(Item.objects.filter(quiz=quiz, archived=False).order_by("order", "slug"))
    slugs = {item.pk: item.slug for item in items}
    total = _Tally()
    per_item = {item.pk: _Tally() for item in items}
    for row in _attempts(items, courses):
        per_item[row["item_id"]].add(row)
        total.add(row, f"{slugs[row['item_id']]}: ")
    return QuizStats(quiz=quiz, totals=total.stats(),
                     items=[ItemStats(item=item, stats=per_item[item.pk].stats()) for item in items])


def item_statistics(*, item: Item, courses: QuerySet[Course] | None = None) -> Stats:
    """Statistics of one item (archived or not), over the attempts made in `courses` (every course when None)."""
    tally = _Tally()
    for row in _attempts([item], courses):
        tally.add(row)
    return tally.stats()
