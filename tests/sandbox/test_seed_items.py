"""Verdicts for the ten code items of the seed quiz (quiz/content/autograd-basics.yaml).

The items are read with the content parser (no Django), references come from
their own solutions through the real sandbox, and each item is graded against:
correct answers written several ways (passed, score 1), typical mistakes
(failed, with the teaching message and the exact score), and its starter code
(never passed).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from grader.sandbox import (
    ATTEMPT_VERDICTS, VALUE_KINDS, Check, Grade, HiddenRun, Limits, Sandbox, grade_code, observe_reference,
)
from quiz.content_format import CheckSpec, ItemSpec, load_file

SEED_FILE = Path(__file__).resolve().parents[2] / "quiz" / "content" / "autograd-basics.yaml"
SEED_SLUGS = (
    "grad-of-polynomial", "zero-grad", "enable-tracking", "retain-nonleaf-grad", "autograd-grad", "vector-grad",
    "stop-tracking", "accumulate-and-clear", "freeze-layer", "multivariable-grad",
)


def infer_compare(spec: CheckSpec, expected: dict[str, Any]) -> str:
    """The item's compare mode, or the one its reference observation implies."""
    if spec.compare is not None:
        return spec.compare
    return {"none": "none", "bool": "bool"}.get(expected["kind"], "value")


@dataclass
class Seeded:
    item: ItemSpec
    checks: list[Check]
    reference: list[dict[str, Any]]
    hidden: HiddenRun | None

    @property
    def limits(self) -> Limits:
        return Limits(cpu_seconds=self.item.time_seconds, memory_mb=self.item.memory_mb)


class SeedGrader:
    """Grades code for a seed item; each item's reference is observed once."""

    def __init__(self, sandbox: Sandbox, items: dict[str, ItemSpec]) -> None:
        self.sandbox = sandbox
        self.items = items
        self._seeded: dict[str, Seeded] = {}

    def seeded(self, slug: str) -> Seeded:
        if slug not in self._seeded:
            item = self.items[slug]
            probing = [spec.to_sandbox(spec.compare or "value") for spec in item.checks]
            reference = observe_reference(self.sandbox, solution=item.solution, setup=item.setup, checks=probing,
                                          limits=Limits())
            checks = [spec.to_sandbox(infer_compare(spec, expected))
                      for spec, expected in zip(item.checks, reference, strict=True)]
            hidden = None
            if item.hidden_setup:  # as grader.services._hidden_run computes it
                hidden = HiddenRun(item.hidden_setup, observe_reference(
                    self.sandbox, solution=item.solution, setup=item.hidden_setup, checks=checks, limits=Limits()))
            self._seeded[slug] = Seeded(item, checks, reference, hidden)
        return self._seeded[slug]

    def grade(self, slug: str, code: str) -> Grade:
        seeded = self.seeded(slug)
        return grade_code(self.sandbox, code=code, setup=seeded.item.setup, checks=seeded.checks,
                          reference=seeded.reference, limits=seeded.limits,
                          reveal_expected=seeded.item.reveal_expected, starter=seeded.item.starter,
                          hidden=seeded.hidden)


@pytest.fixture(scope="module")
def items() -> dict[str, ItemSpec]:
    quiz = load_file(SEED_FILE)
    return {item.slug: item for item in quiz.items if item.kind == "code"}


@pytest.fixture(scope="module")
def seed(sandbox: Sandbox, items: dict[str, ItemSpec]) -> SeedGrader:
    return SeedGrader(sandbox, items)


def describe(g: Grade) -> str:
    checks = "; ".join(f"{c.name}: {'ok' if c.passed else c.message}" for c in g.checks)
    return f"status={g.status!r} score={g.score} error={g.error!r} checks=[{checks}]"


# -- the file itself -------------------------------------------------------------------
def test_seed_file_holds_exactly_the_ten_code_items(items: dict[str, ItemSpec]) -> None:
    assert sorted(items) == sorted(SEED_SLUGS)


@pytest.mark.parametrize("slug", SEED_SLUGS)
def test_declared_compare_modes_agree_with_the_reference(seed: SeedGrader, slug: str) -> None:
    seeded = seed.seeded(slug)
    for spec, expected in zip(seeded.item.checks, seeded.reference, strict=True):
        assert expected["kind"] != "missing", f"{slug}: {spec.target} cannot be read after the solution"
        inferred = infer_compare(CheckSpec(target=spec.target), expected)
        if spec.compare in VALUE_KINDS:
            assert spec.compare == inferred, (
                f"{slug}: {spec.target} is compared as {spec.compare!r} but the solution gives a {expected['kind']}")


