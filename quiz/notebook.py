"""Each quiz as a Jupyter notebook, for learners who work in notebooks: graded with the `autograd_quiz`
client (clients/python), by the same sandbox and the same course rules as the site.

The notebook is one learner's view of one course quiz, built from the same learner-safe item data as the
API (`quiz.apis.item_data`): their own parameter draws in prompts and starters, no hidden checks, no
solution. It has a first cell that loads the client and logs in, then per item a Markdown cell with the
prompt and a cell to answer in: `%%grade SLUG` over the starter code for a code item, and
`grade("SLUG", choices=[...])` for a choice item, whose answers are listed with letters (A, B, ...) in the
order the API lists them, which is how the client maps letters to choice ids.

`notebook_build` is a pure function of plain data (no database), so what a notebook holds is tested
without a server; `quiz_notebook` gathers that data for a learner.
"""
from __future__ import annotations

import logging
from typing import Any

import nbformat
from django.http import HttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from courses import roles
from courses import selectors as course_selectors
from courses import services as course_services
from courses.models import CourseQuiz
from grader.standing import course_progress, standing_of

from . import selectors
from .apis import item_data

logger = logging.getLogger(__name__)

MEDIA_TYPE = "application/x-ipynb+json"
NBFORMAT_MINOR = 5  # cell ids
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def quiz_notebook(*, user: Any, course_quiz: CourseQuiz, server_url: str) -> nbformat.NotebookNode:
    """A learner's notebook of a course quiz. Like opening an item page, it starts a time-limited quiz's
    clock for a learner: the notebook shows every prompt."""
    if course_quiz.time_limit_minutes and not roles.is_course_staff(user=user,
                                                                             course_id=course_quiz.course_id):
        course_services.quiz_start(course_quiz=course_quiz, user=user)
    items = list(selectors.item_list(quiz_slug=course_quiz.quiz.slug))
    progress = course_progress(user=user, items=items, course_quiz=course_quiz)
    data = [item_data(item, user, standing_of(user=user, item=item, course_quiz=course_quiz), progress[item.pk])
            for item in items]
    quiz = course_quiz.quiz
    return notebook_build(quiz={"slug": quiz.slug, "title": quiz.title, "description": quiz.description},
                          course={"slug": course_quiz.course.slug, "title": course_quiz.course.title},
                          items=data, server_url=server_url)


def notebook_build(*, quiz: dict[str, Any], course: dict[str, Any], items: list[dict[str, Any]],
                   server_url: str) -> nbformat.NotebookNode:
    """The notebook of a quiz (slug, title, description) in a course (slug, title) for the given item data
    (as `item_data` returns it), logging in to `server_url`. Same input, same notebook: cell ids come from
    the item slugs."""
    server_url = server_url.rstrip("/")
    cells = [
        _markdown("quiz", _introduction(quiz, course, items)),
        _code("setup", _setup_source(server_url, course["slug"]), role="setup"),
    ]
    for number, item in enumerate(items, 1):
        cells.append(_markdown(f"{item['slug']}-prompt", _prompt(number, item), item=item["slug"]))
        source = _code_answer(item) if item["kind"] == "code" else _choice_answer(item)
        cells.append(_code(f"{item['slug']}-answer", source, role="answer", item=item["slug"]))
    notebook = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": KERNELSPEC,
        "language_info": {"name": "python"},
        "autograd_quiz": {"server": server_url, "quiz": quiz["slug"], "course": course["slug"]},
    })
    notebook.nbformat_minor = max(notebook.nbformat_minor, NBFORMAT_MINOR)
    nbformat.validate(notebook)
    return notebook


def notebook_filename(*, quiz_slug: str) -> str:
    return f"{quiz_slug}.ipynb"


def notebook_response(notebook: nbformat.NotebookNode, *, filename: str) -> HttpResponse:
    """The notebook as a download (.ipynb JSON), for the site and the API alike."""
    response = HttpResponse(nbformat.writes(notebook), content_type=f"{MEDIA_TYPE}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"  # the learner's own numbers and login line
    return response


# -- cells ------------------------------------------------------------------------------------------
def _cell_id(name: str) -> str:
    return name[:64]  # nbformat: 1 to 64 of [a-zA-Z0-9-_]; slugs are made of those


def _markdown(name: str, source: str, *, item: str | None = None) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_markdown_cell(source, id=_cell_id(name))
    if item:
        cell.metadata["autograd_quiz"] = {"item": item}
    return cell


def _code(name: str, source: str, *, role: str, item: str | None = None) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source, id=_cell_id(name))
    cell.metadata["autograd_quiz"] = {"role": role, **({"item": item} if item else {})}
    return cell


