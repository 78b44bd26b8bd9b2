"""Randomised variants of an item: parameters drawn per learner (and per attempt), and templates over them.

An item may declare parameters in its content (quiz/content/README.md):

    params:
      x0: {range: [1.0, 3.0], step: 0.5, default: 2.0}
      f: {choices: [sin, cos], default: sin}

Its prompt, setup, starter and solution then write `{{ x0 }}` where the value
goes. Each learner gets their own draw, seeded from the site's secret key, the
learner and the item (and the attempt, with `params_per_attempt`), so the same
learner sees the same numbers on every visit and classmates see others. The
defaults are the values the content is checked with when it loads.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
Values = dict[str, Any]


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def format_value(value: Any) -> str:
    """A value as it appears in code and in prose: 2.5, 3, sin."""
    if isinstance(value, float):
        return repr(round(value, 10))
    return str(value)


def render(text: str, values: Values) -> str:
    """text with each {{ name }} replaced by its value; placeholders without a value are left as they are."""
    if not values:
        return text
    return PLACEHOLDER.sub(lambda m: format_value(values[m[1]]) if m[1] in values else m[0], text)


def defaults(spec: dict[str, Any]) -> Values:
    return {name: param["default"] for name, param in sorted(spec.items())}


def _grid(param: dict[str, Any]) -> list[Any]:
    """Every value a range or choice parameter can take."""
    if "choices" in param:
        return list(param["choices"])
    low, high = param["range"]
    integer = all(isinstance(v, int) for v in (low, high, param.get("step", 1)))
    step = param.get("step", 1 if integer else (high - low) / 20)
    count = int(round((high - low) / step))
    return [low + i * step if integer else round(low + i * step, 10) for i in range(count + 1)]


def draw(spec: dict[str, Any], seed: str) -> Values:
    """One value per parameter, the same for the same seed."""
    rng = random.Random(hashlib.sha256(seed.encode()).digest())
    return {name: rng.choice(_grid(spec[name])) for name in sorted(spec)}


def unseen(spec: dict[str, Any], shown: list[str]) -> list[str]:
    """The parameters no text shown to the learner uses (a seed, the setup's data): the ones a hidden
    re-run may draw again. The others the learner is told, and may rightly have typed into the code."""
    visible = set().union(*(placeholders(text) for text in shown)) if shown else set()
    return sorted(set(spec) - visible)


def other_draw(spec: dict[str, Any], seed: str, values: Values, redraw: list[str]) -> Values:
    """values with the parameters in redraw drawn again (the hidden re-run's), different if they can be."""
    for attempt in range(20):
        fresh = draw(spec, f"{seed}:{attempt}")
        other = {**values, **{name: fresh[name] for name in redraw}}
        if other != values:
            return other
    return values


def learner_seed(secret: str, *, user_id: int, item_slug: str, attempt: int | None) -> str:
    """The seed of a learner's variant: keyed by the site's secret, so nobody can compute another's."""
    message = f"{user_id}:{item_slug}:{'' if attempt is None else attempt}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def key(values: Values) -> str:
    """A stable text of a draw, for caches."""
    return json.dumps(values, sort_keys=True)