@pytest.mark.parametrize("slug", SEED_SLUGS)
def test_item_solution_passes(seed: SeedGrader, items: dict[str, ItemSpec], slug: str) -> None:
    g = seed.grade(slug, items[slug].solution)
    assert g.status == "passed" and g.score == 1.0, describe(g)


# Exact score of each starter once a token is added (so it is graded): the checks an untouched starter meets are
# the ones that guard against breaking what the setup gave (a stays a leaf, x keeps tracking) or that no
# backward pass leaves alone (x.grad stays None). quiz_content_load warns about each of them.
STARTER_SCORES = {
    "grad-of-polynomial": 0.0,   # x does not track, y is Ellipsis, no backward
    "zero-grad": 0.0,            # no backward: g and x.grad are None
    "enable-tracking": 2 / 7,    # a.is_leaf, and a is still the given tensor
    "retain-nonleaf-grad": 2 / 6,  # h.is_leaf, and out's graph is built by the starter
    "autograd-grad": 1 / 4,      # x.grad is None, as wanted
    "vector-grad": 0.0,
    "stop-tracking": 2 / 7,      # x.requires_grad and grad mode are left as they should be
    "accumulate-and-clear": 1 / 5,  # y's graph is built by the starter
    "freeze-layer": 3 / 10,      # no backward: model[0]'s grads are None; model[0].weight is the given tensor
    "multivariable-grad": 0.0,
}


@pytest.mark.parametrize("slug", SEED_SLUGS)
def test_unchanged_starter_code_scores_nothing_and_is_not_an_attempt(seed: SeedGrader, items: dict[str, ItemSpec],
                                                                      slug: str) -> None:
    g = seed.grade(slug, items[slug].starter)
    assert (g.status, g.score, g.checks) == ("rejected", 0.0, []), describe(g)
    assert g.error is not None and "not changed the starter code" in g.error
    assert "rejected" not in ATTEMPT_VERDICTS


@pytest.mark.parametrize("slug", SEED_SLUGS)
def test_starter_code_with_only_comments_and_layout_changed_is_still_the_starter(
        seed: SeedGrader, items: dict[str, ItemSpec], slug: str) -> None:
    code = "# my attempt\n\n" + items[slug].starter.replace("\n", "  # edited\n\n", 1)
    g = seed.grade(slug, code)
    assert g.status == "rejected", describe(g)


@pytest.mark.parametrize("slug", SEED_SLUGS)
def test_starter_code_with_a_token_changed_is_graded_and_never_passes(seed: SeedGrader, items: dict[str, ItemSpec],
                                                                       slug: str) -> None:
    g = seed.grade(slug, items[slug].starter + "\n_touched = 1\n")
    assert g.status == "failed", describe(g)
    assert g.score == pytest.approx(STARTER_SCORES[slug], abs=1e-6), describe(g)


