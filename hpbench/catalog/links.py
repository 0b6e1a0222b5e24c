"""Links shown on the leaderboard (a model's paper or code): http(s) URLs only.

One check for every way a link gets in (the submission form, the API, ``register_model``, the admin): a
``javascript:`` or ``data:`` URL rendered as ``href`` would run in the visitor's page.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

MAX_LINK_LENGTH = 200  # the URLField's column
_http_url = URLValidator(schemes=["http", "https"])


def link_problem(value: str) -> str | None:
    """Why ``value`` is not an acceptable link (a sentence), or ``None`` when it is one (or empty)."""
    if not value:
        return None
    if len(value) > MAX_LINK_LENGTH:
        return f"{len(value)} characters, over the limit of {MAX_LINK_LENGTH}"
    scheme = urlsplit(value.strip()).scheme.lower() if ":" in value else ""
    if scheme not in ("http", "https"):
        return f"only http:// and https:// URLs are accepted (got {scheme + ':' if scheme else 'no scheme'})"
    if value != value.strip():
        return "leading or trailing spaces"
    try:
        _http_url(value)
    except ValidationError:
        return "not a valid URL"
    return None


def validate_http_url(value: str) -> None:
    """Django field validator (model and admin forms): raises ``ValidationError`` unless ``value`` is an
    http(s) URL (empty is left to ``blank``)."""
    problem = link_problem(value)
    if problem:
        raise ValidationError(f"link: {problem}", code="invalid_link")
