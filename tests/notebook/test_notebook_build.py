"""quiz.notebook.notebook_build, from plain item data: what each kind of item becomes, and that the same
quiz always gives the same notebook."""
from __future__ import annotations

import nbformat

from quiz.notebook import notebook_build

QUIZ = {"slug": "q", "title": "A quiz", "description": "About *autograd*."}
COURSE = {"slug": "ml101", "title": "ML 101"}
POLICY = {"due_at": None, "max_attempts": 3, "penalties": [0, 10, 20], "time_limit_minutes": None}


def code_item(slug: str = "poly", **extra: object) -> dict:
    return {"slug": slug, "kind": "code", "title": "Polynomial", "prompt": "Compute `x.grad`.", "hints": ["h1"],
            "starter_code": "import torch\n", "params": {}, "multiple": False, "choices": [], "policy": POLICY,
            **extra}


def choice_item(slug: str = "pick", multiple: bool = False) -> dict:
    return {"slug": slug, "kind": "choice", "title": "Pick", "prompt": "Which?", "hints": [], "starter_code": "",
            "params": {}, "multiple": multiple, "policy": POLICY,
            "choices": [{"id": 40, "text": "First\nline two"}, {"id": 41, "text": "Second"}]}


def build(items: list[dict]) -> nbformat.NotebookNode:
    return notebook_build(quiz=QUIZ, course=COURSE, items=items, server_url="https://quiz.example.org/")


def test_the_same_quiz_gives_the_same_notebook() -> None:
    items = [code_item(), choice_item()]
    assert nbformat.writes(build(items)) == nbformat.writes(build(items))
    assert [c.id for c in build(items).cells] == ["quiz", "setup", "poly-prompt", "poly-answer", "pick-prompt",
                                                  "pick-answer"]


def test_the_introduction_states_the_course_rules_and_how_grading_works() -> None:
    intro = build([code_item()]).cells[0].source
    assert intro.startswith("# A quiz\n\nAbout *autograd*.")
    assert "Course: **ML 101** · 3 graded attempts per exercise · penalties 0, 10, 20%" in intro
    assert "is **not run here** but sent to the grader" in intro


def test_the_login_line_names_the_server_without_a_trailing_slash_and_the_course() -> None:
    assert "%quiz_login https://quiz.example.org --course ml101" in build([code_item()]).cells[1].source


def test_a_code_item_without_starter_gets_an_empty_grade_cell() -> None:
    answer = build([code_item(starter_code="")]).cells[3]
    assert answer.source == "%%grade poly\n# your code here\n"
    assert answer.metadata.autograd_quiz == {"role": "answer", "item": "poly"}


def test_a_choice_items_answers_get_letters_and_multi_line_answers_stay_in_their_bullet() -> None:
    cells = build([choice_item(multiple=True)]).cells
    assert "- **A.** First\n  line two\n- **B.** Second" in cells[2].source
    assert "*Choose all that apply*" in cells[2].source
    assert cells[3].source == ('# Put the letters of your answer in the list, e.g. choices=["A", "C"], and run the '
                               'cell.\ngrade("pick", choices=[...])\n')


def test_an_item_with_drawn_numbers_says_they_are_the_learners_own() -> None:
    prompt = build([code_item(params={"a": 3})]).cells[2].source
    assert "drawn for you" in prompt
