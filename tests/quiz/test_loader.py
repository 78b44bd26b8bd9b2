"""load_quizzes: idempotent upsert, archive instead of delete, all-or-nothing errors."""
from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from grader.models import Submission
from quiz.models import Check, Choice, Item, Quiz
from tests.factories import SubmissionFactory, UserFactory, expected_of

pytestmark = pytest.mark.django_db

SEED = Path(__file__).resolve().parents[2] / "quiz" / "content"
# (target, kind) of each check: values first, then how they came to be (autograd, derived, in_place, graph).
CODE_ITEMS = {
    "grad-of-polynomial": [("x.grad", "value"), ("x.requires_grad", "bool"), ("y.requires_grad", "bool"),
                           ("x.grad", "autograd"), ("y", "graph")],
    "zero-grad": [("g", "value"), ("x.grad", "value"), ("g", "autograd"), ("x.grad", "autograd")],
    "enable-tracking": [("a.requires_grad", "bool"), ("a.is_leaf", "bool"), ("b", "value"), ("b.requires_grad", "bool"),
                        ("b.is_leaf", "bool"), ("a", "in_place"), ("b", "derived")],
    "vector-grad": [("before", "none"), ("x.grad", "value"), ("x.grad", "autograd"), ("y", "graph")],
    "stop-tracking": [("y", "value"), ("y.requires_grad", "bool"), ("z.requires_grad", "bool"),
                      ("x.requires_grad", "bool"), ("torch.is_grad_enabled()", "bool"), ("y", "derived"),
                      ("z", "derived")],
    "accumulate-and-clear": [("acc", "value"), ("x.grad", "value"), ("acc", "autograd"), ("x.grad", "autograd"),
                             ("y", "graph")],
    "freeze-layer": [("model[0].weight.requires_grad", "bool"), ("model[0].weight.grad", "none"),
                     ("model[0].bias.grad", "none"), ("model[2].weight.grad", "value"), ("model[2].bias.grad", "value"),
                     ("model[0].weight", "in_place"), ("model[2].weight.grad", "autograd"),
                     ("model[2].bias.grad", "autograd"), ("loss", "derived"), ("loss", "graph")],
    "retain-nonleaf-grad": [("h.grad", "value"), ("x.grad", "value"), ("h.is_leaf", "bool"), ("h.grad", "autograd"),
                            ("x.grad", "autograd"), ("out", "graph")],
    "autograd-grad": [("g", "value"), ("x.grad", "none"), ("g", "autograd"), ("autograd.grad", "calls")],
    "multivariable-grad": [("x.grad", "value"), ("y.grad", "value"), ("x.grad", "autograd"), ("y.grad", "autograd"),
                           ("f", "graph")],
}

QUIZ = """\
quiz:
  slug: tiny
  title: Tiny quiz
items:
  - slug: tiny-grad
    kind: code
    title: A gradient
    prompt: Compute it.
    solution: |
      import torch
      x = torch.tensor(3.0, requires_grad=True)
      (x ** 2).backward()
    checks:
      - target: x.grad
  - slug: tiny-choice
    kind: choice
    title: A choice
    prompt: Pick one.
    choices:
      - text: right
        correct: true
      - text: wrong
"""


def load(*paths: Path) -> str:
    out = io.StringIO()
    call_command("load_quizzes", *map(str, paths), stdout=out)
    return out.getvalue()


