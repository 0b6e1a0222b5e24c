"""Typed environment variables that fail loudly.

Every helper reads one variable, returns a typed value or the default, and raises
``ImproperlyConfigured`` naming the variable and the offending value when it cannot be parsed.
This module imports nothing from Django settings so it can be used while settings load.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    """Return the variable's text, or ``default`` when it is unset."""
    value = os.environ.get(name)
    return default if value is None else value


def env_bool(name: str, default: bool) -> bool:
    """Parse 1/0, true/false, yes/no, on/off (any case)."""
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use 1/0, true/false, yes/no or on/off")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    """Parse a whole number, optionally bounded below."""
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    """Parse a comma-separated list, dropping empty items."""
    value = os.environ.get(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_path(name: str, default: Path) -> Path:
    """Return an absolute path; relative values are taken from the current directory."""
    value = os.environ.get(name)
    if value is None:
        return default
    if not value.strip():
        raise ImproperlyConfigured(f"{name} is set but empty; unset it or give a folder")
    return Path(value).expanduser().resolve()


def env_header(name: str, default: tuple[str, str] | None) -> tuple[str, str] | None:
    """Parse ``HEADER,value`` (a request.META key such as ``HTTP_X_FORWARDED_PROTO``, then the value that means
    HTTPS) into a pair; an empty value means none."""
    value = os.environ.get(name)
    if value is None:
        return default
    if not value.strip():
        return None
    header, comma, expected = (part.strip() for part in value.partition(","))
    if not comma or not expected or not header.startswith("HTTP_") or not header.replace("_", "").isalnum():
        raise ImproperlyConfigured(
            f"{name}={value!r} is not HEADER,value with HEADER a request.META name "
            "(e.g. HTTP_X_FORWARDED_PROTO,https), nor empty"
        )
    return header.upper(), expected


def env_networks(name: str, default: list[str]) -> list[str]:
    """Parse a comma-separated list of IP addresses or CIDR networks (``127.0.0.1,10.0.0.0/8,::1``); returns them
    normalised (``10.0.0.0/8``), each checked."""
    import ipaddress

    out = []
    for item in env_list(name, default):
        try:
            out.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {item!r} is not an IP address or network") from None
    return out