def _introduction(quiz: dict[str, Any], course: dict[str, Any], items: list[dict[str, Any]]) -> str:
    rules = [f"Course: **{course['title']}**"]
    policy = items[0]["policy"] if items else {}
    if policy.get("due_at"):
        rules.append(f"due {_when(policy['due_at'])}")
    if policy.get("max_attempts"):
        rules.append(f"{policy['max_attempts']} graded attempt{'s' if policy['max_attempts'] != 1 else ''} "
                     "per exercise")
    if policy.get("penalties") and any(policy["penalties"]):
        rules.append(f"penalties {', '.join(f'{p:g}' for p in policy['penalties'])}%")
    if policy.get("time_limit_minutes"):
        rules.append(f"{policy['time_limit_minutes']} minutes from your start")
    parts = [f"# {quiz['title']}", quiz.get("description", "").strip(), " · ".join(rules),
             "**How this notebook works.** Run the first code cell below once: it loads the quiz client and logs "
             "you in (your password is asked once, never shown, and the token is kept readable by you only). "
             "Then write your answer in each exercise's cell and run it: a `%%grade` cell is **not run here** but "
             "sent to the grader, which runs it in its sandbox, compares what autograd computed with the "
             "reference, and shows the verdict under the cell. Each graded run is an attempt, with the same "
             "rules as on the quiz site; a syntax error or the unchanged starter code costs none. "
             "`hint(\"ITEM\")` shows the next hint, `solution(\"ITEM\")` the solution once your course reveals it."]
    return "\n\n".join(p for p in parts if p)


def _setup_source(server_url: str, course: str) -> str:
    return "\n".join([
        "# Installs the quiz client from the quiz site (once), loads it and logs you in: the token comes from",
        "# $AUTOGRAD_QUIZ_TOKEN, or you are asked for your password once.",
        "try:",
        "    import autograd_quiz",
        "except ImportError:",
        f"    %pip install --quiet {server_url}/client/autograd-quiz-client.tar.gz",
        "%load_ext autograd_quiz",
        f"%quiz_login {server_url} --course {course}",
        "from autograd_quiz import grade, hint, solution",
    ])


def _prompt(number: int, item: dict[str, Any]) -> str:
    kind = "Code exercise" if item["kind"] == "code" else (
        "Choose all that apply" if item.get("multiple") else "Choose one answer")
    parts = [f"## {number}. {item['title']}", f"*{kind}* · `{item['slug']}`", item["prompt"].strip()]
    if item["kind"] != "code":
        parts.append("\n".join(f"- **{LETTERS[i]}.** {_one_paragraph(choice['text'])}"
                               for i, choice in enumerate(item["choices"][:len(LETTERS)])))
    if item.get("params"):
        parts.append("*The numbers in this exercise are drawn for you; the grader uses the same ones.*")
    if item.get("hints"):
        parts.append(f"Stuck? `hint(\"{item['slug']}\")` shows the next of {len(item['hints'])} "
                     f"hint{'s' if len(item['hints']) != 1 else ''}.")
    return "\n\n".join(p for p in parts if p)


def _one_paragraph(text: str) -> str:
    """A choice's Markdown inside one list item: its lines indented under the bullet."""
    return "\n  ".join(text.strip().splitlines())


def _code_answer(item: dict[str, Any]) -> str:
    starter = item.get("starter_code") or "# your code here\n"
    return f"%%grade {item['slug']}\n{starter.rstrip()}\n"


def _choice_answer(item: dict[str, Any]) -> str:
    example = '["A", "C"]' if item.get("multiple") else '["B"]'
    return (f"# Put the letter{'s' if item.get('multiple') else ''} of your answer in the list, e.g. "
            f"choices={example}, and run the cell.\n"
            f"grade(\"{item['slug']}\", choices=[...])\n")


def _when(value: Any) -> str:
    moment = parse_datetime(value) if isinstance(value, str) else value
    if moment is None:
        return str(value)
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M %Z}"