def write(tmp_path: Path, text: str, name: str = "tiny.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def snapshot() -> list[tuple]:
    return (list(Quiz.objects.values_list("slug", "title", "updated_at").order_by("slug"))
            + list(Item.objects.values_list("slug", "version", "archived", "updated_at").order_by("slug"))
            + list(Check.objects.values_list("item__slug", "order", "target", "compare", "expected").order_by("pk"))
            + list(Choice.objects.values_list("pk", "text", "correct").order_by("pk")))


def test_seed_quiz_holds_every_notebook_question_in_order_with_the_ten_code_items() -> None:
    load(SEED)
    quiz = Quiz.objects.get(slug="autograd-basics")
    items = list(quiz.items.order_by("order"))
    questions = [next(int(t.removeprefix("notebook-q")) for t in i.tags if t.startswith("notebook-q")) for i in items]
    assert sorted(set(questions)) == list(range(1, 12)), "all 11 notebook questions"
    assert questions == sorted(questions), "in the notebook's order"
    code = {i.slug: [(c.target, c.compare) for c in i.checks.order_by("order")] for i in items if i.kind == "code"}
    assert code == CODE_ITEMS
    for item in items:
        assert item.explanation.strip(), f"{item.slug} keeps the notebook's explanation"
        if item.kind == "choice":
            assert item.choices.count() >= 2 and item.choices.filter(correct=True).exists()
        else:
            assert all(c.expected is not None for c in item.checks.all()), f"{item.slug} has reference values"


def test_seed_reference_values_are_what_the_notebook_prints() -> None:
    load(SEED)

    def expected(slug: str, target: str) -> dict[str, Any]:
        return expected_of(Check.objects.get(item__slug=slug, target=target, compare__in=("value", "none")))

    assert expected("grad-of-polynomial", "x.grad")["values"] == [7.0]
    assert expected("vector-grad", "x.grad")["values"] == [7.0, 9.0]
    assert expected("multivariable-grad", "x.grad")["values"] == [6.0]
    assert expected("multivariable-grad", "y.grad")["values"] == [8.0]
    assert expected("zero-grad", "g") == {"kind": "float", "value": 7.0}
    assert expected("autograd-grad", "x.grad")["kind"] == "none"
    assert Check.objects.get(item__slug="autograd-grad", target="x.grad").compare == "none"
    autograd = expected_of(Check.objects.get(item__slug="grad-of-polynomial", target="x.grad", compare="autograd"))
    assert autograd["lineage"] == {"writer": "engine", "changed": False, "sources": ["y"], "complete": True,
                                   "differentiated": ["y"]}
    graph = expected_of(Check.objects.get(item__slug="grad-of-polynomial", target="y", compare="graph"))["graph"]
    assert sorted(n[0] for n in graph["nodes"]) == ["AccumulateGrad", "AddBackward0", "AddBackward0",
                                                    "MulBackward0", "PowBackward0"]
    assert Check.objects.get(item__slug="freeze-layer", target="model[0].weight.requires_grad").compare == "bool"


def test_second_load_changes_nothing_and_says_so() -> None:
    load(SEED)
    before = snapshot()
    out = load(SEED)
    assert "No changes: 2 quiz(zes) and 24 item(s) already up to date." in out
    assert "running the reference solution" not in out, "unchanged references are reused"
    assert snapshot() == before


def test_an_item_with_submissions_is_archived_not_deleted(tmp_path: Path) -> None:
    path = write(tmp_path, QUIZ)
    load(path)
    SubmissionFactory.create(item=Item.objects.get(slug="tiny-grad"), user=UserFactory.create())
    write(tmp_path, QUIZ.split("  - slug: tiny-grad")[0] + "  - slug: tiny-choice" + QUIZ.split("  - slug: tiny-choice")[1])
    out = load(path)
    assert "archived: tiny-grad" in out
    item = Item.objects.get(slug="tiny-grad")
    assert item.archived and Submission.objects.filter(item=item).count() == 1


def test_an_item_without_submissions_is_deleted_when_it_leaves_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, QUIZ)
    load(path)
    write(tmp_path, QUIZ.split("  - slug: tiny-choice")[0])
    assert "deleted: tiny-choice" in load(path)
    assert not Item.objects.filter(slug="tiny-choice").exists()


def test_an_archived_item_that_returns_is_active_again(tmp_path: Path) -> None:
    path = write(tmp_path, QUIZ)
    load(path)
    SubmissionFactory.create(item=Item.objects.get(slug="tiny-choice"), user=UserFactory.create())
    write(tmp_path, QUIZ.split("  - slug: tiny-choice")[0])
    load(path)
    assert Item.objects.get(slug="tiny-choice").archived
    write(tmp_path, QUIZ)
    load(path)
    assert not Item.objects.get(slug="tiny-choice").archived


def test_changing_a_solution_recomputes_the_reference_and_bumps_the_version(tmp_path: Path) -> None:
    path = write(tmp_path, QUIZ)
    load(path)
    assert expected_of(Check.objects.get(item__slug="tiny-grad"))["values"] == [6.0]
    write(tmp_path, QUIZ.replace("torch.tensor(3.0", "torch.tensor(5.0"))
    out = load(path)
    assert "running the reference solution of tiny-grad" in out and "updated: tiny-grad" in out
    item = Item.objects.get(slug="tiny-grad")
    assert item.version == 2 and expected_of(item.checks.get())["values"] == [10.0]


def test_choice_ids_stay_stable_when_text_changes(tmp_path: Path) -> None:
    path = write(tmp_path, QUIZ)
    load(path)
    ids = list(Choice.objects.order_by("order").values_list("pk", flat=True))
    write(tmp_path, QUIZ.replace("text: wrong", "text: also wrong"))
    load(path)
    assert list(Choice.objects.order_by("order").values_list("pk", "text")) == [(ids[0], "right"), (ids[1], "also wrong")]


