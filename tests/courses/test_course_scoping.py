"""Two courses side by side: each course's staff see, regrade and export only their own learners, and
learners see only their own courses' quizzes, through the API, the site and the admin."""
from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from rest_framework.test import APIClient

from courses.models import Course, CourseQuiz, Membership
from grader.models import Submission
from quiz.models import Item
from tests.factories import CourseFactory, CourseQuizFactory, QuizFactory, SubmissionFactory

from .conftest import member

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_courses(course: Course, course_quiz: CourseQuiz) -> dict[str, User]:
    """ml101 (course_quiz: week1) and stats200, which reuses the same quiz; a learner, an instructor and a TA
    in each; one graded attempt by each learner."""
    other = CourseFactory.create(slug="stats200", title="Statistics 200")
    CourseQuizFactory.create(course=other, quiz=course_quiz.quiz)
    people = {}
    group = Group.objects.get(name="instructors")
    for c, prefix in ((course, "ml"), (other, "st")):
        people[f"{prefix}-learner"] = member(c, f"{prefix}-learner")
        people[f"{prefix}-prof"] = member(c, f"{prefix}-prof", Membership.Role.INSTRUCTOR, is_staff=True)
        people[f"{prefix}-ta"] = member(c, f"{prefix}-ta", Membership.Role.TA, is_staff=True)
        people[f"{prefix}-prof"].groups.add(group)
        people[f"{prefix}-ta"].groups.add(group)
        SubmissionFactory.create(user=people[f"{prefix}-learner"], course=c, item=Item.objects.get(slug="poly"),
                                 status="passed", score=1.0, code=f"# secret of {prefix}\n")
    return people


