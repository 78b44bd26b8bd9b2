"""The grading API without a worker: permissions, refusals, one error shape, tokens."""
from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any, cast

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from pytest_django.fixtures import DjangoCaptureOnCommitCallbacks, Settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from grader.models import Submission
from quiz.models import Item
from tests.factories import SubmissionFactory, UserFactory

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse
    from rest_framework.response import _MonkeyPatchedResponse as APIResponse

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(learner: User, seed_quiz: None) -> APIClient:
    client = APIClient()
    client.force_authenticate(learner)
    return client


def assert_error(
        response: APIResponse | TestResponse, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]
    if field:
        assert field in body["error"]["fields"]
    return body["error"]


def test_anonymous_requests_are_refused_with_the_error_shape(seed_quiz: None) -> None:
    for url in ("/api/v1/quizzes/", "/api/v1/items/", "/api/v1/submissions/"):
        assert_error(APIClient().get(url), 401, "not_authenticated")


def test_learners_never_see_solutions_reference_values_or_hidden_checks(api: APIClient, learner: User) -> None:
    Item.objects.get(slug="grad-of-polynomial").checks.filter(target="y.requires_grad").update(hidden=True)
    body = api.get("/api/v1/items/grad-of-polynomial/").json()
    assert body["solution"] is None and body["explanation"] is None and body["explanation_html"] is None
    assert [c["target"] for c in body["checks"]] == ["x.grad", "x.requires_grad", "x.grad", "y"]
    listing = api.get("/api/v1/items/?quiz=autograd-basics").json()
    text = json.dumps(listing)
    for item in Item.objects.filter(kind="code"):
        assert json.dumps(item.solution_code)[1:-1] not in text, f"solution of {item.slug} leaked"
    assert all(item["solution"] is None and item["explanation"] is None for item in listing)
    assert all(set(check) == {"name", "target", "compare", "weight"} for item in listing for check in item["checks"])
    assert '"values"' not in text and '"expected"' not in text


def test_the_solution_is_revealed_after_passing(api: APIClient, learner: User) -> None:
    item = Item.objects.get(slug="grad-of-polynomial")
    SubmissionFactory.create(user=learner, item=item, status="passed", score=1.0)
    body = api.get("/api/v1/items/grad-of-polynomial/").json()
    assert body["progress"]["passed"] and body["solution"] == item.solution_code
    assert "automatic differentiation" in body["explanation"]


def test_a_learner_cannot_read_another_learners_submission(api: APIClient, other_learner: User) -> None:
    theirs = SubmissionFactory.create(user=other_learner, item=Item.objects.get(slug="zero-grad"), code="secret = 1")
    assert_error(api.get(f"/api/v1/submissions/{theirs.pk}/"), 404, "not_found")
    listing = api.get("/api/v1/submissions/").json()
    assert listing["count"] == 0 and "secret" not in str(listing)


def test_instructors_see_everyones_submissions_and_filter_by_learner(
        seed_quiz: None, learner: User, other_learner: User) -> None:
    from django.contrib.auth.models import Group

    teacher = UserFactory.create(username="teacher", is_staff=True)
    teacher.groups.add(Group.objects.get_or_create(name="instructors")[0])
    item = Item.objects.get(slug="zero-grad")
    SubmissionFactory.create(user=learner, item=item)
    SubmissionFactory.create(user=other_learner, item=item, status="failed")
    client = APIClient()
    client.force_authenticate(teacher)
    assert client.get("/api/v1/submissions/").json()["count"] == 2
    only = client.get("/api/v1/submissions/?learner=grace&status=failed").json()
    assert [r["learner"] for r in only["results"]] == ["grace"]


def test_hidden_checks_keep_only_their_outcome_for_learners(api: APIClient, learner: User) -> None:
    checks = [{"name": "x.grad", "passed": False, "message": "x.grad is 14.0, expected 7.0", "hidden": True}]
    mine = SubmissionFactory.create(user=learner, item=Item.objects.get(slug="grad-of-polynomial"), status="failed",
                                    checks=checks)
    body = api.get(f"/api/v1/submissions/{mine.pk}/").json()
    assert body["checks"] == [{"name": "Hidden check 1", "passed": False, "message": "A hidden check did not pass."}]


@pytest.mark.parametrize(("payload", "field", "fragment"), [
    ({"item": "grad-of-polynomial", "code": "x = 1\n" * 11_000}, "code", "the limit is 65536 bytes"),
    ({"item": "grad-of-polynomial", "code": "a = 1\x00"}, "code", "Null characters are not allowed"),
    ({"item": "grad-of-polynomial", "code": "s = '\ud800'"}, "code", "Surrogate characters are not allowed"),
    ({"item": "no-such-item", "code": "pass"}, "item", "no item 'no-such-item'"),
    ({"item": "grad-of-polynomial"}, "code", "send the code to grade"),
    ({"item": "grad-of-polynomial", "choices": [1]}, "choices", "this is a code item"),
    ({"item": "no-grad-purpose", "choices": [999999]}, "choices", "is not one of this item's choices"),
    ({"item": "no-grad-purpose", "choices": []}, "choices", "choose at least one answer"),
    ({"code": "pass"}, "item", "This field is required"),
])
def test_bad_submissions_are_refused_before_anything_is_stored(
        api: APIClient, payload: dict[str, Any], field: str, fragment: str) -> None:
    body = json.dumps(payload)  # ensure_ascii: a lone surrogate travels as \ud800, as a client would send it
    error = assert_error(api.post("/api/v1/submissions/", body, content_type="application/json"), 400,
                         "validation_error", field)
    assert fragment in str(error["fields"][field]), error
    assert not Submission.objects.exists()


