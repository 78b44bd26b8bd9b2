"""Every bad body or query gets the API's JSON error shape, never a 5xx (issue 14, point 7).

Deep nesting, oversized bodies, NUL in a query parameter, form fields that are not UTF-8 and a JSON number
where code belongs, each named; then hypothesis throws deeply nested and huge bodies of every kind at the
submission API and asserts that no 5xx comes back.
"""
from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from rest_framework.test import APIClient

from config.parsers import MAX_JSON_DEPTH, FormParser, JSONParser, PayloadTooLarge, json_depth
from grader.models import Submission

pytestmark = pytest.mark.django_db
URL = "/api/v1/submissions/"
CODE = "import torch\nx = torch.tensor(2.0, requires_grad=True)\n(x ** 2 + 3 * x + 1).backward()\n"


def nested(depth: int, leaf: Any = 1, kind: str = "list") -> str:
    """JSON text of `leaf` wrapped in `depth` lists (or objects), built without recursion."""
    if kind == "list":
        return "[" * depth + json.dumps(leaf) + "]" * depth
    return '{"a":' * depth + json.dumps(leaf) + "}" * depth


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"], body
    return body["error"]


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1_000, 100_000])
@pytest.mark.parametrize("where", ["body", "item", "code", "choices", "course"])
def test_json_nested_too_deeply_is_a_400_wherever_it_is(api: APIClient, where: str, depth: int) -> None:
    deep = nested(depth, kind="dict" if where == "course" else "list")
    fields = {"item": '"poly"', "code": json.dumps(CODE)}
    fields[where] = deep
    body = deep if where == "body" else "{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}"
    error = assert_error(api.post(URL, body, content_type="application/json"), 400, "parse_error")
    assert f"nested more than {MAX_JSON_DEPTH} levels deep" in error["message"]
    assert not Submission.objects.exists()


def test_json_nested_up_to_the_limit_is_read(api: APIClient) -> None:
    # An envelope field the API ignores, 32 deep with the body itself: the cap does not refuse real clients.
    body = '{"item": "poly", "code": ' + json.dumps(CODE) + ', "client": ' + nested(MAX_JSON_DEPTH - 1) + "}"
    assert json_depth(json.loads(body)) == MAX_JSON_DEPTH
    response = api.post(URL, body, content_type="application/json")
    assert response.status_code == 202, response.content
    assert Submission.objects.count() == 1


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded", "text/plain"])
def test_a_body_over_the_limit_is_a_json_413(api: APIClient, settings: Any, content_type: str) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100_000
    body = json.dumps({"item": "poly", "code": "#" * 200_000}) if "json" in content_type else "code=" + "a" * 200_000
    error = assert_error(api.post(URL, body, content_type=content_type), 413, "payload_too_large")
    assert "100000 bytes" in error["message"]
    anonymous = APIClient().post(URL, body, content_type=content_type)
    assert_error(anonymous, 413, "payload_too_large")  # refused before authentication reads anything
    assert not Submission.objects.exists()


def test_the_default_limit_answers_413_past_2_5_mb(api: APIClient) -> None:
    body = json.dumps({"item": "poly", "code": "#" * 2_700_000})
    assert_error(api.post(URL, body, content_type="application/json"), 413, "payload_too_large")


@pytest.mark.parametrize("parser", [JSONParser(), FormParser()])
def test_the_parsers_stop_at_the_limit_without_a_content_length(parser: Any, settings: Any) -> None:
    # Chunked bodies carry no Content-Length for the middleware to check: the parsers count themselves.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    with pytest.raises(PayloadTooLarge):
        parser.parse(io.BytesIO(b'{"code": "' + b"a" * 5_000 + b'"}'), parser_context={})


def test_nul_in_a_query_parameter_is_a_400_not_a_database_error(api: APIClient) -> None:
    # PostgreSQL refuses text with NUL in it; Django answered 500.
    error = assert_error(api.get("/api/v1/items/?quiz=%00"), 400, "validation_error")
    assert "quiz" in error["fields"] and "NUL" in error["message"]
    assert_error(api.get("/api/v1/submissions/?item=a%00b&status=queued"), 400, "validation_error")
    assert api.get("/api/v1/items/?quiz=basics").status_code == 200
    page = api.get("/?course=%00")
    assert page.status_code == 400 and b"NUL" in page.content


def test_form_fields_that_are_not_utf8_are_refused(api: APIClient) -> None:
    for body in (b"item=poly&code=x%3D%FF%FE", b"item=poly&code=x=\xff"):
        response = api.post(URL, body, content_type="application/x-www-form-urlencoded")
        error = assert_error(response, 400, "parse_error")
        assert "utf-8" in error["message"]
    assert not Submission.objects.exists(), "nothing stored with U+FFFD in place of the bad bytes"
    good = api.post(URL, "item=poly&code=" + "%23%20%C3%A9t%C3%A9%0A" + CODE.replace("\n", "%0A"),
                    content_type="application/x-www-form-urlencoded")
    assert good.status_code == 202, good.content
    assert Submission.objects.get().code.startswith("# été\n")


@pytest.mark.parametrize("code", [5, 1.5, True, ["import torch"], {"src": "x"}])
def test_code_must_be_a_json_string(api: APIClient, code: Any) -> None:
    error = assert_error(api.post(URL, {"item": "poly", "code": code}, format="json"), 400, "validation_error")
    assert "code" in error["fields"]
    assert not Submission.objects.exists()


# Hypothesis: bodies deeply nested or huge, as a whole or in any field, in JSON, as a form or as junk.
_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
_field = st.sampled_from(["item", "code", "choices", "course", "extra"])


@st.composite
def _bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    shape = draw(st.sampled_from(["deep", "deep-field", "huge-field", "huge-list", "junk", "form-deep", "wide"]))
    depth = draw(st.one_of(st.integers(1, 64), st.integers(900, 1100), st.integers(5_000, 200_000)))
    kind = draw(st.sampled_from(["list", "dict"]))
    if shape == "deep":
        return "application/json", nested(depth, draw(_scalar), kind).encode()
    if shape == "deep-field":
        fields = {"item": '"poly"', "code": json.dumps(CODE)}
        fields[draw(_field)] = nested(depth, draw(_scalar), kind)
        return "application/json", ("{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}").encode()
    if shape == "huge-field":
        size = draw(st.sampled_from([70_000, 1_000_000, 2_600_000, 3_000_000]))
        return "application/json", json.dumps({"item": "poly", draw(_field): "x" * size}).encode()
    if shape == "huge-list":
        count = draw(st.sampled_from([10_000, 300_000]))
        return "application/json", json.dumps({"item": "pick", "choices": list(range(count))}).encode()
    if shape == "form-deep":
        return "application/x-www-form-urlencoded", ("item=poly&code=" + "%5B" * depth).encode()
    if shape == "wide":  # many keys at depth 2: wide, not deep
        return "application/json", json.dumps({f"k{i}": [i] for i in range(depth)}).encode()
    return draw(st.sampled_from(["application/json", "application/x-www-form-urlencoded"])), draw(
        st.binary(max_size=2_000))


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=_bodies())
def test_no_bad_body_gets_a_5xx(api: APIClient, choice_item: Any, unthrottled: None,
                                body: tuple[str, bytes]) -> None:
    content_type, data = body
    response = api.post(URL, data, content_type=content_type)
    assert response.status_code < 500, (response.status_code, data[:200])
    assert response["Content-Type"].startswith("application/json")
    if response.status_code >= 400:
        payload = response.json()
        assert set(payload) == {"error"} and {"code", "message"} <= set(payload["error"]), payload
