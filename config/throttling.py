"""DRF's per-user rate throttle, with its history in Redis and its decision in one round trip.

Why: DRF's SimpleRateThrottle reads the history (a pickled list of request times) from the cache, trims it and
writes it back: two round trips and a pickle per request, about 0.8 ms of a web process's CPU per submission
(issue 14's profile), and two requests at once can both take the last free place. Here a Lua script trims,
counts and records in Redis, atomically, in one call. The rule is DRF's sliding window, unchanged: at most
`num_requests` within the last `duration` seconds, refused requests not counted, and the same Retry-After.

The history is a sorted set (score: the request's time) under the key the cache would use (cache.make_key), so
cache.delete and cache.clear forget it as before. With a cache that is not Redis, DRF's own way is used.
"""
from __future__ import annotations

import secrets
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import UserRateThrottle

# KEYS[1] the history; ARGV now, duration, num_requests, a member naming this request. Returns {1} when the
# request is allowed (and recorded), {0, oldest} when refused: the time of the oldest request still counted.
SLIDING_WINDOW = """
local key = KEYS[1]
local now, duration, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - duration)
if redis.call('ZCARD', key) >= limit then
  return {0, redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2]}
end
redis.call('ZADD', key, now, ARGV[4])
redis.call('EXPIRE', key, math.ceil(duration))
return {1}
"""


@lru_cache(maxsize=1)
def _script() -> Any:
    """The script bound to the cache's Redis (EVALSHA, and EVAL again after a Redis restart forgot it)."""
    options = settings.CACHES["default"].get("OPTIONS", {})
    client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"],
                                  socket_connect_timeout=options.get("socket_connect_timeout", 1),
                                  socket_timeout=options.get("socket_timeout", 2))
    return client.register_script(SLIDING_WINDOW)


def _on_redis() -> bool:
    return settings.CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"


class RedisUserRateThrottle(UserRateThrottle):
    """DRF's UserRateThrottle (per user; per address when anonymous), deciding in one Redis call. Raises
    redis.RedisError or OSError when Redis cannot be reached: the caller decides whether to fail open."""

    num_requests: int  # set by SimpleRateThrottle.__init__ from the rate (the stubs do not declare them)
    duration: int
    _oldest: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None or not _on_redis():
            return super().allow_request(request, view)
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        request_name = f"{self.now!r}:{secrets.token_hex(4)}"  # two requests in the same microsecond are two
        answer = _script()(keys=[cache.make_key(self.key)],
                           args=[repr(self.now), self.duration, self.num_requests, request_name])
        if int(answer[0]) == 1:
            return True
        self._oldest = float(answer[1])
        return False

    def wait(self) -> float | None:
        if self._oldest is None:
            return super().wait()
        return max(0.0, self.duration - (self.now - self._oldest))