@pytest.mark.parametrize(("change", "message"), [
    (("title: A gradient", "titel: A gradient"),
     "tiny.yaml: item 'tiny-grad': field 'titel': unknown key"),
    (("target: x.grad", "target: x.grad +"),
     "tiny.yaml: item 'tiny-grad': field 'checks[0].target': is not valid Python"),
    (("target: x.grad", "target: x.grad\n        rtol: lots"),
     "tiny.yaml: item 'tiny-grad': field 'checks[0].rtol': must be float, got str"),
    (("      - text: wrong", "      - text: wrong\n        correct: true"),
     "tiny.yaml: item 'tiny-choice': field 'choices': has 2 correct choices; set multiple: true or keep one"),
    (("(x ** 2).backward()", "(x ** 2).backward()\n      raise ValueError('broken reference')"),
     "tiny.yaml: item 'tiny-grad': field 'solution': the reference solution gave error"),
    (("target: x.grad", "target: x.grad\n        compare: none"),
     "tiny.yaml: item 'tiny-grad': field 'checks[0].compare': is 'none', but the reference solution gives 6.0"),
    (("target: x.grad", "target: y_undefined"),
     "tiny.yaml: item 'tiny-grad': field 'solution': target 'y_undefined' cannot be read"),
    (("    solution: |", "    hidden_setup: |\n      raise ValueError('no such draw')\n    solution: |"),
     "tiny.yaml: item 'tiny-grad': field 'hidden_setup': the reference solution fails after it"),
    (("kind: choice", "kind: quiz"), "tiny.yaml: item 'tiny-choice': field 'kind': must be code or choice"),
    (("    prompt: Pick one.\n", ""), "tiny.yaml: item 'tiny-choice': field 'prompt': is required"),
    (("slug: tiny\n", "slug: Tiny Quiz\n"), "tiny.yaml: field 'quiz.slug': must be lowercase"),
    (("items:", "items: [\n"), "tiny.yaml: is not valid YAML (line"),
    (("target: x.grad", "target: x.grad\n        compare: derived"),
     "tiny.yaml: item 'tiny-grad': field 'checks[0].from': is required for a derived check"),
    (("target: x.grad", "target: x.grad\n        from: [x]"),
     "tiny.yaml: item 'tiny-grad': field 'checks[0].from': only derived and autograd checks have this field"),
    (("target: x.grad", "target: x.grad\n        compare: derived\n        from: [x y]"),
     "tiny.yaml: item 'tiny-grad': field 'checks[0].from[0]': must be a variable name"),
    (("target: x.grad", "target: backward()\n        compare: calls"),
     "tiny.yaml: item 'tiny-grad': field 'checks[0].target': must be names separated by |"),
    (("target: x.grad", "target: x.grad\n        compare: telepathy"),
     "tiny.yaml: item 'tiny-grad': field 'checks[0].compare': must be one of value, none, bool, autograd"),
    (("      (x ** 2).backward()\n    checks:\n      - target: x.grad\n",
      "      x.grad = torch.tensor(6.0)\n    checks:\n      - target: x.grad\n        compare: autograd\n"),
     "tiny.yaml: item 'tiny-grad': field 'solution': the reference solution fails its own check 1 "
     "(autograd x.grad): `x.grad` was set by hand"),
])
def test_bad_content_gets_one_clear_line_and_loads_nothing(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    good = write(tmp_path, QUIZ, "a-good.yaml").read_text().replace("slug: tiny\n", "slug: fine\n")
    good = good.replace("tiny-grad", "fine-grad").replace("tiny-choice", "fine-choice")
    (tmp_path / "a-good.yaml").write_text(good)
    write(tmp_path, QUIZ.replace(*change, 1))
    with pytest.raises(CommandError) as raised:
        load(tmp_path)
    text = str(raised.value)
    assert "\n" not in text, "one line"
    assert text.startswith(str(tmp_path / "tiny.yaml")) and message.split(": ", 1)[1] in text, text
    assert not Quiz.objects.exists() and not Item.objects.exists(), "nothing half-loaded, not even the good file"


def test_starter_code_that_already_passes_checks_is_reported_when_loading(tmp_path: Path) -> None:
    text = QUIZ.replace("    solution: |", "    starter: |\n      import torch\n      x = torch.tensor(3.0, "
                        "requires_grad=True)\n      # TODO: backpropagate\n    solution: |").replace(
        "      - target: x.grad\n", "      - target: x.grad\n      - target: x.requires_grad\n"
        "      - target: x.grad\n        compare: autograd\n")
    path = write(tmp_path, text)
    out = load(path)
    assert "warning: tiny-grad: the starter code already passes 1 of 3 checks (x.requires_grad)" in out, out
    assert "warning" not in load(path), "warned when the reference runs, not on every load"


def test_the_same_item_slug_in_two_files_is_refused(tmp_path: Path) -> None:
    write(tmp_path, QUIZ, "one.yaml")
    write(tmp_path, QUIZ.replace("slug: tiny\n", "slug: other\n"), "two.yaml")
    with pytest.raises(CommandError, match=r"two.yaml: item 'tiny-grad': field 'slug': is also used in .*one.yaml"):
        load(tmp_path)
    assert not Item.objects.exists()


def test_a_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="nope.yaml: does not exist"):
        load(tmp_path / "nope.yaml")


def test_help_says_what_the_command_does(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        call_command("load_quizzes", "--help")
    out = capsys.readouterr().out
    assert "upsert by slug" in out and "--recompute" in out
