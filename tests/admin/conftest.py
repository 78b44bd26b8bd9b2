"""Fixtures of the admin tests: the instructors group as migrate makes it,
an instructor, and a browser-like helper that posts an admin form back."""
from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.forms import CheckboxInput, Textarea
from django.test import Client

from quiz.widgets import CommaListField, TextListWidget
from tests.factories import UserFactory

@pytest.fixture
def instructors_group(db: None) -> Group:
    """The group post_migrate made when the test database was created."""
    return Group.objects.get(name="instructors")


@pytest.fixture
def instructor(instructors_group: Group) -> User:
    user = UserFactory.create(username="prof", is_staff=True)
    user.groups.add(instructors_group)
    return user


@pytest.fixture
def instructor_client(client: Client, instructor: User) -> Client:
    client.force_login(instructor)
    return client


def form_data(response: Any) -> dict[str, Any]:
    """What a browser posts back, unchanged, for the admin change form in `response`:
    the model form, every inline formset with its management form. Like a browser,
    it sends the line ends of a textarea as CRLF."""
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        forms.append(inline.formset.management_form)
        forms.extend(inline.formset.forms)
    data: dict[str, Any] = {}
    for form in forms:
        for bound in form:
            if bound.field.disabled:
                continue
            value = bound.value()
            if isinstance(bound.field.widget, TextListWidget):  # one box per entry, as the browser posts them
                for index, entry in enumerate([*bound.field.prepare_value(value), ""]):
                    data[f"{bound.html_name}_{index}"] = entry.replace("\n", "\r\n")
                continue
            if isinstance(bound.field, CommaListField):
                value = bound.field.prepare_value(value)
            if isinstance(bound.field.widget, CheckboxInput):
                if value:
                    data[bound.html_name] = "on"
                continue
            if isinstance(bound.field.widget, Textarea) and isinstance(value, str):
                value = value.replace("\n", "\r\n")
            data[bound.html_name] = "" if value is None else value
    return data


def check_row(data: dict[str, Any], target: str) -> str:
    """The form prefix ('checks-N') of the posted check with this target."""
    for key, value in data.items():
        if key.startswith("checks-") and key.endswith("-target") and value == target:
            return key[: -len("-target")]
    raise AssertionError(f"no check {target!r} in the form")


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


NAME_ERROR = ("Traceback (most recent call last):\n  line 3, in <module>\n    y = z\n"
              "NameError: name 'z' is not defined")
TIMEOUT = "Your code used more than its 2 s of CPU time and was stopped."


def _checks(*results: tuple[str, bool]) -> list[dict[str, Any]]:
    return [{"name": name, "passed": ok, "message": "" if ok else f"{name} is wrong", "hidden": False, "weight": 1.0}
            for name, ok in results]


@pytest.fixture
def known_submissions(db: None) -> dict[str, Any]:
    """Two quizzes and submissions with fixed verdicts, created in this order:
    stats-quiz: poly (code), concepts (choice), unused (code), old (archived code);
    second: extra (code). Learners ada, grace, bob and '+plus'; 'ta' is staff."""
    from tests.factories import ChoiceItemFactory, ItemFactory, QuizFactory, SubmissionFactory

    quiz = QuizFactory.create(slug="stats-quiz", title="Statistics quiz", order=0)
    second = QuizFactory.create(slug="second", title="Second quiz", order=1)
    poly = ItemFactory.create(quiz=quiz, slug="poly", order=0)
    concepts = ChoiceItemFactory.create(quiz=quiz, slug="concepts", order=1)
    unused = ItemFactory.create(quiz=quiz, slug="unused", order=2)
    old = ItemFactory.create(quiz=quiz, slug="old", order=3, archived=True)
    extra = ItemFactory.create(quiz=second, slug="extra", order=0)
    users = {name: UserFactory.create(username=name) for name in ("ada", "grace", "bob", "+plus")}
    users["ta"] = UserFactory.create(username="ta", is_staff=True)
    rows = [
        ("ada", poly, "failed", 0.5, _checks(("x.grad", False), ("y.requires_grad", True)), ""),
        ("ada", poly, "error", None, [], NAME_ERROR),
        ("ada", poly, "passed", 1.0, _checks(("x.grad", True), ("y.requires_grad", True)), ""),
        ("grace", poly, "error", None, [], NAME_ERROR),
        ("grace", poly, "passed", 1.0, _checks(("x.grad", True), ("y.requires_grad", True)), ""),
        ("grace", poly, "failed", 0.5, _checks(("x.grad", False), ("y.requires_grad", True)), ""),
        ("bob", poly, "timeout", 0.0, [], TIMEOUT),
        ("bob", poly, "failed", 0.333333, _checks(("x.grad", False), ("y.requires_grad", False)), ""),
        ("bob", poly, "queued", None, [], ""),
        ("bob", poly, "internal_error", 0.9, [], "The grader failed while running your code."),
        ("bob", poly, "rejected", None, [], "Your code was not run: it is too long."),
        ("ta", poly, "failed", 0.0, _checks(("x.grad", False)), ""),
        ("ada", concepts, "failed", 0.5, _checks(("Choice 3", False), ("Choice 1", True)), ""),
        ("ada", concepts, "passed", 1.0, _checks(("Choice 1", True), ("Choice 2", True)), ""),
        ("bob", concepts, "passed", 1.0, _checks(("Choice 1", True), ("Choice 2", True)), ""),
        ("grace", concepts, "failed", 0.0, _checks(("Choice 3", False)), ""),
        ("+plus", concepts, "failed", 0.0, _checks(("Choice 2", False)), ""),
        ("ada", old, "passed", 1.0, _checks(("x.grad", True)), ""),
        ("grace", extra, "failed", 0.25, _checks(("x.grad", False), ("y", True)), ""),
    ]
    for username, item, status, score, checks, error in rows:
        SubmissionFactory.create(user=users[username], item=item, status=status, score=score, checks=checks, error=error,
                                 item_version=1)
    return {"quiz": quiz, "second": second, "poly": poly, "concepts": concepts, "unused": unused, "old": old,
            "extra": extra, "users": users}
