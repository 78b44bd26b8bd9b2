"""Launches from a platform: the platform's user and course become ours, with the role the platform
gives, and the learner lands on the quiz of the link."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from lti_tool.models import LtiUser

from courses.models import Course, CourseQuiz, Membership
from lti.identity import lti_username, role_from_lti
from lti.models import CourseContext, QuizLink
from quiz.models import Quiz
from tests.factories import QuizFactory, UserFactory

from .conftest import Launcher, row_counts
from .platform import (AGS, LTI, ROLE_ADMINISTRATOR, ROLE_INSTITUTION_ADMIN, ROLE_INSTRUCTOR, ROLE_LEARNER,
                       ROLE_TA, Platform)

pytestmark = pytest.mark.django_db


@pytest.fixture
def quiz() -> Quiz:
    return QuizFactory.create(slug="autograd-basics", title="Autograd basics")


def quiz_page(quiz_slug: str, course: Course) -> str:
    return reverse("quiz:quiz-detail", args=[quiz_slug]) + f"?course={course.slug}"


def test_a_learner_launch_creates_user_course_and_membership_and_opens_the_quiz(
        launcher: Launcher, platform: Platform, quiz: Quiz) -> None:
    response = launcher.launch(platform.claims(sub="learner-7", roles=[ROLE_LEARNER], custom={"quiz": quiz.slug}))

    assert response.status_code == 302, response.content[:500]
    course = CourseContext.objects.select_related("course").get().course
    assert response["Location"] == quiz_page("autograd-basics", course)
    assert course.title == "Deep learning 101"
    assert course.slug.startswith("course-101-")
    user = get_user_model().objects.get(lti_users__sub="learner-7")
    assert user.username == lti_username(issuer=platform.issuer, sub="learner-7")
    assert not user.has_usable_password()
    assert (user.first_name, user.last_name, user.email) == ("Ada", "Lovelace", "ada@example.edu")
    membership = Membership.objects.get(course=course, user=user)
    assert (membership.role, membership.source) == (Membership.Role.LEARNER, "lti")
    assert CourseQuiz.objects.filter(course=course, quiz=quiz).exists(), "the linked quiz is assigned to the course"
    assert QuizLink.objects.get().quiz == quiz
    assert launcher.client.session["_auth_user_id"] == str(user.pk), "logged in"


def test_an_instructor_launch_makes_an_instructor_of_the_same_course(
        launcher: Launcher, platform: Platform, quiz: Quiz) -> None:
    launcher.launch(platform.claims(sub="learner-7", custom={"quiz": quiz.slug}))
    response = launcher.launch(platform.claims(sub="teacher-1", roles=[ROLE_INSTRUCTOR], given_name="Grace",
                                               family_name="Hopper", email="grace@example.edu",
                                               custom={"quiz": quiz.slug}))

    assert response.status_code == 302
    course = Course.objects.get(lti_contexts__isnull=False)
    assert response["Location"] == quiz_page(quiz.slug, course)
    teacher = get_user_model().objects.get(lti_users__sub="teacher-1")
    assert teacher.get_full_name() == "Grace Hopper"
    assert Membership.objects.get(course=course, user=teacher).role == Membership.Role.INSTRUCTOR
    assert Course.objects.filter(lti_contexts__isnull=False).count() == 1, "one platform course, one Course"
    assert launcher.client.session["_auth_user_id"] == str(teacher.pk), "the session is the instructor's now"


def test_a_second_launch_reuses_the_user_and_follows_the_platforms_profile(
        launcher: Launcher, platform: Platform, quiz: Quiz) -> None:
    launcher.launch(platform.claims(sub="learner-7", custom={"quiz": quiz.slug}))
    launcher.launch(platform.claims(sub="learner-7", custom={"quiz": quiz.slug}, email="ada@new.example.edu"))
    users = get_user_model().objects.filter(lti_users__sub="learner-7")
    assert users.count() == 1
    assert users.get().email == "ada@new.example.edu"
    assert Membership.objects.filter(user=users.get()).count() == 1


def test_a_launch_without_a_quiz_opens_the_courses_quiz_list(launcher: Launcher, platform: Platform) -> None:
    response = launcher.launch(platform.claims(sub="learner-7"))
    course = Course.objects.get(lti_contexts__isnull=False)
    assert response.status_code == 302
    assert response["Location"] == reverse("quiz:quiz-list") + f"?course={course.slug}"


def test_a_link_launched_before_keeps_its_quiz_without_the_custom_parameter(
        launcher: Launcher, platform: Platform, quiz: Quiz) -> None:
    launcher.launch(platform.claims(sub="teacher-1", roles=[ROLE_INSTRUCTOR], custom={"quiz": quiz.slug}))
    response = launcher.launch(platform.claims(sub="learner-7"))
    assert response["Location"].startswith(reverse("quiz:quiz-detail", args=[quiz.slug]))


def test_the_line_item_of_the_launch_is_kept_for_the_scores(launcher: Launcher, platform: Platform, quiz: Quiz) -> None:
    from lti_tool.models import LtiLineItem

    url = platform.line_item_create("course-101", label="Autograd basics", resource_link_id="link-1")
    launcher.launch(platform.claims(sub="learner-7", custom={"quiz": quiz.slug}, line_item=url))
    line_item = LtiLineItem.objects.get()
    assert (line_item.url, line_item.resource_link.id_on_platform, line_item.label) == (url, "link-1", quiz.title)


def test_a_link_to_a_quiz_that_does_not_exist_is_refused_and_stores_nothing(
        launcher: Launcher, platform: Platform) -> None:
    before = row_counts()
    response = launcher.launch(platform.claims(sub="learner-7", custom={"quiz": "no-such-quiz"}))
    assert response.status_code == 404
    assert "no-such-quiz" in response.content.decode()
    assert row_counts() == before


def test_a_learner_cannot_choose_content_by_deep_linking(launcher: Launcher, platform: Platform) -> None:
    before = row_counts()
    response = launcher.launch(platform.claims(sub="learner-7", roles=[ROLE_LEARNER], deep_linking=True))
    assert response.status_code == 403
    assert "Only instructors of a course" in response.content.decode()
    assert row_counts() == before


def test_a_launch_without_a_course_is_refused(launcher: Launcher, platform: Platform) -> None:
    claims = platform.claims(sub="learner-7")
    del claims[LTI + "context"]
    before = row_counts()
    response = launcher.launch(claims)
    assert response.status_code == 400
    assert "names no course" in response.content.decode()
    assert row_counts() == before


def test_a_disabled_account_cannot_come_in_through_the_platform(launcher: Launcher, platform: Platform) -> None:
    launcher.launch(platform.claims(sub="learner-7"))
    get_user_model().objects.filter(lti_users__sub="learner-7").update(is_active=False)
    launcher.client.logout()
    response = launcher.launch(platform.claims(sub="learner-7", context_id="course-202"))
    assert response.status_code == 403
    assert "_auth_user_id" not in launcher.client.session
    assert not Course.objects.filter(lti_contexts__context__id_on_platform="course-202").exists()


def test_a_site_account_named_like_an_lti_user_is_never_taken_over(launcher: Launcher, platform: Platform) -> None:
    squatter = UserFactory.create(username=lti_username(issuer=platform.issuer, sub="learner-7"))
    launcher.launch(platform.claims(sub="learner-7"))
    user = LtiUser.objects.get(sub="learner-7").auth_user
    assert user != squatter
    assert user.username.startswith(squatter.username + "-")


def test_the_ags_claim_without_a_line_item_still_launches(launcher: Launcher, platform: Platform, quiz: Quiz) -> None:
    claims = platform.claims(sub="learner-7", custom={"quiz": quiz.slug})
    claims[AGS].pop("lineitem", None)
    assert launcher.launch(claims).status_code == 302


@pytest.mark.parametrize(("roles", "expected"), [
    ([ROLE_LEARNER], Membership.Role.LEARNER),
    ([ROLE_INSTRUCTOR], Membership.Role.INSTRUCTOR),
    ([ROLE_ADMINISTRATOR], Membership.Role.INSTRUCTOR),
    ([ROLE_INSTRUCTOR, ROLE_TA], Membership.Role.TA),  # the sub-role comes with its principal role
    (["TeachingAssistant"], Membership.Role.TA),  # the short names the spec allows for context roles
    (["Instructor"], Membership.Role.INSTRUCTOR),
    ([ROLE_INSTITUTION_ADMIN, ROLE_LEARNER], Membership.Role.LEARNER),  # a school role is not a course role
    (["http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"], Membership.Role.LEARNER),
    ([], Membership.Role.LEARNER),
])
def test_lti_roles_map_to_course_roles(roles: list[str], expected: str) -> None:
    assert role_from_lti(roles) == expected


def test_a_teaching_assistant_launch_makes_a_ta(launcher: Launcher, platform: Platform) -> None:
    launcher.launch(platform.claims(sub="ta-1", roles=[ROLE_INSTRUCTOR, ROLE_TA]))
    assert Membership.objects.get(user__lti_users__sub="ta-1").role == Membership.Role.TA


def test_the_launch_url_refuses_a_plain_visit(client: Client) -> None:
    assert client.post("/lti/launch/", {}).status_code == 400
    assert client.get("/lti/launch/").status_code == 405
