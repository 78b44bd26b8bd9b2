"""Launches: a launch the library has checked becomes our records (user, course, membership, the
resource link's quiz), or is refused with nothing stored."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from lti_tool.models import LtiLaunch, LtiLineItem
from lti_tool.utils import sync_data_from_launch

from courses.models import Course, Membership
from courses.services import membership_ensure, quiz_assign
from quiz.models import Quiz

from .identity import SOURCE, course_for_context, role_from_lti, user_for_lti_user
from .models import CourseContext, QuizLink
from .scores import SCORE_MAXIMUM
from .tasks import sync_roster

logger = logging.getLogger(__name__)

CUSTOM_QUIZ = "quiz"  # the custom parameter (set by deep linking) naming a resource link's quiz
SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")


class LaunchRefused(Exception):
    """A launch that passed the signature checks but that we cannot honour; nothing was stored."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


def quiz_for_launch(*, lti_launch: LtiLaunch) -> Quiz | None:
    """The quiz a resource link opens: its custom parameter `quiz`, else the quiz it opened before."""
    slug = lti_launch.get_custom_claim(CUSTOM_QUIZ)
    if slug:
        slug = str(slug).strip()
        quiz = Quiz.objects.filter(slug=slug).first() if SLUG.match(slug) else None
        if quiz is None:
            raise LaunchRefused(f"This link opens the quiz {slug!r}, which does not exist here. Ask your "
                                "instructor to choose the quiz again.", status=404)
        return quiz
    if lti_launch.is_resource_launch and lti_launch.context_claim is not None:
        link = QuizLink.objects.select_related("quiz").filter(
            resource_link__context__deployment=lti_launch.deployment,
            resource_link__context__id_on_platform=lti_launch.context_claim.get("id", ""),
            resource_link__id_on_platform=(lti_launch.resource_link_claim or {}).get("id", "")).first()
        return link.quiz if link else None
    return None


@dataclass(frozen=True)
class LaunchOutcome:
    user: Any
    course: Course
    course_context: CourseContext
    role: str
    quiz: Quiz | None


def launch_accept(*, lti_launch: LtiLaunch) -> LaunchOutcome:
    """Turn a checked launch into our records: django-lti's (platform user, context, membership, resource
    link), then our user, course, membership with the mapped role, the quiz's assignment to the course and
    the link to the platform's line item. All or nothing: a refused launch leaves no row behind.

    An instructor's launch also refreshes the course's roster from the platform (NRPS), in the background.
    """
    if not (lti_launch.is_resource_launch or lti_launch.is_deep_link_launch):
        raise LaunchRefused("This tool answers resource link and deep linking launches only.", status=400)
    if not lti_launch.context_claim or not lti_launch.context_claim.get("id"):
        raise LaunchRefused("This launch names no course: open the quiz from within a course.", status=400)
    role = role_from_lti(lti_launch.roles_claim or [])
    if lti_launch.is_deep_link_launch and role == Membership.Role.LEARNER:
        raise LaunchRefused("Only instructors of a course can add quizzes to it.")
    quiz = quiz_for_launch(lti_launch=lti_launch)

    with transaction.atomic():
        sync_data_from_launch(lti_launch)
        user = user_for_lti_user(lti_user=lti_launch.user)
        if not user.is_active:
            raise LaunchRefused("This account is disabled on the quiz site.")
        course_context = course_for_context(lti_context=lti_launch.context)
        membership_ensure(course=course_context.course, user=user, role=role, source=SOURCE)
        if quiz is not None and lti_launch.is_resource_launch:
            quiz_assign(course=course_context.course, quiz=quiz)
            QuizLink.objects.update_or_create(resource_link=lti_launch.resource_link, defaults={"quiz": quiz})
            line_item_remember(lti_launch=lti_launch, quiz=quiz)
        if role != Membership.Role.LEARNER and lti_launch.context.memberships_url:
            transaction.on_commit(lambda: sync_roster.delay(course_context.pk))
    return LaunchOutcome(user=user, course=course_context.course, course_context=course_context, role=role,
                         quiz=quiz)


def line_item_remember(*, lti_launch: LtiLaunch, quiz: Quiz) -> LtiLineItem | None:
    """Keep the line item the launch's AGS claim names for its resource link (a link made by deep linking
    with a line item has one), so scores go there."""
    url = (lti_launch.ags_claim or {}).get("lineitem")
    if not url:
        return None
    line_item, _ = LtiLineItem.objects.update_or_create(
        url=url, defaults={"context": lti_launch.context, "resource_link": lti_launch.resource_link,
                           "label": quiz.title[:255], "resource_id": quiz.slug,
                           "maximum_score": SCORE_MAXIMUM})
    return line_item


