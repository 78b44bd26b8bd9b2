"""The seed quiz says what the autograd Q&A notebook says, and every item's text is its own.

Each of the notebook's eleven questions is carried by one item that has the question as its title and the
notebook's answer, every line of it, in its explanation; the items added around them have their own text (no
explanation copied from another item), and no explanation is a list of headings without text. Pure parsing:
no database, no sandbox.
"""
from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from quiz.content_format import ItemSpec, load_file

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT.parent / "shared" / "seeds" / "autograd-qa-notebook.txt"
CONTENT = sorted((ROOT / "quiz" / "content").glob("*.yaml"))
SEED = ROOT / "quiz" / "content" / "autograd-basics.yaml"


def notebook_questions() -> dict[int, tuple[str, str]]:
    """{number: (question, answer)} from the notebook's `**N. Question**` headings."""
    parts = re.split(r"^\*\*(\d+)\. (.+?)\*\*\s*$", NOTEBOOK.read_text(encoding="utf-8"), flags=re.M)
    return {int(parts[i]): (parts[i + 1].strip(), parts[i + 2]) for i in range(1, len(parts), 3)}


def words(text: str) -> str:
    """Lowercase words only: Markdown (backticks, bold, fences, bullets) and line wrapping do not matter."""
    return " ".join(re.findall(r"[a-z0-9_]+", text.lower()))


def all_items() -> list[ItemSpec]:
    return [item for path in CONTENT for item in load_file(path).items]


pytestmark = pytest.mark.skipif(not NOTEBOOK.exists(), reason="the seed notebook is not next to the checkout")


def test_every_notebook_question_is_one_items_title_in_the_notebooks_order() -> None:
    items = load_file(SEED).items
    titles = [item.title for item in items]
    questions = notebook_questions()
    assert sorted(questions) == list(range(1, 12))
    positions = []
    for number, (question, _) in sorted(questions.items()):
        assert titles.count(question) == 1, f"question {number} ({question!r}) is the title of {titles.count(question)} items"
        item = items[titles.index(question)]
        assert f"notebook-q{number}" in item.tags, f"{item.slug} carries question {number} but is not tagged with it"
        positions.append(titles.index(question))
    assert positions == sorted(positions)


@pytest.mark.parametrize("number", range(1, 12))
def test_the_questions_item_explains_with_the_notebooks_whole_answer(number: int) -> None:
    question, answer = notebook_questions()[number]
    item = next(i for i in load_file(SEED).items if i.title == question)
    explanation = f" {words(item.explanation)} "
    lines = [line.strip() for line in answer.splitlines()]
    # Cell markers and object reprs ("<torch.autograd.grad_mode...at 0x7e06...>") are not the answer.
    wanted = [line for line in lines if len(words(line).split()) >= 3 and not re.match(r"In \[\d+\]:|<", line)]
    assert wanted, f"question {number} has an answer"
    missing = [line for line in wanted if f" {words(line)} " not in explanation]
    assert not missing, f"{item.slug} leaves out lines of the notebook's answer: {missing}"


def test_no_explanation_copies_another_items() -> None:
    """No paragraph of prose (60 characters or more) of one item's explanation appears in another's. Code is left
    out: the notebook's own cells share their first lines."""
    def prose(text: str) -> list[str]:
        return re.split(r"\n\s*\n", re.sub(r"```.*?```", "", text, flags=re.S))
    paragraphs = {item.slug: {words(p) for p in prose(item.explanation) if len(p.strip()) >= 60}
                  for item in all_items()}
    copied = [(a, b, sorted(paragraphs[a] & paragraphs[b])[0][:80])
              for a, b in itertools.combinations(paragraphs, 2) if paragraphs[a] & paragraphs[b]]
    assert not copied, copied


@pytest.mark.parametrize("item", [pytest.param(i, id=i.slug) for i in all_items()])
def test_explanations_say_something_under_each_heading(item: ItemSpec) -> None:
    """A bullet is a sentence, not a bare heading such as "- Using model.zero_grad()" (short, no full stop)."""
    assert item.explanation.strip(), f"{item.slug} has no explanation"
    bullets = [" ".join(b.split()) for b in re.findall(r"^- (.+(?:\n  .+)*)", item.explanation, flags=re.M)]
    bare = [b for b in bullets if len(words(b).split()) < 8 and not b.endswith((".", ":", "!", "?"))]
    assert not bare, f"{item.slug}: bullets without text: {bare}"
