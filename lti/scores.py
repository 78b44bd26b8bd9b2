"""Assignment and Grade Services: a learner's quiz score goes to the platform's line item after each
graded attempt.

The number is always computed afresh from the database (grader.scores.quiz_score: the course quiz's
policy, best or last attempt, penalties), under a row lock on what was last sent for the line item and
the user; the score carries the verdict's time as its timestamp. A task that finds a newer verdict
already sent does nothing, so duplicate or late deliveries never replace a newer score with an older
one, and sending the same score twice is harmless (the platform keeps the latest timestamp).
"""
from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from lti_tool.lti_core.constants import AgsScope
from lti_tool.models import LtiContext, LtiLineItem, LtiUser
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.grade import Grade
from pylti1p3.lineitem import LineItem

from config import sql
from courses.models import CourseQuiz
from grader.models import Submission
from grader.scores import item_scores, quiz_score

from .models import QuizLink, ScoreSent
from .tool import platform_error, service_connector

logger = logging.getLogger(__name__)

SCORE_MAXIMUM = 100.0  # line items we create, and the scale of the scores we send


def links_for_attempt(*, user_id: int, course_id: int, item_id: int) -> list[int]:
    """The quiz links whose score an attempt changes: links of the attempt's course to a quiz holding the
    item, on platforms where the learner has an LTI identity (a learner who never came through that
    platform has nobody there to give a score to).

    Most learners never came through a platform: for them a plain look at their identities answers (in SQL),
    without building the join below (a quarter of a Celery process's time per graded submission, profiled at
    saturation, went into building it)."""
    if not sql.exists(LtiUser, auth_user=user_id):
        return []
    identity = LtiUser.objects.filter(registration_id=OuterRef("resource_link__context__deployment__registration_id"),
                                      auth_user_id=user_id)
    return list(QuizLink.objects.filter(resource_link__context__course_link__course_id=course_id,
                                        quiz__items__id=item_id)
                .filter(Exists(identity)).values_list("pk", flat=True).distinct().order_by("pk"))


def ags_service(lti_context: LtiContext) -> AssignmentsGradesService:
    """PyLTI1p3's AGS client for a context, with the scopes the platform granted in its launches."""
    granted = [(AgsScope.PUBLISH_SCORES, lti_context.can_publish_scores),
               (AgsScope.MANAGE_LINEITEMS, lti_context.can_manage_lineitems),
               (AgsScope.QUERY_LINEITEMS, lti_context.can_query_lineitems),
               (AgsScope.ACCESS_RESULTS, lti_context.can_access_results)]
    return AssignmentsGradesService(service_connector(lti_context.deployment.registration),
                                    {"scope": [scope.value for scope, ok in granted if ok],
                                     "lineitems": lti_context.lineitems_url})


def line_item_for(*, link: QuizLink) -> LtiLineItem | None:
    """The line item scores of a link go to: the one its launches named, else the platform's line item for
    the resource link, found or created through the context's line items URL. None: the platform offers
    no gradebook column for it."""
    existing = LtiLineItem.objects.filter(resource_link_id=link.resource_link_id).order_by("pk").first()
    if existing is not None:
        return existing
    lti_context = link.resource_link.context
    if not lti_context.lineitems_url or not (lti_context.can_manage_lineitems or lti_context.can_query_lineitems):
        return None
    wanted = (LineItem().set_label(link.quiz.title).set_score_maximum(SCORE_MAXIMUM).set_resource_id(link.quiz.slug)
              .set_resource_link_id(link.resource_link.id_on_platform))
    try:
        found = ags_service(lti_context).find_or_create_lineitem(wanted, find_by="resource_link_id")
    except Exception as exc:
        raise platform_error(exc, f"finding the line item of {link}") from exc
    line_item, _ = LtiLineItem.objects.update_or_create(
        url=found.get_id(), defaults={"context": lti_context, "resource_link": link.resource_link,
                                      "label": (found.get_label() or link.quiz.title)[:255],
                                      "maximum_score": found.get_score_maximum() or SCORE_MAXIMUM,
                                      "resource_id": link.quiz.slug})
    return line_item


def score_publish(*, link_id: int, user_id: int, submission_id: int) -> str:
    """Send the learner's current score on the link's quiz to the platform, unless a newer verdict was
    sent already. Returns what happened ("sent", "stale", or why nothing could be sent); raises
    PlatformUnavailable on a fault worth retrying."""
    link = (QuizLink.objects.select_related("quiz", "resource_link__context__deployment__registration",
                                            "resource_link__context__course_link__course")
            .filter(pk=link_id).first())
    lti_context = link.resource_link.context if link else None
    course_link = getattr(lti_context, "course_link", None)
    if link is None or course_link is None:
        return "gone"
    lti_user = LtiUser.objects.filter(registration=lti_context.deployment.registration, auth_user_id=user_id).first()
    if lti_user is None:
        return "no LTI identity"
    times = Submission.objects.filter(pk=submission_id, user_id=user_id).values("finished_at", "created_at").first()
    course_quiz = CourseQuiz.objects.filter(course=course_link.course, quiz=link.quiz).select_related("quiz").first()
    if times is None or course_quiz is None:
        return "gone"
    verdict_at = times["finished_at"] or times["created_at"]
    if not lti_context.can_publish_scores:
        return "no score scope"
    line_item = line_item_for(link=link)
    if line_item is None:
        return "no line item"

    with transaction.atomic():
        # One sender at a time per line item and user: the check and the send cannot interleave.
        record, _ = ScoreSent.objects.select_for_update().get_or_create(line_item=line_item, user_id=user_id)
        if record.verdict_at is not None and verdict_at < record.verdict_at:
            logger.info("%s for user %s: verdict of submission %s is older than the one sent; not sent",
                        line_item.url, user_id, submission_id)
            return "stale"
        score = quiz_score(user_id=user_id, course_quiz=course_quiz)
        done = all(s.attempts for s in item_scores(user_id=user_id, course_quiz=course_quiz).values())
        grade = (Grade().set_score_given(round(score * SCORE_MAXIMUM, 4)).set_score_maximum(SCORE_MAXIMUM)
                 .set_activity_progress("Completed" if done else "Submitted").set_grading_progress("FullyGraded")
                 .set_timestamp(verdict_at.isoformat()).set_user_id(lti_user.sub))
        try:
            ags_service(lti_context).put_grade(grade, LineItem({"id": line_item.url}))
        except Exception as exc:
            raise platform_error(exc, f"sending a score to {line_item.url}") from exc
        record.score, record.verdict_at, record.submission_id = score, verdict_at, submission_id
        record.sent_at = timezone.now()
        record.save(update_fields=["score", "verdict_at", "submission_id", "sent_at"])
    logger.info("%s for user %s: sent %.4f (submission %s)", line_item.url, user_id, score, submission_id)
    return "sent"
