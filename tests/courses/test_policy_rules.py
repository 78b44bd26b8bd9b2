"""Every assessment rule of a course quiz, enforced in the service layer: through the API and through the
site, with the message the learner gets and nothing stored when refused."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from courses.models import Course, CourseQuiz, Membership, QuizStart
from grader.models import Submission
from grader.scores import item_scores, quiz_score
from quiz.models import Item
from tests.factories import CourseFactory, CourseQuizFactory, MembershipFactory, QuizFactory, UserFactory

from .conftest import member

if TYPE_CHECKING:
    from rest_framework.response import _MonkeyPatchedResponse as APIResponse

pytestmark = pytest.mark.django_db

CODE = "import torch\nx = torch.tensor(2.0, requires_grad=True)\n(x ** 2 + 3 * x + 1).backward()\n"


def set_policy(course_quiz: CourseQuiz, **fields: object) -> None:
    for name, value in fields.items():
        setattr(course_quiz, name, value)
    course_quiz.full_clean()
    course_quiz.save()


def choose(api: APIClient, text: str) -> APIResponse:
    choice = Item.objects.get(slug="pick").choices.get(text=text)
    return api.post("/api/v1/submissions/", {"item": "pick", "choices": [choice.pk], "course": "ml101"}, format="json")


def send_code(api: APIClient, code: str) -> APIResponse:
    return api.post("/api/v1/submissions/", {"item": "poly", "code": code}, format="json")


def refusal(response: APIResponse) -> str:
    assert response.status_code == 400, response.content
    fields = response.json()["error"]["fields"]
    return " ".join(str(m) for messages in fields.values() for m in messages)


# -- attempts and penalties --------------------------------------------------------------------------------------


def test_attempts_run_out_and_the_next_is_refused_with_nothing_stored(api: APIClient, course_quiz: CourseQuiz) -> None:
    set_policy(course_quiz, max_attempts=2)
    assert send_code(api, CODE).status_code == 202
    body = api.get("/api/v1/items/poly/").json()
    assert body["policy"]["attempts_left"] == 1 and body["policy"]["refusal"] is None
    assert send_code(api, CODE + "# again\n").status_code == 202
    before = Submission.objects.count()
    message = refusal(send_code(api, CODE + "# third\n"))
    assert message == "you have used all 2 graded attempts at this item"
    assert Submission.objects.count() == before
    assert api.get("/api/v1/items/poly/").json()["policy"]["attempts_left"] == 0


def test_the_items_default_limits_attempts_when_the_course_sets_none(api: APIClient, course_quiz: CourseQuiz) -> None:
    Item.objects.filter(slug="poly").update(max_attempts=1)
    assert send_code(api, CODE).status_code == 202
    assert "all 1 graded attempt at" in refusal(send_code(api, CODE + "# again\n"))
    set_policy(course_quiz, max_attempts=3)  # the course's setting wins
    assert send_code(api, CODE + "# again\n").status_code == 202


def test_the_penalty_regime_takes_its_percent_off_each_attempt(api: APIClient, course_quiz: CourseQuiz) -> None:
    set_policy(course_quiz, penalties="0, 10, 20, 50")
    answers = ["Wrong", "Also wrong", "Wrong too", "Right"]
    rows = [choose(api, text).json() for text in answers]
    assert [r["attempt"] for r in rows] == [1, 2, 3, 4]
    assert [r["penalty"] for r in rows] == [0, 10, 20, 50]
    assert rows[-1]["score"] == 1.0 and rows[-1]["final_score"] == 0.5 and rows[-1]["status"] == "passed"
    assert api.get("/api/v1/items/pick/").json()["policy"]["next_penalty"] == 50  # the last one repeats


def test_best_or_last_attempt_counts_as_the_course_says(api: APIClient, course_quiz: CourseQuiz, student: User) -> None:
    choose(api, "Right")
    choose(api, "Wrong")
    pick = Item.objects.get(slug="pick")
    assert item_scores(user_id=student.pk, course_quiz=course_quiz)[pick.pk].score == 1.0
    set_policy(course_quiz, score_counts="last")
    assert item_scores(user_id=student.pk, course_quiz=course_quiz)[pick.pk].score == 0.0
    assert quiz_score(user_id=student.pk, course_quiz=course_quiz) == 0.0


def test_a_cooldown_spaces_graded_attempts(api: APIClient, course_quiz: CourseQuiz, student: User) -> None:
    set_policy(course_quiz, cooldown_seconds=60)
    assert send_code(api, CODE).status_code == 202
    message = refusal(send_code(api, CODE + "# quick\n"))
    assert message.startswith("wait ") and "this course allows one every 60 s" in message
    Submission.objects.filter(user=student).update(created_at=timezone.now() - timedelta(seconds=61))
    assert send_code(api, CODE + "# quick\n").status_code == 202


# -- what costs nothing ------------------------------------------------------------------------------------------


def test_a_repeat_of_an_earlier_answer_is_refused_and_costs_nothing(api: APIClient, course_quiz: CourseQuiz) -> None:
    set_policy(course_quiz, max_attempts=2)
    assert send_code(api, CODE).status_code == 202
    message = refusal(send_code(api, CODE + "   \n"))  # trailing blanks make no new answer
    assert "you already sent this exact answer (attempt 1)" in message
    assert choose(api, "Wrong").status_code == 201
    assert "you already sent this exact answer" in refusal(choose(api, "Wrong"))
    assert api.get("/api/v1/items/poly/").json()["policy"]["attempts_left"] == 1


@pytest.mark.parametrize("per_attempt", [False, True])
def test_a_repeat_is_refused_on_items_with_parameters_too(api: APIClient, course_quiz: CourseQuiz,
                                                          per_attempt: bool) -> None:
    """The draw is part of the answer. Drawn once per learner, the standing's query finds the repeat; drawn anew
    for every attempt, it is known only once the attempts are counted, and a query of its own does."""
    Item.objects.filter(slug="poly").update(params={"a": {"choices": [3], "default": 3}},
                                            params_per_attempt=per_attempt)
    assert send_code(api, CODE).status_code == 202
    assert "you already sent this exact answer (attempt 1)" in refusal(send_code(api, CODE + "\n\n"))
    assert send_code(api, CODE + "# changed\n").status_code == 202
    assert list(Submission.objects.order_by("pk").values_list("attempt", "params")) == [(1, {"a": 3}), (2, {"a": 3})]


def test_a_repeat_of_a_free_answer_or_of_another_courses_is_not_refused(
        api: APIClient, course_quiz: CourseQuiz, student: User) -> None:
    assert send_code(api, "x = (").status_code == 202
    assert send_code(api, "x = (").status_code == 202  # a syntax error costs nothing: sending it again is no repeat
    other = CourseFactory.create(slug="other")
    CourseQuizFactory.create(course=other, quiz=course_quiz.quiz)
    MembershipFactory.create(course=other, user=student)
    body = {"item": "poly", "code": CODE, "course": "ml101"}
    assert api.post("/api/v1/submissions/", body, format="json").status_code == 202
    assert api.post("/api/v1/submissions/", {**body, "course": "other"}, format="json").status_code == 202
    assert "exact answer" in refusal(api.post("/api/v1/submissions/", body, format="json"))
    assert Submission.objects.filter(attempt=1).count() == 2


def test_syntax_errors_and_the_unchanged_starter_cost_no_attempt(api: APIClient, course_quiz: CourseQuiz) -> None:
    set_policy(course_quiz, max_attempts=1, penalties="0, 50")
    for code in ("x = (", "import torch\n# TODO\n", "def f(:\n"):
        response = send_code(api, code)
        assert response.status_code == 202, response.content
    assert set(Submission.objects.values_list("attempt", flat=True)) == {None}
    assert api.get("/api/v1/items/poly/").json()["policy"]["attempts_left"] == 1
    assert send_code(api, CODE).status_code == 202
    assert Submission.objects.get(code=CODE).attempt == 1 and Submission.objects.get(code=CODE).penalty == 0


def test_check_syntax_costs_nothing_and_says_what_is_wrong(api: APIClient, course_quiz: CourseQuiz) -> None:
    bad = api.post("/api/v1/precheck/", {"code": "x = (\n"}, format="json").json()
    assert bad["ok"] is False and bad["line"] == 1 and bad["message"].startswith("SyntaxError")
    refused = api.post("/api/v1/precheck/", {"code": "x = ().__class__\n"}, format="json").json()
    assert refused["ok"] is False and "private attribute" in refused["message"]
    fine = api.post("/api/v1/precheck/", {"code": CODE}, format="json").json()
    assert fine == {"ok": True, "message": "The syntax is fine. Checking it cost no attempt.", "line": None}
    assert not Submission.objects.exists()


# -- dates and time ----------------------------------------------------------------------------------------------


def test_a_quiz_that_has_not_opened_is_hidden_and_refuses_work(
        api: APIClient, site: Client, course_quiz: CourseQuiz) -> None:
    set_policy(course_quiz, opens_at=timezone.now() + timedelta(days=1))
    assert api.get("/api/v1/quizzes/").json() == []
    assert api.get("/api/v1/items/").json() == []
    assert "opens on" in api.get("/api/v1/items/poly/").json()["error"]["message"]
    assert "opens on" in refusal(send_code(api, CODE))
    assert site.get("/items/poly/").status_code == 404
    assert "Week 1" not in site.get("/").content.decode()
    assert not Submission.objects.exists()


def test_late_work_is_refused_or_penalised_as_the_course_says(api: APIClient, course_quiz: CourseQuiz) -> None:
    set_policy(course_quiz, due_at=timezone.now() - timedelta(minutes=1))
    message = refusal(choose(api, "Right"))
    assert "has passed; this quiz takes no late work" in message
    set_policy(course_quiz, late="penalty", late_penalty=25, penalties="0, 10")
    first = choose(api, "Wrong").json()
    second = choose(api, "Right").json()
    assert first["late"] and first["penalty"] == 25
    assert second["penalty"] == 35 and second["final_score"] == 0.65  # attempt and late penalties add up
    assert api.get("/api/v1/items/pick/").json()["policy"]["late"] is True


def test_the_time_limit_counts_from_the_learners_start(
        api: APIClient, site: Client, course_quiz: CourseQuiz, student: User) -> None:
    set_policy(course_quiz, time_limit_minutes=30)
    assert not QuizStart.objects.exists()
    site.get("/items/poly/")  # opening the quiz starts the clock
    start = QuizStart.objects.get(user=student)
    body = api.get("/api/v1/items/poly/").json()
    assert 29 * 60 <= body["policy"]["time_left_seconds"] <= 30 * 60
    assert send_code(api, CODE).status_code == 202
    QuizStart.objects.filter(pk=start.pk).update(started_at=timezone.now() - timedelta(minutes=31))
    assert refusal(send_code(api, CODE + "# late\n")) == "your 30-minute time limit for this quiz is over"


# -- feedback and reveal -----------------------------------------------------------------------------------------


def test_pass_fail_feedback_shows_the_verdict_without_the_checks(api: APIClient, course_quiz: CourseQuiz) -> None:
    set_policy(course_quiz, feedback="pass_fail")
    body = choose(api, "Wrong").json()
    assert body["status"] == "failed" and body["feedback"] == "pass_fail" and body["checks"] == []


def test_feedback_held_back_until_the_due_date(api: APIClient, site: Client, course_quiz: CourseQuiz) -> None:
    set_policy(course_quiz, feedback="after_due", due_at=timezone.now() + timedelta(days=1))
    body = choose(api, "Right").json()
    assert body["status"] == "graded" and body["score"] is None and body["final_score"] is None
    assert body["checks"] == [] and body["feedback"] == "hidden"
    page = site.get(f"/items/pick/?course=ml101&attempt={body['id']}").content.decode()
    assert "Handed in: feedback after the due date" in page and "Correct." not in page
    set_policy(course_quiz, due_at=timezone.now() - timedelta(minutes=1), late="penalty")
    after = api.get(body["url"]).json()
    assert after["status"] == "passed" and after["score"] == 1.0 and after["feedback"] == "full"


def test_the_courses_staff_see_the_whole_verdict_that_learners_wait_for(
        api: APIClient, course: Course, course_quiz: CourseQuiz, student: User) -> None:
    set_policy(course_quiz, feedback="after_due", due_at=timezone.now() + timedelta(days=1))
    mine = send_code(api, CODE).json()
    checks = [{"name": "x.grad", "passed": False, "message": "x.grad is 14.0, expected 7.0", "hidden": True}]
    Submission.objects.filter(pk=mine["id"]).update(status="failed", score=0.0, final_score=0.0, checks=checks)
    learner_view = api.get(mine["url"], {"wait": 5}).json()  # graded: answered at once, feedback held back
    assert learner_view["status"] == "graded" and learner_view["checks"] == [] and learner_view["feedback"] == "hidden"
    teacher = APIClient()
    teacher.force_authenticate(member(course, "teacher", Membership.Role.TA))
    staff_view = teacher.get(mine["url"]).json()
    assert staff_view["status"] == "failed" and staff_view["feedback"] == "full"
    assert staff_view["checks"][0]["message"] == "x.grad is 14.0, expected 7.0"  # not even hidden for them
    outsider = APIClient()
    outsider.force_authenticate(member(CourseFactory.create(slug="elsewhere"), "outsider", Membership.Role.TA))
    assert outsider.get(mine["url"]).status_code == outsider.get(mine["url"], {"wait": 5}).status_code == 404


def test_a_superuser_needs_no_membership_and_is_not_limited(course_quiz: CourseQuiz) -> None:
    set_policy(course_quiz, max_attempts=1, feedback="after_due", due_at=timezone.now() + timedelta(days=1))
    root = APIClient()
    root.force_authenticate(UserFactory.create(username="root", is_superuser=True, enrol=False))
    for n in range(2):
        response = send_code(root, CODE + f"# {n}\n")
        assert response.status_code == 202, response.content
        assert root.get(response.json()["url"]).json()["feedback"] == "full"


def test_the_solution_reveals_after_n_distinct_gradable_attempts(api: APIClient, course_quiz: CourseQuiz) -> None:
    set_policy(course_quiz, reveal="after_attempts", reveal_attempts=2)
    send_code(api, "x = (")  # a syntax error is not an attempt
    send_code(api, CODE + "# one\n")
    refusal(send_code(api, CODE + "# one\n"))  # nor is a repeat
    assert api.get("/api/v1/items/poly/").json()["solution"] is None
    send_code(api, CODE + "# two\n")
    assert "reference-marker" in api.get("/api/v1/items/poly/").json()["solution"]


def test_the_solution_reveals_only_after_the_due_date_when_the_course_says_so(
        api: APIClient, course_quiz: CourseQuiz) -> None:
    set_policy(course_quiz, reveal="after_due", due_at=timezone.now() + timedelta(hours=1))
    choose(api, "Right")  # passing is not enough
    assert api.get("/api/v1/items/pick/").json()["explanation"] is None
    set_policy(course_quiz, due_at=timezone.now() - timedelta(minutes=1))
    assert api.get("/api/v1/items/pick/").json()["explanation"] == "The first one."


def test_unchanged_starters_sent_fast_unlock_nothing(api: APIClient, course_quiz: CourseQuiz) -> None:
    """The issue's own attack: three unchanged starters in a row revealed the solution."""
    for _ in range(3):
        send_code(api, "import torch\n# TODO\n")
    assert api.get("/api/v1/items/poly/").json()["solution"] is None


