"""A schema-driven fuzzer run (schemathesis 4.x, every check) of the JSON API over HTTP.

:func:`fuzz` loads ``/api/schema/`` from a running server (in the tests, pytest-django's live server serving
``hpbench.wsgi``'s application, the hot routes' short middleware included) and runs schemathesis' engine on it
in this process, as ``schemathesis run --checks all`` would: examples, coverage and fuzzing phases, every check
(no 5xx, status codes and bodies as documented, content types and headers, invalid input refused, valid input
accepted, auth not ignored, unknown methods refused). Seeded, with hypothesis' example database off, so a run
repeats.

Two settings say what the schema cannot: text never holds a NUL character (the API refuses it everywhere with a
400, ``hpbench/inputs.py``; the schema's description says so), and a submission's upload is refused (400) when
its file is not a checkpoint or score file, and an export names campaigns and benchmarks that must exist, which
no schema can describe.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field


@dataclass
class FuzzReport:
    """What one run did: operations tested, examples (requests) sent, and each failure by check."""

    role: str
    operations: int = 0
    examples: int = 0
    seconds: float = 0.0
    statuses: collections.Counter = field(default_factory=collections.Counter)
    failures: list[str] = field(default_factory=list)  # "check: METHOD path -> detail", deduplicated
    failures_by_check: collections.Counter = field(default_factory=collections.Counter)  # operations failing it
    errors: list[str] = field(default_factory=list)  # the engine's own errors (schema or run problems)

    def as_dict(self) -> dict:
        return {
            "role": self.role,
            "operations": self.operations,
            "examples": self.examples,
            "seconds": round(self.seconds, 1),
            "statuses": dict(sorted(self.statuses.items())),
            "failures_by_check": dict(self.failures_by_check),
            "failures": self.failures,
            "errors": self.errors,
        }


def fuzz(*, base_url: str, role: str, token: str | None = None, max_examples: int = 10, seed: int = 1,
         max_time: float | None = None, headers: dict[str, str] | None = None,
         campaign: str | None = None) -> FuzzReport:
    """Fuzz the whole API of the server at ``base_url`` once as ``role``, authenticated by ``token`` (DRF's
    ``Authorization: Token ...``) when given, sending ``headers`` with every request (a crowd worker's annotator
    and CSRF cookies and token); returns the report.

    ``campaign``: the slug every campaign operation uses (a crowd worker acts in the campaign they entered).
    ``max_examples`` bounds the fuzzing phase per operation; ``max_time`` (seconds) stops the run early.
    """
    import schemathesis
    from schemathesis.config import SchemathesisConfig
    from schemathesis.engine import events, from_schema

    config = SchemathesisConfig.from_dict({
        "seed": seed,
        "cache": {"enabled": False},  # no state kept between runs (nor a .schemathesis/ folder in the tree)
        # As the schema's security scheme, so the ignored_auth check knows what to leave out or spoil.
        **({"auth": {"openapi": {"tokenAuth": {"api_key": f"Token {token}"}}}} if token else {}),
        "generation": {"max-examples": max_examples, "database": "none", "allow-x00": False},
        "checks": {"enabled": True},  # all of them; max_response_time stays off (no limit set): no timings here
        "phases": {"stateful": {"enabled": False}},
        **({"headers": headers} if headers else {}),
        "operations": [{
            "include-name": "POST /api/leaderboard/submissions",  # (include-path and include-method: either)
            "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "403", "429"]}},
        }, {
            "include-name": "POST /api/exports/jobs",  # campaigns and benchmarks by name: an unknown one is a 400
            "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "403"]}},
        }, {
            # A vote's choice is required unless the answer is "both irrelevant": a rule across fields that the
            # schema states in words (a missing choice is a 400 naming it), not one a generator can follow.
            "include-path-regex": "^/api/annotate/votes",
            "checks": {"positive_data_acceptance": {
                "expected-statuses": ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]}},
        }, *([{
            "include-path-regex": "^/api/annotate/campaigns/\\{slug\\}",
            "parameters": {"path.slug": campaign},
        }] if campaign else [])],
        **({"max-time": max_time} if max_time else {}),
    })
    schema = schemathesis.openapi.from_url(f"{base_url}/api/schema/", config=config)
    report = FuzzReport(role=role)
    started = time.monotonic()
    seen_failures: set[str] = set()
    failing: set[tuple[str, str]] = set()  # (check, operation)
    operations: set[str] = set()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished) and event.is_test_scenario:
            recorder = event.recorder
            if event.label:
                operations.add(event.label)
            report.examples += len(recorder.interactions)
            for interaction in recorder.interactions.values():
                if interaction.response is not None:
                    report.statuses[interaction.response.status_code] += 1
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    if check.failure_info is None:
                        continue
                    failure = check.failure_info.failure
                    interaction = recorder.interactions.get(case_id)
                    answer = b"" if interaction is None or interaction.response is None else (
                        f"{interaction.response.status_code} ".encode() + (interaction.response.content or b""))
                    key = (f"{check.name}: {recorder.label} -> {failure.title}: {failure.message}"[:600]
                           + f"\n{check.failure_info.code_sample}"[:400] + f"\nanswer: {answer[:300]!r}")
                    if key not in seen_failures:
                        seen_failures.add(key)
                        report.failures.append(key)
                    if (check.name, recorder.label) not in failing:
                        failing.add((check.name, recorder.label))
                        report.failures_by_check[check.name] += 1
        elif isinstance(event, events.NonFatalError):
            report.errors.append(f"{event.label}: {event.info.message}"[:600])
        elif isinstance(event, events.FatalError):
            report.errors.append(f"fatal: {event.exception!r}"[:600])
    report.operations = len(operations)
    report.seconds = time.monotonic() - started
    return report
