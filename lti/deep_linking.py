"""Deep linking: an instructor picks a quiz in the platform's content picker, and we answer with a
signed LtiDeepLinkingResponse holding one resource link to it (custom parameter quiz=<slug>) and a
line item for its scores."""
from __future__ import annotations

from django.db.models import QuerySet
from lti_tool.models import LtiLaunch
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.lineitem import LineItem

from quiz import selectors as quiz_selectors
from quiz.models import Quiz

from .scores import SCORE_MAXIMUM
from .services import CUSTOM_QUIZ, LaunchRefused

SETTINGS_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"


def quiz_choices() -> QuerySet[Quiz]:
    """The quizzes an instructor can place in a course, with their item counts."""
    return quiz_selectors.quiz_list()


def deep_link_answer(*, lti_launch: LtiLaunch, quiz: Quiz, launch_url: str) -> tuple[str, str]:
    """The platform's return URL and the signed JWT (our newest key) that places `quiz` in the course."""
    if not lti_launch.is_deep_link_launch:
        raise LaunchRefused("This session did not start with a request to choose content.", status=400)
    return_url = (lti_launch.get_claim(SETTINGS_CLAIM) or {}).get("deep_link_return_url", "")
    if not return_url.startswith(("https://", "http://")):
        raise LaunchRefused("The platform gave no usable address to return the chosen quiz to.", status=400)
    resource = (DeepLinkResource().set_type("ltiResourceLink").set_title(quiz.title).set_url(launch_url)
                .set_custom_params({CUSTOM_QUIZ: quiz.slug})
                .set_lineitem(LineItem().set_score_maximum(SCORE_MAXIMUM).set_label(quiz.title)
                              .set_resource_id(quiz.slug)))
    token = lti_launch.get_message_launch().get_deep_link().get_response_jwt([resource])
    return return_url, token