def api_as(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def site_as(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("viewer", ["ml-prof", "ml-ta"])
def test_course_staff_see_only_their_courses_learners_through_the_api(
        two_courses: dict[str, User], viewer: str) -> None:
    api = api_as(two_courses[viewer])
    listed = api.get("/api/v1/submissions/").json()["results"]
    assert {s["learner"] for s in listed} == {"ml-learner"}
    assert api.get("/api/v1/submissions/?learner=st-learner").json()["results"] == []
    theirs = Submission.objects.get(user=two_courses["st-learner"])
    assert api.get(f"/api/v1/submissions/{theirs.pk}/").status_code == 404
    ours = Submission.objects.get(user=two_courses["ml-learner"])
    assert api.get(f"/api/v1/submissions/{ours.pk}/").json()["code"] == "# secret of ml\n"


def test_course_staff_see_only_their_courses_learners_in_the_admin(two_courses: dict[str, User]) -> None:
    admin = site_as(two_courses["ml-prof"])
    page = admin.get("/admin/grader/submission/").content.decode()
    assert "ml-learner" in page and "st-learner" not in page
    theirs = Submission.objects.get(user=two_courses["st-learner"])
    assert admin.get(f"/admin/grader/submission/{theirs.pk}/change/").status_code in (302, 404)
    rows = list(csv.reader(io.StringIO(admin.get("/admin/grader/submission/gradebook.csv").content.decode())))
    assert [row[:2] for row in rows[1:]] == [["ml101", "ml-learner"]]
    assert rows[1][rows[0].index("poly")] == "1"
    courses = admin.get("/admin/courses/course/").content.decode()
    assert "Machine learning 101" in courses and "Statistics 200" not in courses


def test_a_teaching_assistant_looks_but_does_not_change_the_course(
        two_courses: dict[str, User], course: Course) -> None:
    ta = site_as(two_courses["ml-ta"])
    assert ta.get(f"/admin/courses/course/{course.pk}/change/").status_code == 200
    response = ta.post(f"/admin/courses/course/{course.pk}/change/", {"slug": "hacked", "title": "Hacked"})
    assert response.status_code == 403
    course.refresh_from_db()
    assert course.slug == "ml101"


def test_regrading_reaches_only_the_courses_learners(two_courses: dict[str, User]) -> None:
    admin = site_as(two_courses["ml-prof"])
    ids = list(Submission.objects.values_list("pk", flat=True))
    admin.post("/admin/grader/submission/", {"action": "regrade_selected", "_selected_action": ids, "confirm": "yes"})
    regraded = set(Submission.objects.filter(status="queued").values_list("user__username", flat=True))
    assert regraded == {"ml-learner"}


def test_learners_see_only_their_own_courses(two_courses: dict[str, User]) -> None:
    other_quiz = QuizFactory.create(slug="private", title="Private quiz", assign=False)
    CourseQuizFactory.create(course=CourseFactory.create(slug="closed"), quiz=other_quiz)
    api = api_as(two_courses["ml-learner"])
    assert {(q["slug"], q["course"]) for q in api.get("/api/v1/quizzes/").json()} == {("week1", "ml101")}
    assert {i["course"] for i in api.get("/api/v1/items/").json()} == {"ml101"}
    assert "Private quiz" not in site_as(two_courses["ml-learner"]).get("/").content.decode()
    assert api.post("/api/v1/submissions/", {"item": "poly", "code": "x = 1", "course": "stats200"},
                    format="json").status_code == 400
    site = site_as(two_courses["ml-learner"])
    theirs = Submission.objects.get(user=two_courses["st-learner"])
    assert site.get(f"/items/poly/?course=stats200&attempt={theirs.pk}").status_code == 404
    assert site.get(f"/items/poly/?course=ml101&attempt={theirs.pk}").status_code == 404


def test_an_item_in_two_of_your_courses_asks_which(two_courses: dict[str, User], course: Course) -> None:
    both = two_courses["ml-learner"]
    Membership.objects.create(course=two_courses["st-prof"].memberships.get().course, user=both)
    api = api_as(both)
    response = api.post("/api/v1/submissions/", {"item": "poly", "code": "x = 2"}, format="json")
    assert response.status_code == 400
    assert "several of your courses (ml101, stats200)" in response.json()["error"]["fields"]["course"][0]
    page = site_as(both).get("/items/poly/").content.decode()
    assert "?course=ml101" in page and "?course=stats200" in page
    assert api.post("/api/v1/submissions/", {"item": "poly", "code": "x = 2", "course": "stats200"},
                    format="json").status_code == 202


def test_a_join_code_enrols_a_learner(course: Course, course_quiz: CourseQuiz) -> None:
    newcomer = member(CourseFactory.create(slug="elsewhere"), "newcomer")
    site = site_as(newcomer)
    assert "Week 1" not in site.get("/").content.decode()
    page = site.post("/courses/join/", {"code": "nope"}, follow=True).content.decode()
    assert "No course has the join code" in page
    page = site.post("/courses/join/", {"code": " join101 "}, follow=True).content.decode()
    assert "You are enrolled in Machine learning 101" in page and "Week 1" in page
    assert Membership.objects.get(user=newcomer, course=course).role == "learner"


def test_the_courses_api_lists_your_courses_and_roles(two_courses: dict[str, User]) -> None:
    assert api_as(two_courses["ml-ta"]).get("/api/v1/courses/").json() == [
        {"slug": "ml101", "title": "Machine learning 101", "role": "ta"}]


def test_each_course_has_its_own_statistics(two_courses: dict[str, User], course_quiz: CourseQuiz) -> None:
    SubmissionFactory.create(user=two_courses["st-learner"], course=two_courses["st-prof"].memberships.get().course,
                             item=Item.objects.get(slug="poly"), status="failed", score=0.0, code="# again\n")
    body = site_as(two_courses["st-prof"]).get(f"/admin/quiz/quiz/{course_quiz.quiz.pk}/statistics/").content.decode()
    row = body[body.index('<tr id="item-poly">'):]
    assert row[: row.index("</tr>")].count('<td class="num">2</td>') >= 1  # stats200: two attempts, one learner
    body = site_as(two_courses["ml-prof"]).get(f"/admin/quiz/quiz/{course_quiz.quiz.pk}/statistics/").content.decode()
    row = body[body.index('<tr id="item-poly">'):]
    row = row[: row.index("</tr>")]
    assert '<td class="num">1</td>' in row and '<td class="num">2</td>' not in row  # ml101: its one attempt
