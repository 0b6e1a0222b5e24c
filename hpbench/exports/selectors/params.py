"""Export filters: parsed and validated against the database (:func:`params_parse`), stored as JSON."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from annotate.models import Campaign
from hpbench.leaderboard.models import PreferenceBenchmark

LEVELS = ("votes", "comparisons")


class ExportError(ValueError):
    """Bad export parameters; the message names the parameter and the value."""


@dataclass(frozen=True)
class ExportParams:
    """What to export. ``benchmark`` is ``(name, version)`` (version None = the active one) and excludes the
    vote filters; dates are inclusive calendar days in the project's time zone."""

    campaigns: tuple[str, ...] = ()
    benchmark: tuple[str, int | None] | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    include_excluded: bool = False
    include_gold: bool = True
    level: str = "votes"
    # Resolved by :func:`params_parse` (not part of the request).
    campaign_ids: tuple[int, ...] = field(default=(), compare=False)
    benchmark_id: int | None = field(default=None, compare=False)

    @property
    def effective_level(self) -> str:
        return "pairs" if self.benchmark_id is not None else self.level

    def as_json(self) -> dict:
        """Plain JSON (for ``ExportJob.params``); :func:`params_parse` reads it back."""
        data = asdict(self)
        data.pop("campaign_ids")
        data.pop("benchmark_id")
        data["campaigns"] = list(self.campaigns)
        data["benchmark"] = (
            None
            if self.benchmark is None
            else f"{self.benchmark[0]}" + (f":{self.benchmark[1]}" if self.benchmark[1] is not None else "")
        )
        data["since"] = self.since.isoformat() if self.since else None
        data["until"] = self.until.isoformat() if self.until else None
        return data


#: The days a date filter may name: the filters use the start of the day after ``until``, which must exist.
FIRST_DAY = dt.date(1900, 1, 1)
LAST_DAY = dt.date(9998, 12, 31)


def _date(value: Any, name: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        value = value.isoformat()
    try:
        day = dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ExportError(f"{name}: {value!r} is not a date (use YYYY-MM-DD)") from None
    if not FIRST_DAY <= day <= LAST_DAY:  # the filters compare with the start of the next day
        raise ExportError(f"{name}: {day} is out of range (use a day from {FIRST_DAY} to {LAST_DAY})")
    return day


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off", ""):
        return value.strip().lower() in ("1", "true", "yes", "on")
    raise ExportError(f"{name}: {value!r} is not true or false")


def benchmark_spec(value: str) -> tuple[str, int | None]:
    """``"name"`` or ``"name:3"`` -> ``(name, version)``; raises ExportError for a bad version."""
    name, _, version = str(value).strip().partition(":")
    if not name:
        raise ExportError("benchmark: give a name, or NAME:VERSION")
    if not version:
        return name, None
    if not version.isdigit():
        raise ExportError(f"benchmark: version {version!r} in {value!r} is not a whole number")
    return name, int(version)


def params_parse(
    *,
    campaigns: Iterable[str] = (),
    benchmark: str | None = None,
    since: Any = None,
    until: Any = None,
    include_excluded: Any = False,
    include_gold: Any = True,
    level: str = "votes",
) -> ExportParams:
    """Validate export filters against the database. Raises :class:`ExportError` for an unknown campaign or
    benchmark, a bad date or level, or filters that do not go together."""
    slugs = tuple(dict.fromkeys(s.strip() for s in (campaigns or ()) if s and s.strip()))
    level = (level or "votes").strip()
    if level not in LEVELS:
        raise ExportError(f"level: {level!r} is not one of {', '.join(LEVELS)}")
    since_d, until_d = _date(since, "since"), _date(until, "until")
    if since_d and until_d and since_d > until_d:
        raise ExportError(f"since {since_d} is after until {until_d}")
    campaign_ids: tuple[int, ...] = ()
    if slugs:
        found = dict(Campaign.objects.filter(slug__in=slugs).values_list("slug", "pk"))
        unknown = [s for s in slugs if s not in found]
        if unknown:
            raise ExportError(f"campaign: no campaign {', '.join(map(repr, unknown))}")
        campaign_ids = tuple(found[s] for s in slugs)
    spec = None
    benchmark_id = None
    if benchmark not in (None, ""):
        if slugs or since_d or until_d:
            raise ExportError("benchmark: a frozen benchmark is exported whole; leave out campaign and dates")
        spec = benchmark_spec(benchmark)
        qs = PreferenceBenchmark.objects.filter(name=spec[0])
        found_bm = qs.filter(version=spec[1]) if spec[1] is not None else qs.order_by("-is_active", "-version")
        found_row = found_bm.values_list("pk", "hidden_split_of_id").first()
        if found_row is None:
            raise ExportError(f"benchmark: no benchmark {benchmark!r}")
        benchmark_id, hidden_of = found_row
        if hidden_of is not None:
            raise ExportError(f"benchmark: {benchmark!r} is a hidden split; its verdicts are never exported")
    return ExportParams(
        campaigns=slugs,
        benchmark=spec,
        since=since_d,
        until=until_d,
        include_excluded=_bool(include_excluded, "include_excluded"),
        include_gold=_bool(include_gold, "include_gold"),
        level=level,
        campaign_ids=campaign_ids,
        benchmark_id=benchmark_id,
    )


def params_from_json(data: dict) -> ExportParams:
    """Re-validate parameters stored by :meth:`ExportParams.as_json`."""
    return params_parse(
        campaigns=data.get("campaigns") or (),
        benchmark=data.get("benchmark"),
        since=data.get("since"),
        until=data.get("until"),
        include_excluded=data.get("include_excluded", False),
        include_gold=data.get("include_gold", True),
        level=data.get("level", "votes"),
    )
