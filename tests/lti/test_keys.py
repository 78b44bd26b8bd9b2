"""The tool's keys: published at /lti/jwks/, rotated with `manage.py rotate_keys` without breaking what
the previous key signed."""
from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from lti_tool.models import Key, LtiRegistration

from lti import tool

from .conftest import fetch_json
from .platform import SCOPE_NRPS, Platform, Refused


def published_kids(client: Client) -> list[str]:
    response = client.get("/lti/jwks/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return [key["kid"] for key in response.json()["keys"]]


@pytest.mark.django_db
def test_the_jwks_publishes_the_public_signing_key_at_lti_jwks(client: Client) -> None:
    kids = published_kids(client)
    key = Key.objects.get()
    assert kids == [str(key)]
    jwk = client.get("/lti/jwks/").json()["keys"][0]
    assert (jwk["kty"], jwk["alg"], jwk["use"]) == ("RSA", "RS256", "sig")
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk), "never the private parts"


@pytest.mark.django_db
def test_rotation_keeps_the_previous_key_published_beside_the_new_one(client: Client) -> None:
    old = str(tool.signing_key_ensure())
    call_command("rotate_keys", stdout=open("/dev/null", "w"))
    new = str(Key.objects.latest())
    assert new != old
    assert sorted(published_kids(client)) == sorted([old, new])
    assert str(tool.signing_key_ensure()) == new, "the newest key signs"


@pytest.mark.django_db
def test_rotation_retires_keys_older_than_the_window(client: Client) -> None:
    """Rotating every 30 days with --deactivate-after 31 keeps exactly the current and the previous key."""
    ancient, previous = Key.objects.generate(), Key.objects.generate()
    Key.objects.filter(pk=ancient.pk).update(datetime_created=timezone.now() - timedelta(days=60))
    Key.objects.filter(pk=previous.pk).update(datetime_created=timezone.now() - timedelta(days=30))
    call_command("rotate_keys", "--deactivate-after", "31", stdout=open("/dev/null", "w"))
    current = Key.objects.latest()
    assert sorted(published_kids(client)) == sorted([str(previous), str(current)])


def test_after_rotation_service_calls_are_signed_with_the_new_key_and_accepted(live_platform: Platform) -> None:
    registration = LtiRegistration.objects.get()
    old_key = tool.signing_key_ensure()
    old = str(old_key)
    tool.service_connector(registration).get_access_token([SCOPE_NRPS])
    assert live_platform.recorded.assertions[-1]["kid"] == old

    # Something signed with the old key just before the rotation (a deep-linking answer in flight).
    in_flight = jwt.encode({"iss": live_platform.client_id, "aud": live_platform.issuer, "iat": 0, "exp": 2**31},
                           old_key.private_key, algorithm="RS256", headers={"kid": old})

    call_command("rotate_keys", stdout=open("/dev/null", "w"))
    new = str(Key.objects.latest())
    assert live_platform.tool_jwks_url is not None
    published = [k["kid"] for k in fetch_json(live_platform.tool_jwks_url)["keys"]]
    assert sorted(published) == sorted([old, new])

    token = tool.service_connector(LtiRegistration.objects.get()).get_access_token([SCOPE_NRPS])
    assert token, "the platform accepted the assertion"
    assert live_platform.recorded.assertions[-1]["kid"] == new
    assert live_platform.verify_tool_jwt(in_flight, audience=live_platform.issuer)["kid"] == old, \
        "what the previous key signed still verifies"
    assert live_platform.recorded.refused == []


def test_a_key_the_tool_no_longer_publishes_is_refused_by_the_platform(live_platform: Platform) -> None:
    """The emulator really checks the tool's JWKS: a retired key's signature is refused."""
    retired = tool.signing_key_ensure()
    signed = jwt.encode({"iss": live_platform.client_id, "aud": live_platform.issuer, "iat": 0, "exp": 2**31},
                        retired.private_key, algorithm="RS256", headers={"kid": str(retired)})
    call_command("rotate_keys", stdout=open("/dev/null", "w"))
    Key.objects.filter(pk=retired.pk).update(is_active=False)
    with pytest.raises(Refused, match="has no key"):
        live_platform.verify_tool_jwt(signed, audience=live_platform.issuer)
