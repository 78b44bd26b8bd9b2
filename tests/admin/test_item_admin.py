"""Editing items: the reference solution runs on save, and a broken one is refused."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from quiz.content_export import quiz_yaml
from quiz.models import Check, Item
from quiz.references import reference_observations
from quiz.services import quiz_content_load
from tests.factories import expected_of

from .conftest import check_row, form_data, messages_of

pytestmark = pytest.mark.django_db

SLUG = "grad-of-polynomial"
SOLUTION_X3 = "import torch\n\nx = torch.tensor(3.0, requires_grad=True)\ny = x ** 2 + 3 * x + 1\ny.backward()\n"


def snapshot(item: Item) -> dict:
    item.refresh_from_db()
    return {
        "item": {f.name: getattr(item, f.name) for f in Item._meta.concrete_fields},
        "checks": list(Check.objects.filter(item=item).order_by("order").values()),
    }


@pytest.fixture
def item(seed_quiz: None) -> Item:
    return Item.objects.get(slug=SLUG)


@pytest.fixture
def url(item: Item) -> str:
    return f"/admin/quiz/item/{item.pk}/change/"


def test_the_change_form_has_code_editors_inlines_and_reference_values(instructor_client: Client, url: str) -> None:
    response = instructor_client.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    for static in ("quiz/vendor/codemirror/lib/codemirror.js", "quiz/vendor/codemirror/lib/codemirror.css",
                   "quiz/vendor/codemirror/mode/python/python.js", "grader/code-editor.js"):
        assert static in body
    for field in ("starter_code", "setup_code", "solution_code"):
        assert f'name="{field}"' in body
        assert 'class="code-editor"' in body
    assert 'name="checks-TOTAL_FORMS"' in body and 'name="choices-TOTAL_FORMS"' in body
    # the stored reference values, rendered with describe()
    assert "<code>x.grad</code></td><td>value</td><td><code>7.0</code>" in body
    assert "<code>y.requires_grad</code></td><td>bool</td><td><code>True</code>" in body


def test_a_broken_reference_solution_is_refused_and_nothing_changes(
        instructor_client: Client, item: Item, url: str) -> None:
    before = snapshot(item)
    data = form_data(instructor_client.get(url))
    data["solution_code"] = "import torch\nx = torch.tensor(2.0, requires_grad=True)\nz = undefined_name + 1\n"
    data["title"] = "A new title"
    response = instructor_client.post(url, data)
    assert response.status_code == 200  # the form again, not a redirect
    errors = response.context["adminform"].form.errors
    assert "solution_code" in errors
    message = errors["solution_code"][0]
    assert message.startswith("The reference solution failed: the reference solution gave error")
    assert "NameError: name 'undefined_name' is not defined" in message
    assert "NameError: name &#x27;undefined_name&#x27; is not defined" in response.content.decode()
    assert snapshot(item) == before


def test_a_reference_that_cannot_read_a_target_is_refused(instructor_client: Client, item: Item, url: str) -> None:
    before = snapshot(item)
    data = form_data(instructor_client.get(url))
    row = check_row(data, "x.grad")
    data[f"{row}-target"] = "z.grad"
    response = instructor_client.post(url, data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["solution_code"] == [
        "The reference solution failed: target 'z.grad' cannot be read after the reference solution: "
        "NameError: name 'z' is not defined"]
    assert snapshot(item) == before


def test_a_compare_mode_that_contradicts_the_reference_is_refused(
        instructor_client: Client, item: Item, url: str) -> None:
    before = snapshot(item)
    data = form_data(instructor_client.get(url))
    data[f"{check_row(data, 'x.requires_grad')}-compare"] = "none"
    response = instructor_client.post(url, data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.non_field_errors()
    assert errors == ["Check 2 (x.requires_grad): compare is 'none', but the reference solution gives True "
                      "for x.requires_grad"]
    assert snapshot(item) == before


def test_invalid_content_is_refused_with_the_loaders_rules(instructor_client: Client, item: Item, url: str) -> None:
    before = snapshot(item)
    data = form_data(instructor_client.get(url))
    data["slug"] = "Grad_Of_Polynomial"
    data["time_limit_seconds"] = "60"
    response = instructor_client.post(url, data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["slug"] == [
        "This field must be lowercase letters, digits and single dashes"]
    data["slug"] = SLUG
    response = instructor_client.post(url, data)
    assert response.context["adminform"].form.errors["time_limit_seconds"] == ["This field must be between 0.1 and 10"]
    data["time_limit_seconds"] = "2.0"
    data[f"{check_row(data, 'x.grad')}-target"] = "x.grad +"
    response = instructor_client.post(url, data)
    assert response.context["adminform"].form.non_field_errors()[0].startswith(
        "Check 1 (x.grad +): target is not valid Python")
    assert snapshot(item) == before


def test_a_good_save_stores_expected_values_and_bumps_the_version(
        instructor_client: Client, item: Item, url: str) -> None:
    assert item.version == 1
    old_fingerprint, old_computed = item.reference_fingerprint, item.reference_computed_at
    data = form_data(instructor_client.get(url))
    data["solution_code"] = SOLUTION_X3
    response = instructor_client.post(url, data, follow=True)
    assert response.redirect_chain[-1][0] == "/admin/quiz/item/"
    shown = messages_of(response)
    assert (f"Reference solution of {SLUG} ran: x.grad (value) = 9.0; x.requires_grad (bool) = True; "
            "y.requires_grad (bool) = True; x.grad (autograd) = 9.0; y (graph) = 19.0.") in shown
    assert f"Grading of {SLUG} changed: it is now version 2." in shown
    item.refresh_from_db()
    assert item.version == 2
    assert item.solution_code == SOLUTION_X3
    assert item.reference_fingerprint and item.reference_fingerprint != old_fingerprint
    assert item.reference_computed_at is not None and old_computed is not None
    assert item.reference_computed_at > old_computed
    checks = list(item.checks.order_by("order"))
    assert [expected_of(c)["values"] if expected_of(c)["kind"] == "tensor" else expected_of(c)["value"] for c in checks] == [
        [9.0], True, True, [9.0], [19.0]]
    assert [(c.compare, c.compare_given) for c in checks] == [("value", True), ("bool", True), ("bool", True),
                                                               ("autograd", True), ("graph", True)]


def test_saving_without_grading_changes_keeps_the_version(instructor_client: Client, item: Item, url: str) -> None:
    data = form_data(instructor_client.get(url))
    data["title"] = "Autograd, first steps"
    data = {k: v for k, v in data.items() if not k.startswith("hints_")}
    data["hints_0"] = "Only a hint"
    data[f"{check_row(data, 'x.grad')}-feedback"] = data[f"{check_row(data, 'x.grad')}-feedback"]
    response = instructor_client.post(url, data)
    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.title, item.hints, item.version) == ("Autograd, first steps", ["Only a hint"], 1)


def test_a_new_check_with_an_inferred_compare_gets_the_references_mode(
        instructor_client: Client, item: Item, url: str) -> None:
    data = form_data(instructor_client.get(url))
    extra = f"checks-{data['checks-INITIAL_FORMS']}"
    assert data[f"{extra}-order"] == 5  # the blank row starts at the next free order
    data.update({f"{extra}-target": "y", f"{extra}-compare": "", f"{extra}-weight": "2"})
    response = instructor_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    check = item.checks.get(target="y", compare="value")
    assert (check.order, check.compare, check.compare_given, check.weight) == (5, "value", False, 2.0)
    assert expected_of(check)["kind"] == "tensor" and expected_of(check)["values"] == [11.0]
    item.refresh_from_db()
    assert item.version == 2


def test_a_code_item_added_in_the_admin_gets_its_reference(
        instructor_client: Client, item: Item, tmp_path: Path) -> None:
    add = instructor_client.get("/admin/quiz/item/add/")
    data = form_data(add)
    data.update({
        "quiz": str(item.quiz_id), "slug": "cube-grad", "kind": "code", "title": "Gradient of a cube",
        "prompt": "Compute the gradient of x**3 at 2.", "order": "20", "hints_0": "", "tags": "new",
        "solution_code": "import torch\nx = torch.tensor(2.0, requires_grad=True)\n(x ** 3).backward()\n",
        "checks-0-target": "x.grad", "checks-0-compare": "",
    })
    response = instructor_client.post("/admin/quiz/item/add/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    new = Item.objects.get(slug="cube-grad")
    assert new.version == 1 and new.reference_computed_at is not None
    assert [(c.target, c.compare, c.compare_given, expected_of(c)["values"]) for c in new.checks.all()] == [
        ("x.grad", "value", False, [12.0])]
    assert not new.choices.exists()  # the blank choice row was left alone
    assert new.order == 15  # numbered like the loader numbers items: last of 16
    path = tmp_path / "quiz.yaml"
    path.write_text(quiz_yaml(item.quiz))
    _, report = quiz_content_load(paths=[path], runner=reference_observations)
    assert not report.changed and len(report.unchanged) == 16
    delete = instructor_client.post(f"/admin/quiz/item/{item.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 302
    orders = Item.objects.filter(quiz=item.quiz).order_by("order").values_list("order", flat=True)
    assert list(orders) == list(range(15))


def test_a_choice_item_needs_a_correct_choice(instructor_client: Client, seed_quiz: None) -> None:
    choice_item = Item.objects.get(slug="autograd-how-it-works")
    url = f"/admin/quiz/item/{choice_item.pk}/change/"
    data = form_data(instructor_client.get(url))
    for key in list(data):
        if key.startswith("choices-") and key.endswith("-correct"):
            del data[key]
    response = instructor_client.post(url, data)
    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == ["Choices: needs at least one correct choice"]
    assert choice_item.choices.filter(correct=True).count() == 2


def test_validate_action_shows_the_reference_values_and_saves_nothing(instructor_client: Client, item: Item) -> None:
    before = snapshot(item)
    freeze = Item.objects.get(slug="freeze-layer")
    choice_item = Item.objects.get(slug="autograd-how-it-works")
    response = instructor_client.post("/admin/quiz/item/", {
        "action": "validate_references", "_selected_action": [item.pk, freeze.pk, choice_item.pk]})
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count("✓ The reference solution runs") == 2
    assert "Not a code item: it has no reference solution." in body
    cells = " ".join(body.split())  # whitespace between the cells does not matter
    assert "<td><code>x.grad</code></td> <td>value</td> <td><code>7.0</code></td>" in cells
    assert "<td><code>model[0].bias.grad</code></td> <td>none</td> <td><code>None</code></td>" in cells
    assert "differs" not in body
    assert snapshot(item) == before


def test_validate_reports_a_stored_item_whose_reference_broke(instructor_client: Client, item: Item) -> None:
    Item.objects.filter(pk=item.pk).update(setup_code="raise RuntimeError('setup is broken')")
    response = instructor_client.get(f"/admin/quiz/item/{item.pk}/validate/")
    assert response.status_code == 200
    assert "✗ The reference solution failed" in response.content.decode()
    assert "setup is broken" in response.content.decode()


def test_deleting_a_check_renumbers_the_others_and_round_trips(
        instructor_client: Client, item: Item, url: str, tmp_path: Path) -> None:
    data = form_data(instructor_client.get(url))
    data[f"{check_row(data, 'x.grad')}-DELETE"] = "on"
    assert instructor_client.post(url, data).status_code == 302
    item.refresh_from_db()
    assert item.version == 2
    assert list(item.checks.order_by("order").values_list("order", "target")) == [
        (0, "x.requires_grad"), (1, "y.requires_grad"), (2, "x.grad"), (3, "y")]
    path = tmp_path / "quiz.yaml"
    path.write_text(quiz_yaml(item.quiz))
    _, report = quiz_content_load(paths=[path], runner=reference_observations)
    assert not report.changed and report.unchanged[0] == SLUG


def test_the_editor_and_style_files_exist() -> None:
    from django.contrib.staticfiles import finders

    from grader.admin import SubmissionAdmin
    from quiz.admin import ItemAdmin
    from quiz.widgets import CodeEditorWidget

    media = CodeEditorWidget.Media
    paths = [*media.js, *(p for paths in media.css.values() for p in paths),
             *ItemAdmin.Media.css["all"], *ItemAdmin.Media.js, *SubmissionAdmin.Media.css["all"],
             "grader/regrade-progress.js"]
    assert "quiz/vendor/codemirror/lib/codemirror.js" in paths
    missing = [p for p in paths if finders.find(p) is None]
    assert not missing


def test_a_row_added_with_a_taken_order_and_rows_moved_up_and_down_are_renumbered(
        instructor_client: Client, item: Item, url: str) -> None:
    """"Add another check" used to post order 0 next to the existing check 0, and saving failed with
    "duplicate data for order". Orders are now taken as the rows' sequence and renumbered 0, 1, 2…"""
    data = form_data(instructor_client.get(url))
    extra = f"checks-{data['checks-INITIAL_FORMS']}"
    data.update({f"{extra}-order": "0", f"{extra}-target": "y", f"{extra}-compare": "", f"{extra}-weight": "1"})
    first, last = check_row(data, "x.grad"), check_row(data, "y.requires_grad")
    data[f"{first}-order"], data[f"{last}-order"] = data[f"{last}-order"], "0"  # the two rows swapped places
    response = instructor_client.post(url, data)
    assert response.status_code == 302, [f.errors for f in response.context["inline_admin_formsets"]]
    rows = list(item.checks.order_by("order").values_list("order", "target", "compare"))
    assert [order for order, _, _ in rows] == list(range(len(rows)))
    assert rows[0][1] == "y.requires_grad" and ("y", "value") in [(t, c) for _, t, c in rows]


def test_hints_and_tags_are_edited_as_lists(instructor_client: Client, item: Item, url: str) -> None:
    page = instructor_client.get(url).content.decode()
    assert 'class="text-list"' in page and 'name="hints_0"' in page and "Add another hint" in page
    data = {k: v for k, v in form_data(instructor_client.get(url)).items() if not k.startswith("hints_")}
    data.update({"hints_0": "First, with `code`", "hints_1": "", "hints_2": "Second\r\non two lines",
                 "tags": "backward,  notebook-q1 ,"})
    assert instructor_client.post(url, data).status_code == 302
    item.refresh_from_db()
    assert item.hints == ["First, with `code`", "Second\non two lines"]
    assert item.tags == ["backward", "notebook-q1"]
