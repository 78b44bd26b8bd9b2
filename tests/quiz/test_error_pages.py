"""The learner site's own 404 and 500 pages, whatever DEBUG says (make run has it on)."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from pytest_django.fixtures import Settings

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("debug", [True, False])
def test_a_missing_page_is_the_sites_own_404(client: Client, settings: Settings, learner: User, debug: bool) -> None:
    settings.DEBUG = debug
    client.force_login(learner)
    for url in ("/no/such/page/", "/items/no-such-item/"):
        response = client.get(url)
        body = response.content.decode()
        assert response.status_code == 404
        assert "Page not found" in body and "Back to the quizzes" in body
        assert "URLconf" not in body and "Technical" not in body


def test_the_api_and_the_admin_keep_their_own_answers(client: Client, settings: Settings) -> None:
    settings.DEBUG = True
    api = client.get("/api/v1/nothing/")
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"
