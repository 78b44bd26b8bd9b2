"""Per-learner variants through the product: the API shows each learner their own numbers, a submission
keeps the draw it was made for, and grading judges it against the reference for that draw."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from courses.services import default_course
from grader import services
from grader.models import Submission
from quiz import variants
from quiz.models import Item
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SLUG = "second-derivative"  # params x0 and p, shown in the prompt; drawn again for every attempt


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_each_learner_sees_their_own_numbers_in_the_prompt_and_starter(practice_quiz: None) -> None:
    seen = {}
    for n in range(6):
        body = client_for(UserFactory.create(username=f"learner{n}")).get(f"/api/v1/items/{SLUG}/").json()
        params = body["params"]
        assert set(params) == {"x0", "p"}
        assert f"x = {variants.format_value(params['x0'])}" in body["prompt"]
        assert f"torch.tensor({variants.format_value(params['x0'])}, requires_grad=True)" in body["starter_code"]
        assert "{{" not in body["prompt"] + body["starter_code"] + "".join(body["hints"])
        seen[n] = variants.key(params)
        again = client_for(get_user_model().objects.get(username=f"learner{n}")).get(f"/api/v1/items/{SLUG}/").json()
        assert again["params"] == params, "the same learner sees the same numbers on every visit"
    assert len(set(seen.values())) > 1, "classmates see other numbers"


def test_a_submission_keeps_its_draw_and_is_graded_against_it(practice_quiz: None) -> None:
    item = Item.objects.get(slug=SLUG)
    learner = UserFactory.create(username="ada")
    params = client_for(learner).get(f"/api/v1/items/{SLUG}/").json()["params"]
    own = variants.render(item.solution_code, params)
    submission = services.submission_create(user=learner, item=item, code=own)
    assert submission.params == params
    grade = services.code_grade(item=item, code=submission.code, params=submission.params)
    assert (grade.status, grade.score) == ("passed", 1.0), grade
    other = next(v for v in (variants.draw(item.params, f"x:{i}") for i in range(20)) if v != params)
    copied = variants.render(item.solution_code, other)  # a classmate's answer, their numbers typed in
    grade = services.code_grade(item=item, code=copied, params=submission.params)
    assert grade.status == "failed", grade


def test_the_next_graded_attempt_gets_a_new_draw(practice_quiz: None) -> None:
    item = Item.objects.get(slug=SLUG)
    learner = UserFactory.create(username="ada")
    api = client_for(learner)
    draws = []
    for n in range(4):
        draws.append(variants.key(api.get(f"/api/v1/items/{SLUG}/").json()["params"]))
        Submission.objects.create(user=learner, course=default_course(), item=item, code="x = 1", status="failed",
                                  score=0.0, attempt=n + 1)
    assert len(set(draws)) > 1


def test_the_unchanged_starter_of_a_variant_is_recognised(practice_quiz: None) -> None:
    item = Item.objects.get(slug=SLUG)
    learner = UserFactory.create(username="ada")
    body = client_for(learner).get(f"/api/v1/items/{SLUG}/").json()
    grade = services.code_grade(item=item, code=body["starter_code"], params=body["params"])
    assert grade.status == "rejected" and grade.error is not None and "not changed the starter code" in grade.error


def test_a_hidden_rerun_redraws_only_what_the_learner_is_not_shown(practice_quiz: None) -> None:
    item = Item.objects.get(slug="training-step")
    assert variants.unseen(item.params, [item.prompt, item.starter_code, *item.hints]) == ["seed"]
    learner = UserFactory.create(username="ada")
    params = client_for(learner).get("/api/v1/items/training-step/").json()["params"]
    grade = services.code_grade(item=item, code=variants.render(item.solution_code, params), params=params)
    assert (grade.status, grade.score) == ("passed", 1.0), grade  # the learner's lr survives the hidden draw
    # An answer that types in this draw's final weights passes the visible run, not the hidden one.
    setup = variants.render(item.setup_code, params)
    reference = services.variant_reference(item=item, setup=setup, solution=variants.render(item.solution_code, params),
                                           checks=[c.to_sandbox() for c in item.checks.all()],
                                           draw=variants.key(params))
    weight, bias = reference[0]["values"], reference[1]["values"]
    typed = (variants.render(item.solution_code, params)
             + f"with torch.no_grad():\n    model.weight.copy_(torch.tensor([{weight}]))\n"
             f"    model.bias.copy_(torch.tensor({bias}))\n")
    grade = services.code_grade(item=item, code=typed, params=params)
    assert grade.status == "failed", grade
    assert any("not when the given tensors hold other values" in c.message for c in grade.checks), grade


def test_the_item_page_shows_the_learners_numbers_and_the_draw_an_attempt_was_graded_with(practice_quiz: None) -> None:
    from django.test import Client
    from django.urls import reverse

    item = Item.objects.get(slug=SLUG)
    learner = UserFactory.create(username="ada")
    client = Client()
    client.force_login(learner)
    params = client_for(learner).get(f"/api/v1/items/{SLUG}/").json()["params"]
    page = client.get(reverse("quiz:item-detail", args=[SLUG])).content.decode()
    assert f"x = {variants.format_value(params['x0'])}" in page and "{{" not in page.split("<main")[1]
    attempt = Submission.objects.create(user=learner, course=default_course(), item=item, code="x = 1", status="failed", score=0.0,
                                        params=params, checks=[])
    page = client.get(reverse("quiz:item-detail", args=[SLUG]), {"attempt": attempt.pk}).content.decode()
    assert f"<code>x0 = {params['x0']}</code>" in page and f"<code>p = {params['p']}</code>" in page