# -- correct answers, written several ways ------------------------------------------------------
CORRECT: dict[str, dict[str, str]] = {
    "grad-of-polynomial": {
        "requires-grad-underscore": "import torch\nx = torch.tensor(2.0).requires_grad_()\ny = x**2 + 3*x + 1\n"
                                    "y.backward()\n",
        "ones-like-gradient": "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x*x + 3*x + 1\n"
                              "y.backward(torch.ones_like(y))\n",
        "autograd-backward": "import torch\nx = torch.tensor(2.0, requires_grad=True)\n"
                             "y = torch.pow(x, 2) + 3 * x + 1\ntorch.autograd.backward(y)\n",
        "float64": "import torch\nx = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)\n"
                   "y = x**2 + 3*x + 1\ny.backward()\n",
        "full": "import torch\nx = torch.full((), 2.0, requires_grad=True)\ny = x**2 + 3*x + 1\ny.backward()\n",
    },
    "zero-grad": {
        "item": "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\ny.backward()\n"
                "g = x.grad.item()\nx.grad.zero_()\n",
        "float": "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\ny.backward()\n"
                 "g = float(x.grad)\nx.grad.zero_()\n",
        "tolist-and-mul": "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\n"
                          "torch.autograd.backward(y)\ng = x.grad.tolist()\nx.grad.mul_(0)\n",
        "data-zero": "import torch\nx = torch.tensor(2.0, requires_grad=True)\n(x**2 + 3*x + 1).backward()\n"
                     "g = x.grad.item()\nx.grad.data.zero_()\n",
    },
    "enable-tracking": {
        "requires-grad-underscore": "a.requires_grad_()\nb = d.detach().requires_grad_(True)\n",
        "attribute": "a.requires_grad = True\nb = d.detach()\nb.requires_grad = True\n",
        "detach-clone": "a.requires_grad_(True)\nb = d.detach().clone().requires_grad_()\n",
        "clone-detach": "a.requires_grad_()\nb = d.clone().detach().requires_grad_(True)\n",
        "new-tensor": "import torch\na.requires_grad_()\nb = torch.tensor(d.tolist(), requires_grad=True)\n",
    },
    "retain-nonleaf-grad": {
        "retain-first": "import torch\nx = torch.tensor([1.0, 2.0], requires_grad=True)\nh = x * 2\nh.retain_grad()\n"
                        "out = (h ** 2).sum()\nout.backward()\n",
        "retain-before-backward": "import torch\nx = torch.tensor([1.0, 2.0], requires_grad=True)\n"
                                  "h = torch.mul(x, 2)\nout = h.pow(2).sum()\nh.retain_grad()\n"
                                  "torch.autograd.backward(out)\n",
        "requires-grad-underscore": "import torch\nx = torch.tensor([1.0, 2.0]).requires_grad_()\nh = x * 2\n"
                                    "h.retain_grad()\nout = (h * h).sum()\nout.backward(torch.ones_like(out))\n",
    },
    "autograd-grad": {
        "unpack": "import torch\nx = torch.tensor(0.5, requires_grad=True)\ny = torch.sin(x) * x\n"
                  "(g,) = torch.autograd.grad(y, x)\n",
        "index": "import torch\nx = torch.tensor(0.5, requires_grad=True)\ny = torch.sin(x) * x\n"
                 "g = torch.autograd.grad(y, x)[0]\n",
        "keywords-and-list": "import torch\nx = torch.tensor(0.5, requires_grad=True)\ny = x.sin() * x\n"
                             "g, = torch.autograd.grad(outputs=[y], inputs=[x])\n",
        "create-graph": "import torch\nx = torch.tensor(0.5, requires_grad=True)\ny = torch.sin(x) * x\n"
                        "g = torch.autograd.grad(y, x, create_graph=True)[0]\n",
    },
    "vector-grad": {
        "sum": "import torch\nx = torch.tensor([2.0, 3.0], requires_grad=True)\nbefore = x.grad\n"
               "y = x**2 + 3*x + 1\ny.sum().backward()\n",
        "ones-like": "import torch\nx = torch.tensor([2.0, 3.0], requires_grad=True)\ny = x**2 + 3*x + 1\n"
                     "before = x.grad\ny.backward(torch.ones_like(y))\n",
        "gradient-keyword": "import torch\nx = torch.tensor([2.0, 3.0]).requires_grad_()\nbefore = None\n"
                            "y = x**2 + 3*x + 1\ny.backward(gradient=torch.ones(2))\n",
        "autograd-backward": "import torch\nx = torch.tensor([2.0, 3.0], requires_grad=True)\ny = x**2 + 3*x + 1\n"
                             "before = x.grad\ntorch.autograd.backward(y, torch.ones_like(y))\n",
    },
    "stop-tracking": {
        "no-grad": "import torch\nx = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\nwith torch.no_grad():\n"
                   "    y = x * 2\nz = x.detach()\n",
        "set-grad-enabled-block": "import torch\nx = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\n"
                                  "with torch.set_grad_enabled(False):\n    y = x * 2\nz = x.detach().clone()\n",
        "switched-back-on": "import torch\nx = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\n"
                            "torch.set_grad_enabled(False)\ny = x * 2\ntorch.set_grad_enabled(True)\nz = x.detach()\n",
        "decorator": "import torch\nx = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\n@torch.no_grad()\n"
                     "def double(t):\n    return t * 2\ny = double(x)\nz = x.detach()\n",
    },
    "accumulate-and-clear": {
        "retain-graph-zero": "import torch\nx = torch.tensor(1.0, requires_grad=True)\ny = 3 * x\n"
                             "y.backward(retain_graph=True)\ny.backward(retain_graph=True)\nacc = x.grad.item()\n"
                             "x.grad.zero_()\ny.backward()\n",
        "set-none": "import torch\nx = torch.tensor(1.0, requires_grad=True)\ny = 3 * x\n"
                    "y.backward(retain_graph=True)\ny.backward(retain_graph=True)\nacc = float(x.grad)\n"
                    "x.grad = None\ny.backward()\n",
        "rebuild-graph": "import torch\nx = torch.tensor(1.0, requires_grad=True)\nfor _ in range(2):\n"
                         "    y = 3 * x\n    y.backward()\nacc = x.grad.item()\nx.grad.zero_()\ny = 3 * x\n"
                         "y.backward()\n",
    },
    "freeze-layer": {
        "loop": "for p in model[0].parameters():\n    p.requires_grad_(False)\n"
                "loss = model(inputs).pow(2).mean()\nloss.backward()\n",
        "module": "model[0].requires_grad_(False)\nloss = model(inputs).pow(2).mean()\nloss.backward()\n",
        "attribute": "for p in model[0].parameters():\n    p.requires_grad = False\n"
                     "loss = model(inputs).pow(2).mean()\nimport torch\ntorch.autograd.backward(loss)\n",
        "each-parameter": "model[0].weight.requires_grad_(False)\nmodel[0].bias.requires_grad_(False)\n"
                          "out = model(inputs)\nloss = (out ** 2).mean()\nloss.backward()\n",
    },
    "multivariable-grad": {
        "requires-grad": "import torch\nx = torch.tensor(3.0, requires_grad=True)\n"
                         "y = torch.tensor(4.0, requires_grad=True)\nf = x**2 + y**2\nf.backward()\n",
        "requires-grad-underscore": "import torch\nx = torch.tensor(3.0).requires_grad_()\n"
                                    "y = torch.tensor(4.0).requires_grad_()\nf = x*x + y*y\n"
                                    "torch.autograd.backward(f)\n",
        "ones-like": "import torch\nx, y = (torch.tensor(v, requires_grad=True) for v in (3.0, 4.0))\n"
                     "f = x.pow(2) + y.pow(2)\nf.backward(torch.ones_like(f))\n",
    },
}


