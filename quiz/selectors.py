"""Reads of quiz content, and of a learner's progress through it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Q, QuerySet
from django.http import Http404

from grader.sandbox import ATTEMPT_VERDICTS, VERDICTS

from . import variants
from .models import Item, Quiz

# Verdicts that count as an attempt: the code (or answer) was judged.
ATTEMPT_STATUSES = ATTEMPT_VERDICTS
# Verdicts that give the attempt back: the grader refused the code unrun, or failed.
FREE_STATUSES = tuple(v for v in VERDICTS if v not in ATTEMPT_VERDICTS)


def quiz_list() -> QuerySet[Quiz]:
    return Quiz.objects.annotate(item_count=Count("items", filter=Q(items__archived=False))).order_by("order", "slug")


def quiz_get(*, slug: str) -> Quiz:
    quiz = quiz_list().filter(slug=slug).first()
    if quiz is None:
        raise Http404(f"no quiz {slug!r}")
    return quiz


def item_list(*, quiz_slug: str | None = None) -> QuerySet[Item]:
    items = Item.objects.filter(archived=False).select_related("quiz").prefetch_related("checks", "choices")
    if quiz_slug:
        items = items.filter(quiz__slug=quiz_slug)
    return items.order_by("quiz__order", "quiz__slug", "order", "slug")


def item_get(*, slug: str) -> Item:
    item = item_list().filter(slug=slug).first()
    if item is None:
        raise Http404(f"no item {slug!r}")
    return item


@dataclass
class ItemProgress:
    attempts: int = 0
    best_score: float | None = None
    passed: bool = False

    @property
    def state(self) -> str:
        return "passed" if self.passed else "attempted" if self.attempts else "not started"


def item_params(*, item: Item, user: Any, progress: ItemProgress) -> dict[str, Any]:
    """A learner's draw of an item's parameters, for the attempt they are about to make (with
    params_per_attempt, each gradable attempt gets its own draw; refused code costs none)."""
    if not item.params or not user.is_authenticated:
        return variants.defaults(item.params)
    seed = variants.learner_seed(settings.SECRET_KEY, user_id=user.pk, item_slug=item.slug,
                                 attempt=progress.attempts + 1 if item.params_per_attempt else None)
    return variants.draw(item.params, seed)


def item_progress(*, user: Any, items: list[Item], course_id: int | None = None) -> dict[int, ItemProgress]:
    """Graded attempts (as the course policy counts them: numbered, not refused by the grader; pending ones
    included), best score after penalties and passed flag of one learner for each item, in one course
    (or across all of them)."""
    progress = {item.pk: ItemProgress() for item in items}
    if not user.is_authenticated or not items:
        return progress
    from grader.models import Submission

    rows = Submission.objects.filter(user=user, item_id__in=progress, attempt__isnull=False).exclude(
        status__in=FREE_STATUSES)
    if course_id is not None:
        rows = rows.filter(course_id=course_id)
    rows = rows.values("item_id").annotate(attempts=Count("id"), best=Max("final_score"),
                                           passed=Count("id", filter=Q(status="passed")))
    for row in rows:
        progress[row["item_id"]] = ItemProgress(row["attempts"], row["best"], row["passed"] > 0)
    return progress


def learner_state(*, user: Any, item: Item) -> dict[str, Any]:
    """A learner's unsent draft and opened hints for an item (empty for visitors and new items)."""
    from .models import LearnerItemState

    state = LearnerItemState.objects.filter(user=user, item=item).first() if user.is_authenticated else None
    return {"draft": state.draft if state else "", "draft_saved_at": state.draft_saved_at if state else None,
            "hints_opened": state.hints_opened if state else 0}
