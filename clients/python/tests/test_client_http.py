"""The client's HTTP behaviour against a scripted server: verdicts, long-polls, retries with one
Idempotency-Key, and a clear exception for every way the server can say no or fail."""
from __future__ import annotations

import socket
import time

import pytest
from fakeserver import Answer, FakeServer, verdict

from autograd_quiz import (AuthenticationFailed, Client, GradingTimeout, NoAnswer, Refused, ServerError,
                           ServerTimeout, ServerUnreachable, Throttled)

SUBMISSIONS = "/api/v1/submissions/"
CODE = "import torch\nx = torch.tensor(2.0, requires_grad=True)\n(x**2).backward()\n"


def test_a_verdict_within_the_post_wait_needs_one_request(server: FakeServer) -> None:
    server.on("POST", SUBMISSIONS, Answer(201, verdict("passed")))
    result = Client(server.url, "tok", course="default").grade("grad-of-polynomial", CODE)
    assert result.data["status"] == "passed"
    [post] = server.requests
    assert post.body == {"item": "grad-of-polynomial", "code": CODE, "course": "default"}
    assert post.headers["Authorization"] == "Token tok"
    assert float(post.query["wait"][0]) == 25


def test_a_queued_submission_is_long_polled_until_its_verdict(server: FakeServer) -> None:
    server.on("POST", SUBMISSIONS, Answer(202, {"id": 7, "status": "queued", "url": "/api/v1/submissions/7/"}))
    server.on("GET", "/api/v1/submissions/7/", Answer(200, verdict("running")), Answer(200, verdict("failed")))
    result = Client(server.url, "tok").grade("grad-of-polynomial", CODE)
    assert result.data["status"] == "failed"
    polls = server.seen("GET", "/api/v1/submissions/7/")
    assert len(polls) == 2 and all("wait" in p.query for p in polls)


def test_a_turned_away_long_poll_backs_off_as_the_server_says_doubling_in_a_row(server: FakeServer) -> None:
    """A pending answer given at once with Retry-After (the server has too many clients waiting) is not asked
    again at once: after Retry-After, twice that after a second such answer in a row; an answer that waited
    resets it."""
    turned_away = Answer(200, verdict("queued"), headers={"Retry-After": "1"})
    server.on("POST", SUBMISSIONS, Answer(202, {"id": 7, "status": "queued", "url": "/api/v1/submissions/7/"},
                                          headers={"Retry-After": "1"}))
    server.on("GET", "/api/v1/submissions/7/", turned_away, Answer(200, verdict("running")), turned_away,
              Answer(200, verdict("passed")))
    result = Client(server.url, "tok").grade("grad-of-polynomial", CODE)
    assert result.data["status"] == "passed"
    times = [r.at for r in server.requests]
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    assert len(gaps) == 4, gaps
    assert 1.0 <= gaps[0] < 1.5 and 2.0 <= gaps[1] < 2.5, gaps  # the POST's Retry-After, then twice it
    assert gaps[2] < 0.5, gaps  # "running" came after a wait: ask again at once
    assert 1.0 <= gaps[3] < 1.5, gaps  # the count starts again


def test_retries_of_one_grade_reuse_its_idempotency_key_and_the_next_grade_gets_a_new_one(server: FakeServer) -> None:
    server.on("POST", SUBMISSIONS, Answer(503, "busy", content_type="text/plain"), Answer(drop=True),
              Answer(201, verdict("passed")))
    client = Client(server.url, "tok", backoff=0.01)
    client.grade("grad-of-polynomial", CODE)
    first = [r.headers["Idempotency-Key"] for r in server.seen("POST", SUBMISSIONS)]
    assert len(first) == 3 and len(set(first)) == 1, "three tries of one grade() carry one key"
    client.grade("grad-of-polynomial", CODE)
    second = server.seen("POST", SUBMISSIONS)[-1].headers["Idempotency-Key"]
    assert second != first[0]


def test_a_refusal_says_why_in_the_servers_words(server: FakeServer) -> None:
    server.on("POST", SUBMISSIONS, Answer(400, {"error": {
        "code": "validation_error", "message": "item: no attempts left on this item (3 of 3 used)",
        "fields": {"item": ["no attempts left on this item (3 of 3 used)"]}}}))
    with pytest.raises(Refused) as caught:
        Client(server.url, "tok").grade("grad-of-polynomial", CODE)
    assert str(caught.value) == "No attempts left on this item (3 of 3 used)."
    assert caught.value.fields == {"item": ["no attempts left on this item (3 of 3 used)"]}
    assert len(server.seen("POST", SUBMISSIONS)) == 1, "a refusal is not retried"


def test_throttling_says_how_long_to_wait(server: FakeServer) -> None:
    server.on("POST", SUBMISSIONS, Answer(429, {"error": {"code": "throttled", "message": "Request was throttled."}},
                                          headers={"Retry-After": "17"}))
    with pytest.raises(Throttled) as caught:
        Client(server.url, "tok").grade("grad-of-polynomial", CODE)
    assert caught.value.retry_after == 17
    assert "in 18 s" in str(caught.value) and "Nothing was graded" in str(caught.value)
    assert len(server.seen("POST", SUBMISSIONS)) == 1, "throttling is not retried behind the learner's back"


