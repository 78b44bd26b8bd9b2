"""The YAML quiz format: parse and validate files into plain specs, and turn
stored quizzes back into the same structure (for export).

Strict on purpose: an unknown key, a wrong type or a missing field is an
error naming the file, the item and the field, never a silent default.
The format is documented in quiz/content/README.md.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from grader.sandbox import (
    CHECK_KINDS, DEFAULT_ATOL, DEFAULT_RTOL, MAX_CPU_SECONDS, MAX_MEMORY_MB, Check, rejection_reason, static_problem,
)

from . import variants

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
COMPARE_MODES = tuple(CHECK_KINDS)
# A check's fields, as the sandbox judges it (grader.sandbox.Check): the spec, the model, the admin form and
# the export all use these names. In YAML, `sources` is written `from`.
CHECK_FIELDS = tuple(Check.__dataclass_fields__)
DEFAULT_TIME_SECONDS = 2.0
DEFAULT_MEMORY_MB = 256
DEFAULT_REVEAL_AFTER = 3


class ContentError(Exception):
    """Bad content: one line naming file, item and field."""

    def __init__(self, file: str, item: str | None, path: str | None, message: str) -> None:
        self.file, self.item, self.path, self.message = file, item, path, message
        where = [file]
        if item:
            where.append(f"item '{item}'")
        if path:
            where.append(f"field '{path}'")
        super().__init__(": ".join(where) + f": {message}")


@dataclass
class CheckSpec:
    """A check as written in the content: like grader.sandbox.Check, but compare may be
    left out (None), to be inferred from what the reference solution gives."""

    target: str
    compare: str | None = None
    name: str = ""
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    strict_dtype: bool = False
    weight: float = 1.0
    hidden: bool = False
    feedback: str = ""
    sources: list[str] = field(default_factory=list)

    def to_sandbox(self, compare: str) -> Check:
        """The check the sandbox runs, once compare is known (inferred from the reference if not given)."""
        values = {f: getattr(self, f) for f in CHECK_FIELDS if f not in ("compare", "sources")}
        return Check(compare=compare, sources=tuple(self.sources), **values)


@dataclass
class ChoiceSpec:
    text: str
    correct: bool = False
    feedback: str = ""


@dataclass
class ItemSpec:
    slug: str
    kind: str
    title: str
    prompt: str
    explanation: str = ""
    hints: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    reveal_after_attempts: int = DEFAULT_REVEAL_AFTER
    max_attempts: int | None = None  # the default for the courses that run the item (None: unlimited)
    starter: str = ""
    setup: str = ""
    hidden_setup: str = ""
    solution: str = ""
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    params_per_attempt: bool = False
    hidden_rerun: bool = False
    reveal_expected: bool = False
    time_seconds: float = DEFAULT_TIME_SECONDS
    memory_mb: int = DEFAULT_MEMORY_MB
    checks: list[CheckSpec] = field(default_factory=list)
    multiple: bool = False
    choices: list[ChoiceSpec] = field(default_factory=list)


@dataclass
class QuizSpec:
    slug: str
    title: str
    description: str = ""
    order: int = 0
    items: list[ItemSpec] = field(default_factory=list)
    file: str = ""


class _Reader:
    """Reads one mapping strictly, remembering where it is for error messages."""

    def __init__(self, data: Any, file: str, item: str | None, path: str, allowed: set[str]) -> None:
        self.file, self.item, self.path = file, item, path
        if not isinstance(data, dict):
            self.fail(None, f"expected a mapping, got {type(data).__name__}")
        unknown = sorted(str(k) for k in data if k not in allowed)
        if unknown:
            self.fail(unknown[0], f"unknown key (allowed: {', '.join(sorted(allowed))})")
        self.data = data

    def where(self, key: str | None) -> str | None:
        if key is None:
            return self.path or None
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str | None, message: str) -> None:
        raise ContentError(self.file, self.item, self.where(key), message)

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ..., *, allow_empty: bool = True) -> Any:
        if key not in self.data or self.data[key] is None:
            if default is ...:
                self.fail(key, "is required")
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            self.fail(key, f"must be {names}, got {type(value).__name__}")
        if not allow_empty and isinstance(value, str) and not value.strip():
            self.fail(key, "must not be empty")
        return value

    def text(self, key: str, default: Any = ..., *, allow_empty: bool = True) -> str:
        return self.get(key, str, default, allow_empty=allow_empty)

    def str_list(self, key: str) -> list[str]:
        values = self.get(key, list, [])
        for i, v in enumerate(values):
            if not isinstance(v, str) or not v.strip():
                self.fail(f"{key}[{i}]", "must be a non-empty string")
        return list(values)


def _python(reader: _Reader, key: str, source: str, mode: str) -> None:
    reason = rejection_reason(source)
    if reason:
        reader.fail(key, reason)
    try:
        compile(source, f"<{key}>", mode, dont_inherit=True)
    except SyntaxError as exc:
        reader.fail(key, f"is not valid Python: {exc.msg} (line {exc.lineno})")


ITEM_KEYS = {"slug", "kind", "title", "prompt", "explanation", "hints", "tags", "reveal_after_attempts",
             "max_attempts"}
CODE_KEYS = {"starter", "setup", "hidden_setup", "solution", "reveal_expected", "limits", "checks", "params",
             "params_per_attempt", "hidden_rerun"}
TEMPLATED = ("prompt", "starter", "setup", "solution")  # the fields that may use {{ name }} (and the hints)
CHOICE_KEYS = {"multiple", "choices"}
CHECK_KEYS = (set(CHECK_FIELDS) - {"sources"}) | {"from"}


def _check(data: Any, file: str, item: str, path: str) -> CheckSpec:
    r = _Reader(data, file, item, path, CHECK_KEYS)
    target = r.text("target", allow_empty=False).strip()
    compare = r.text("compare", None)
    if compare is not None and compare not in COMPARE_MODES:
        r.fail("compare", f"must be one of {', '.join(COMPARE_MODES)}")
    kind = CHECK_KINDS[compare or "value"]
    if kind.probe is None:
        problem = static_problem(Check(target=target, compare=compare or "value"))
        if problem:
            r.fail("target", problem)
    else:
        _python(r, "target", target, "eval")
    sources = r.str_list("from")
    if compare == "derived" and not sources:
        r.fail("from", "is required for a derived check: the names of the tensors the target must come from")
    if compare not in ("derived", "autograd") and sources:
        r.fail("from", "only derived and autograd checks have this field")
    for i, name in enumerate(sources):
        if not IDENTIFIER.match(name.strip()):
            r.fail(f"from[{i}]", "must be a variable name")
    spec = CheckSpec(
        target=target, compare=compare, name=r.text("name", ""), rtol=r.get("rtol", float, DEFAULT_RTOL),
        atol=r.get("atol", float, DEFAULT_ATOL), strict_dtype=r.get("strict_dtype", bool, False),
        weight=r.get("weight", float, 1.0), hidden=r.get("hidden", bool, False), feedback=r.text("feedback", ""),
        sources=[n.strip() for n in sources],
    )
    if spec.rtol < 0 or spec.atol < 0:
        r.fail("rtol" if spec.rtol < 0 else "atol", "must not be negative")
    if spec.weight <= 0:
        r.fail("weight", "must be greater than 0")
    return spec


def _params(r: _Reader) -> dict[str, dict[str, Any]]:
    """The item's parameters: each a range (with an optional step) or choices, and a default."""
    raw = r.get("params", dict, {})
    params: dict[str, dict[str, Any]] = {}
    for name, data in raw.items():
        path = f"params.{name}"
        if not isinstance(name, str) or not IDENTIFIER.match(name):
            r.fail(path, "a parameter name must be a Python identifier")
        p = _Reader(data, r.file, r.item, path, {"range", "step", "choices", "default"})
        if ("range" in p.data) == ("choices" in p.data):
            p.fail(None, "give either range: [low, high] or choices: [...]")
        default = p.get("default", (int, float, str))
        if "range" in p.data:
            low_high = p.get("range", list)
            if len(low_high) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in low_high) \
                    or not low_high[0] < low_high[1]:
                p.fail("range", "must be [low, high] with two numbers, low < high")
            step = p.get("step", (int, float), None)
            if step is not None and step <= 0:
                p.fail("step", "must be greater than 0")
            param: dict[str, Any] = {"range": list(low_high), "default": default}
            if step is not None:
                param["step"] = step
        else:
            choices = p.get("choices", list)
            if not choices or not all((isinstance(c, (int, float)) and not isinstance(c, bool))
                                      or (isinstance(c, str) and IDENTIFIER.match(c)) for c in choices):
                p.fail("choices", "must be numbers or Python names, at least one")
            param = {"choices": list(choices), "default": default}
        if default not in variants._grid(param):
            p.fail("default", "must be one of the values the parameter can take")
        params[name] = param
    return params


