"""Fixtures of the LTI tests: an emulated platform registered with the tool, and a driver that walks
Django's test client through a launch as a browser would."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from lti_tool.models import LtiContext, LtiDeployment, LtiMembership, LtiResourceLink, LtiUser

from courses.models import Course, Membership
from lti.models import CourseContext, QuizLink

from .platform import Platform, SigningKey, form_fields

TOOL = "http://testserver"  # Django's test client


@pytest.fixture
def platform(db: None) -> Iterator[Platform]:
    """An emulated LMS, registered with the tool; the tool is reached through the test client."""
    lms = Platform(tool_url=TOOL)
    lms.register()
    yield lms
    lms.stop()


@pytest.fixture
def live_platform(live_server: Any) -> Iterator[Platform]:
    """An emulated LMS that can call the tool back over HTTP (its JWKS, for service calls): the tool runs
    as pytest-django's live server, so the test's database is transactional."""
    lms = Platform(tool_url=TOOL, tool_jwks_url=f"{live_server.url}/lti/jwks/")
    lms.register()
    yield lms
    lms.stop()


class Launcher:
    """A browser's part in a launch, on Django's test client: the tool's login initiation, the platform's
    authorization endpoint (over HTTP), and the form post back to the tool."""

    def __init__(self, client: Client, platform: Platform) -> None:
        self.client = client
        self.platform = platform

    def login(self, claims: dict[str, Any]) -> dict[str, str]:
        """OIDC login initiation at the tool: its authorization request to the platform (state, nonce)."""
        params = self.platform.login_params(claims)
        response = self.client.get("/lti/login/", params)
        if response.status_code == 200 and b"lti1p3_new_window" in response.content:
            # django-lti's page that checks the browser keeps cookies, then reloads with this flag.
            response = self.client.get("/lti/login/", {**params, "lti1p3_new_window": "1"})
        assert response.status_code == 302, response.content[:500]
        location = response["Location"]
        assert location.startswith(self.platform.auth_url + "?"), location
        return dict(parse_qsl(urlsplit(location).query))

    def authorize(self, auth_request: dict[str, str]) -> dict[str, str]:
        """The platform's answer to the authorization request: the fields its page posts to the tool."""
        with urllib.request.urlopen(f"{self.platform.auth_url}?{urlencode(auth_request)}", timeout=10) as page:
            action, fields = form_fields(page.read().decode())
        assert action == self.platform.tool_launch_url
        return fields

    def post(self, fields: dict[str, str]) -> Any:
        return self.client.post("/lti/launch/", fields)

    def launch(self, claims: dict[str, Any]) -> Any:
        """A genuine launch, start to end."""
        return self.post(self.authorize(self.login(claims)))

    def forged(self, claims: dict[str, Any], *, key: SigningKey | None = None, kid: str | None = None,
               expires_in: int = 300, issued_at: int | None = None, nonce: str | None = None) -> Any:
        """A launch whose id_token the test signs itself (after a genuine login, so state and cookie are
        right): another key, another nonce, other claims."""
        auth = self.login(claims)
        token = self.platform.id_token(claims, nonce=nonce or auth["nonce"], key=key, kid=kid, expires_in=expires_in,
                                       issued_at=issued_at)
        return self.post({"id_token": token, "state": auth["state"]})


@pytest.fixture
def launcher(client: Client, platform: Platform) -> Launcher:
    return Launcher(client, platform)


def fetch_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{url}: {exc.code} {exc.read()[:300]!r}") from exc


def row_counts() -> dict[str, int]:
    """Rows a launch may write: ours and django-lti's."""
    models = [get_user_model(), Course, Membership, CourseContext, QuizLink, LtiUser, LtiContext, LtiMembership,
              LtiResourceLink, LtiDeployment]
    return {model.__name__: model.objects.count() for model in models}
