"""The API's JSON parser (``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]``): bounded size and depth, storable text.

DRF's own parser reads a body of any size, raises ``RecursionError`` (a 500) on JSON nested a few thousand
levels deep, and passes on strings the database cannot store. This one answers each with a JSON error:

- a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes: 413 (forms too, :class:`FormParser`), refused by its
  Content-Length before reading (and never reading more than the limit when the length is absent or wrong);
- nesting deeper than :data:`MAX_DEPTH`: 400;
- a NUL character or a lone surrogate in any key or string (:func:`hpbench.inputs.text_problem`): 400,
  naming where (``$.idempotency_key``).
"""

from __future__ import annotations

from django.conf import settings
from django.http import QueryDict
from rest_framework import parsers, status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.utils import json  # DRF's: strict_constant refuses NaN and Infinity

from hpbench.inputs import JSON_MAX_DEPTH, json_problem

#: Deepest nesting accepted: the API's bodies are at most a few levels deep.
MAX_DEPTH = JSON_MAX_DEPTH


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "the request body is too large"
    default_code = "payload_too_large"


def check_json(data, *, max_depth: int = MAX_DEPTH) -> None:
    """Raise :class:`ParseError` when ``data`` (parsed JSON) nests deeper than ``max_depth`` or holds a key or
    string the database cannot store; the message names the place, e.g. ``$.items[2].name``."""
    problem = json_problem(data, max_depth=max_depth)
    if problem:
        raise ParseError(problem)


def read_bounded(stream, parser_context: dict) -> bytes:
    """The body, or :class:`PayloadTooLarge` when it is over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (by its declared
    Content-Length, before reading; or by what arrives, reading one byte past the limit at most)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is None:
        return stream.read()
    request = parser_context.get("request")
    meta = getattr(request, "META", {}) if request is not None else {}
    try:
        declared = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    too_large = f"the request body is over the {limit:,}-byte limit (DATA_UPLOAD_MAX_MEMORY_SIZE)"
    if declared > limit:
        raise PayloadTooLarge(too_large)
    raw = stream.read(limit + 1)
    if len(raw) > limit:
        raise PayloadTooLarge(too_large)
    return raw


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with the limits of the module docstring."""

    max_depth = MAX_DEPTH

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        raw = read_bounded(stream, parser_context)
        encoding = parsers.get_encoding(parser_context)
        try:
            text = raw.decode(encoding)
            parse_constant = json.strict_constant if self.strict else None
            data = json.loads(text, parse_constant=parse_constant)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {self.max_depth} levels") from None
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
            raise ParseError(f"JSON parse error - {exc}") from None
        # Only a \u escape can put a NUL or a lone surrogate in a parsed string (strict JSON refuses raw control
        # characters, strict UTF-8 raw surrogates), and nesting needs brackets: most bodies (a vote) skip the walk.
        if "\\u" in text or text.count("[") + text.count("{") > self.max_depth:
            check_json(data, max_depth=self.max_depth)
        return data


class FormParser(parsers.FormParser):
    """DRF's form parser (``application/x-www-form-urlencoded``), refusing a body over the limit with 413."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parsers.get_encoding(parser_context)
        try:
            return QueryDict(read_bounded(stream, parser_context), encoding=encoding)
        except UnicodeDecodeError as exc:
            raise ParseError(f"form parse error - {exc}") from None
