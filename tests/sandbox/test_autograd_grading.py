"""A grade means autograd was used: answers worked out by hand fail with a message that teaches.

Every code item of the seed quiz is graded through the real sandbox with its
own reference, as test_seed_items.py does. Three groups:

* FAKED: answers whose values are right but were typed in, computed by hand,
  assigned to .grad, or taken from a re-created tensor; each must fail, on
  the named check, with the named words in its message;
* MORE_CORRECT: correct answers in yet other spellings (the issue's list among
  them); each must pass with a full score;
* NOTEBOOK: the notebook's own cells (../shared/seeds/autograd-qa-notebook.txt),
  as a learner would paste them; each must pass.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from .test_seed_items import SeedGrader, describe, items, seed  # noqa: F401 - fixtures

POLY = "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x ** 2 + 3 * x + 1\n"
SINX = "import torch\nx = torch.tensor(0.5, requires_grad=True)\ny = torch.sin(x) * x\n"
VEC = "import torch\nx = torch.tensor([2.0, 3.0], requires_grad=True)\nbefore = x.grad\ny = x ** 2 + 3 * x + 1\n"
RETAIN = "import torch\nx = torch.tensor([1.0, 2.0], requires_grad=True)\nh = x * 2\nout = (h ** 2).sum()\n"
STOP = "import torch\nx = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\n"
ACC = "import torch\nx = torch.tensor(1.0, requires_grad=True)\ny = 3 * x\n"
MULTI = "import torch\nx = torch.tensor(3.0, requires_grad=True)\ny = torch.tensor(4.0, requires_grad=True)\n" \
        "f = x ** 2 + y ** 2\n"


@dataclass(frozen=True)
class Faked:
    slug: str
    id: str
    code: str
    check: str  # the label of a check that must fail
    fragments: tuple[str, ...]  # in its message


FAKED = [
    # The issue's own list
    Faked("grad-of-polynomial", "grad-assigned", POLY + "x.grad = torch.tensor(7.0)\n",
          "x.grad by autograd", ("was set by hand", "let backward() compute it")),
    Faked("autograd-grad", "derivative-by-hand", SINX + "g = torch.cos(x) * x + torch.sin(x)\n",
          "g by autograd", ("not computed by autograd", "torch.autograd.grad")),
    Faked("stop-tracking", "fresh-tensors", STOP + "y = torch.tensor([2.0, 4.0, 6.0])\nz = torch.tensor([1.0, 2.0, 3.0])\n",
          "y from x", ("was not computed from `x`", "instead of typing its values in")),
    Faked("enable-tracking", "b-typed-in", "a.requires_grad_()\nb = torch.tensor([3.0, 6.0], requires_grad=True)\n",
          "b from d", ("was not computed from `d`",)),
    Faked("freeze-layer", "chain-rule-by-hand",
          "model[0].requires_grad_(False)\nwith torch.no_grad():\n    h = torch.relu(model[0](inputs))\n"
          "    out = model[2](h)\n    g = 2 * out / out.numel()\n"
          "model[2].weight.grad = (g.T @ h).clone()\nmodel[2].bias.grad = g.sum(0)\n"
          "loss = model(inputs).pow(2).mean()\n",
          "model[2].weight.grad by autograd", ("was set by hand",)),
    # More of the same, across the items
    Faked("grad-of-polynomial", "grad-assigned-after-backward", POLY + "y.backward()\nx.grad = torch.tensor(7.0)\n",
          "x.grad by autograd", ("was set by hand",)),
    Faked("grad-of-polynomial", "grad-overwritten-in-place", POLY + "(x * 0).backward()\nx.grad.fill_(7.0)\n",
          "x.grad by autograd", ("was changed after autograd wrote it",)),
    Faked("grad-of-polynomial", "grad-overwritten-through-data", POLY + "(x * 0).backward()\nx.grad.data.copy_(torch.tensor(7.0))\n",
          "x.grad by autograd", ("was changed after autograd wrote it",)),
    Faked("grad-of-polynomial", "y-typed-in", "import torch\nx = torch.tensor(2.0, requires_grad=True)\n"
          "y = torch.tensor(11.0, requires_grad=True)\ny.backward()\nx.grad = torch.tensor(7.0)\n",
          "y's graph", ("has no autograd graph",)),
    Faked("zero-grad", "g-typed-in", POLY + "y.backward()\ng = 7.0\nx.grad.zero_()\n",
          "g by autograd", ("not computed by autograd",)),
    Faked("zero-grad", "fresh-zero-tensor", POLY + "y.backward()\ng = x.grad.item()\nx.grad = torch.zeros(())\n",
          "x.grad zeroed in place", ("was set by hand", "x.grad.zero_()")),
    Faked("zero-grad", "no-backward-at-all", POLY + "g = 2 * 2.0 + 3\nx.grad = torch.tensor(0.0)\n",
          "g by autograd", ("not computed by autograd",)),
    Faked("enable-tracking", "a-re-created", "a = torch.tensor([2.0, 3.0], requires_grad=True)\n"
          "b = d.detach().requires_grad_(True)\n",
          "a changed in place", ("was replaced by a new object", ".requires_grad_()")),
    Faked("enable-tracking", "b-from-c-by-hand", "a.requires_grad_()\nb = (c.detach() * 3).requires_grad_(True)\n",
          "b from d", ("was not computed from `d`",)),
    Faked("retain-nonleaf-grad", "h-grad-assigned", RETAIN + "h.retain_grad()\nout.backward()\n"
          "h.grad = torch.tensor([4.0, 8.0])\n", "h.grad by autograd", ("was set by hand",)),
    Faked("retain-nonleaf-grad", "both-grads-assigned", RETAIN + "h.retain_grad()\n"
          "h.grad = torch.tensor([4.0, 8.0])\nx.grad = torch.tensor([8.0, 16.0])\n",
          "x.grad by autograd", ("was set by hand",)),
    Faked("autograd-grad", "formula-as-tensor", SINX + "g = torch.tensor(0.9182)\n",
          "g by autograd", ("not computed by autograd",)),
    Faked("autograd-grad", "finite-difference", SINX + "eps = 1e-3\nwith torch.no_grad():\n"
          "    g = ((torch.sin(x + eps) * (x + eps)) - (torch.sin(x - eps) * (x - eps))) / (2 * eps)\n",
          "g by autograd", ("not computed by autograd",)),
    Faked("vector-grad", "grad-assigned", VEC + "x.grad = 2 * x.detach() + 3\n",
          "x.grad by autograd", ("was set by hand",)),
    Faked("vector-grad", "grad-as-new-tensor", VEC + "y.sum().backward()\nx.grad = torch.tensor([7.0, 9.0])\n",
          "x.grad by autograd", ("was set by hand",)),
    Faked("stop-tracking", "z-typed-in", STOP + "with torch.no_grad():\n    y = x * 2\nz = torch.tensor([1.0, 2.0, 3.0])\n",
          "z from x", ("was not computed from `x`", "x.detach()")),
    Faked("stop-tracking", "y-from-a-copy-typed-in", STOP + "x2 = torch.tensor([1.0, 2.0, 3.0])\n"
          "with torch.no_grad():\n    y = x2 * 2\nz = x.detach()\n", "y from x", ("was not computed from `x`",)),
    Faked("accumulate-and-clear", "acc-typed-in", ACC + "acc = 6.0\ny.backward()\n",
          "acc by autograd", ("not computed by autograd",)),
    Faked("accumulate-and-clear", "grad-assigned", ACC + "y.backward(retain_graph=True)\ny.backward(retain_graph=True)\n"
          "acc = x.grad.item()\nx.grad = torch.tensor(3.0)\n", "x.grad by autograd", ("was set by hand",)),
    Faked("multivariable-grad", "partials-by-hand", MULTI + "x.grad = 2 * x.detach()\ny.grad = 2 * y.detach()\n",
          "x.grad by autograd", ("was set by hand",)),
    Faked("multivariable-grad", "one-partial-by-hand", MULTI + "f.backward()\ny.grad = torch.tensor(8.0)\n",
          "y.grad by autograd", ("was set by hand",)),
    Faked("freeze-layer", "model-re-created", "import torch.nn as nn\ntorch.manual_seed(0)\n"
          "model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))\nmodel[0].requires_grad_(False)\n"
          "loss = model(inputs).pow(2).mean()\nloss.backward()\n",
          "model[0].weight changed in place", ("was replaced by a new object",)),
    Faked("freeze-layer", "loss-from-other-inputs", "model[0].requires_grad_(False)\n"
          "loss = model(torch.ones(5, 3)).pow(2).mean()\nloss.backward()\n",
          "loss from model, inputs", ("was not computed from `inputs`",)),
    # Autograd made the gradient, but of another expression: the slope worked out by hand and multiplied in. Each
    # builds the item's result right (its graph check passes) and must still fail "by autograd" (`from:`).
    Faked("grad-of-polynomial", "slope-times-x", POLY + "(7 * x).backward()\n",
          "x.grad by autograd", ("not by differentiating `y`", "call backward() on `y` itself")),
    Faked("grad-of-polynomial", "derivative-formula-times-x", POLY + "(x * (2 * x.detach() + 3)).backward()\n",
          "x.grad by autograd", ("not by differentiating `y`",)),
    Faked("grad-of-polynomial", "result-times-zero-plus-slope", POLY + "(y * 0 + 7 * x).backward()\n",
          "x.grad by autograd", ("not by differentiating `y`",)),
    Faked("grad-of-polynomial", "hook-returns-the-formula",
          POLY + "x.register_hook(lambda g: 2 * x.detach() + 3)\n(x * 1).backward()\n",
          "x.grad by autograd", ("not by differentiating `y`",)),
    Faked("grad-of-polynomial", "custom-function-with-a-hand-backward",
          POLY + "class F(torch.autograd.Function):\n    @staticmethod\n    def forward(ctx, a):\n"
          "        ctx.save_for_backward(a)\n        return a * 0 + 1\n    @staticmethod\n"
          "    def backward(ctx, g):\n        (a,) = ctx.saved_tensors\n        return g * (2 * a + 3)\n"
          "F.apply(x).backward()\n", "x.grad by autograd", ("not by differentiating `y`",)),
    Faked("grad-of-polynomial", "difference-quotient",
          POLY + "with torch.no_grad():\n"
          "    d = ((x + 1e-3) ** 2 + 3 * (x + 1e-3) - (x - 1e-3) ** 2 - 3 * (x - 1e-3)) / 2e-3\n"
          "(x * d).backward()\n", "x.grad by autograd", ("not by differentiating `y`",)),
    Faked("grad-of-polynomial", "zeroed-then-slope", POLY + "y.backward(retain_graph=True)\nx.grad.zero_()\n"
          "(7 * x).backward()\n", "x.grad by autograd", ("not by differentiating `y`",)),
    Faked("grad-of-polynomial", "slope-from-an-earlier-gradient", POLY + "y.backward(retain_graph=True)\n"
          "g = x.grad\nx.grad = None\n(x * (g * 0 + 7)).backward()\n",
          "x.grad by autograd", ("not by differentiating `y`",)),
    Faked("vector-grad", "slope-vector", VEC + "(x * torch.tensor([7.0, 9.0])).sum().backward()\n",
          "x.grad by autograd", ("not by differentiating `y`",)),
    Faked("multivariable-grad", "partials-times-inputs", MULTI + "(x * 6.0 + y * 8.0).backward()\n",
          "x.grad by autograd", ("not by differentiating `f`",)),
    Faked("accumulate-and-clear", "one-pass-doubled", ACC + "(2 * y).backward(retain_graph=True)\nacc = x.grad.item()\n"
          "x.grad.zero_()\ny.backward()\n", "acc by autograd", ("not by differentiating `y`",)),
    Faked("retain-nonleaf-grad", "slope-times-x", RETAIN + "h.retain_grad()\nout.backward(retain_graph=True)\n"
          "x.grad = None\n(x * torch.tensor([8.0, 16.0])).sum().backward()\n",
          "x.grad by autograd", ("not by differentiating `out`",)),
]


@pytest.mark.parametrize("case", FAKED, ids=lambda c: f"{c.slug}-{c.id}")
def test_an_answer_not_computed_by_autograd_fails_with_a_message_that_teaches(seed: SeedGrader, case: Faked) -> None:
    g = seed.grade(case.slug, case.code)
    assert g.status == "failed", describe(g)
    failed = {c.name: c.message for c in g.checks if not c.passed}
    assert case.check in failed, describe(g)
    for fragment in case.fragments:
        assert fragment in failed[case.check], describe(g)


def test_there_are_at_least_twenty_faked_answers_across_the_items() -> None:
    assert len(FAKED) >= 20
    assert len({c.slug for c in FAKED}) == 10


MORE_CORRECT: dict[str, dict[str, str]] = {
    "grad-of-polynomial": {
        "autograd-backward-list": POLY + "torch.autograd.backward([y])\n",
        "sum-then-backward": POLY + "y.sum().backward()\n",
        "backward-with-a-unit-gradient": POLY + "y.backward(torch.tensor(1.0))\n",
        "reordered-terms": "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = 1 + 3 * x + x ** 2\n"
                           "y.backward()\n",
    },
    "zero-grad": {
        "autograd-backward-and-zero": POLY + "torch.autograd.backward([y])\ng = x.grad.item()\nx.grad.zero_()\n",
    },
    "enable-tracking": {
        "no-grad-copy": "a.requires_grad_()\nwith torch.no_grad():\n    b = d * 1\nb.requires_grad_()\n",
        "through-numpy": "import torch\na.requires_grad_(True)\nb = torch.tensor(d.detach().numpy(), requires_grad=True)\n",
    },
    "retain-nonleaf-grad": {
        "autograd-backward-list": RETAIN.replace("out = ", "h.retain_grad()\nout = ") + "torch.autograd.backward([out])\n",
    },
    "autograd-grad": {
        "keyword-arguments": SINX + "g, = torch.autograd.grad(outputs=y, inputs=[x])\n",
        "imported-grad": "import torch\nfrom torch.autograd import grad\nx = torch.tensor(0.5, requires_grad=True)\n"
                         "y = torch.sin(x) * x\ng = grad(y, x)[0]\n",
    },
    "vector-grad": {
        "ones-like": VEC + "y.backward(torch.ones_like(y))\n",
        "autograd-backward-with-gradient": VEC + "torch.autograd.backward(y, torch.ones_like(y))\n",
    },
    "stop-tracking": {
        "inference-mode": STOP + "with torch.inference_mode():\n    y = x * 2\nz = x.detach()\n",
        "data-copy": STOP + "with torch.no_grad():\n    y = torch.mul(x, 2)\nz = x.detach().clone()\n",
    },
    "accumulate-and-clear": {
        "set-to-none-then-backward": ACC + "y.backward(retain_graph=True)\ny.backward(retain_graph=True)\n"
                                     "acc = x.grad.item()\nx.grad = None\ny.backward()\n",
        "autograd-backward": ACC + "torch.autograd.backward(y, retain_graph=True)\ntorch.autograd.backward(y, "
                             "retain_graph=True)\nacc = float(x.grad)\nx.grad.zero_()\ntorch.autograd.backward(y)\n",
    },
    "freeze-layer": {
        "module-then-autograd-backward": "model[0].requires_grad_(False)\nloss = model(inputs).pow(2).mean()\n"
                                         "torch.autograd.backward([loss])\n",
        "parameters-attribute": "for p in model[0].parameters():\n    p.requires_grad = False\n"
                                "loss = (model(inputs) ** 2).mean()\nloss.backward()\n",
    },
    "multivariable-grad": {
        "autograd-backward": MULTI + "torch.autograd.backward([f])\n",
        "pow-function": "import torch\nx = torch.tensor(3.0, requires_grad=True)\ny = torch.tensor(4.0, requires_grad=True)\n"
                        "f = torch.pow(y, 2) + torch.pow(x, 2)\nf.backward()\n",
    },
}


@pytest.mark.parametrize("slug, code", [
    pytest.param(slug, code, id=f"{slug}-{variant}") for slug, variants in MORE_CORRECT.items()
    for variant, code in variants.items()
])
def test_another_correct_spelling_passes(seed: SeedGrader, slug: str, code: str) -> None:
    g = seed.grade(slug, code)
    assert (g.status, g.score) == ("passed", 1.0), describe(g)


def test_with_the_seed_variants_there_are_at_least_thirty_correct_answers() -> None:
    from .test_seed_items import CORRECT

    assert sum(map(len, CORRECT.values())) + sum(map(len, MORE_CORRECT.values())) >= 30


# The notebook's cells, verbatim (print calls included), for the items built from them. vector-grad asks for one
# line more than its cell (what `x.grad` holds before the backward pass, the point of its question): `before`.
NOTEBOOK = {
    "grad-of-polynomial": "import torch\n# Create a tensor with requires_grad set to True\n"
                          "x = torch.tensor(2.0, requires_grad=True)\ny = x ** 2 + 3 * x + 1  # Define a function of x\n\n"
                          "# Perform backpropagation to compute the gradient\ny.backward()\n\n"
                          "# Access the gradient\nprint(x.grad)  # Outputs: tensor(7.)\n",
    "vector-grad": "import torch\nx = torch.tensor([2.0, 3.0], requires_grad=True)\nbefore = x.grad\n\n# Define a function of x\n"
                   "y = x ** 2 + 3 * x + 1  # Some computation\n\n# Compute gradients\n"
                   "y.sum().backward()  # Sum to make it scalar, then backpropagate\n\n"
                   "# Access and print the gradients\nprint(x.grad)  # Outputs the gradient of y with respect to x\n",
    "stop-tracking": "import torch\n# Using torch.no_grad()\nx = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\n"
                     "with torch.no_grad():\n    y = x * 2  # No gradients will be calculated for y\n"
                     "print(y.requires_grad)  # Outputs: False\n# Using .detach()\n"
                     "z = x.detach()  # Creates a new tensor without gradient tracking\n"
                     "print(z.requires_grad)  # Outputs: False\n",
    "multivariable-grad": "import torch\n# Step 1: Define the variables with requires_grad=True\n"
                          "x = torch.tensor(3.0, requires_grad=True)  # Variable x\n"
                          "y = torch.tensor(4.0, requires_grad=True)  # Variable y\n\n# Step 2: Define the function\n"
                          "f = x**2 + y**2  # f(x, y) = x^2 + y^2\n\n# Step 3: Compute the gradients\n"
                          "f.backward()  # Perform backpropagation to compute gradients\n\n# Step 4: Access the gradients\n"
                          "print(f\"Gradient with respect to x: {x.grad}\")  # ∂f/∂x\n",
}


@pytest.mark.parametrize("slug", sorted(NOTEBOOK))
def test_the_notebooks_own_cells_still_pass(seed: SeedGrader, slug: str) -> None:
    g = seed.grade(slug, NOTEBOOK[slug])
    assert (g.status, g.score) == ("passed", 1.0), describe(g)


# -- the hidden re-run ----------------------------------------------------------------------------
HIDDEN_SLUGS = ("enable-tracking", "freeze-layer")


@pytest.mark.parametrize("slug", HIDDEN_SLUGS)
def test_items_with_given_inputs_have_a_hidden_draw_with_other_values(seed: SeedGrader, slug: str) -> None:
    seeded = seed.seeded(slug)
    assert seeded.hidden is not None
    visible = [o.get("values") for o in seeded.reference if o["kind"] == "tensor"]
    hidden = [o.get("values") for o in seeded.hidden.reference if o["kind"] == "tensor"]
    assert visible != hidden, "the hidden draw must hold other numbers"


@pytest.mark.parametrize("slug, code, check", [
    ("enable-tracking", "a.requires_grad_()\nb = torch.tensor([3.0, 6.0], requires_grad=True)\n", "b"),
    ("freeze-layer", "model[0].requires_grad_(False)\nloss = model(inputs).pow(2).mean()\nloss.backward()\n"
     "with torch.no_grad():\n    model[2].bias.grad.copy_(torch.tensor([0.22139397]))\n", "model[2].bias.grad"),
])
def test_numbers_typed_in_for_the_shown_values_fail_on_the_hidden_draw(seed: SeedGrader, slug: str, code: str,
                                                                        check: str) -> None:
    g = seed.grade(slug, code)
    assert g.status == "failed", describe(g)
    result = next(c for c in g.checks if c.name == check)
    assert not result.passed and "right for the values shown, but not when the given tensors hold other values" in (
        result.message), describe(g)
    assert "expected" not in result.message  # the hidden draw's values are never shown


def test_code_that_breaks_only_on_the_hidden_draw_says_so(seed: SeedGrader) -> None:
    code = ("a.requires_grad_()\nb = d.detach().requires_grad_(True)\n"
            "if float(a[0]) != 2.0:\n    raise ValueError('tuned to the shown values')\n")
    g = seed.grade("enable-tracking", code)
    assert g.status == "failed" and g.score == 0.0, describe(g)
    assert "with other values in the given tensors your code stopped: ValueError: tuned to the shown values" in (
        g.checks[0].message)


def test_big_intermediate_results_end_the_trace_instead_of_the_memory_budget(seed: SeedGrader) -> None:
    """The records keep every result alive; past their budget the lineage is incomplete, and the learner is told."""
    code = (POLY + "y.backward()\nfor _ in range(12):\n    big = torch.ones(1024, 1024) * 2\n")
    g = seed.grade("grad-of-polynomial", code)
    assert g.status == "failed", describe(g)
    traced = next(c for c in g.checks if c.name == "x.grad by autograd")
    assert not traced.passed and "more tensor operations, or bigger results, than the grader can trace" in traced.message
    assert next(c for c in g.checks if c.name == "x.grad").passed
