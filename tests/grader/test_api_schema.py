"""Property-based run of the whole API from its own OpenAPI schema (schemathesis).

Every operation, with generated valid and invalid input, as an authenticated
learner: no 5xx, and every response matches the schema (status codes, content
types, bodies). Runs in-process over WSGI against the test database.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import pytest
import schemathesis
from schemathesis.checks import CheckFunction
from schemathesis.specs.openapi.checks import positive_data_acceptance
from django.contrib.auth.models import User
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from rest_framework.settings import api_settings

from config.wsgi import application
from grader.apis import SubmissionRateThrottle

# Excluded: "schema-valid data must be accepted". By design a well-formed request can
# still be refused by a business rule (wrong password, unknown item slug, code that
# is not UTF-8): those are 400s with the error shape, which every other check verifies.
EXCLUDED: list[CheckFunction] = [positive_data_acceptance]

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@pytest.fixture
def token(seed_quiz: None, learner: User) -> Iterator[str]:
    # Generated requests come fast: lift the per-user throttle, which has its own test.
    defaults = cast("dict[str, str | None]", api_settings.DEFAULT_THROTTLE_RATES)  # the stubs say numbers; they are strings
    SubmissionRateThrottle.THROTTLE_RATES = {**defaults, "submissions": "100000/min"}
    # Raw WSGI calls would close the test's database connection at the end of each
    # request; Django's own test client disconnects this handler the same way.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield Token.objects.create(user=learner).key
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)
    SubmissionRateThrottle.THROTTLE_RATES = defaults


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_honours_its_schema(case: schemathesis.Case, token: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, excluded_checks=EXCLUDED)
