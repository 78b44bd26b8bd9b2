"""Item reference runs: run a code item's reference solution through the sandbox,
resolve each check's compare mode from what it gave, and store the result on the
item and its checks. reference_observe is the one way both the YAML loader
(services.py) and the instructor panel run a reference."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from grader.runner import get_sandbox
from grader.sandbox import Check as SandboxCheck
from grader.sandbox import VALUE_KINDS, Limits, ReferenceFailed, SandboxFault, describe, grade_code, observe_reference

from . import variants
from .content_export import item_document
from .content_format import CheckSpec, ContentError, ItemSpec, parse_quiz
from .models import Check, Choice, Item

ReferenceRunner = Callable[..., list[dict[str, Any]]]
VARIANT_DRAWS_CHECKED = 2  # random draws of an item's params whose reference must also run when content loads


def reference_observations(*, setup: str, solution: str, checks: list[SandboxCheck],
                           limits: Limits) -> list[dict[str, Any]]:
    """Run a reference solution in this process's sandbox (a ReferenceRunner). Raises ReferenceFailed or
    SandboxFault."""
    return observe_reference(get_sandbox(), solution=solution, setup=setup, checks=checks, limits=limits)


def starter_passing(spec: ItemSpec, checks: list[SandboxCheck], observations: list[dict[str, Any]]) -> list[str]:
    """The labels of the checks an item's starter code passes as it is.

    For the content loader's warning: each is a point a learner gets for changing one token.
    """
    values = variants.defaults(spec.params)
    grade = grade_code(get_sandbox(), code=variants.render(spec.starter, values),
                       setup=variants.render(spec.setup, values), checks=checks, reference=observations,
                       limits=Limits(cpu_seconds=spec.time_seconds, memory_mb=spec.memory_mb),
                       reveal_expected=True, screen=False)
    return [c.name for c in grade.checks if c.passed]


def reference_fingerprint(item: ItemSpec) -> str:
    """What the expected values depend on: when it is unchanged they are reused."""
    data = {"setup": item.setup, "solution": item.solution, "targets": [c.target for c in item.checks],
            "time": item.time_seconds, "memory": item.memory_mb}
    if any(c.compare not in VALUE_KINDS for c in item.checks):  # the fingerprints of value-only items stay as they were
        data["probes"] = [[c.compare or "value", c.sources] for c in item.checks]
    if item.hidden_setup:
        data["hidden_setup"] = item.hidden_setup
    if item.params:
        data["params"] = [item.params, item.hidden_rerun]
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def resolve_compare(spec: CheckSpec, obs: dict[str, Any], file: str, slug: str, index: int) -> str:
    if spec.compare is not None and spec.compare not in VALUE_KINDS:
        return spec.compare  # judged on traced facts or on the code: nothing to infer
    kind = obs["kind"]
    inferred = "none" if kind == "none" else "bool" if kind == "bool" else "value"
    given = spec.compare
    if given is None or given == inferred or (given == "value" and kind == "bool"):
        return given or inferred
    raise ContentError(file, slug, f"checks[{index}].compare",
                       f"is '{given}', but the reference solution gives {describe(obs)} for {spec.target}")


def reference_observe(*, spec: ItemSpec, runner: ReferenceRunner, file: str = "") -> tuple[list[dict[str, Any]], list[str]]:
    """Run a code item's reference solution: its observations, and each check's compare mode.

    Raises ReferenceFailed or SandboxFault when the run fails, and ContentError
    (field checks[i].compare) when a compare mode written for a check contradicts
    what the solution gives.
    """
    checks = [c.to_sandbox(c.compare or "value") for c in spec.checks]
    limits = Limits(cpu_seconds=spec.time_seconds, memory_mb=spec.memory_mb)
    values = variants.defaults(spec.params)
    observations = runner(setup=variants.render(spec.setup, values), solution=variants.render(spec.solution, values),
                          checks=checks, limits=limits)
    if spec.hidden_setup:  # the reference must run on the hidden draw too (its values are computed when grading)
        try:
            runner(setup=spec.hidden_setup, solution=spec.solution, checks=checks, limits=limits)
        except ReferenceFailed as exc:
            raise ContentError(file, spec.slug, "hidden_setup", f"the reference solution fails after it: {exc}") from None
    for draw in range(VARIANT_DRAWS_CHECKED if spec.params else 0):  # a learner's draw must work as well as the defaults
        other = variants.draw(spec.params, f"content-check:{spec.slug}:{draw}")
        try:
            runner(setup=variants.render(spec.setup, other), solution=variants.render(spec.solution, other),
                   checks=checks, limits=limits)
        except ReferenceFailed as exc:
            raise ContentError(file, spec.slug, "params", f"the reference solution fails for {other}: {exc}") from None
    compares = [resolve_compare(c, observations[i], file, spec.slug, i) for i, c in enumerate(spec.checks)]
    return observations, compares


@dataclass
class Reference:
    """What running an item's reference solution gave: one entry per check, in order."""

    fingerprint: str
    targets: list[str]
    given: list[bool]  # compare written by the instructor (else inferred)
    observations: list[dict[str, Any]]
    compares: list[str]  # resolved compare modes

    def rows(self) -> list[tuple[str, str, bool, str]]:
        """(target, compare, given, expected as text) per check."""
        return [(t, c, g, describe(o)) for t, c, g, o in
                zip(self.targets, self.compares, self.given, self.observations, strict=True)]