# -- the same rules through the site -----------------------------------------------------------------------------


def test_the_site_shows_what_applies_and_refuses_what_the_api_refuses(site: Client, course_quiz: CourseQuiz) -> None:
    set_policy(course_quiz, max_attempts=1, penalties="0, 10", due_at=timezone.now() + timedelta(days=2))
    page = site.get("/items/pick/").content.decode()
    assert 'id="policy-attempts-left">1 of 1<' in page and "Machine learning 101" in page and 'id="policy-due"' in page
    wrong = Item.objects.get(slug="pick").choices.get(text="Wrong").pk
    right = Item.objects.get(slug="pick").choices.get(text="Right").pk
    assert site.post("/items/pick/?course=ml101", {"choices": [str(wrong)]}).status_code == 302
    response = site.post("/items/pick/?course=ml101", {"choices": [str(right)]})
    assert response.status_code == 400
    assert "You have used all 1 graded attempt at this item" in response.content.decode()
    assert Submission.objects.count() == 1
    page = site.get("/items/pick/?course=ml101").content.decode()
    assert 'id="policy-attempts-left">0 of 1<' in page and 'id="policy-refusal"' in page


def test_the_sites_check_syntax_button_costs_nothing(site: Client, course_quiz: CourseQuiz) -> None:
    response = site.post("/items/poly/precheck/?course=ml101", {"code": "x = (\n"})
    assert response.status_code == 400 and "SyntaxError" in response.content.decode()
    response = site.post("/items/poly/precheck/?course=ml101", {"code": CODE})
    assert response.status_code == 200 and "The syntax is fine" in response.content.decode()
    assert not Submission.objects.exists()


