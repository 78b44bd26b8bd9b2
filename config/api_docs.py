"""Shared pieces of the API's OpenAPI description."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "error": inline_serializer(
            name="ErrorBody",
            fields={
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "fields": serializers.DictField(required=False, child=serializers.JSONField()),
            },
        )
    },
)


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    descriptions = {400: "Invalid input", 401: "Not authenticated", 403: "Not allowed", 404: "Not found",
                    415: "Unsupported media type (send JSON or form data)", 429: "Too many requests"}
    return {code: OpenApiResponse(ErrorSerializer, description=descriptions[code]) for code in codes}
