"""Deep linking: an instructor picks a quiz; the platform receives a response signed by the tool that
places a resource link to it, with a line item, and learners launching that link land on the quiz."""
from __future__ import annotations

import html
import re
import urllib.request
from urllib.parse import urlencode

import jwt
import pytest
from django.test import Client
from django.urls import reverse
from lti_tool.models import LtiLineItem

from courses.models import Course, Membership
from quiz.models import Quiz
from tests.factories import QuizFactory

from .conftest import Launcher, fetch_json
from .platform import CONTENT_ITEMS, LTI, ROLE_INSTRUCTOR, ROLE_LEARNER, Platform, form_fields


@pytest.fixture
def quizzes(db: None) -> list[Quiz]:
    return [QuizFactory.create(slug="autograd-basics", title="Autograd basics"),
            QuizFactory.create(slug="autograd-in-practice", title="Autograd in practice")]


def pick(launcher: Launcher, quiz_slug: str) -> tuple[str, dict[str, str]]:
    """An instructor's deep-linking launch, the picker, and the choice: the auto-posting answer's form."""
    response = launcher.launch(launcher.platform.claims(sub="teacher-1", roles=[ROLE_INSTRUCTOR], deep_linking=True))
    assert response.status_code == 200, response.content[:500]
    page = response.content.decode()
    assert "Choose a quiz for Deep learning 101" in page
    assert re.findall(r'name="quiz" value="([^"]+)"', page) == ["autograd-basics", "autograd-in-practice"]
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert found is not None, page
    csrf = found.group(1)
    answer = launcher.client.post(reverse("lti:deep-link"), {"quiz": quiz_slug, "csrfmiddlewaretoken": csrf})
    assert answer.status_code == 200, answer.content[:500]
    return form_fields(answer.content.decode())


def test_the_chosen_quiz_goes_back_signed_and_its_link_launches_the_quiz(
        live_platform: Platform, quizzes: list[Quiz]) -> None:
    client = Client(enforce_csrf_checks=True)  # as a browser: the launch is exempt, the picker's form is not
    launcher = Launcher(client, live_platform)
    action, fields = pick(launcher, "autograd-in-practice")

    assert action == f"{live_platform.url}/deep-link-return"
    # The response verifies against the tool's published keys...
    token = fields["JWT"]
    kid = jwt.get_unverified_header(token)["kid"]
    assert live_platform.tool_jwks_url is not None
    key = next(k for k in fetch_json(live_platform.tool_jwks_url)["keys"] if k["kid"] == kid)
    claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience=live_platform.issuer)
    assert claims["iss"] == live_platform.client_id
    assert claims[LTI + "message_type"] == "LtiDeepLinkingResponse"
    assert claims[LTI + "deployment_id"] == live_platform.deployment_id
    [item] = claims[CONTENT_ITEMS]
    assert item["type"] == "ltiResourceLink"
    assert item["url"] == live_platform.tool_launch_url
    assert item["custom"] == {"quiz": "autograd-in-practice"}
    assert item["lineItem"] == {"scoreMaximum": 100.0, "label": "Autograd in practice",
                                "resourceId": "autograd-in-practice"}

    # ...and the platform takes it (it checks it against /lti/jwks/ too) and places the link.
    request = urllib.request.Request(action, data=urlencode(fields).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as page:
        assert "Added: Autograd in practice" in html.unescape(page.read().decode())
    [placed] = live_platform.placed
    assert placed.custom == {"quiz": "autograd-in-practice"} and placed.line_item

    # A learner opens the placed link: the quiz page of the course, scores bound for its line item.
    learner = Launcher(Client(enforce_csrf_checks=True), live_platform)
    response = learner.launch(live_platform.placed_link_claims(placed, sub="learner-7", roles=[ROLE_LEARNER]))
    course = Course.objects.get(lti_contexts__isnull=False)
    assert response["Location"] == reverse("quiz:quiz-detail", args=["autograd-in-practice"]) + f"?course={course.slug}"
    assert LtiLineItem.objects.get().url == placed.line_item
    assert Membership.objects.get(user__lti_users__sub="teacher-1").role == Membership.Role.INSTRUCTOR


def test_an_answer_is_given_once_per_request(client: Client, platform: Platform, quizzes: list[Quiz]) -> None:
    launcher = Launcher(client, platform)
    pick(launcher, "autograd-basics")
    again = client.post(reverse("lti:deep-link"), {"quiz": "autograd-basics"})
    assert again.status_code == 400
    assert "Open the content picker from your course again" in again.content.decode()


def test_the_picker_needs_a_deep_linking_launch(client: Client, platform: Platform, quizzes: list[Quiz]) -> None:
    launcher = Launcher(client, platform)
    launcher.launch(platform.claims(sub="teacher-1", roles=[ROLE_INSTRUCTOR]))  # a plain resource launch
    response = client.post(reverse("lti:deep-link"), {"quiz": "autograd-basics"})
    assert response.status_code == 400
    anonymous = client.__class__().post(reverse("lti:deep-link"), {"quiz": "autograd-basics"})
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
