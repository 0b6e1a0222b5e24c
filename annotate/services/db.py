"""Shared by the hot paths' plain SQL: conversions of ids and datetimes to and from the database, and whether
``FOR UPDATE SKIP LOCKED`` is available."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from django.db import connection
from django.utils import timezone

from annotate.models import Assignment


def _uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _aware(value) -> datetime:
    """A datetime read by raw SQL: SQLite gives naive UTC (or text), PostgreSQL aware values."""
    if isinstance(value, str):
        from django.utils.dateparse import parse_datetime

        value = parse_datetime(value)
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)


def _db_datetime(value: datetime):
    return connection.ops.adapt_datetimefield_value(value)


def _db_lease(value: uuid.UUID):
    return Assignment._meta.get_field("lease").get_db_prep_value(value, connection)


def _skip_locked() -> bool:
    return connection.features.has_select_for_update_skip_locked