@pytest.mark.parametrize("slug, code", [
    pytest.param(slug, code, id=f"{slug}-{variant}") for slug, variants in CORRECT.items()
    for variant, code in variants.items()
])
def test_correct_variant_passes(seed: SeedGrader, slug: str, code: str) -> None:
    g = seed.grade(slug, code)
    assert g.status == "passed", describe(g)
    assert g.score == 1.0 and all(c.passed and c.message == "" for c in g.checks), describe(g)
    assert g.error is None


def test_every_item_has_several_correct_variants() -> None:
    assert sorted(CORRECT) == sorted(SEED_SLUGS)
    assert all(len(variants) >= 3 for variants in CORRECT.values())


# -- typical mistakes ------------------------------------------------------------------------
@dataclass(frozen=True)
class Mistake:
    slug: str
    id: str
    code: str
    failing: tuple[str, ...]  # labels of the checks that must fail, in order
    score: float
    fragments: tuple[str, ...]  # in the message of the first failing check


MISTAKES = [
    # grad-of-polynomial: checks x.grad, x.requires_grad, y.requires_grad
    Mistake("grad-of-polynomial", "no-backward",
            "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\n",
            ("x.grad", "x.grad by autograd"), 3 / 5, ("x.grad is None", "did you call backward()")),
    Mistake("grad-of-polynomial", "backward-twice",
            "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\n"
            "y.backward(retain_graph=True)\ny.backward()\n",
            ("x.grad",), 4 / 5, ("x.grad is 14.0, expected 7.0", "2×", "accumulate")),
    Mistake("grad-of-polynomial", "wrong-function",
            "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 2*x + 1\ny.backward()\n",
            ("x.grad",), 4 / 5, ("x.grad is 6.0, expected 7.0",)),
    Mistake("grad-of-polynomial", "not-tracking",
            "import torch\nx = torch.tensor(2.0)\ny = x**2 + 3*x + 1\n",
            ("x.grad", "x.requires_grad", "y.requires_grad", "x.grad by autograd", "y's graph"), 0.0,
            ("does not track gradients", "requires_grad=True")),
    Mistake("grad-of-polynomial", "y-as-python-number",
            "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\ny.backward()\ny = y.item()\n",
            ("y.requires_grad", "x.grad by autograd", "y's graph"), 2 / 5,
            ("could not be read", "`y` is a float, not a tensor")),
    # zero-grad: checks g, x.grad
    Mistake("zero-grad", "grad-without-item",
            "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\ny.backward()\n"
            "g = x.grad\nx.grad.zero_()\n",
            ("g",), 3 / 4, ("g is a tensor (0.0), expected a Python number 7.0", "x.grad.item()", "shares memory")),
    Mistake("zero-grad", "set-to-none",
            "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\ny.backward()\n"
            "g = x.grad.item()\nx.grad = None\n",
            ("x.grad", "x.grad zeroed in place"), 2 / 4, ("x.grad is None", "x.grad.zero_()", "must remain a tensor")),
    Mistake("zero-grad", "zeroed-before-reading",
            "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\ny.backward()\n"
            "x.grad.zero_()\ng = x.grad.item()\n",
            ("g",), 3 / 4, ("g is 0.0, expected 7.0", "before zeroing")),
    # enable-tracking: checks a.requires_grad, a.is_leaf, b, b.requires_grad, b.is_leaf
    Mistake("enable-tracking", "detach-only",
            "a.requires_grad_()\nb = d.detach()\n",
            ("b.requires_grad",), 6 / 7, ("b.requires_grad is False, expected True", "switch it on for that copy")),
    Mistake("enable-tracking", "clone-keeps-history",
            "a.requires_grad_()\nb = d.clone()\n",
            ("b.is_leaf",), 6 / 7, ("b.is_leaf is False, expected True", "d.detach()")),
    Mistake("enable-tracking", "a-replaced-by-an-operation",
            "a.requires_grad_()\na = a * 1\nb = d.detach().requires_grad_(True)\n",
            ("a.is_leaf", "a changed in place"), 5 / 7, ("a.is_leaf is False, expected True", "in place")),
    Mistake("enable-tracking", "nothing-tracked",
            "b = d.detach()\n",
            ("a.requires_grad", "b.requires_grad"), 5 / 7, ("a.requires_grad is False", "The setup made `a`")),
    # retain-nonleaf-grad: checks h.grad, x.grad, h.is_leaf
    Mistake("retain-nonleaf-grad", "no-retain-grad",
            "import torch\nx = torch.tensor([1.0, 2.0], requires_grad=True)\nh = x * 2\nout = (h * h).sum()\n"
            "out.backward()\n",
            ("h.grad", "h.grad by autograd"), 4 / 6, ("h.grad is None", "not a leaf", "h.retain_grad()")),
    Mistake("retain-nonleaf-grad", "retain-grad-too-late",
            "import torch\nx = torch.tensor([1.0, 2.0], requires_grad=True)\nh = x * 2\nout = (h ** 2).sum()\n"
            "out.backward()\nh.retain_grad()\n",
            ("h.grad", "h.grad by autograd"), 4 / 6, ("h.grad is None", "was called, but no backward() ran through `h` afterwards")),
    Mistake("retain-nonleaf-grad", "h-detached",
            "import torch\nx = torch.tensor([1.0, 2.0], requires_grad=True)\nh = (x * 2).detach().requires_grad_()\n"
            "out = (h ** 2).sum()\nout.backward()\n",
            ("x.grad", "h.is_leaf", "x.grad by autograd", "out's graph"), 2 / 6, ("x.grad is None",)),
    # autograd-grad: checks g, x.grad
    Mistake("autograd-grad", "tuple-not-unpacked",
            "import torch\nx = torch.tensor(0.5, requires_grad=True)\ny = torch.sin(x) * x\n"
            "g = torch.autograd.grad(y, x)\n",
            ("g", "g by autograd"), 2 / 4, ("g is a tuple of 1 item, not a tensor", "tuple that torch.autograd.grad returns",
                            "first element")),
    Mistake("autograd-grad", "backward-instead",
            "import torch\nx = torch.tensor(0.5, requires_grad=True)\ny = torch.sin(x) * x\ny.backward()\n"
            "g = x.grad\n",
            ("x.grad", "calls autograd.grad"), 2 / 4, ("x.grad should be None", "don't call `y.backward()`")),
    Mistake("autograd-grad", "wrong-function",
            "import torch\nx = torch.tensor(0.5, requires_grad=True)\ny = torch.sin(x)\n"
            "(g,) = torch.autograd.grad(y, x)\n",
            ("g",), 3 / 4, ("g is 0.877583, expected 0.918217",)),
    # vector-grad: checks before, x.grad
    Mistake("vector-grad", "mean-instead-of-sum",
            "import torch\nx = torch.tensor([2.0, 3.0], requires_grad=True)\nbefore = x.grad\ny = x**2 + 3*x + 1\n"
            "y.mean().backward()\n",
            ("x.grad",), 3 / 4, ("tensor([3.5, 4.5]), expected tensor([7.0, 9.0])", "1/2", "mean()", "sum()")),
    Mistake("vector-grad", "backward-twice",
            "import torch\nx = torch.tensor([2.0, 3.0], requires_grad=True)\nbefore = x.grad\nfor _ in range(2):\n"
            "    y = x**2 + 3*x + 1\n    y.sum().backward()\n",
            ("x.grad",), 3 / 4, ("tensor([14.0, 18.0])", "accumulate")),
    Mistake("vector-grad", "not-tracking",
            "import torch\nx = torch.tensor([2.0, 3.0])\nbefore = x.grad\ny = x**2 + 3*x + 1\n",
            ("x.grad", "x.grad by autograd", "y's graph"), 1 / 4, ("does not track gradients",)),
    Mistake("vector-grad", "read-after-backward",
            "import torch\nx = torch.tensor([2.0, 3.0], requires_grad=True)\ny = x**2 + 3*x + 1\n"
            "y.sum().backward()\nbefore = x.grad\n",
            ("before",), 3 / 4, ("before should be None", "no backward pass has reached")),
    # stop-tracking: checks y, y.requires_grad, z.requires_grad, x.requires_grad, torch.is_grad_enabled()
    Mistake("stop-tracking", "grad-left-disabled",
            "import torch\nx = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\ntorch.set_grad_enabled(False)\n"
            "y = x * 2\nz = x.detach()\n",
            ("torch.is_grad_enabled()",), 6 / 7, ("is False, expected True", "switched off", "no_grad()")),
    Mistake("stop-tracking", "x-switched-off",
            "import torch\nx = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\nwith torch.no_grad():\n"
            "    y = x * 2\nx.requires_grad = False\nz = x\n",
            ("x.requires_grad",), 6 / 7, ("x.requires_grad is False, expected True", "Leave `x` alone")),
    Mistake("stop-tracking", "no-context-manager",
            "import torch\nx = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\ny = x * 2\nz = x.detach()\n",
            ("y.requires_grad",), 6 / 7, ("y.requires_grad is True, expected False", "torch.no_grad()")),
    # accumulate-and-clear: checks acc, x.grad
    Mistake("accumulate-and-clear", "acc-is-the-grad-tensor",
            "import torch\nx = torch.tensor(1.0, requires_grad=True)\ny = 3 * x\ny.backward(retain_graph=True)\n"
            "y.backward(retain_graph=True)\nacc = x.grad\nx.grad.zero_()\ny.backward()\n",
            ("acc",), 4 / 5, ("acc is a tensor (3.0), expected a Python number 6.0", "x.grad.item()", "*before* clearing")),
    Mistake("accumulate-and-clear", "not-cleared",
            "import torch\nx = torch.tensor(1.0, requires_grad=True)\ny = 3 * x\ny.backward(retain_graph=True)\n"
            "y.backward(retain_graph=True)\nacc = x.grad.item()\ny.backward()\n",
            ("x.grad",), 4 / 5, ("x.grad is 9.0, expected 3.0", "3×", "accumulate")),
    Mistake("accumulate-and-clear", "no-backward-after-clearing",
            "import torch\nx = torch.tensor(1.0, requires_grad=True)\ny = 3 * x\ny.backward(retain_graph=True)\n"
            "y.backward(retain_graph=True)\nacc = x.grad.item()\nx.grad = None\n",
            ("x.grad", "x.grad by autograd"), 3 / 5, ("x.grad is None", "backpropagate exactly once more")),
    # freeze-layer: checks model[0].weight.requires_grad, model[0].weight.grad, model[0].bias.grad,
    # model[2].weight.grad, model[2].bias.grad
    Mistake("freeze-layer", "weight-only",
            "model[0].weight.requires_grad_(False)\nloss = model(inputs).pow(2).mean()\nloss.backward()\n",
            ("model[0].bias.grad", "loss's graph"), 8 / 10, ("should be None", "The bias is a parameter too", "not just the weight")),
    Mistake("freeze-layer", "no-grad-forward-instead",
            "import torch\nwith torch.no_grad():\n    h = model[0](inputs)\n"
            "loss = model[2](model[1](h)).pow(2).mean()\nloss.backward()\n",
            ("model[0].weight.requires_grad",), 9 / 10, ("is True, expected False", "leaves the parameters trainable")),
    Mistake("freeze-layer", "no-backward",
            "model[0].requires_grad_(False)\nloss = model(inputs).pow(2).mean()\n",
            ("model[2].weight.grad", "model[2].bias.grad", "model[2].weight.grad by autograd", "model[2].bias.grad by autograd"), 6 / 10, ("is None", "did you call backward()")),
    Mistake("freeze-layer", "sum-instead-of-mean",
            "model[0].requires_grad_(False)\nloss = model(inputs).pow(2).sum()\nloss.backward()\n",
            ("model[2].weight.grad", "model[2].bias.grad", "loss's graph"), 7 / 10, ("expected a [1, 4] tensor", "pow(2).mean()")),
    # multivariable-grad: checks x.grad, y.grad
    Mistake("multivariable-grad", "only-y-tracks",
            "import torch\nx = torch.tensor(3.0)\ny = torch.tensor(4.0, requires_grad=True)\nf = x**2 + y**2\n"
            "f.backward()\n",
            ("x.grad", "x.grad by autograd", "f's graph"), 2 / 5, ("x.grad is None", "`x` does not track gradients")),
    Mistake("multivariable-grad", "values-swapped",
            "import torch\nx = torch.tensor(4.0, requires_grad=True)\ny = torch.tensor(3.0, requires_grad=True)\n"
            "f = x**2 + y**2\nf.backward()\n",
            ("x.grad", "y.grad"), 3 / 5, ("x.grad is 8.0, expected 6.0",)),
    Mistake("multivariable-grad", "no-backward",
            "import torch\nx = torch.tensor(3.0, requires_grad=True)\ny = torch.tensor(4.0, requires_grad=True)\n"
            "f = x**2 + y**2\n",
            ("x.grad", "y.grad", "x.grad by autograd", "y.grad by autograd"), 1 / 5, ("did you call backward()",)),
]


