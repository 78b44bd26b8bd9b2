"""One vocabulary: every check kind and every verdict is defined once and reaches every place that uses it.

Adding a kind to grader.sandbox.CHECK_KINDS (or a verdict to VERDICTS) must be
enough for the models, the content format, the admin form, the export and the
judge to know it; these tests fail when one of them does not.
"""
from __future__ import annotations

import dataclasses
from typing import Any, cast

import pytest
import yaml
from django import forms

from grader.models import Submission
from grader.sandbox import CHECK_KINDS, STATIC_KINDS, VERDICTS, Check, Limits, RunOutcome, judge
from quiz.admin import CheckForm
from quiz.content_export import item_document
from quiz.content_format import CHECK_FIELDS, CHECK_KEYS, CheckSpec, parse_quiz
from quiz.models import Check as CheckModel
from quiz.models import Item

TARGETS = {"calls": "backward", "forbids": "assign:grad"}
# One observation carrying every probe's facts, as an honest child writes them.
OBSERVATION = {"kind": "tensor", "dtype": "float32", "shape": [], "numel": 1, "requires_grad": False, "is_leaf": True,
               "grad_fn": None, "values": [7.0],
               "lineage": {"writer": "engine", "changed": False, "sources": ["x"], "complete": True,
                           "differentiated": []}, "same": True,
               "graph": {"nodes": [["AccumulateGrad", "leaf", "x"]], "edges": [], "truncated": False}}


def outcome(observation: dict[str, Any] | None) -> RunOutcome:
    return RunOutcome(frame={"v": 1, "phase": "done", "observations": [observation] if observation else []},
                      frame_error=None, killed_for=None, started=True, memory=None, exit_code=0, exit_signal=None,
                      cpu_seconds=0.01, output="", output_bytes=0, wall_ms=1.0, layers={})


def test_every_check_kind_is_a_model_choice_and_an_admin_choice() -> None:
    assert CheckModel.Compare.values == list(CHECK_KINDS)
    field = CheckForm.base_fields["compare"]
    assert isinstance(field, forms.ChoiceField)
    choices = cast("list[tuple[str, str]]", field.choices)  # a ChoiceField keeps its choices as a list of pairs
    admin_choices = [value for value, _ in choices if value]
    assert admin_choices == list(CHECK_KINDS)


def test_every_field_of_a_sandbox_check_is_on_the_model_the_spec_the_form_and_the_format() -> None:
    fields = [f.name for f in dataclasses.fields(Check)]
    assert list(CHECK_FIELDS) == fields
    model_fields = {f.name for f in CheckModel._meta.get_fields()}
    assert set(fields) <= model_fields
    assert set(fields) <= {f.name for f in dataclasses.fields(CheckSpec)}
    assert set(fields) <= set(CheckForm.base_fields)
    assert CHECK_KEYS == (set(fields) - {"sources"}) | {"from"}


@pytest.mark.parametrize("kind", list(CHECK_KINDS))
def test_every_check_kind_loads_exports_and_is_judged(kind: str) -> None:
    check: dict[str, Any] = {"target": TARGETS.get(kind, "x.grad" if kind != "in_place" else "x"), "compare": kind}
    if kind == "derived":
        check["from"] = ["x"]
    item = {"slug": "one", "kind": "code", "title": "t", "prompt": "p", "solution": "x = 1\n", "checks": [check]}
    spec = parse_quiz({"quiz": {"slug": "q", "title": "Q"}, "items": [item]}, "f.yaml").items[0]
    sandbox_check = spec.checks[0].to_sandbox(kind)
    assert sandbox_check.compare == kind and sandbox_check.probe == CHECK_KINDS[kind].probe
    assert (sandbox_check.probe is None) == (kind in STATIC_KINDS)
    # The export writes it back as the format reads it.
    row = CheckModel(**{f: getattr(sandbox_check, f) if f != "sources" else list(sandbox_check.sources)
                        for f in CHECK_FIELDS}, compare_given=True)
    document = item_document(Item(slug="one", kind="code", title="t", prompt="p", solution_code="x = 1\n"),
                             checks=[row], choices=[])
    assert yaml.safe_load(yaml.safe_dump(document))["checks"] == [check]
    # The parent judges it, on the facts its probe reads (a kind the judge does not know would say "could not be
    # traced", or raise) or, for a static kind, on the code.
    grade = judge(outcome(OBSERVATION if sandbox_check.probe is not None else None), [sandbox_check],
                  [OBSERVATION if sandbox_check.probe is not None else {"kind": "static"}], limits=Limits(),
                  reveal_expected=True, code=None)
    assert grade.status == "passed" or "could not be traced" not in grade.checks[0].message, grade


def test_every_sandbox_verdict_is_a_submission_status() -> None:
    assert Submission.Status.values == ["queued", "running", *VERDICTS]
    assert Submission.Status.PASSED == "passed" and Submission.Status.INTERNAL_ERROR.label == "Internal error"
