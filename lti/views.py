"""The tool's endpoints: OIDC login initiation, launch, deep-linking choice, JWKS.

Every refusal is an HTML page with a 4xx status saying what went wrong, never a 500: a launch the
library rejects (signature, expiry, audience, issuer, deployment, replay) is 403 and stores nothing.
"""
from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from lti_tool.models import Key
from lti_tool.views import OIDCLoginInitView
from pylti1p3.contrib.django import DjangoOIDCLogin
from pylti1p3.exception import LtiException, OIDCException

from quiz.models import Quiz

from . import deep_linking, services, tool

logger = logging.getLogger(__name__)

DEEP_LINK_SESSION_KEY = "lti_deep_link_launch"
AUTH_BACKEND = "django.contrib.auth.backends.ModelBackend"


# What the library's refusals mean, for the person who sees the page (its own words follow as details).
EXPLANATIONS = [
    ("Invalid Nonce", "This launch was already used, or did not start here: each launch works once."),
    ("already used", "This launch was already used: each launch works once."),
    ("State not found", "This launch did not start in this browser (or the browser blocks cookies)."),
    ("Signature has expired", "The launch has expired: open the quiz again from your course."),
    ("Signature verification failed", "The launch is not signed by the platform's published keys."),
    ("Unable to find public key", "The launch is not signed by the platform's published keys."),
    ("Registration not found", "The launch does not come from a platform registered here, or is meant for "
                               "another tool (issuer and audience)."),
    ("Unable to find deployment", "This deployment of the tool is not registered here, or not active: an "
                                  "administrator adds it under LTI registrations in the admin."),
]


def refusal(request: HttpRequest, reason: str, *, status: int, title: str = "This launch was refused") -> HttpResponse:
    explanation = next((text for key, text in EXPLANATIONS if key in reason), "")
    return render(request, "lti/error.html", {"title": title, "reason": reason, "explanation": explanation},
                  status=status)


@require_GET
def jwks(request: HttpRequest) -> JsonResponse:
    """Our public keys, for platforms to check what we sign: every active key, so the previous key stays
    published after `manage.py rotate_keys` until it is deactivated."""
    tool.signing_key_ensure()
    return JsonResponse(Key.objects.as_jwks())


class LoginView(OIDCLoginInitView):
    """Step one of a launch (OIDC third-party login initiation): django-lti's view (with its check that
    the browser keeps cookies), on our registry of platforms, with a clear error page for a platform we
    do not know instead of a 500. The id_token always comes back to our launch URL, whatever
    target_link_uri says: a login request cannot send it anywhere else."""

    def get_oidc_response(self, request: HttpRequest, registration_uuid: Any, params: Any) -> HttpResponse:
        if not params.get("target_link_uri"):
            return refusal(request, "The login request has no target_link_uri.", status=400)
        oidc_login = DjangoOIDCLogin(request, tool.ToolConfig(registration_uuid),
                                     launch_data_storage=tool.LaunchStorage())
        try:
            return oidc_login.enable_check_cookies(self.main_msg, self.click_msg, self.loading_msg).redirect(
                request.build_absolute_uri(reverse("lti:launch")))
        except (OIDCException, LtiException) as exc:
            logger.warning("OIDC login refused: %s", exc)
            return refusal(request, f"{exc}. The platform (issuer and client id) must be registered under "
                           "LTI registrations in the admin.", status=400)


@method_decorator((csrf_exempt, xframe_options_exempt, never_cache), name="dispatch")
class LaunchView(View):
    """Step two: the platform posts the signed id_token. A checked launch logs the platform's user in as
    our user and opens the quiz of the resource link (deep linking: the quiz picker)."""

    def post(self, request: HttpRequest) -> HttpResponse:
        if not request.POST.get("id_token") or not request.POST.get("state"):
            return refusal(request, "This address only takes LTI launches posted by a learning platform "
                           "(an id_token and a state).", status=400)
        try:
            lti_launch = tool.launch_validate(request)
        except LtiException as exc:
            logger.warning("LTI launch refused: %s", exc)
            return refusal(request, str(exc), status=403)
        try:
            outcome = services.launch_accept(lti_launch=lti_launch)
        except services.LaunchRefused as exc:
            logger.warning("LTI launch refused after its checks: %s", exc)
            return refusal(request, str(exc), status=exc.status)

        request.session.clear()  # nothing of an earlier session carries over into the platform's user's
        login(request, outcome.user, backend=AUTH_BACKEND)
        if lti_launch.is_deep_link_launch:
            request.session[DEEP_LINK_SESSION_KEY] = lti_launch.get_launch_id()
            return render(request, "lti/deep_link.html", {"quizzes": deep_linking.quiz_choices(),
                                                          "course": outcome.course})
        query = f"?course={outcome.course.slug}"
        if outcome.quiz is None:
            return redirect(reverse("quiz:quiz-list") + query)
        return redirect(reverse("quiz:quiz-detail", args=[outcome.quiz.slug]) + query)


@xframe_options_exempt
@never_cache
@login_required
@require_POST
def deep_link_choose(request: HttpRequest) -> HttpResponse:
    """The instructor's pick: answer the platform with the signed deep-linking response, auto-posted."""
    launch_id = request.session.get(DEEP_LINK_SESSION_KEY)
    quiz = Quiz.objects.filter(slug=request.POST.get("quiz", "")).first()
    if quiz is None:
        return refusal(request, "Choose one of the quizzes.", status=400, title="No quiz chosen")
    if not launch_id:
        return refusal(request, "Open the content picker from your course again: this page was not reached "
                       "through a platform's request to choose content.", status=400, title="No content request")
    try:
        lti_launch = tool.launch_restore(request, launch_id)
        return_url, token = deep_linking.deep_link_answer(
            lti_launch=lti_launch, quiz=quiz, launch_url=request.build_absolute_uri(reverse("lti:launch")))
    except LtiException as exc:
        return refusal(request, f"{exc}. Open the content picker from your course again.", status=400,
                       title="This content request has expired")
    except services.LaunchRefused as exc:
        return refusal(request, str(exc), status=exc.status)
    del request.session[DEEP_LINK_SESSION_KEY]  # one answer per request
    return render(request, "lti/deep_link_response.html", {"return_url": return_url, "jwt": token, "quiz": quiz})