class ReferenceProblem(Exception):
    """The reference solution cannot give the expected values; the message says why."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field  # the item form field it is about, if one


_PLACEHOLDER_QUIZ = {"slug": "item", "title": "item"}


def item_spec(document: dict[str, Any]) -> ItemSpec:
    """An item document checked by the content format's own rules. Raises ContentError."""
    return parse_quiz({"quiz": _PLACEHOLDER_QUIZ, "items": [document]}, "item").items[0]


def reference_run(*, spec: ItemSpec) -> Reference:
    """Run a code item's reference solution through the sandbox, as the loader does.

    Raises ReferenceProblem when it fails, when a target cannot be read, or when
    a compare mode written for a check contradicts what the solution gives.
    """
    try:
        observations, compares = reference_observe(spec=spec, runner=reference_observations)
    except ReferenceFailed as exc:
        raise ReferenceProblem(f"The reference solution failed: {exc}", field="solution_code") from None
    except SandboxFault as exc:
        raise ReferenceProblem(f"The sandbox could not run the reference solution: {exc}") from None
    except ContentError as exc:
        if not (exc.path or "").startswith("checks["):  # hidden_setup or params: the reference fails on a draw
            field = {"hidden_setup": "hidden_setup_code", "params": "params"}.get(exc.path or "")
            raise ReferenceProblem(f"The reference solution failed: {exc.message}", field=field) from None
        index = int(exc.path.split("[")[1].split("]")[0])  # path "checks[i].compare"
        target = spec.checks[index].target
        raise ReferenceProblem(f"Check {index + 1} ({target}): compare {exc.message}") from None
    targets = [c.target for c in spec.checks]
    return Reference(fingerprint=reference_fingerprint(spec), targets=targets,
                     given=[c.compare is not None for c in spec.checks], observations=observations,
                     compares=compares)


def _renumber(model: type[Check] | type[Choice], item: Item) -> None:
    """Number an item's checks or choices 0, 1, 2... in their order, as the loader does."""
    rows = list(model.objects.filter(item=item).order_by("order", "pk"))
    if [row.order for row in rows] == list(range(len(rows))):
        return
    offset = max(row.order for row in rows) + 1  # two steps: (item, order) is unique at every moment
    for index, row in enumerate(rows):
        model.objects.filter(pk=row.pk).update(order=offset + index)
    for index, row in enumerate(rows):
        model.objects.filter(pk=row.pk).update(order=index)


def quiz_items_renumber(*, quiz_ids: set[int]) -> None:
    """Number the current items of quizzes 0, 1, 2... in their order, as the loader does, so
    that an export loads back unchanged; archived items keep their number."""
    for quiz_id in quiz_ids:
        items = Item.objects.filter(quiz_id=quiz_id, archived=False).order_by("order", "slug")
        for index, (pk, order) in enumerate(items.values_list("pk", "order")):
            if order != index:
                Item.objects.filter(pk=pk).update(order=index)


def item_reference_store(*, item: Item, reference: Reference | None, grading_changed: bool,
                         created: bool) -> bool:
    """Store a reference run on a saved item and its checks; bump the version when grading changed.

    Checks and choices are numbered 0, 1, 2... in their order (as the loader
    numbers them, so an export loads back unchanged). Each check gets its
    expected observation, resolved compare mode and whether compare was given;
    the item its fingerprint and computation time. Returns True when the
    version was bumped (never for a new item).
    """
    with transaction.atomic():
        item = Item.objects.select_for_update().get(pk=item.pk)
        _renumber(Check, item)
        _renumber(Choice, item)
        fields = ["updated_at"]
        if reference is not None and item.kind == Item.Kind.CODE:
            checks = list(item.checks.order_by("order"))
            if [c.target for c in checks] != reference.targets:
                raise RuntimeError(f"the checks of {item.slug} changed while its reference ran")
            for check, obs, compare, given in zip(checks, reference.observations, reference.compares,
                                                  reference.given, strict=True):
                if (check.expected, check.compare, check.compare_given) != (obs, compare, given):
                    grading_changed = grading_changed or check.expected != obs or check.compare != compare
                    check.expected, check.compare, check.compare_given = obs, compare, given
                    check.save(update_fields=["expected", "compare", "compare_given"])
            item.reference_fingerprint = reference.fingerprint
            item.reference_computed_at = timezone.now()
            fields += ["reference_fingerprint", "reference_computed_at"]
        bumped = grading_changed and not created
        if bumped:
            item.version += 1
            fields.append("version")
        item.save(update_fields=fields)
    return bumped


@dataclass
class Validation:
    item: Item
    reference: Reference | None = None
    error: str = ""
    stored: list[str] | None = None  # the stored expected values, as text

    @property
    def rows(self) -> list[dict[str, Any]]:
        if self.reference is None:
            return []
        stored = self.stored or []
        return [{"target": t, "compare": c, "given": g, "expected": e,
                 "stored": stored[i] if i < len(stored) else "–",
                 "matches": i < len(stored) and stored[i] == e}
                for i, (t, c, g, e) in enumerate(self.reference.rows())]


def item_validate(*, item: Item) -> Validation:
    """Run a stored item's reference solution and compare with its stored expected values (no writes)."""
    checks = list(item.checks.order_by("order"))
    result = Validation(item=item, stored=["–" if c.expected is None else describe(c.expected) for c in checks])
    if item.kind != Item.Kind.CODE:
        result.error = "Not a code item: it has no reference solution."
        return result
    try:
        spec = item_spec(item_document(item, checks=checks, choices=[]))
        result.reference = reference_run(spec=spec)
    except ContentError as exc:
        result.error = f"The stored item is not valid content: {exc}"
    except ReferenceProblem as exc:
        result.error = str(exc)
    return result
