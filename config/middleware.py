"""Refuse malformed requests before any view sees them, and turn a database outage into a 503.

Both exist so that no input and no fault of the infrastructure ends in a 500:

- A NUL character in the query string (`?quiz=%00`) reaches PostgreSQL, which refuses
  text with NUL in it; Django turns that into a 500. No parameter of this site can
  contain one, so such a request is a 400, whatever the view.
- A body whose Content-Length is over DATA_UPLOAD_MAX_MEMORY_SIZE is a 413 on the API,
  with its error shape, before authentication or parsing reads a byte of it. (The API's
  parsers, config/parsers.py, also stop at the limit when no Content-Length says so.)
- A view that hits an unreachable database answers 503 with Retry-After (JSON under
  /api/, a plain page elsewhere), also with DEBUG on. Faults outside views (a middleware
  loading the session) reach handler500, config.api_errors.server_error, which does the same.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

from .api_errors import DATABASE_DOWN, error_body, service_unavailable

logger = logging.getLogger(__name__)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


class RequestGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refusal = self._nul_in_query(request) or self._too_large(request)
        return refusal or self.get_response(request)

    def _nul_in_query(self, request: HttpRequest) -> HttpResponse | None:
        query = request.META.get("QUERY_STRING", "")
        if "%00" not in query and "\x00" not in query:
            return None
        names = sorted({name for name, values in request.GET.lists()
                        if "\x00" in name or any("\x00" in value for value in values)})
        if not names:
            return None
        message = "query parameters must not contain NUL characters"
        if _is_api(request):
            fields = {name.replace("\x00", "\\x00"): [message] for name in names}
            return JsonResponse(error_body("validation_error", f"{next(iter(fields))}: {message}", fields),
                                status=400)
        return HttpResponseBadRequest(f"Bad request: {message}.", content_type="text/plain; charset=utf-8")

    def _too_large(self, request: HttpRequest) -> HttpResponse | None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is None or not _is_api(request):
            return None
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None  # Django reads such a body as empty
        if length <= limit:
            return None
        return JsonResponse(error_body("payload_too_large", f"The request body is larger than {limit} bytes."),
                            status=413)


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DATABASE_DOWN):
            logger.warning("database unavailable, answering 503 to %s: %s", request.path, exception)
            return service_unavailable(request)
        return None
