"""Stored quizzes back to the YAML content format (quiz/content/README.md).

The output is what `quiz.content_format.parse_quiz` reads and what
`quiz.services.quiz_content_load` loads: loading an export of a quiz changes
nothing. Keys at their default value are left out, `compare` is written only
where the content gave it (Check.compare_given), and expected values are never
written (they come from the reference solution). Archived items are not part
of their quiz any more, so they are not exported.

`item_document` also works on unsaved instances: the admin builds the document
of an item being edited and runs it through `parse_quiz`, so that whatever it
saves can be exported again.
"""
from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Sequence
from typing import Any

import yaml

from .content_format import CHECK_FIELDS, DEFAULT_MEMORY_MB, DEFAULT_REVEAL_AFTER, DEFAULT_TIME_SECONDS, CheckSpec
from .models import Check, Choice, Item, Quiz

_CHECK_DEFAULTS = CheckSpec(target="")


def _check_document(check: Check) -> dict[str, Any]:
    doc: dict[str, Any] = {"target": check.target}
    if check.compare_given:
        doc["compare"] = check.compare
    for key in CHECK_FIELDS:
        value = getattr(check, key)
        if key not in ("target", "compare") and value != getattr(_CHECK_DEFAULTS, key):
            doc["from" if key == "sources" else key] = value
    return doc


def _choice_document(choice: Choice) -> dict[str, Any]:
    doc: dict[str, Any] = {"text": choice.text, "correct": choice.correct}
    if choice.feedback:
        doc["feedback"] = choice.feedback
    return doc


def item_document(item: Item, *, checks: Sequence[Check], choices: Sequence[Choice]) -> dict[str, Any]:
    """One item as a YAML-ready mapping, in the key order of the format's README."""
    doc: dict[str, Any] = {"slug": item.slug, "kind": item.kind, "title": item.title, "prompt": item.prompt}
    if item.explanation:
        doc["explanation"] = item.explanation
    if item.hints:
        doc["hints"] = item.hints
    if item.tags:
        doc["tags"] = item.tags
    if item.reveal_after_attempts != DEFAULT_REVEAL_AFTER:
        doc["reveal_after_attempts"] = item.reveal_after_attempts
    if item.max_attempts is not None:
        doc["max_attempts"] = item.max_attempts
    if item.kind == Item.Kind.CODE:
        if item.starter_code:
            doc["starter"] = item.starter_code
        if item.setup_code:
            doc["setup"] = item.setup_code
        if item.hidden_setup_code:
            doc["hidden_setup"] = item.hidden_setup_code
        if item.params:
            doc["params"] = item.params
        if item.params_per_attempt:
            doc["params_per_attempt"] = True
        if item.hidden_rerun:
            doc["hidden_rerun"] = True
        doc["solution"] = item.solution_code
        if item.reveal_expected:
            doc["reveal_expected"] = True
        limits: dict[str, Any] = {}
        if item.time_limit_seconds != DEFAULT_TIME_SECONDS:
            limits["time_seconds"] = item.time_limit_seconds
        if item.memory_limit_mb != DEFAULT_MEMORY_MB:
            limits["memory_mb"] = item.memory_limit_mb
        if limits:
            doc["limits"] = limits
        doc["checks"] = [_check_document(c) for c in sorted(checks, key=lambda c: c.order)]
    else:
        doc["multiple"] = item.multiple
        doc["choices"] = [_choice_document(c) for c in sorted(choices, key=lambda c: c.order)]
    return doc


def quiz_document(quiz: Quiz) -> dict[str, Any]:
    """A stored quiz and its current (not archived) items, as parse_quiz reads them."""
    head: dict[str, Any] = {"slug": quiz.slug, "title": quiz.title}
    if quiz.description:
        head["description"] = quiz.description
    head["order"] = quiz.order
    items = (Item.objects.filter(quiz=quiz, archived=False).order_by("order", "slug")
             .prefetch_related("checks", "choices"))
    return {"quiz": head, "items": [item_document(i, checks=list(i.checks.all()), choices=list(i.choices.all()))
                                    for i in items]}


class _Dumper(yaml.SafeDumper):
    """Block sequences indented under their key, multi-line text as literal blocks."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _represent_str)


def quiz_yaml(quiz: Quiz) -> str:
    """The YAML file of a quiz, ready for `manage.py load_quizzes` or the admin's import."""
    body = yaml.dump(quiz_document(quiz), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return f"# Quiz '{quiz.slug}', exported from the admin. Format: quiz/content/README.md\n{body}"


def quiz_filename(quiz: Quiz) -> str:
    return f"{quiz.slug}.yaml"


def quizzes_zip(quizzes: Iterable[Quiz]) -> bytes:
    """Several quizzes as one zip of YAML files (one file per quiz, as in quiz/content/)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for quiz in quizzes:
            archive.writestr(quiz_filename(quiz), quiz_yaml(quiz))
    return buffer.getvalue()