def test_a_body_that_is_not_utf8_json_is_refused(api: APIClient) -> None:
    response = api.post("/api/v1/submissions/", b'{"item": "zero-grad", "code": "\xff\xfe"}',
                        content_type="application/json")
    assert_error(response, 400, "parse_error")
    assert not Submission.objects.exists()


def test_a_choice_answer_is_graded_at_once_with_feedback(api: APIClient, learner: User) -> None:
    item = Item.objects.get(slug="no-grad-purpose")
    right = item.choices.get(correct=True)
    wrong = item.choices.filter(correct=False).first()
    assert wrong is not None
    response = api.post("/api/v1/submissions/", {"item": item.slug, "choices": [wrong.pk]}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "failed" and body["score"] == 0.0 and body["checks"][0]["message"] == wrong.feedback
    body = api.post("/api/v1/submissions/", {"item": item.slug, "choices": [right.pk]}, format="json").json()
    assert body["status"] == "passed" and body["score"] == 1.0


def test_code_is_queued_and_points_at_its_verdict(
        api: APIClient, learner: User, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post("/api/v1/submissions/", {"item": "zero-grad", "code": "import torch"}, format="json")
    assert response.status_code == 202
    body = response.json()
    submission = Submission.objects.get()
    assert body == {"id": submission.pk, "status": "queued", "url": f"/api/v1/submissions/{submission.pk}/"}
    assert response["Location"] == body["url"]
    assert len(callbacks) == 1, "enqueued only once the row is committed"
    assert submission.user == learner and submission.queued_at is not None


def test_submissions_are_throttled_per_user(api: APIClient, learner: User, settings: Settings) -> None:
    from django.core.cache import cache
    from rest_framework.settings import api_settings

    from grader.apis import SubmissionRateThrottle

    cache.clear()
    defaults = cast("dict[str, str | None]", api_settings.DEFAULT_THROTTLE_RATES)  # the stubs say numbers; they are strings
    SubmissionRateThrottle.THROTTLE_RATES = {**defaults, "submissions": "3/min"}
    try:
        item = Item.objects.get(slug="no-grad-purpose")
        first = item.choices.first()
        assert first is not None
        choice = first.pk
        # Different answers each time: a repeat of an earlier answer would be refused before the throttle counts.
        answers = [c.pk for c in item.choices.all()][:4]
        assert len(answers) == 4
        codes = [api.post("/api/v1/submissions/", {"item": item.slug, "choices": [c]}, format="json").status_code
                 for c in answers]
        assert codes == [201, 201, 201, 429]
        assert api.get("/api/v1/submissions/").status_code == 200, "reading is not throttled"
        other = APIClient()
        other.force_authenticate(UserFactory.create(username="someone-else"))
        assert other.post("/api/v1/submissions/", {"item": item.slug, "choices": [choice]}, format="json").status_code == 201
    finally:
        SubmissionRateThrottle.THROTTLE_RATES = defaults
        cache.clear()


def test_a_learner_gets_a_token_and_uses_it(seed_quiz: None) -> None:
    UserFactory.create(username="tokenuser")
    client = APIClient()
    assert_error(client.post("/api/v1/auth/token/", {"username": "tokenuser", "password": "nope"}, format="json"),
                 400, "validation_error")
    token = client.post("/api/v1/auth/token/", {"username": "tokenuser", "password": "pass-word-123"},
                        format="json").json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/quizzes/").json()[0]["slug"] == "autograd-basics"


def test_manage_py_makes_a_token(learner: User) -> None:
    out = io.StringIO()
    call_command("create_api_token", "ada", stdout=out)
    assert out.getvalue().strip() == Token.objects.get(user=learner).key


def test_unknown_api_paths_answer_json(api: APIClient, learner: User) -> None:
    assert_error(api.get("/api/v1/nowhere/"), 404, "not_found")
    # A signed-in browser (a session cookie, no CSRF token) writing to a wrong address: the 404, not a CSRF page.
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(learner)
    assert_error(browser.put("/api/v1/items/not a slug/state/", "{}", content_type="application/json"), 404,
                 "not_found")


def test_schema_and_docs_are_served_without_a_cdn(client: Client) -> None:
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/v1/submissions/" in schema.content
    docs = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in docs and "cdn" not in docs.lower() and "//unpkg" not in docs
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in docs