def test_a_refused_token_says_how_to_log_in_again(server: FakeServer) -> None:
    server.on("GET", "/api/v1/courses/", Answer(401, {"error": {"code": "authentication_failed",
                                                                "message": "Invalid token."}}))
    with pytest.raises(AuthenticationFailed) as caught:
        Client(server.url, "wrong").courses()
    assert "Invalid token." in str(caught.value) and f"%quiz_login {server.url}" in str(caught.value)
    assert "wrong" not in str(caught.value), "the token is never shown"


def test_a_redirect_to_the_login_page_is_not_followed(server: FakeServer) -> None:
    server.on("GET", "/api/v1/courses/", Answer(302, "", headers={"Location": "/accounts/login/"}))
    server.on("GET", "/accounts/login/", Answer(200, "<html>log in</html>", content_type="text/html"))
    with pytest.raises(AuthenticationFailed):
        Client(server.url, "tok").courses()
    assert server.seen("GET", "/accounts/login/") == [], "the token never follows a redirect"


def test_a_server_that_is_down_is_reported_after_the_retries() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(ServerUnreachable) as caught:
        Client(f"http://127.0.0.1:{port}", "tok", backoff=0.01).grade("grad-of-polynomial", CODE)
    assert "Cannot reach the quiz server" in str(caught.value) and "running" in str(caught.value)
    assert time.monotonic() - started < 5


def test_a_server_that_does_not_answer_times_out(server: FakeServer) -> None:
    server.on("GET", "/api/v1/courses/", Answer(200, [], delay=1.5))
    client = Client(server.url, "tok", timeout=0.3, retries=1, backoff=0.01)
    started = time.monotonic()
    with pytest.raises(ServerTimeout) as caught:
        client.courses()
    assert "did not answer within 0.3 s" in str(caught.value)
    assert time.monotonic() - started < 1.5
    assert len(server.seen("GET", "/api/v1/courses/")) == 2


def test_a_server_error_after_the_retries_is_reported(server: FakeServer) -> None:
    server.on("GET", "/api/v1/items/zero-grad/", Answer(500, {"error": {"code": "server_error", "message": "x"}}))
    with pytest.raises(ServerError) as caught:
        Client(server.url, "tok", backoff=0.01).item("zero-grad")
    assert caught.value.status == 500
    assert len(server.seen("GET", "/api/v1/items/zero-grad/")) == 1, "a 500 is the server's bug, not retried"


def test_no_verdict_within_the_budget_is_a_grading_timeout_that_keeps_the_url(server: FakeServer) -> None:
    server.on("POST", SUBMISSIONS, Answer(202, {"id": 9, "status": "queued", "url": "/api/v1/submissions/9/"}))
    pending = verdict("queued", id=9, url="/api/v1/submissions/9/")
    server.on("GET", "/api/v1/submissions/9/", Answer(200, pending, delay=0.2))
    with pytest.raises(GradingTimeout) as caught:
        Client(server.url, "tok").grade("grad-of-polynomial", CODE, timeout=0.5)
    assert caught.value.submission_id == 9
    assert f"{server.url}/api/v1/submissions/9/" in str(caught.value)


def test_nothing_to_grade_is_refused_before_any_request(server: FakeServer) -> None:
    with pytest.raises(NoAnswer):
        Client(server.url, "tok").grade("grad-of-polynomial")
    assert server.requests == []


def test_a_graph_drawing_is_fetched_once_it_is_offered_and_never_when_refused(server: FakeServer) -> None:
    checks = [{"name": "y's graph", "passed": True, "message": "", "graph": {"learner": {"nodes": [], "edges": []}},
               "graph_svg": "/attempts/7/graphs/0.svg"}]
    server.on("POST", SUBMISSIONS, Answer(201, verdict("passed", checks=checks)))
    server.on("GET", "/attempts/7/graphs/0.svg", Answer(200, "<svg xmlns='http://www.w3.org/2000/svg'/>",
                                                        content_type="image/svg+xml"))
    result = Client(server.url, "tok").grade("grad-of-polynomial", CODE, graphs=True)
    assert result.graph_svgs == {0: "<svg xmlns='http://www.w3.org/2000/svg'/>"}

    server.on("GET", "/attempts/7/graphs/0.svg", Answer(302, "", headers={"Location": "/accounts/login/"}))
    client = Client(server.url, "tok")
    assert client.grade("grad-of-polynomial", CODE, graphs=True).graph_svgs == {}
    client.grade("grad-of-polynomial", CODE, graphs=True)
    assert len(server.seen("GET", "/attempts/7/graphs/0.svg")) == 2, "after a refusal the client stops asking"


def test_the_token_never_shows_in_the_clients_repr() -> None:
    assert "s3cret" not in repr(Client("http://127.0.0.1:1", "s3cret"))
