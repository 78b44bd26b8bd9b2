"""OpenAPI schema additions for answers every operation can give, whatever its view says.

A drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]):
every operation may answer 503 while the database is unreachable (config/api_errors.py),
and every operation that takes a body may answer 413 for one over the size limit
(config/middleware.py, config/parsers.py). Declared here once rather than in each view.
"""
from __future__ import annotations

from typing import Any

ERROR_REF = {"$ref": "#/components/schemas/Error"}
INFRASTRUCTURE_ERRORS = {
    "503": "Service unavailable: the database cannot be reached; retry after the Retry-After header's seconds",
}
BODY_ERRORS = {"413": "Request body too large"}


def add_infrastructure_errors(result: dict[str, Any], generator: Any, **kwargs: Any) -> dict[str, Any]:
    """Add 503 to every operation and 413 to those with a request body, unless already described."""
    for path in result.get("paths", {}).values():
        for operation in path.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            extra = dict(INFRASTRUCTURE_ERRORS)
            if "requestBody" in operation:
                extra.update(BODY_ERRORS)
            for code, description in extra.items():
                operation["responses"].setdefault(code, {
                    "content": {"application/json": {"schema": ERROR_REF}}, "description": description})
    return result
