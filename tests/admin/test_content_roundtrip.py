"""Quizzes out of the admin as YAML, and back in through the loader."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from quiz.content_format import load_file, parse_quiz
from quiz.models import Check, Item, Quiz
from quiz.services import CONTENT_DIR
from tests.factories import expected_of

from .conftest import form_data, messages_of

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse

pytestmark = pytest.mark.django_db

SOURCE = CONTENT_DIR / "autograd-basics.yaml"


def state() -> dict:
    """Everything the loader could change, with timestamps."""
    return {
        "quizzes": list(Quiz.objects.order_by("pk").values()),
        "items": list(Item.objects.order_by("pk").values()),
        "checks": list(Check.objects.order_by("pk").values()),
    }


def export(client: Client, quiz: Quiz) -> str:
    response = client.get(f"/admin/quiz/quiz/{quiz.pk}/export/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/yaml; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{quiz.slug}.yaml"'
    return response.content.decode()


def upload(client: Client, name: str, text: str, **extra: str) -> TestResponse:
    return client.post("/admin/quiz/quiz/import/",
                       {"file": SimpleUploadedFile(name, text.encode(), content_type="application/yaml"), **extra},
                       follow=True)


@pytest.fixture
def quiz(seed_quiz: None) -> Quiz:
    return Quiz.objects.get(slug="autograd-basics")


def test_the_export_parses_and_equals_the_source_file(instructor_client: Client, quiz: Quiz) -> None:
    exported = parse_quiz(yaml.safe_load(export(instructor_client, quiz)), "autograd-basics.yaml")
    assert exported == load_file(SOURCE, "autograd-basics.yaml")


def test_compare_is_written_only_where_the_content_gave_it(instructor_client: Client, quiz: Quiz) -> None:
    Check.objects.filter(item__slug="grad-of-polynomial", target="x.grad", compare="value").update(compare_given=False)
    document = yaml.safe_load(export(instructor_client, quiz))
    checks = {i["slug"]: i.get("checks", []) for i in document["items"]}
    assert checks["grad-of-polynomial"] == [
        {"target": "x.grad",
         "feedback": "dy/dx = 2x + 3, taken at x = 2: autograd writes it into `x.grad` when `x` was created\n"
                     "with `requires_grad=True` and you call `y.backward()`.\n"},
        {"target": "x.requires_grad", "compare": "bool"},
        {"target": "y.requires_grad", "compare": "bool",
         "feedback": "`y` inherits gradient tracking from its inputs: compute it from the tracking `x`\n"
                     "(not from a plain tensor or a Python number).\n"},
        {"target": "x.grad", "compare": "autograd",
         "feedback": "Create `x` with `requires_grad=True`, build `y` from it and call `y.backward()`.", "from": ["y"]},
        {"target": "y", "compare": "graph", "feedback": "Build `y` as `x**2 + 3*x + 1` from the tracking `x`."},
    ]
    derived = next(c for c in checks["enable-tracking"] if c.get("compare") == "derived")
    assert derived["from"] == ["d"]  # sources are written as the format's `from`
    assert all("expected" not in c for item_checks in checks.values() for c in item_checks)


def test_export_then_import_changes_nothing(instructor_client: Client, quiz: Quiz) -> None:
    text = export(instructor_client, quiz)
    before = state()
    response = upload(instructor_client, "autograd-basics.yaml", text)
    assert response.redirect_chain[-1][0] == "/admin/quiz/quiz/"
    assert messages_of(response) == [
        "autograd-basics.yaml: No changes: 1 quiz(zes) and 15 item(s) already up to date."]
    assert state() == before


def test_an_item_edited_in_the_admin_round_trips(instructor_client: Client, quiz: Quiz) -> None:
    item = Item.objects.get(slug="zero-grad")
    url = f"/admin/quiz/item/{item.pk}/change/"
    data = form_data(instructor_client.get(url))
    data = {k: v for k, v in data.items() if not k.startswith("hints_")}
    data.update({"hints_0": "Use x.grad.item()", "time_limit_seconds": "3", "checks-1-compare": "",
                 "checks-1-rtol": "0.001", "explanation": "Short.\r\n\r\nTwo paragraphs.\r\n"})
    saved = instructor_client.post(url, data, follow=True)
    assert saved.redirect_chain[-1][0] == "/admin/quiz/item/"
    text = export(instructor_client, quiz)
    document = next(i for i in yaml.safe_load(text)["items"] if i["slug"] == "zero-grad")
    assert document["limits"] == {"time_seconds": 3.0}
    assert document["hints"] == ["Use x.grad.item()"]
    assert document["explanation"] == "Short.\n\nTwo paragraphs.\n"
    assert document["checks"][1] == {"target": "x.grad", "rtol": 0.001, "feedback": document["checks"][1]["feedback"]}
    before = state()
    response = upload(instructor_client, "autograd-basics.yaml", text)
    assert messages_of(response) == [
        "autograd-basics.yaml: No changes: 1 quiz(zes) and 15 item(s) already up to date."]
    assert state() == before


def test_an_import_loads_a_changed_file_like_the_loader(instructor_client: Client, quiz: Quiz) -> None:
    document = yaml.safe_load(SOURCE.read_text())
    document["quiz"]["title"] = "Autograd, the basics"
    document["items"] = [i for i in document["items"] if i["slug"] != "freeze-layer"]
    zero_grad = next(i for i in document["items"] if i["slug"] == "zero-grad")
    zero_grad["solution"] = zero_grad["solution"].replace("2.0", "5.0")
    response = upload(instructor_client, "basics.yaml", yaml.safe_dump(document, sort_keys=False))
    assert messages_of(response) == [
        "basics.yaml: Items: 1 updated, 13 unchanged, 1 deleted; quizzes changed: autograd-basics.",
        "Items updated: zero-grad", "Items deleted: freeze-layer"]
    quiz.refresh_from_db()
    assert quiz.title == "Autograd, the basics"
    item = Item.objects.get(slug="zero-grad")
    assert item.version == 2 and expected_of(item.checks.get(target="g", compare="value"))["value"] == 13.0


def test_a_bad_file_is_one_line_and_loads_nothing(instructor_client: Client, quiz: Quiz) -> None:
    document = yaml.safe_load(SOURCE.read_text())
    document["quiz"]["title"] = "Changed title"
    document["items"][0]["colour"] = "blue"
    before = state()
    response = upload(instructor_client, "autograd-basics.yaml", yaml.safe_dump(document, sort_keys=False))
    assert response.status_code == 200 and not response.redirect_chain
    assert response.context["form"].errors["file"] == [
        "autograd-basics.yaml: item 'grad-of-polynomial': field 'colour': unknown key (allowed: checks, explanation, "
        "hidden_rerun, hidden_setup, hints, kind, limits, max_attempts, params, params_per_attempt, prompt, reveal_after_attempts, "
        "reveal_expected, setup, slug, solution, starter, tags, title)"]
    assert "The file was not loaded; nothing was changed." in response.content.decode()
    assert state() == before


def test_a_failing_reference_in_a_later_item_loads_nothing(instructor_client: Client, quiz: Quiz) -> None:
    document = yaml.safe_load(SOURCE.read_text())
    document["quiz"]["title"] = "Changed title"
    document["items"][0]["title"] = "Changed item title"
    document["items"][-1]["solution"] = "raise ValueError('broken on purpose')\n"
    before = state()
    response = upload(instructor_client, "autograd-basics.yaml", yaml.safe_dump(document, sort_keys=False))
    error = response.context["form"].errors["file"][0]
    assert error.startswith(
        "autograd-basics.yaml: item 'freeze-layer': field 'solution': the reference solution gave error")
    assert "ValueError: broken on purpose" in error
    assert state() == before


def test_export_action_gives_one_file_or_a_zip(instructor_client: Client, quiz: Quiz) -> None:
    one = instructor_client.post("/admin/quiz/quiz/", {"action": "export_yaml", "_selected_action": [quiz.pk]})
    assert one["Content-Disposition"] == 'attachment; filename="autograd-basics.yaml"'
    assert parse_quiz(yaml.safe_load(one.content), "x") == load_file(SOURCE, "x")
    other = Quiz.objects.create(slug="empty-quiz", title="Nothing yet", order=5)
    both = instructor_client.post("/admin/quiz/quiz/", {"action": "export_yaml",
                                                         "_selected_action": [quiz.pk, other.pk]})
    assert both["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(both.content))
    assert archive.namelist() == ["autograd-basics.yaml", "empty-quiz.yaml"]
    assert yaml.safe_load(archive.read("empty-quiz.yaml")) == {
        "quiz": {"slug": "empty-quiz", "title": "Nothing yet", "order": 5}, "items": []}


def test_the_quiz_list_links_import_export_and_statistics(instructor_client: Client, quiz: Quiz) -> None:
    body = instructor_client.get("/admin/quiz/quiz/").content.decode()
    assert 'href="/admin/quiz/quiz/import/"' in body
    assert f'href="/admin/quiz/quiz/{quiz.pk}/export/"' in body
    assert f'href="/admin/quiz/quiz/{quiz.pk}/statistics/"' in body
    assert Path(SOURCE).exists()


def test_a_quiz_slug_must_be_a_content_slug(instructor_client: Client) -> None:
    data = form_data(instructor_client.get("/admin/quiz/quiz/add/"))
    data.update({"slug": "My_Quiz", "title": "Mine", "description": "Line one\r\nLine two\r\n", "order": "3"})
    response = instructor_client.post("/admin/quiz/quiz/add/", data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["slug"] == [
        "Lowercase letters, digits and single dashes (the content format's slugs)."]
    data["slug"] = "my-quiz"
    assert instructor_client.post("/admin/quiz/quiz/add/", data).status_code == 302
    assert Quiz.objects.get(slug="my-quiz").description == "Line one\nLine two\n"
