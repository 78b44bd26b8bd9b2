"""Reads of quiz content, and of a learner's draft, hints and draw of an item's parameters."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.http import Http404

from config import sql

from . import variants
from .models import Check, Item, Quiz


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


def item_answered(*, slug: str) -> Item | None:
    """The live (not archived) item an answer names, alone: its checks and choices are read when grading needs
    them. In SQL (config.sql says why): every submission reads it first."""
    return sql.get(Item, slug=slug, archived=False)


def item_for_grading(*, item_id: int) -> Item | None:
    """An item with its checks, in order, in one statement (a join; in SQL, config.sql says why): a worker reads
    them for every submission it grades. `item.checks.all()` then answers without a query."""
    item_column, order = sql.column(Check, "item"), sql.column(Check, "order")
    rows = sql.fetch(f"SELECT {sql.columns(Item, 'i')}, {sql.columns(Check, 'c')} FROM {sql.table(Item, 'i')}"
                     f" LEFT JOIN {sql.table(Check, 'c')} ON c.{item_column} = i.{sql.column(Item, 'id')}"
                     f" WHERE i.{sql.column(Item, 'id')} = %s ORDER BY c.{order}", [item_id])
    if not rows:
        return None
    parts = [sql.split(values, Item, Check) for values in rows]
    check_id = [field.attname for field in Check._meta.concrete_fields].index("id")
    checks = [sql.instance(Check, check) for _item, check, _rest in parts
              if check[check_id] is not None]  # not the LEFT JOIN's row of nulls for an item with no check
    item = sql.instance(Item, parts[0][0])
    sql.prefetched(item, "checks", checks)
    return item


def item_params(*, item: Item, user: Any, attempts: int) -> dict[str, Any]:
    """A learner's draw of an item's parameters, for the attempt they are about to make after `attempts` graded
    ones (with params_per_attempt, each gradable attempt gets its own draw; refused code costs none)."""
    if not item.params or not user.is_authenticated:
        return variants.defaults(item.params)
    seed = variants.learner_seed(settings.SECRET_KEY, user_id=user.pk, item_slug=item.slug,
                                 attempt=attempts + 1 if item.params_per_attempt else None)
    return variants.draw(item.params, seed)


def learner_state(*, user: Any, item: Item) -> dict[str, Any]:
    """A learner's unsent draft and opened hints for an item (empty for visitors and new items)."""
    from .models import LearnerItemState

    state = LearnerItemState.objects.filter(user=user, item=item).first() if user.is_authenticated else None
    return {"draft": state.draft if state else "", "draft_saved_at": state.draft_saved_at if state else None,
            "hints_opened": state.hints_opened if state else 0}