def test_code_the_screen_refuses_costs_no_attempt_and_a_failed_grading_can_be_sent_again(
        api: APIClient, course_quiz: CourseQuiz) -> None:
    set_policy(course_quiz, max_attempts=1)
    assert send_code(api, "x = ().__class__\n").status_code == 202
    assert Submission.objects.get().attempt is None
    assert send_code(api, CODE).status_code == 202
    Submission.objects.filter(code=CODE).update(status="internal_error")  # the grader failed, not the learner
    assert api.get("/api/v1/items/poly/").json()["policy"]["attempts_left"] == 1
    assert send_code(api, CODE).status_code == 202  # the same code again: it was never graded


@pytest.mark.parametrize("policy, prepare, expected", [
    ({"opens_at": "future"}, None, "opens on"),
    ({"due_at": "past"}, None, "has passed; this quiz takes no late work"),
    ({"max_attempts": 1}, "one attempt", "you have used all 1 graded attempt at this item"),
    ({"cooldown_seconds": 600}, "one attempt", "this course allows one every 600 s"),
    ({"time_limit_minutes": 5}, "started long ago", "your 5-minute time limit for this quiz is over"),
])
def test_every_refusing_rule_says_the_same_on_the_site_and_in_the_api(
        api: APIClient, site: Client, course_quiz: CourseQuiz, student: User, policy: dict[str, object],
        prepare: str | None, expected: str) -> None:
    now = timezone.now()
    values = {k: now + timedelta(days=1) if v == "future" else now - timedelta(days=1) if v == "past" else v
              for k, v in policy.items()}
    set_policy(course_quiz, **values)
    if prepare == "one attempt":
        assert choose(api, "Wrong").status_code == 201
    if prepare == "started long ago":
        QuizStart.objects.create(course_quiz=course_quiz, user=student)
        QuizStart.objects.update(started_at=now - timedelta(minutes=6))
    before = Submission.objects.count()
    assert expected in refusal(choose(api, "Right"))
    right = Item.objects.get(slug="pick").choices.get(text="Right").pk
    response = site.post("/items/pick/?course=ml101", {"choices": [str(right)]})
    page = response.content.decode()
    if "opens on" in expected:  # a quiz not open yet is not there for the learner at all
        assert response.status_code == 404
    else:
        assert response.status_code == 400
        assert expected in page or (expected[0].upper() + expected[1:]) in page  # a message starts with a capital
    assert Submission.objects.count() == before


