"""One source of truth for content: the file, until the panel edits an item; then the panel's version is
kept by load_quizzes (a conflict it reports) until --force or "Revert to file"."""
from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

from quiz.models import Item, Quiz

from .conftest import form_data

pytestmark = pytest.mark.django_db

QUIZ = """\
quiz:
  slug: tiny
  title: Tiny quiz
items:
  - slug: tiny-choice
    kind: choice
    title: A choice
    prompt: Pick one.
    choices:
      - text: right
        correct: true
      - text: wrong
"""


@pytest.fixture
def quiz_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(textwrap.dedent(QUIZ))
    load(path)
    return path


def load(path: Path, *args: str) -> str:
    out = io.StringIO()
    call_command("load_quizzes", str(path), *args, stdout=out)
    return out.getvalue()


def retitle(client: Client, item: Item, title: str) -> None:
    url = f"/admin/quiz/item/{item.pk}/change/"
    data = form_data(client.get(url))
    data["title"] = title
    assert client.post(url, data).status_code == 302


def test_an_item_remembers_its_file_and_its_content_hash(quiz_file: Path) -> None:
    item = Item.objects.get(slug="tiny-choice")
    assert item.source_file == str(quiz_file) and len(item.source_hash) == 64 and not item.edited_in_panel
    before = item.source_hash
    quiz_file.write_text(quiz_file.read_text().replace("Pick one.", "Pick exactly one."))
    load(quiz_file)
    item.refresh_from_db()
    assert item.prompt == "Pick exactly one." and item.source_hash != before


def test_a_panel_edit_survives_the_next_load_which_reports_it(instructor_client: Client, quiz_file: Path) -> None:
    item = Item.objects.get(slug="tiny-choice")
    retitle(instructor_client, item, "Retitled in the panel")
    page = instructor_client.get(f"/admin/quiz/item/{item.pk}/change/").content.decode()
    assert f"Edited here, differs from {quiz_file}" in page
    out = load(quiz_file)
    assert "conflict: tiny-choice: edited in the panel since it was loaded from" in out and "--force" in out
    assert Item.objects.get(slug="tiny-choice").title == "Retitled in the panel"
    load(quiz_file, "--force")
    item.refresh_from_db()
    assert item.title == "A choice" and not item.edited_in_panel


def test_revert_to_file_drops_the_panels_edit(instructor_client: Client, quiz_file: Path) -> None:
    item = Item.objects.get(slug="tiny-choice")
    retitle(instructor_client, item, "Retitled in the panel")
    response = instructor_client.post("/admin/quiz/item/", {"action": "revert_to_file", "_selected_action": [item.pk]},
                                      follow=True)
    assert any("Reverted to" in str(m) for m in response.context["messages"])
    item.refresh_from_db()
    assert item.title == "A choice" and not item.edited_in_panel


def test_an_item_made_in_the_panel_is_not_archived_by_the_file(instructor_client: Client, quiz_file: Path) -> None:
    quiz = Quiz.objects.get(slug="tiny")
    made = Item.objects.create(quiz=quiz, slug="made-here", kind="choice", title="Made here", prompt="p",
                               edited_in_panel=True)
    out = load(quiz_file)
    made.refresh_from_db()
    assert not made.archived and "made-here" not in out
    page = instructor_client.get(f"/admin/quiz/item/{made.pk}/change/").content.decode()
    assert "Made in the panel: no file holds it" in page


def test_a_quiz_retitled_in_the_panel_keeps_its_title(instructor_client: Client, quiz_file: Path) -> None:
    quiz = Quiz.objects.get(slug="tiny")
    url = f"/admin/quiz/quiz/{quiz.pk}/change/"
    data = form_data(instructor_client.get(url))
    data["title"] = "Renamed here"
    assert instructor_client.post(url, data).status_code == 302
    assert "conflict: quiz tiny: edited in the panel" in load(quiz_file)
    assert Quiz.objects.get(slug="tiny").title == "Renamed here"


def test_once_the_file_says_what_the_panel_says_the_file_counts_again(
        instructor_client: Client, quiz_file: Path) -> None:
    item = Item.objects.get(slug="tiny-choice")
    retitle(instructor_client, item, "Retitled in the panel")
    quiz_file.write_text(quiz_file.read_text().replace("title: A choice", "title: Retitled in the panel"))
    out = load(quiz_file)
    assert "conflict" not in out
    item.refresh_from_db()
    assert item.title == "Retitled in the panel" and not item.edited_in_panel