@pytest.mark.parametrize("mistake", [pytest.param(m, id=f"{m.slug}-{m.id}") for m in MISTAKES])
def test_typical_mistake_fails_with_a_teaching_message(seed: SeedGrader, mistake: Mistake) -> None:
    g = seed.grade(mistake.slug, mistake.code)
    assert g.status == "failed", describe(g)
    failing = tuple(c.name for c in g.checks if not c.passed)
    assert failing == mistake.failing, describe(g)
    assert g.score == pytest.approx(mistake.score, abs=1e-6), describe(g)
    # Feedback comes from YAML blocks: compare with line breaks read as spaces.
    message = " ".join(next(c.message for c in g.checks if not c.passed).split())
    for fragment in mistake.fragments:
        assert fragment in message, f"{fragment!r} not in the message {message!r}"
    assert all(c.message == "" for c in g.checks if c.passed)


def test_every_item_has_typical_mistakes() -> None:
    assert {m.slug for m in MISTAKES} == set(SEED_SLUGS)
    assert len({(m.slug, m.id) for m in MISTAKES}) == len(MISTAKES)


def test_vector_backward_without_reduction_is_an_error(seed: SeedGrader) -> None:
    code = "import torch\nx = torch.tensor([2.0, 3.0], requires_grad=True)\ny = x**2 + 3*x + 1\ny.backward()\n"
    g = seed.grade("vector-grad", code)
    assert g.status == "error", describe(g)
    assert "grad can be implicitly created only for scalar outputs" in (g.error or "")
    assert g.error_line == 4 and g.checks == [] and g.score == 0.0


