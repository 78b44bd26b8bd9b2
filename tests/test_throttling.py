"""config.throttling: DRF's per-user sliding window, decided in one Redis call, against the real Redis cache."""
from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.throttling import UserRateThrottle

from config.throttling import RedisUserRateThrottle

USER = 9_200_000  # an id no test row has: the throttle needs only request.user.pk


class Throttle(RedisUserRateThrottle):
    scope = "throttling-test"
    THROTTLE_RATES = {"throttling-test": "3/min"}


class DrfThrottle(UserRateThrottle):
    scope = "throttling-test"
    THROTTLE_RATES = {"throttling-test": "3/min"}


def request(user: int = USER) -> Any:
    return SimpleNamespace(user=SimpleNamespace(pk=user, is_authenticated=True))


@pytest.fixture(autouse=True)
def fresh() -> None:
    for user in (USER, USER + 1):
        cache.delete(Throttle.cache_format % {"scope": Throttle.scope, "ident": user})


def at(throttle: Any, when: float) -> Any:
    throttle.timer = lambda: when
    return throttle


def test_the_window_and_the_wait_are_drfs() -> None:
    """Same requests, same times: the same answers and the same Retry-After as DRF's own throttle."""
    times = [1000.0, 1010.0, 1020.0, 1030.0, 1059.9, 1060.0, 1061.0, 1075.0]
    ours: list[tuple[bool, float | None]] = []
    drfs: list[tuple[bool, float | None]] = []
    for when in times:
        mine = at(Throttle(), when)
        allowed = mine.allow_request(request(), None)
        ours.append((allowed, mine.wait() if not allowed else None))  # DRF asks for the wait only on a refusal
    cache.delete(Throttle.cache_format % {"scope": Throttle.scope, "ident": USER})
    for when in times:
        theirs = at(DrfThrottle(), when)
        allowed = theirs.allow_request(request(), None)
        drfs.append((allowed, theirs.wait() if not allowed else None))
    assert [a for a, _ in ours] == [a for a, _ in drfs] == [True, True, True, False, False, True, False, True]
    assert [round(w or 0, 6) for a, w in ours if not a] == [round(w or 0, 6) for a, w in drfs if not a] \
        == [30.0, 0.1, 9.0]


def test_users_are_counted_apart() -> None:
    for _ in range(3):
        assert at(Throttle(), 2000.0).allow_request(request(), None)
    assert not at(Throttle(), 2000.0).allow_request(request(), None)
    assert at(Throttle(), 2000.0).allow_request(request(USER + 1), None)


def test_requests_at_once_cannot_share_the_last_place() -> None:
    """DRF's read-then-write lets concurrent requests all see the same free place; the script decides atomically."""
    allowed: list[bool] = []
    start = threading.Barrier(12)

    def one() -> None:
        start.wait()
        allowed.append(at(Throttle(), 3000.0).allow_request(request(), None))

    threads = [threading.Thread(target=one) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(allowed) == [False] * 9 + [True] * 3


def test_deleting_the_cache_key_forgets_the_history() -> None:
    for _ in range(3):
        at(Throttle(), 4000.0).allow_request(request(), None)
    assert not at(Throttle(), 4000.0).allow_request(request(), None)
    cache.delete(Throttle.cache_format % {"scope": Throttle.scope, "ident": USER})
    assert at(Throttle(), 4000.0).allow_request(request(), None)
