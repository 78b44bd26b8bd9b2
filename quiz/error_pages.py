"""The learner site's own 404 and 500 pages in every setting.

With DEBUG off Django already renders templates/404.html and 500.html (config.urls' handlers). With DEBUG
on (`make run`), it shows its technical pages instead: URL patterns and tracebacks, which a learner trying
the product should not see. The error itself is still logged as usual; the API (JSON errors of its own)
and the admin keep Django's behaviour.
"""
from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

KEEP_PREFIXES = ("/api/", "/admin/", "/static/", "/lti/")


class FriendlyErrorPagesMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (settings.DEBUG and response.status_code in (404, 500) and not request.path.startswith(KEEP_PREFIXES)
                and response.get("Content-Type", "").startswith("text/html")):
            body = render_to_string(f"{response.status_code}.html", request=request)
            return HttpResponse(body, status=response.status_code)
        return response
