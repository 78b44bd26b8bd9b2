"""The API's request parsers: JSON and form bodies that are refused cleanly, never with a 500.

DRF's own parsers let three kinds of bad body through: JSON nested a thousand deep
raises RecursionError (a 500) in the decoder or in whatever walks the data next,
form fields that are not UTF-8 are decoded with U+FFFD in place of the bad bytes
(and stored like that), and a JSON body is read whole whatever its size
(DATA_UPLOAD_MAX_MEMORY_SIZE only guards `request.body`). These parsers refuse
each with the API's error shape: 400 for a body too deeply nested or not in its
charset, 413 for one over the size limit. Configured in REST_FRAMEWORK's
DEFAULT_PARSER_CLASSES. No multipart parser: nothing in the API takes a file.
"""
from __future__ import annotations

import codecs
from typing import IO, Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.http import QueryDict
from rest_framework import exceptions, parsers, status
from rest_framework.utils import json

# The deepest body the API takes is {"choices": [1, 2]}: depth 2. 32 leaves room for any
# client's envelope and is far below where recursive code (the decoder, DRF's error
# formatting) runs out of stack.
MAX_JSON_DEPTH = 32


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def body_limit() -> int | None:
    """The largest body the API reads (bytes), or None for no limit."""
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def read_body(stream: IO[bytes]) -> bytes:
    """The whole body, refusing one over the limit with 413 before holding more than limit + 1 bytes."""
    limit = body_limit()
    if limit is None:
        return stream.read()
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    return body


def json_depth(value: Any) -> int:
    """How deeply containers nest in decoded JSON (a scalar: 0, [] or {}: 1), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


class JSONParser(parsers.JSONParser):
    """JSON, at most MAX_JSON_DEPTH deep and DATA_UPLOAD_MAX_MEMORY_SIZE long."""

    def parse(self, stream: IO[bytes] | None, media_type: str | None = None,
              parser_context: dict[str, Any] | None = None) -> Any:
        encoding = parsers.get_encoding(parser_context or {})
        raw = read_body(stream) if stream is not None else b""
        try:
            text = codecs.decode(raw, encoding)
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError(f"JSON parse error - the body is not valid {encoding}: {exc.reason}") from None
        try:
            data = json.loads(text, parse_constant=json.strict_constant if self.strict else None)
        except RecursionError:
            raise exceptions.ParseError(f"JSON parse error - nested more than {MAX_JSON_DEPTH} levels deep") from None
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        if json_depth(data) > MAX_JSON_DEPTH:
            raise exceptions.ParseError(f"JSON parse error - nested more than {MAX_JSON_DEPTH} levels deep")
        return data


class FormParser(parsers.FormParser):
    """URL-encoded forms whose decoded fields must be valid in their charset (UTF-8 unless it says)."""

    def parse(self, stream: IO[bytes] | None, media_type: str | None = None,
              parser_context: dict[str, Any] | None = None) -> QueryDict:
        encoding = parsers.get_encoding(parser_context or {})
        raw = read_body(stream) if stream is not None else b""
        try:
            # The body's own bytes, then what its percent-escapes stand for: both must be in the charset.
            parse_qsl(raw.decode(encoding), keep_blank_values=True, encoding=encoding, errors="strict",
                      max_num_fields=settings.DATA_UPLOAD_MAX_NUMBER_FIELDS)
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError(f"Form parse error - a field is not valid {encoding}: {exc.reason}") from None
        except ValueError as exc:  # more fields than DATA_UPLOAD_MAX_NUMBER_FIELDS
            raise exceptions.ParseError(f"Form parse error - {exc}") from None
        return QueryDict(raw, encoding=encoding)