def _item(data: Any, file: str, index: int) -> ItemSpec:
    slug = data.get("slug") if isinstance(data, dict) else None
    label = slug if isinstance(slug, str) else f"#{index + 1}"
    kind = data.get("kind") if isinstance(data, dict) else None
    if isinstance(data, dict) and kind not in ("code", "choice"):
        raise ContentError(file, label, "kind", "is required" if kind is None else "must be code or choice")
    allowed = ITEM_KEYS | (CODE_KEYS if kind == "code" else CHOICE_KEYS if kind == "choice" else set())
    if kind in ("code", "choice") and isinstance(data, dict):
        other = CHOICE_KEYS if kind == "code" else CODE_KEYS
        stray = sorted(k for k in data if k in other)
        if stray:
            raise ContentError(file, label, stray[0], f"only {'choice' if kind == 'code' else 'code'} items have this field")
    r = _Reader(data, file, label, "", allowed)
    slug = r.text("slug")
    if not SLUG.match(slug):
        r.fail("slug", "must be lowercase letters, digits and single dashes")
    kind = r.text("kind")
    spec = ItemSpec(
        slug=slug, kind=kind, title=r.text("title", allow_empty=False), prompt=r.text("prompt", allow_empty=False),
        explanation=r.text("explanation", ""), hints=r.str_list("hints"), tags=r.str_list("tags"),
        reveal_after_attempts=r.get("reveal_after_attempts", int, DEFAULT_REVEAL_AFTER),
        max_attempts=r.get("max_attempts", int, None),
    )
    if spec.reveal_after_attempts < 0:
        r.fail("reveal_after_attempts", "must not be negative")
    if spec.max_attempts is not None and spec.max_attempts < 1:
        r.fail("max_attempts", "must be at least 1 (leave it out for unlimited attempts)")
    if kind == "code":
        spec.starter = r.text("starter", "")
        spec.setup = r.text("setup", "")
        spec.hidden_setup = r.text("hidden_setup", "")
        spec.solution = r.text("solution", allow_empty=False)
        spec.params = _params(r)
        spec.params_per_attempt = r.get("params_per_attempt", bool, False)
        spec.hidden_rerun = r.get("hidden_rerun", bool, False)
        if (spec.params_per_attempt or spec.hidden_rerun) and not spec.params:
            r.fail("params_per_attempt" if spec.params_per_attempt else "hidden_rerun",
                   "needs params: without parameters there is nothing to draw (use hidden_setup for a fixed draw)")
        if spec.params and spec.hidden_setup:
            r.fail("hidden_setup", "an item with params gets its hidden draw from them: use hidden_rerun: true")
        texts = {key: getattr(spec, key) for key in TEMPLATED} | {f"hints[{i}]": h for i, h in enumerate(spec.hints)}
        for where, text in texts.items():
            unknown = sorted(variants.placeholders(text) - set(spec.params))
            if unknown:
                r.fail(where, f"uses {{{{ {unknown[0]} }}}}, which is not one of the item's params")
        if spec.hidden_rerun and not variants.unseen(spec.params, [spec.prompt, spec.starter, *spec.hints]):
            r.fail("hidden_rerun", "needs a parameter that only the setup uses (a seed, say): the others are shown "
                   "to the learner, who may rightly type them in")
        values = variants.defaults(spec.params)
        for key in ("starter", "setup", "hidden_setup", "solution"):
            _python(r, key, variants.render(getattr(spec, key), values), "exec")
        spec.reveal_expected = r.get("reveal_expected", bool, False)
        limits = _Reader(r.get("limits", dict, {}), file, slug, "limits", {"time_seconds", "memory_mb"})
        spec.time_seconds = limits.get("time_seconds", float, DEFAULT_TIME_SECONDS)
        spec.memory_mb = limits.get("memory_mb", int, DEFAULT_MEMORY_MB)
        if not 0.1 <= spec.time_seconds <= MAX_CPU_SECONDS:
            limits.fail("time_seconds", f"must be between 0.1 and {MAX_CPU_SECONDS}")
        if not 16 <= spec.memory_mb <= MAX_MEMORY_MB:
            limits.fail("memory_mb", f"must be between 16 and {MAX_MEMORY_MB}")
        checks = r.get("checks", list)
        if not checks:
            r.fail("checks", "needs at least one check")
        spec.checks = [_check(c, file, slug, f"checks[{i}]") for i, c in enumerate(checks)]
    else:
        spec.multiple = r.get("multiple", bool, False)
        choices = r.get("choices", list)
        spec.choices = []
        for i, c in enumerate(choices):
            cr = _Reader(c, file, slug, f"choices[{i}]", {"text", "correct", "feedback"})
            spec.choices.append(ChoiceSpec(cr.text("text", allow_empty=False), cr.get("correct", bool, False),
                                           cr.text("feedback", "")))
        correct = sum(c.correct for c in spec.choices)
        if len(spec.choices) < 2:
            r.fail("choices", "needs at least two choices")
        if correct == 0:
            r.fail("choices", "needs at least one correct choice")
        if correct > 1 and not spec.multiple:
            r.fail("choices", f"has {correct} correct choices; set multiple: true or keep one")
    return spec


