"""The OpenAPI description of the JSON API (``/api/schema/``): error answers documented once, for every operation.

Every error the API answers is JSON (``hpbench/errors.py``, ``hpbench/parsers.py``, DRF): ``{"detail": "..."}``,
or for a refused form, the fields and their messages (``{"link": ["Enter a valid URL."]}``). Views document the
answers that are theirs (a 409, a 429, their own 400s and 404s); :func:`add_common_errors` (a drf-spectacular
postprocessing hook, ``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``) adds those any operation may get:

- 400: a ``%00`` in the URL (``hpbench/inputs.py``) or a body that does not parse (bad JSON, nested deeper than
  32 levels, a NUL or lone surrogate in a string: ``hpbench/parsers.py``);
- 403: credentials refused (an unknown token, a missing CSRF token) or a caller without the right;
- 404: an operation with a path parameter naming nothing the caller may see;
- 413: a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (a checkpoint over ``HPBENCH_MAX_CHECKPOINT_BYTES``);
- 415: a body of a media type the operation does not parse;
- 503: the database connection broke while serving the request (``Retry-After`` says when to send it again).

Unauthenticated callers get 403, never 401: session authentication comes first and sends no challenge.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse

#: The body of every error answer but a refused form's.
ERROR_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string", "description": "What is wrong, and where."}},
    "required": ["detail"],
}
#: A refused form (a serializer's validation): each field with its messages (lists; nested for list fields).
FIELD_ERRORS_SCHEMA = {
    "type": "object",
    "description": "Each refused field with its messages.",
    "additionalProperties": {"oneOf": [{"type": "array", "items": {}}, {"type": "object"}, {"type": "string"}]},
}



def error(description: str) -> OpenApiResponse:
    """For a view's own ``extend_schema(responses=...)``: an error answer with what it means there; its body
    (``Error``; for a 400 ``Error`` or ``FieldErrors``) is filled in by :func:`add_common_errors`."""
    return OpenApiResponse(description=description)


_COMMON = {
    "400": "Bad request: a NUL character (%00) in the URL, or a body that does not parse (bad JSON, nested deeper "
           "than 32 levels, a NUL character or lone surrogate in a string), or a refused parameter or field.",
    "403": "Credentials refused (unknown token, missing CSRF token) or the caller may not do this.",
    "404": "Nothing by that name or id that the caller may see.",
    "413": "The request body is over the size limit.",
    "415": "The body's media type is not one this operation reads.",
    "503": "The database was unavailable for a moment; send the request again after Retry-After seconds.",
}


def _error_response(description: str, *, with_fields: bool) -> dict:
    schema: dict[str, Any] = {"$ref": "#/components/schemas/Error"}
    if with_fields:
        schema = {"anyOf": [schema, {"$ref": "#/components/schemas/FieldErrors"}]}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def add_common_errors(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: the errors of the module docstring on each ``/api/`` operation that
    does not document them itself, a body for each error a view documents without one (:func:`error`), and the
    ``Error`` / ``FieldErrors`` components they refer to."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR_SCHEMA)
    schemas["FieldErrors"] = FIELD_ERRORS_SCHEMA
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            if method not in ("get", "put", "patch", "post", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            has_body = "requestBody" in operation
            codes = ["400", "403", "503"]
            if any(p.get("in") == "path" for p in operation.get("parameters", [])):
                codes.append("404")
            if has_body:
                codes += ["413", "415"]
            for code in codes:  # a 400 not documented by the view may be a refused parameter or field
                responses.setdefault(code, _error_response(_COMMON[code], with_fields=code == "400"))
            for code, response in responses.items():
                if code.startswith(("4", "5")) and not response.get("content"):
                    response.update(_error_response(response.get("description") or _COMMON.get(code, ""),
                                                    with_fields=code == "400"))
    return result
