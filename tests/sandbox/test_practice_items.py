"""The second quiz, autograd-in-practice: every item has variants; each draw grades as the product grades it.

Items are read with the content parser, rendered for a draw of their
parameters (quiz/variants.py), and graded through the real sandbox against the
reference for that draw, with the hidden re-run on another draw, as
grader.services.code_grade does. For several draws per item: the reference
solution passes, the starter (one token added) does not, and answers computed
by hand fail with a message that teaches.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from grader.sandbox import Grade, HiddenRun, Limits, Sandbox, grade_code, observe_reference
from quiz import variants
from quiz.content_format import ItemSpec, load_file

from .test_seed_items import describe, infer_compare, shared_phrases

PRACTICE = Path(__file__).resolve().parents[2] / "quiz" / "content" / "autograd-in-practice.yaml"
SLUGS = ("training-step", "gradient-accumulation", "custom-function", "hook-clip", "second-derivative",
         "inplace-error", "retain-graph", "detach-target", "freeze-submodule")
DRAWS = ("defaults", "learner-1", "learner-2")


class PracticeGrader:
    def __init__(self, sandbox: Sandbox, items: dict[str, ItemSpec]) -> None:
        self.sandbox, self.items = sandbox, items
        self._cache: dict[tuple[str, str], tuple[Any, ...]] = {}

    def values(self, slug: str, draw: str) -> dict[str, Any]:
        spec = self.items[slug].params
        return variants.defaults(spec) if draw == "defaults" else variants.draw(spec, f"test:{slug}:{draw}")

    def prepared(self, slug: str, draw: str) -> tuple[Any, ...]:
        if (slug, draw) not in self._cache:
            item, values = self.items[slug], self.values(slug, draw)
            limits = Limits(cpu_seconds=item.time_seconds, memory_mb=item.memory_mb)
            probing = [c.to_sandbox(c.compare or "value") for c in item.checks]
            setup, solution = variants.render(item.setup, values), variants.render(item.solution, values)
            reference = observe_reference(self.sandbox, solution=solution, setup=setup, checks=probing, limits=limits)
            checks = [c.to_sandbox(infer_compare(c, o)) for c, o in zip(item.checks, reference, strict=True)]
            hidden = None
            if item.hidden_rerun:
                unseen = variants.unseen(item.params, [item.prompt, item.starter, *item.hints])
                other = variants.other_draw(item.params, f"hidden:{slug}:{variants.key(values)}", values, unseen)
                assert other != values
                hidden_setup = variants.render(item.setup, other)
                hidden = HiddenRun(hidden_setup, observe_reference(
                    self.sandbox, solution=variants.render(item.solution, other), setup=hidden_setup, checks=checks,
                    limits=limits))
            self._cache[(slug, draw)] = (values, setup, checks, reference, hidden, limits)
        return self._cache[(slug, draw)]

    def grade(self, slug: str, draw: str, code: str) -> Grade:
        values, setup, checks, reference, hidden, limits = self.prepared(slug, draw)
        item = self.items[slug]
        return grade_code(self.sandbox, code=variants.render(code, values), setup=setup, checks=checks,
                          reference=reference, limits=limits, reveal_expected=item.reveal_expected,
                          starter=variants.render(item.starter, values), hidden=hidden)


@pytest.fixture(scope="module")
def practice(sandbox: Sandbox) -> PracticeGrader:
    quiz = load_file(PRACTICE)
    return PracticeGrader(sandbox, {i.slug: i for i in quiz.items})


def test_the_quiz_has_at_least_eight_code_items_all_with_variants() -> None:
    items = load_file(PRACTICE).items
    assert [i.slug for i in items] == list(SLUGS)
    assert all(i.kind == "code" and i.params for i in items)
    assert sum(i.hidden_rerun for i in items) >= 8


@pytest.mark.parametrize("draw", DRAWS)
@pytest.mark.parametrize("slug", SLUGS)
def test_the_reference_passes_on_every_draw(practice: PracticeGrader, slug: str, draw: str) -> None:
    g = practice.grade(slug, draw, practice.items[slug].solution)
    assert (g.status, g.score) == ("passed", 1.0), describe(g)


@pytest.mark.parametrize("slug", SLUGS)
def test_learners_get_different_numbers(practice: PracticeGrader, slug: str) -> None:
    draws = {variants.key(variants.draw(practice.items[slug].params, f"learner:{n}")) for n in range(8)}
    assert len(draws) > 1


@pytest.mark.parametrize("slug", SLUGS)
def test_the_starter_with_a_token_added_never_passes(practice: PracticeGrader, slug: str) -> None:
    g = practice.grade(slug, "learner-1", practice.items[slug].starter + "\n_touched = 1\n")
    assert g.status in ("failed", "error"), describe(g)
    assert g.score <= 1 / 3, describe(g)  # at most the "leave it alone" checks: quiz_content_load warns of them


@pytest.mark.parametrize("slug", SLUGS)
def test_the_unchanged_starter_is_no_attempt(practice: PracticeGrader, slug: str) -> None:
    g = practice.grade(slug, "learner-2", practice.items[slug].starter)
    assert g.status == "rejected" and "not changed the starter code" in (g.error or "")


FAKED = [
    ("training-step", "no-zero-grad",
     "loss = ((model(inputs) - targets) ** 2).mean()\nloss.backward()\noptimizer.step()\n",
     "model.weight.grad", "zero it first"),
    ("training-step", "weight-set-by-hand",
     "optimizer.zero_grad()\nloss = ((model(inputs) - targets) ** 2).mean()\nloss.backward()\n"
     "with torch.no_grad():\n    model.weight -= {{ lr }} * model.weight.grad\n    model.bias -= {{ lr }} * model.bias.grad\n",
     "calls step", "never calls `step()`"),
    ("gradient-accumulation", "grad-from-a-formula",
     "w.grad = (2 * (data @ w.detach() - target) @ data) / data.shape[0]\n", "w.grad by autograd", "set by hand"),
    ("custom-function", "derivative-by-hand",
     "x.grad = {{ p }} * x.detach() ** ({{ p }} - 1)\nok = True\ny = x ** {{ p }}\n",
     "x.grad by autograd", "set by hand"),
    ("custom-function", "no-custom-function",
     "ok = True\ny = x ** {{ p }}\ny.sum().backward()\n", "y's graph", "it lacks PowerBackward"),
    ("hook-clip", "clipped-by-hand",
     "h = x * {{ a }}\nout = (h ** 2).sum()\nx.grad = (2 * h.detach()).clamp(-{{ c }}, {{ c }}) * {{ a }}\n",
     "x.grad by autograd", "set by hand"),
    ("second-derivative", "formulas-typed-in",
     "import torch\nx = torch.tensor({{ x0 }}, requires_grad=True)\ny = x ** {{ p }}\n"
     "g = {{ p }} * x ** ({{ p }} - 1)\nh = torch.tensor({{ p }} * ({{ p }} - 1) * {{ x0 }} ** ({{ p }} - 2))\n",
     "h by autograd", "not computed by autograd"),
    ("inplace-error", "grad-by-hand",
     "s = torch.sigmoid(x)\ny = s * {{ k }}\nx.grad = ({{ k }} * s * (1 - s)).detach()\n",
     "x.grad by autograd", "set by hand"),
    ("retain-graph", "grad-by-hand",
     "z = x * {{ a }}\nx.grad = ({{ a }} + 2 * z * {{ a }}).detach()\n", "x.grad by autograd", "set by hand"),
    ("detach-target", "target-typed-in",
     "pred = w * s\ntarget = torch.tensor({{ r }} + {{ gamma }} * 0.5 * {{ s_next }})\nloss = (pred - target) ** 2\n"
     "loss.backward()\n", "target from w, r, s_next", "was not computed from `w`, `r`, `s_next`"),
    ("detach-target", "not-detached",
     "pred = w * s\ntarget = r + {{ gamma }} * w * s_next\nloss = (pred - target) ** 2\nloss.backward()\n",
     "target.requires_grad", "target.requires_grad is True, expected False"),
    ("freeze-submodule", "head-grad-by-hand",
     "model.encoder.requires_grad_(False)\nloss = model(inputs).pow(2).mean()\n"
     "model.head.weight.grad = torch.zeros_like(model.head.weight)\n", "model.head.weight.grad by autograd",
     "set by hand"),
]


@pytest.mark.parametrize("slug, id, code, check, fragment", FAKED, ids=[f"{f[0]}-{f[1]}" for f in FAKED])
def test_an_answer_not_computed_by_autograd_fails_with_a_message_that_teaches(
        practice: PracticeGrader, slug: str, id: str, code: str, check: str, fragment: str) -> None:
    g = practice.grade(slug, "learner-1", code)
    assert g.status == "failed", describe(g)
    failed = {c.name: c.message for c in g.checks if not c.passed}
    assert check in failed and fragment in failed[check], describe(g)


CORRECT = [
    ("training-step", "loop-style", "optimizer.zero_grad(set_to_none=False)\n"
     "loss = torch.nn.functional.mse_loss(model(inputs), targets)\nloss.backward()\noptimizer.step()\n"),
    ("gradient-accumulation", "chunks", "for chunk, t in zip(data.chunk({{ k }}), target.chunk({{ k }})):\n"
     "    (((chunk @ w - t) ** 2).mean() / {{ k }}).backward()\n"),
    ("hook-clip", "named-hook", "def clip(g):\n    return torch.clamp(g, min=-{{ c }}, max={{ c }})\n"
     "h = x * {{ a }}\nh.register_hook(clip)\nout = (h ** 2).sum()\ntorch.autograd.backward(out)\n"),
    ("second-derivative", "grad-outputs", "import torch\nx = torch.tensor({{ x0 }}, requires_grad=True)\n"
     "y = x ** {{ p }}\ng = torch.autograd.grad(y, [x], create_graph=True)[0]\nh = torch.autograd.grad(g, [x])[0]\n"),
    ("retain-graph", "autograd-backward", "z = x * {{ a }}\nloss1 = z.sum()\nloss2 = (z ** 2).sum()\n"
     "torch.autograd.backward(loss1, retain_graph=True)\ntorch.autograd.backward(loss2)\n"),
    ("freeze-submodule", "loop", "for p in model.encoder.parameters():\n    p.requires_grad = False\n"
     "loss = (model(inputs) ** 2).mean()\nloss.backward()\n"),
]


@pytest.mark.parametrize("slug, id, code", CORRECT, ids=[f"{c[0]}-{c[1]}" for c in CORRECT])
def test_another_correct_spelling_passes(practice: PracticeGrader, slug: str, id: str, code: str) -> None:
    g = practice.grade(slug, "learner-2", code)
    assert (g.status, g.score) == ("passed", 1.0), describe(g)


def test_an_answer_tuned_to_one_learners_numbers_fails_for_another(practice: PracticeGrader) -> None:
    """Answers passed around do not transfer: the same code, written for learner-1's draw, graded for learner-2."""
    slug = "second-derivative"
    one, two = practice.values(slug, "learner-1"), practice.values(slug, "learner-2")
    assert one != two
    copied = variants.render(practice.items[slug].solution, one)  # learner-1's numbers, typed in
    g = practice.grade(slug, "learner-2", copied)
    assert g.status == "failed", describe(g)


@pytest.mark.parametrize("slug, id, code, check, fragment", FAKED, ids=[f"{f[0]}-{f[1]}" for f in FAKED])
def test_authored_feedback_does_not_repeat_the_automatic_message(
        practice: PracticeGrader, slug: str, id: str, code: str, check: str, fragment: str) -> None:
    g = practice.grade(slug, "learner-1", code)
    _, _, checks, _, _, _ = practice.prepared(slug, "learner-1")
    authored = {c.label: " ".join(c.feedback.split()) for c in checks}
    for result in g.checks:
        feedback = authored.get(result.name, "")
        message = " ".join(result.message.split())
        if result.passed or not feedback or not message.endswith(feedback):  # the hidden re-run says its own
            continue
        repeated = shared_phrases(message[: -len(feedback)], feedback)
        assert not repeated, (result.name, repeated, message)