def parse_quiz(data: Any, file: str) -> QuizSpec:
    top = _Reader(data, file, None, "", {"quiz", "items"})
    q = _Reader(top.get("quiz", dict), file, None, "quiz", {"slug", "title", "description", "order"})
    quiz = QuizSpec(slug=q.text("slug"), title=q.text("title", allow_empty=False),
                    description=q.text("description", ""), order=q.get("order", int, 0), file=file)
    if not SLUG.match(quiz.slug):
        q.fail("slug", "must be lowercase letters, digits and single dashes")
    items = top.get("items", list)
    if not items:
        top.fail("items", "needs at least one item")
    quiz.items = [_item(data, file, i) for i, data in enumerate(items)]
    seen: set[str] = set()
    for item in quiz.items:
        if item.slug in seen:
            raise ContentError(file, item.slug, "slug", "is used twice in this file")
        seen.add(item.slug)
    return quiz


def load_file(path: Path, display: str | None = None) -> QuizSpec:
    display = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ContentError(display, None, None, f"cannot be read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ContentError(display, None, None, f"is not valid YAML{where}: {problem}") from None
    return parse_quiz(data, display)


def load_paths(paths: list[Path]) -> list[QuizSpec]:
    """Parse every YAML file under paths; slugs must be unique across all of them."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")))
        elif path.exists():
            files.append(path)
        else:
            raise ContentError(str(path), None, None, "does not exist")
    if not files:
        raise ContentError(", ".join(map(str, paths)), None, None, "holds no .yaml files")
    quizzes = [load_file(f) for f in files]
    owners: dict[str, str] = {}
    quiz_owners: dict[str, str] = {}
    for quiz in quizzes:
        if quiz.slug in quiz_owners:
            raise ContentError(quiz.file, None, "quiz.slug", f"'{quiz.slug}' is also the quiz in {quiz_owners[quiz.slug]}")
        quiz_owners[quiz.slug] = quiz.file
        for item in quiz.items:
            if item.slug in owners:
                raise ContentError(quiz.file, item.slug, "slug", f"is also used in {owners[item.slug]}")
            owners[item.slug] = quiz.file
    return quizzes
