"""Platforms are registered in the admin (django-lti's registration pages), beside the tool's own pages."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from lti_tool.models import Key, LtiRegistration

from lti import tool
from tests.factories import UserFactory

from .platform import Platform

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client: Client) -> Client:
    client.force_login(UserFactory.create(username="root", is_staff=True, is_superuser=True))
    return client


def test_the_admin_lists_registered_platforms_and_their_deployments(admin_client: Client, platform: Platform) -> None:
    index = admin_client.get(reverse("admin:index")).content.decode()
    assert "LTI registrations" in index and "LTI courses" in index

    listing = admin_client.get(reverse("admin:lti_tool_ltiregistration_changelist")).content.decode()
    assert "Emulated LMS" in listing and platform.issuer in listing
    registration = LtiRegistration.objects.get()
    page = admin_client.get(reverse("admin:lti_tool_ltiregistration_change", args=[registration.pk])).content.decode()
    assert platform.deployment_id in page, "deployments are edited with their registration"


def test_an_admin_registers_a_platform_with_the_form(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:lti_tool_ltiregistration_add"), {
        "name": "Canvas", "uuid": "6c5b3f5e-0a43-4c16-9f0e-0d7c0c7c3f11", "issuer": "https://canvas.instructure.com",
        "client_id": "10000000000001", "audience": "", "auth_url": "https://sso.canvaslms.com/api/lti/authorize_redirect",
        "token_url": "https://sso.canvaslms.com/login/oauth2/token",
        "keyset_url": "https://sso.canvaslms.com/api/lti/security/jwks", "is_active": "on",
        "public_key": "", "private_key": "",
        "deployments-TOTAL_FORMS": "1", "deployments-INITIAL_FORMS": "0", "deployments-0-deployment_id": "1:abc",
        "deployments-0-is_active": "on", "deployments-0-pns_url": "",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    registration = LtiRegistration.objects.get(client_id="10000000000001")
    assert registration.deployments.get().deployment_id == "1:abc"


def test_the_key_page_never_shows_a_private_key(admin_client: Client) -> None:
    key = tool.signing_key_ensure()
    page = admin_client.get(reverse("admin:lti_tool_key_change", args=[key.pk])).content.decode()
    assert str(key) in page and "PUBLIC KEY" in page
    assert "PRIVATE KEY" not in page
    assert Key.objects.count() == 1