def test_an_items_attempt_default_round_trips_through_the_content_format(tmp_path: Path) -> None:
    from quiz.content_export import item_document
    from quiz.content_format import ContentError, load_paths

    item = Item.objects.create(quiz=QuizFactory.create(), slug="limited", kind="choice", title="t", prompt="p",
                               max_attempts=2)
    assert item_document(item, checks=[], choices=[])["max_attempts"] == 2
    path = tmp_path / "q.yaml"
    path.write_text("quiz: {slug: q, title: Q}\nitems:\n  - {slug: c, kind: choice, title: T, prompt: P, max_attempts: 0,\n"
                    "     choices: [{text: a, correct: true}, {text: b}]}\n")
    with pytest.raises(ContentError, match="max_attempts.*at least 1"):
        load_paths([path])
    path.write_text(path.read_text().replace("max_attempts: 0", "max_attempts: 4"))
    assert load_paths([path])[0].items[0].max_attempts == 4


def test_held_back_feedback_shows_no_pass_or_score_anywhere(
        api: APIClient, site: Client, course_quiz: CourseQuiz) -> None:
    set_policy(course_quiz, feedback="after_due", reveal="after_pass", due_at=timezone.now() + timedelta(days=1))
    choose(api, "Right")
    body = api.get("/api/v1/items/pick/").json()
    assert body["progress"] == {"attempts": 1, "best_score": None, "passed": False, "revealed": False}
    assert body["explanation"] is None  # passing must not show through an unlocked explanation
    listing = site.get("/quizzes/week1/?course=ml101").content.decode()
    assert "<strong>0</strong> of 2 passed" in listing and "Best 100%" not in listing
    page = site.get("/items/pick/?course=ml101").content.decode()
    assert 'id="progress-best">after the due date<' in page and "The first one." not in page
