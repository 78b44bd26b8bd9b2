"""Launches that must be refused: a clear 4xx page, nobody logged in, and not one row written (ours or
django-lti's)."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
from django.test import Client


from .conftest import Launcher, row_counts
from .platform import LTI, Platform, SigningKey

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse

pytestmark = pytest.mark.django_db


def assert_refused(
        response: TestResponse, reason: str, before: dict[str, int], client: Client, status: int = 403) -> None:
    page = response.content.decode()
    assert response.status_code == status, page[:500]
    assert "This launch was refused" in page
    assert reason in page, page
    assert row_counts() == before, "a refused launch stores nothing"
    assert "_auth_user_id" not in client.session, "and logs nobody in"


def test_a_token_signed_with_another_key_is_refused(launcher: Launcher, platform: Platform) -> None:
    before = row_counts()
    # Another key presented under the platform's key id: the signature does not verify.
    response = launcher.forged(platform.claims(sub="mallory"), key=SigningKey(), kid=platform.key.kid)
    assert_refused(response, "Signature verification failed", before, launcher.client)


def test_a_token_under_a_key_id_the_platform_does_not_publish_is_refused(
        launcher: Launcher, platform: Platform) -> None:
    before = row_counts()
    response = launcher.forged(platform.claims(sub="mallory"), key=SigningKey())
    assert_refused(response, "Unable to find public key", before, launcher.client)


def test_a_replayed_launch_is_refused(launcher: Launcher, platform: Platform) -> None:
    claims = platform.claims(sub="learner-7")
    fields = launcher.authorize(launcher.login(claims))
    assert launcher.post(fields).status_code == 302
    launcher.client.logout()
    before = row_counts()
    # The very same form posted again (the state is still valid for that token): the nonce is spent.
    assert_refused(launcher.post(fields), "already used", before, launcher.client)
    assert "Invalid Nonce" in launcher.post(fields).content.decode()


def test_a_new_token_carrying_a_spent_nonce_is_refused(launcher: Launcher, platform: Platform) -> None:
    first = launcher.login(platform.claims(sub="learner-7"))
    assert launcher.post(launcher.authorize(first)).status_code == 302
    launcher.client.logout()
    before = row_counts()
    response = launcher.forged(platform.claims(sub="learner-8"), nonce=first["nonce"])
    assert_refused(response, "Invalid Nonce", before, launcher.client)


def test_a_nonce_the_tool_never_issued_is_refused(launcher: Launcher, platform: Platform) -> None:
    before = row_counts()
    response = launcher.forged(platform.claims(sub="mallory"), nonce="made-up-nonce")
    assert_refused(response, "Invalid Nonce", before, launcher.client)


def test_a_token_for_another_audience_is_refused(launcher: Launcher, platform: Platform) -> None:
    before = row_counts()
    response = launcher.forged(platform.claims(sub="mallory", aud="some-other-tool"))
    assert_refused(response, "Registration not found", before, launcher.client)


def test_a_token_for_several_audiences_must_name_us_as_authorized_party(launcher: Launcher, platform: Platform) -> None:
    before = row_counts()
    response = launcher.forged(platform.claims(sub="mallory", aud=[platform.client_id, "some-other-tool"],
                                               azp="some-other-tool"))
    assert_refused(response, "authorized party", before, launcher.client)


def test_an_expired_token_is_refused(launcher: Launcher, platform: Platform) -> None:
    before = row_counts()
    response = launcher.forged(platform.claims(sub="mallory"), issued_at=int(time.time()) - 600, expires_in=300)
    assert_refused(response, "Signature has expired", before, launcher.client)


def test_an_unknown_deployment_is_refused(launcher: Launcher, platform: Platform) -> None:
    before = row_counts()
    unknown: dict[str, Any] = {LTI + "deployment_id": "deployment-unknown"}
    response = launcher.forged(platform.claims(sub="mallory", **unknown))
    assert_refused(response, "Unable to find deployment", before, launcher.client)


def test_an_inactive_deployment_is_refused(launcher: Launcher, platform: Platform) -> None:
    from lti_tool.models import LtiDeployment

    LtiDeployment.objects.update(is_active=False)
    before = row_counts()
    response = launcher.forged(platform.claims(sub="mallory"))
    assert_refused(response, "Unable to find deployment", before, launcher.client)


def test_an_unknown_issuer_is_refused(launcher: Launcher, platform: Platform) -> None:
    before = row_counts()
    response = launcher.forged(platform.claims(sub="mallory", iss="https://lms.example.org"))
    assert_refused(response, "Registration not found", before, launcher.client)


def test_a_login_from_an_unknown_platform_is_refused(client: Client, platform: Platform) -> None:
    params = {**platform.login_params(platform.claims(sub="mallory")), "iss": "https://lms.example.org",
              "lti1p3_new_window": "1"}
    before = row_counts()
    response = client.get("/lti/login/", params)
    assert response.status_code == 400
    assert "Could not find registration details" in response.content.decode()
    assert row_counts() == before


def test_a_launch_posted_without_a_login_is_refused(client: Client, platform: Platform) -> None:
    before = row_counts()
    token = platform.id_token(platform.claims(sub="mallory"), nonce="n")
    response = client.post("/lti/launch/", {"id_token": token, "state": "state-made-up"})
    assert_refused(response, "State not found", before, client)
