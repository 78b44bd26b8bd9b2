"""The learner site's server-rendered pages: what they show, to whom, and the no-JavaScript answer form."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from courses.roles import INSTRUCTORS_GROUP
from grader.apis import SubmissionRateThrottle
from grader.models import Submission
from quiz.models import Item, Quiz
from tests.factories import (
    CheckFactory,
    ChoiceFactory,
    ChoiceItemFactory,
    ItemFactory,
    QuizFactory,
    SubmissionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

STATIC_ROOT = Path(__file__).resolve().parents[2] / "quiz" / "static"
SOLUTION_MARKER = "reference-solution-marker"


def forget_throttle(user: User) -> None:
    """The submission throttle lives in the shared Redis cache: start each test with a fresh budget."""
    cache.delete(SubmissionRateThrottle.cache_format % {"scope": "submissions", "ident": user.pk})


@pytest.fixture
def quiz() -> Quiz:
    """A quiz with a code item (checks, hints) and a single-choice item after it."""
    quiz = QuizFactory.create(slug="basics", title="Basics", description="All about `autograd`.")
    code_item = ItemFactory.create(quiz=quiz, slug="poly", order=1, title="Gradient of a polynomial",
                                   prompt="Compute it:\n\n```python\nx = torch.tensor(2.0)\n```\n",
                                   explanation="Because **calculus**.", hints=["First hint", "Second `hint`"],
                                   starter_code="import torch\n# TODO\n", reveal_after_attempts=2,
                                   solution_code=f"# {SOLUTION_MARKER}\nimport torch\n")
    CheckFactory.create(item=code_item, order=0)
    choice_item = ChoiceItemFactory.create(quiz=quiz, slug="pick", order=2, title="Pick one",
                                           explanation="The first one.", multiple=False)
    ChoiceFactory.create(item=choice_item, order=0, text="Right answer", correct=True, feedback="Yes, because.")
    ChoiceFactory.create(item=choice_item, order=1, text="Wrong answer", correct=False, feedback="No: `x` is a leaf.")
    return quiz


@pytest.fixture
def client_in(learner: User) -> Client:
    forget_throttle(learner)
    client = Client()
    client.force_login(learner)
    return client


def item_url(slug: str, attempt: int | None = None) -> str:
    url = reverse("quiz:item-detail", args=[slug])
    return f"{url}?attempt={attempt}" if attempt else url


# ---------------------------------------------------------------- routes, login


def test_routes_have_the_expected_paths() -> None:
    assert reverse("quiz:quiz-list") == "/"
    assert reverse("quiz:quiz-detail", args=["basics"]) == "/quizzes/basics/"
    assert reverse("quiz:item-detail", args=["poly"]) == "/items/poly/"
    assert reverse("quiz:signup") == "/accounts/signup/"
    assert reverse("quiz:login") == "/accounts/login/"
    assert reverse("quiz:logout") == "/accounts/logout/"


@pytest.mark.parametrize("url", ["/quizzes/basics/", "/items/poly/", "/items/pick/?attempt=1"])
def test_quiz_and_item_pages_require_login(client: Client, quiz: Quiz, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_anonymous_visitors_see_the_quizzes_and_an_invitation(client: Client, quiz: Quiz) -> None:
    html = client.get("/").content.decode()
    assert "Basics" in html and "<code>autograd</code>" in html
    assert 'href="/accounts/signup/"' in html and 'href="/accounts/login/"' in html
    assert "Track your progress" in html
    assert 'role="progressbar"' not in html


def test_login_page_logs_in_and_logout_is_a_post(client: Client, learner: User) -> None:
    page = client.get("/accounts/login/?next=/quizzes/basics/")
    assert page.status_code == 200
    assert 'autocomplete="current-password"' in page.content.decode()
    response = client.post("/accounts/login/", {"username": "ada", "password": "pass-word-123", "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert "Signed in as <strong>ada</strong>" in client.get("/").content.decode()
    assert client.get("/accounts/logout/").status_code == 405
    assert client.post("/accounts/logout/").status_code == 302
    assert "Signed in as" not in client.get("/").content.decode()


def test_a_wrong_password_shows_an_error(client: Client, learner: User) -> None:
    response = client.post("/accounts/login/", {"username": "ada", "password": "nope"})
    assert response.status_code == 200
    assert "correct username and password" in response.content.decode()


def test_signup_creates_the_learner_and_logs_them_in(client: Client) -> None:
    response = client.post("/accounts/signup/", {"username": "newbie", "password1": "a-long-pass-phrase",
                                                 "password2": "a-long-pass-phrase"})
    assert response.status_code == 302 and response["Location"] == "/"
    user = get_user_model().objects.get(username="newbie")
    assert not user.is_staff
    assert client.session["_auth_user_id"] == str(user.pk)


def test_signup_shows_errors_next_to_the_fields(client: Client) -> None:
    response = client.post("/accounts/signup/", {"username": "newbie", "password1": "a-long-pass-phrase",
                                                 "password2": "something-else"})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'aria-invalid="true"' in html and "didn’t match" in html
    assert not get_user_model().objects.filter(username="newbie").exists()


def test_signup_ignores_an_offsite_next(client: Client) -> None:
    response = client.post("/accounts/signup/", {"username": "newbie", "password1": "a-long-pass-phrase",
                                                 "password2": "a-long-pass-phrase", "next": "https://evil.example/"})
    assert response["Location"] == "/"


# ------------------------------------------------------------------ progress


def test_quiz_list_shows_the_learners_progress(
        client_in: Client, learner: User, other_learner: User, quiz: Quiz) -> None:
    SubmissionFactory.create(user=learner, item=Item.objects.get(slug="poly"), status="passed", score=1.0)
    SubmissionFactory.create(user=other_learner, item=Item.objects.get(slug="pick"), status="passed", score=1.0)
    html = client_in.get("/").content.decode()
    assert "<strong>1</strong> of 2 passed" in html
    assert 'aria-valuenow="1"' in html and 'style="width: 50%"' in html
    assert "Continue" in html and 'href="/items/pick/?course=default"' in html  # the next unpassed item


def test_quiz_page_lists_items_in_order_with_their_state(
        client_in: Client, learner: User, other_learner: User, quiz: Quiz) -> None:
    poly = Item.objects.get(slug="poly")
    SubmissionFactory.create(user=learner, item=poly, status="failed", score=0.25)
    SubmissionFactory.create(user=learner, item=poly, status="failed", score=0.5)
    SubmissionFactory.create(user=learner, item=poly, status="queued")  # being graded: it already counts as an attempt
    SubmissionFactory.create(user=other_learner, item=Item.objects.get(slug="pick"), status="passed", score=1.0)
    html = client_in.get("/quizzes/basics/").content.decode()
    assert html.index("Gradient of a polynomial") < html.index("Pick one")
    rows = re.findall(r'<li class="item-row item-row--([\w-]+)">', html)
    assert rows == ["attempted", "not-started"]  # the other learner's pass is not ours
    assert "Best 50% · 3 attempts" in html
    assert "<strong>0</strong> of 2 passed" in html


def test_a_passed_item_shows_as_passed(client_in: Client, learner: User, quiz: Quiz) -> None:
    SubmissionFactory.create(user=learner, item=Item.objects.get(slug="pick"), status="passed", score=1.0)
    html = client_in.get("/quizzes/basics/").content.decode()
    assert re.findall(r'item-row item-row--([\w-]+)"', html) == ["not-started", "passed"]
    assert "Best 100% · 1 attempt" in html


def test_unknown_quiz_and_item_are_404(client_in: Client, quiz: Quiz) -> None:
    assert client_in.get("/quizzes/nope/").status_code == 404
    assert client_in.get("/items/nope/").status_code == 404


# ------------------------------------------------------------------ item page


def test_code_item_page_has_prompt_editor_hints_and_navigation(client_in: Client, quiz: Quiz) -> None:
    html = client_in.get("/items/poly/").content.decode()
    assert '<div class="highlight"><pre>' in html  # the prompt's code block, Pygments-highlighted
    assert '<textarea name="code" id="code"' in html and "import torch\n# TODO\n</textarea>" in html
    assert "Hint 1 of 2" in html and "Second <code>hint</code>" in html
    assert 'id="hint-button"' in html
    assert 'href="/items/pick/?course=default" rel="next"' in html and 'rel="prev"' not in html
    assert "Exercise 1 of 2" in html
    assert "/static/quiz/vendor/codemirror/lib/codemirror.js" in html
    assert "/static/quiz/css/pygments.css" in html
    assert "No attempts yet" in html


def test_choice_item_page_has_radio_buttons_and_previous_link(client_in: Client, quiz: Quiz) -> None:
    html = client_in.get("/items/pick/").content.decode()
    assert html.count('type="radio" name="choices"') == 2
    assert "codemirror.js" not in html
    assert 'href="/items/poly/?course=default" rel="prev"' in html
    assert "Back to Basics" in html


def test_multiple_choice_items_use_checkboxes(client_in: Client) -> None:
    item = ChoiceItemFactory.create(multiple=True)
    ChoiceFactory.create_batch(3, item=item)
    html = client_in.get(item_url(item.slug)).content.decode()
    assert html.count('type="checkbox" name="choices"') == 3
    assert "Choose all answers that apply" in html


def test_no_reference_solution_or_explanation_before_it_is_revealed(
        client_in: Client, learner: User, quiz: Quiz) -> None:
    poly = Item.objects.get(slug="poly")
    SubmissionFactory.create(user=learner, item=poly, status="failed", score=0.0)
    html = client_in.get("/items/poly/").content.decode()
    assert SOLUTION_MARKER not in html
    assert "calculus" not in html
    assert "unlock when you pass, or after 2 graded attempts" in html


def test_the_solution_is_revealed_after_enough_attempts(client_in: Client, learner: User, quiz: Quiz) -> None:
    poly = Item.objects.get(slug="poly")
    SubmissionFactory.create_batch(2, user=learner, item=poly, status="error")
    html = client_in.get("/items/poly/").content.decode()
    assert SOLUTION_MARKER in html and "<strong>calculus</strong>" in html
    assert '<div class="solution" id="solution"><div class="highlight">' in html


def test_the_solution_is_revealed_after_passing(client_in: Client, learner: User, quiz: Quiz) -> None:
    SubmissionFactory.create(user=learner, item=Item.objects.get(slug="poly"), status="passed", score=1.0)
    html = client_in.get("/items/poly/").content.decode()
    assert SOLUTION_MARKER in html
    assert '<span class="state state--passed" id="progress-state">Passed</span>' in html


def test_another_learners_pass_reveals_nothing(client_in: Client, other_learner: User, quiz: Quiz) -> None:
    SubmissionFactory.create(user=other_learner, item=Item.objects.get(slug="poly"), status="passed", score=1.0)
    assert SOLUTION_MARKER not in client_in.get("/items/poly/").content.decode()


# ------------------------------------------------------------------ attempts


def test_an_own_attempt_reopens_with_its_code_and_verdict(client_in: Client, learner: User, quiz: Quiz) -> None:
    poly = Item.objects.get(slug="poly")
    attempt = SubmissionFactory.create(
        user=learner, item=poly, code="import torch\nx = 1 / 0\n", status="error", error_line=2,
        error="Traceback (most recent call last):\n  line 2, in <module>\nZeroDivisionError: division by zero",
        stdout="printed <b>text</b>")
    SubmissionFactory.create(user=learner, item=poly, status="failed", score=0.0)
    html = client_in.get(item_url("poly", attempt.pk)).content.decode()
    assert "import torch\nx = 1 / 0\n</textarea>" in html
    assert "Your code raised an error" in html and "Attempt 1" in html
    assert 'data-goto-line="2">line 2</button>' in html
    assert "ZeroDivisionError: division by zero" in html
    assert "printed &lt;b&gt;text&lt;/b&gt;" in html  # output is text, never markup
    assert f'data-attempt="{attempt.pk}" data-number="1"' in html and 'aria-current="true"' in html


def test_a_failed_attempt_shows_each_check_and_its_message(client_in: Client, learner: User, quiz: Quiz) -> None:
    attempt = SubmissionFactory.create(user=learner, item=Item.objects.get(slug="poly"), status="failed", score=0.5, checks=[
        {"name": "x.grad", "passed": False, "message": "x.grad is None — did you call backward()? Use `y.backward()`.",
         "hidden": False, "weight": 1.0},
        {"name": "secret", "passed": True, "message": "", "hidden": True, "weight": 1.0}])
    html = client_in.get(item_url("poly", attempt.pk)).content.decode()
    assert '<li class="check check--fail">' in html and '<li class="check check--pass">' in html
    assert "did you call backward()? Use <code>y.backward()</code>." in html
    assert "Hidden check 1" in html and "secret" not in html
    assert "score 50%" in html


def test_another_learners_attempt_is_a_404(client_in: Client, other_learner: User, quiz: Quiz) -> None:
    theirs = SubmissionFactory.create(user=other_learner, item=Item.objects.get(slug="poly"),
                                      code="their secret code", status="passed", score=1.0)
    response = client_in.get(item_url("poly", theirs.pk))
    assert response.status_code == 404
    assert b"their secret code" not in response.content
    assert b"Page not found" in response.content


def test_the_history_lists_only_the_learners_own_attempts(
        client_in: Client, learner: User, other_learner: User, quiz: Quiz) -> None:
    poly = Item.objects.get(slug="poly")
    mine = SubmissionFactory.create(user=learner, item=poly, status="failed", score=0.0)
    theirs = SubmissionFactory.create(user=other_learner, item=poly, status="passed", score=1.0)
    html = client_in.get("/items/poly/").content.decode()
    assert f'data-attempt="{mine.pk}"' in html
    assert f'data-attempt="{theirs.pk}"' not in html


def test_an_instructor_sees_only_their_own_attempts_on_the_item_page(other_learner: User, quiz: Quiz) -> None:
    teacher = UserFactory.create(username="teacher", is_staff=True)
    teacher.groups.add(Group.objects.get_or_create(name=INSTRUCTORS_GROUP)[0])
    poly = Item.objects.get(slug="poly")
    theirs = SubmissionFactory.create(user=other_learner, item=poly, status="passed", score=1.0)
    client = Client()
    client.force_login(teacher)
    html = client.get("/items/poly/").content.decode()
    assert f'data-attempt="{theirs.pk}"' not in html
    assert client.get(item_url("poly", theirs.pk)).status_code == 404


def test_an_attempt_at_another_item_or_a_bad_id_is_a_404(client_in: Client, learner: User, quiz: Quiz) -> None:
    other = SubmissionFactory.create(user=learner, item=Item.objects.get(slug="pick"), status="passed", score=1.0)
    assert client_in.get(item_url("poly", other.pk)).status_code == 404
    assert client_in.get("/items/poly/?attempt=abc").status_code == 404


# ------------------------------------------------------- the no-JavaScript form


def test_posting_code_without_javascript_queues_it_and_shows_that_attempt(
        client_in: Client, learner: User, quiz: Quiz) -> None:
    response = client_in.post("/items/poly/", {"code": "import torch\nprint('hi')\n"})
    submission = Submission.objects.get(user=learner)
    assert response.status_code == 302
    assert response["Location"] == f"/items/poly/?course=default&attempt={submission.pk}#verdict"
    assert submission.status == "queued" and submission.code == "import torch\nprint('hi')\n"
    html = client_in.get(item_url("poly", submission.pk)).content.decode()
    assert "Waiting for a grader" in html
    refresh = f'<noscript><meta http-equiv="refresh" content="2; url=/items/poly/?course=default&amp;attempt={submission.pk}&amp;wait=1#verdict"></noscript>'
    assert refresh in html
    assert "print(&#x27;hi&#x27;)\n</textarea>" in html


def test_a_page_without_javascript_stops_refreshing_after_a_while(client_in: Client, learner: User, quiz: Quiz) -> None:
    attempt = SubmissionFactory.create(user=learner, item=Item.objects.get(slug="poly"), status="running")
    assert "wait=8#verdict" in client_in.get(item_url("poly", attempt.pk) + "&wait=7").content.decode()
    assert 'http-equiv="refresh"' not in client_in.get(item_url("poly", attempt.pk) + "&wait=60").content.decode()
    done = SubmissionFactory.create(user=learner, item=Item.objects.get(slug="poly"), status="passed", score=1.0)
    assert 'http-equiv="refresh"' not in client_in.get(item_url("poly", done.pk) + "&wait=3").content.decode()


def test_posting_a_choice_without_javascript_grades_it_at_once(client_in: Client, learner: User, quiz: Quiz) -> None:
    wrong = Item.objects.get(slug="pick").choices.get(correct=False)
    response = client_in.post("/items/pick/", {"choices": [str(wrong.pk)]}, follow=True)
    submission = Submission.objects.get(user=learner)
    assert submission.status == "failed" and submission.selected == [wrong.pk]
    html = response.content.decode()
    assert response.redirect_chain[-1][0] == f"/items/pick/?course=default&attempt={submission.pk}#verdict"
    assert f'<li class="choice choice--wrong" data-choice-id="{wrong.pk}">' in html
    assert "No: <code>x</code> is a leaf." in html
    assert f'value="{wrong.pk}" checked' in html


def test_a_right_choice_passes_and_reveals_the_explanation(client_in: Client, learner: User, quiz: Quiz) -> None:
    right = Item.objects.get(slug="pick").choices.get(correct=True)
    html = client_in.post("/items/pick/", {"choices": [str(right.pk)]}, follow=True).content.decode()
    assert "Correct. Well done!" in html and "choice--right" in html
    assert "The first one." in html


def test_posting_no_choice_is_refused_with_a_message(client_in: Client, learner: User, quiz: Quiz) -> None:
    response = client_in.post("/items/pick/", {})
    assert response.status_code == 400
    assert "Choose an answer first." in response.content.decode()
    assert not Submission.objects.exists()


def test_refused_code_keeps_what_the_learner_typed(client_in: Client, learner: User, quiz: Quiz) -> None:
    code = "# my own words\n" + "x = 1\n" * 12000  # over the 64 KiB limit
    response = client_in.post("/items/poly/", {"code": code})
    html = response.content.decode()
    assert response.status_code == 400
    assert "the limit is 65536 bytes" in html
    assert "# my own words\nx = 1\n" in html
    assert not Submission.objects.exists()


def test_the_form_shares_the_api_throttle(
        client_in: Client, learner: User, quiz: Quiz, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SubmissionRateThrottle, "allow_request", lambda self, request, view: False)
    monkeypatch.setattr(SubmissionRateThrottle, "wait", lambda self: 12.0)
    response = client_in.post("/items/poly/", {"code": "import torch\n"})
    assert response.status_code == 429
    assert "Please wait 13 s" in response.content.decode()
    assert not Submission.objects.exists()


def test_an_archived_item_is_not_found(client_in: Client, quiz: Quiz) -> None:
    Item.objects.filter(slug="poly").update(archived=True)
    assert client_in.post("/items/poly/", {"code": "x = 1"}).status_code == 404


# ------------------------------------------------------------------ assets


def test_every_asset_is_served_by_the_project(client_in: Client, quiz: Quiz) -> None:
    html = client_in.get("/items/poly/").content.decode() + client_in.get("/").content.decode()
    external = re.findall(r'(?:src|href)="(https?:)?//', html)
    assert external == []
    for path in re.findall(r'(?:src|href)="/static/([^"]+)"', html):
        assert (STATIC_ROOT / path).is_file(), path
    assert (STATIC_ROOT / "quiz" / "vendor" / "codemirror" / "LICENSE").is_file()
    assert ".highlight .k" in (STATIC_ROOT / "quiz" / "css" / "pygments.css").read_text()


def test_the_real_quiz_renders(client_in: Client, seed_quiz: None) -> None:
    html = client_in.get("/quizzes/autograd-basics/").content.decode()
    items = list(Item.objects.filter(quiz__slug="autograd-basics", archived=False).order_by("order"))
    assert len(re.findall(r'class="item-row item-row--not-started"', html)) == len(items)
    for item in items:
        page = client_in.get(item_url(item.slug))
        assert page.status_code == 200, item.slug
        assert item.solution_code.strip() == "" or item.solution_code.strip() not in page.content.decode()


# -- the autograd graph of a verdict ---------------------------------------------------------------
GRAPH_VIEW = {
    "learner": {"nodes": [["AddBackward0", "op", "AddBackward0"], ["MulBackward0", "op", "MulBackward0"],
                          ["AccumulateGrad", "leaf", "x"]],
                "edges": [[0, 1], [1, 2], [0, 2]], "truncated": False},
    "extra": [1],
    "reference": {"nodes": [["AddBackward0", "op", "AddBackward0"], ["PowBackward0", "op", "PowBackward0"],
                            ["AccumulateGrad", "leaf", "x"]],
                  "edges": [[0, 1], [1, 2], [0, 2]], "truncated": False},
    "missing": [1],
}


def client_in_user(client: Client) -> User:
    return get_user_model().objects.get(pk=client.session["_auth_user_id"])


def graded_with_graph(user: User, item: Item) -> Submission:
    return SubmissionFactory.create(user=user, item=item, status="failed", score=0.5, checks=[
        {"name": "x.grad", "passed": True, "message": "", "hidden": False, "weight": 1.0},
        {"name": "y's graph", "passed": False, "message": "y's autograd graph is not the one the exercise asks for",
         "hidden": False, "weight": 1.0, "graph": GRAPH_VIEW}])


def test_a_verdict_shows_the_learners_graph_next_to_the_references(client_in: Client, quiz: Quiz) -> None:
    attempt = graded_with_graph(client_in_user(client_in), quiz.items.get(slug="poly"))
    page = client_in.get(reverse("quiz:item-detail", args=["poly"]), {"attempt": attempt.pk}).content.decode()
    url = reverse("quiz:attempt-graph", args=[attempt.pk, 1])
    assert f'<img src="{url}"' in page
    assert "y&#x27;s graph: yours has 2 operations (AddBackward0, MulBackward0) from x." in page  # the alt text
    response = client_in.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
    svg = response.content.decode()
    assert svg.startswith("<svg") and "Reference" in svg and ">MulBackward0<" in svg and ">PowBackward0<" in svg
    assert "1 node not in the reference" in svg and "1 node missing from yours" in svg
    assert "<script" not in svg and "http" not in svg.replace("http://www.w3.org/2000/svg", "")


def test_no_one_sees_another_learners_graph(client_in: Client, learner: User, other_learner: User, quiz: Quiz) -> None:
    attempt = graded_with_graph(other_learner, quiz.items.get(slug="poly"))
    assert client_in.get(reverse("quiz:attempt-graph", args=[attempt.pk, 1])).status_code == 404
    mine = graded_with_graph(client_in_user(client_in), quiz.items.get(slug="poly"))
    assert client_in.get(reverse("quiz:attempt-graph", args=[mine.pk, 0])).status_code == 404  # a check without one
    assert client_in.get(reverse("quiz:attempt-graph", args=[mine.pk, 7])).status_code == 404
    client_in.logout()
    assert client_in.get(reverse("quiz:attempt-graph", args=[mine.pk, 1])).status_code == 302  # to the log-in page


def test_the_graph_drawing_takes_the_api_token_too(
        client: Client, learner: User, other_learner: User, quiz: Quiz) -> None:
    """The notebook client draws it under a verdict; it has a token, not a site session."""
    from rest_framework.authtoken.models import Token

    mine = graded_with_graph(learner, quiz.items.get(slug="poly"))
    theirs = graded_with_graph(other_learner, quiz.items.get(slug="poly"))
    token = {"Authorization": f"Token {Token.objects.create(user=learner).key}"}
    response = client.get(reverse("quiz:attempt-graph", args=[mine.pk, 1]), headers=token)
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
    assert client.get(reverse("quiz:attempt-graph", args=[theirs.pk, 1]), headers=token).status_code == 404
    wrong = client.get(reverse("quiz:attempt-graph", args=[mine.pk, 1]), HTTP_AUTHORIZATION="Token nope")
    assert wrong.status_code == 302


def test_a_graph_label_cannot_inject_markup(client_in: Client, quiz: Quiz) -> None:
    view = {"learner": {"nodes": [["<script>alert(1)</script>", "custom", "<b>x</b>"]], "edges": [],
                        "truncated": False}, "extra": []}
    attempt = SubmissionFactory.create(user=client_in_user(client_in), item=quiz.items.get(slug="poly"), status="failed", score=0.0, checks=[
        {"name": "y's graph", "passed": False, "message": "", "hidden": False, "weight": 1.0, "graph": view}])
    svg = client_in.get(reverse("quiz:attempt-graph", args=[attempt.pk, 0])).content.decode()
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "<b>" not in svg