def test_backward_through_a_freed_graph_is_an_error(seed: SeedGrader) -> None:
    code = ("import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\ny.backward()\n"
            "y.backward()\n")
    g = seed.grade("grad-of-polynomial", code)
    assert g.status == "error", describe(g)
    assert "Trying to backward through the graph a second time" in (g.error or ""), describe(g)
    assert g.error_line == 5 and g.checks == []


def test_syntax_error_points_at_the_line(seed: SeedGrader) -> None:
    g = seed.grade("grad-of-polynomial", "import torch\nx = torch.tensor(2.0, requires_grad=True\ny = x\n")
    assert g.status == "error", describe(g)
    assert g.error_line is not None and g.error_line in (2, 3), describe(g)
    assert g.checks == []


def test_the_graders_own_warnings_stay_out_of_the_learners_output(sandbox: Sandbox) -> None:
    """Reading .grad of a non-leaf makes torch warn. When a check's expression reads it (on the learner's
    thread), the warning is the grader's and must not show as the learner's output; when the learner's own
    code reads it, the warning is theirs and is shown."""
    checks = [Check(target="h.grad is None", compare="bool")]
    solution = "import torch\nx = torch.tensor([1.0, 2.0], requires_grad=True)\nh = x * 2\n(h ** 2).sum().backward()\n"
    reference = observe_reference(sandbox, solution=solution, setup="", checks=checks, limits=Limits())

    def grade(code: str) -> Grade:
        return grade_code(sandbox, code=code, setup="", checks=checks, reference=reference, limits=Limits(),
                          reveal_expected=True)

    quiet = grade(solution)
    assert quiet.status == "passed" and quiet.stdout == ""
    own = grade(solution + "print(h.grad)\n")
    assert own.status == "passed" and "UserWarning" in own.stdout and "None" in own.stdout
    assert "<check>" not in own.stdout and own.stdout.count("UserWarning") == 1


