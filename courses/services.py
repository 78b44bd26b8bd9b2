"""Writes of courses: enrolment and the start of a timed quiz."""
from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction

from quiz.models import Quiz

from .models import DEFAULT_COURSE_SLUG, Course, CourseQuiz, Membership, QuizStart
from .roles import INSTRUCTORS_GROUP


class EnrolmentRefused(Exception):
    """The join code matched no course; nothing was stored."""


def membership_ensure(*, course: Course, user: Any, role: str = Membership.Role.LEARNER,
                      source: str = "site") -> Membership:
    """The user's membership of the course, created with `role` if missing. An existing role is kept unless
    `role` ranks higher (a learner made TA by the LMS becomes TA; an instructor is never demoted here)."""
    rank = {Membership.Role.LEARNER: 0, Membership.Role.TA: 1, Membership.Role.INSTRUCTOR: 2}
    try:
        with transaction.atomic():
            membership, created = Membership.objects.get_or_create(
                course=course, user=user, defaults={"role": role, "source": source})
    except IntegrityError:  # created by a concurrent request
        membership, created = Membership.objects.get(course=course, user=user), False
    if not created and rank[Membership.Role(role)] > rank[Membership.Role(membership.role)]:
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


def course_join(*, user: Any, code: str) -> Membership:
    """Enrol a user as a learner with a course's join code (case and spaces ignored)."""
    course = Course.objects.filter(join_code=code.strip().upper()).first()
    if course is None:
        raise EnrolmentRefused(f"no course has the join code {code.strip()!r}: check it with your instructor")
    return membership_ensure(course=course, user=user, source="code")


def self_enrol(*, user: Any) -> list[Membership]:
    """Enrol a new user in every course open to self-enrolment (an install's default course)."""
    return [membership_ensure(course=course, user=user) for course in Course.objects.filter(self_enrol=True)]


def default_course() -> Course:
    """The install's default course (created by the migration; made here for empty databases)."""
    course, _ = Course.objects.get_or_create(slug=DEFAULT_COURSE_SLUG,
                                             defaults={"title": "Autograd course", "self_enrol": True})
    return course


def quiz_assign(*, course: Course, quiz: Quiz, **policy: Any) -> CourseQuiz:
    """Assign a quiz to a course (the existing assignment and its policy are kept)."""
    course_quiz, _ = CourseQuiz.objects.get_or_create(course=course, quiz=quiz,
                                                      defaults={"order": quiz.order, **policy})
    return course_quiz


def quiz_start(*, course_quiz: CourseQuiz, user: Any) -> QuizStart:
    """Record when a learner starts a course quiz (once: a second call returns the first start)."""
    try:
        with transaction.atomic():
            start, _ = QuizStart.objects.get_or_create(course_quiz=course_quiz, user=user)
    except IntegrityError:
        start = QuizStart.objects.get(course_quiz=course_quiz, user=user)
    return start


DEMO_USERS = (("learner", "learner", "learner-demo-pass"), ("instructor", "instructor", "instructor-demo-pass"))


def demo_users_ensure() -> list[tuple[str, str, str]]:
    """The `make run` demo accounts: a learner, and an instructor (staff, in the instructors group)."""
    users = get_user_model()
    for role, username, password in DEMO_USERS:
        user, _ = users.objects.get_or_create(username=username)
        user.set_password(password)
        user.is_staff = role == "instructor"
        user.save()
        if role == "instructor":
            user.groups.add(Group.objects.get_or_create(name=INSTRUCTORS_GROUP)[0])
        membership_ensure(course=default_course(), user=user,
                          role=Membership.Role.INSTRUCTOR if role == "instructor" else Membership.Role.LEARNER)
    return list(DEMO_USERS)