# -- messages say each thing once -------------------------------------------------------------
def shared_phrases(automatic: str, authored: str, length: int = 4) -> set[str]:
    """Runs of `length` words that the authored feedback repeats from the grader's automatic message."""
    def runs(text: str) -> set[str]:
        words = [w.strip(".") for w in re.findall(r"[a-z0-9_.\[\]]+(?:\(\))?", text.lower().replace("`", ""))]
        return {" ".join(words[i:i + length]) for i in range(len(words) - length + 1)}
    return runs(automatic) & runs(authored)


def expected_values(automatic: str) -> list[str]:
    """The expected values an automatic message shows ("expected 7.0", "expected tensor([7.0, 9.0])")."""
    return re.findall(r"expected (?:a Python number )?(?:tensor\()?(\[[^\]]*\]|-?\d+(?:\.\d+)?)", automatic)


@pytest.mark.parametrize("mistake", [pytest.param(m, id=f"{m.slug}-{m.id}") for m in MISTAKES])
def test_authored_feedback_does_not_repeat_the_automatic_message(seed: SeedGrader, items: dict[str, ItemSpec],
                                                                 mistake: Mistake) -> None:
    """A failed check shows the grader's message, then the author's feedback: the feedback adds, never repeats
    (the same words, or the expected value the grader's message already shows)."""
    g = seed.grade(mistake.slug, mistake.code)
    authored = {check.label: " ".join(check.feedback.split()) for check in seed.seeded(mistake.slug).checks}
    for check in g.checks:
        feedback = authored.get(check.name, "")
        if check.passed or not feedback:
            continue
        message = " ".join(check.message.split())
        assert message.endswith(feedback), message
        automatic = message[: -len(feedback)]
        assert not shared_phrases(automatic, feedback), (check.name, shared_phrases(automatic, feedback), message)
        for value in expected_values(automatic):
            numbers = re.findall(r"-?\d+(?:\.\d+)?", value)
            assert not any(re.search(rf"(?<![\w.]){re.escape(n.rstrip('0').rstrip('.'))}(?:\.0*)?(?![\w.])", feedback)
                           for n in numbers if n.rstrip("0").rstrip(".") not in ("0", "1", "2")), (
                f"{check.name}: the feedback repeats the expected value {value}: {feedback!r}")
