"""Papers' reported figures beside the platform's: the QuRe paper's HP-FashionIQ table (ICML 2025).

:func:`reported_scores_ensure` stores a paper's rows (``ReportedScore``); :func:`paper_table_register` registers
the models of a manifest (checkpoints for the families the zoo runs, score files for the others), links them to
the paper's rows and queues their scores; :func:`paper_table` reads the comparison. Web-safe (no torch).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction

from hpbench.catalog.models import ModelEntry
from hpbench.leaderboard.models import ModelScore, PreferenceBenchmark, ReportedScore

QURE_SOURCE = "QuRe (ICML 2025), HP-FashionIQ"
QURE_BENCHMARK = "hp-fashioniq"
#: The QuRe paper's HP-FashionIQ preference ratios (percent), in the paper's order.
QURE_TABLE: tuple[tuple[str, float], ...] = (
    ("QuRe", 74.55),
    ("CLIP4CIR", 74.45),
    ("MGUR", 73.99),
    ("SPRC", 73.82),
    ("CoVR-BLIP", 73.15),
    ("CoSMo", 72.96),
    ("Bi-BLIP4CIR", 67.33),
)


class ManifestError(ValueError):
    """The manifest is refused; the message names the entry and field."""


def reported_scores_ensure(*, benchmark_name: str = QURE_BENCHMARK, source: str = QURE_SOURCE,
                           rows: tuple[tuple[str, float], ...] = QURE_TABLE) -> list[ReportedScore]:
    """Store (or update) a paper's rows for ``benchmark_name``; links to models are kept."""
    out = []
    for position, (label, value) in enumerate(rows):
        row, _ = ReportedScore.objects.update_or_create(
            benchmark_name=benchmark_name, source=source, label=label,
            defaults={"preference_ratio": value, "position": position},
        )
        out.append(row)
    return out


def default_model_name(label: str) -> str:
    return "paper-" + re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


@dataclass
class PaperModel:
    label: str
    name: str
    how: str  # "checkpoint" or "scores"
    model: ModelEntry


@transaction.atomic
def paper_table_register(*, manifest: dict[str, Any], base: Path, benchmark: PreferenceBenchmark,
                         source: str = QURE_SOURCE, rows: tuple[tuple[str, float], ...] = QURE_TABLE,
                         rescore: bool = False) -> list[PaperModel]:
    """Register the manifest's models, link each to its paper row and queue its score on ``benchmark`` (a
    finished score is kept unless the model's checkpoint, settings or score file changed, or ``rescore``).

    ``manifest["models"]`` maps a paper label to ``{"checkpoint": path, "family": f, "variant": v, "config": {}}``
    or ``{"scores": path}`` (paths relative to ``base``), with an optional ``"name"`` and optional ``"paper"`` and
    ``"code"`` http(s) links the leaderboard shows beside the model. Raises
    :class:`ManifestError` (or ``ScoreFileError`` / ``RegistrationError`` naming the file) and writes nothing then.
    """
    from hpbench.catalog.services import model_entry_register
    from hpbench.leaderboard.score_submissions import score_model_register
    from hpbench.leaderboard.services.scores import model_scores_request

    models = manifest.get("models") if isinstance(manifest, dict) else None
    if not isinstance(models, dict) or not models:
        raise ManifestError('manifest: expected {"models": {"<paper label>": {...}, ...}}')
    labels = [label for label, _ in rows]
    reported = {r.label: r for r in reported_scores_ensure(benchmark_name=benchmark.name, source=source, rows=rows)}
    out = []
    for label, spec in models.items():
        where = f"manifest models[{label!r}]"
        if label not in labels:
            raise ManifestError(f"{where}: not a row of the paper's table ({', '.join(labels)})")
        if not isinstance(spec, dict) or ("checkpoint" in spec) == ("scores" in spec):
            raise ManifestError(f"{where}: give either 'checkpoint' (with 'family') or 'scores'")
        name = spec.get("name") or default_model_name(label)
        links = _links(spec, where=where)
        description = f"{label}, as in the table of {source}"
        if "scores" in spec:
            path = (base / spec["scores"]).resolve()
            if not path.is_file():
                raise ManifestError(f"{where}.scores: no such file {path}")
            with path.open("rb") as handle:
                entry = score_model_register(name=name, files=[handle], description=description, is_baseline=True,
                                             rescore=rescore)
            how = "scores"
        else:
            if not spec.get("family"):
                raise ManifestError(f"{where}: 'family' is required with 'checkpoint'")
            settings = {"family": spec["family"], "variant": spec.get("variant", ""),
                        "checkpoint_path": str((base / spec["checkpoint"]).resolve()),
                        "config": spec.get("config") or {}}
            before = ModelEntry.objects.filter(name=name).values(*settings).first()
            entry = model_entry_register(name=name, is_baseline=True, description=description, **settings)
            changed = before != ModelEntry.objects.filter(pk=entry.pk).values(*settings).first()
            model_scores_request(model=entry, benchmarks=[benchmark], force=changed or rescore)
            how = "checkpoint"
        if links:
            ModelEntry.objects.filter(pk=entry.pk).update(**links)
        ReportedScore.objects.filter(pk=reported[label].pk).update(model=entry)
        out.append(PaperModel(label=label, name=name, how=how, model=entry))
    return out


def _links(spec: dict[str, Any], *, where: str) -> dict[str, str]:
    """The entry's optional ``paper`` / ``code`` links as ``ModelEntry`` fields; raises ManifestError for a link
    that is not an http(s) URL."""
    from hpbench.catalog.links import link_problem

    links = {}
    for key, field in (("paper", "paper_url"), ("code", "code_url")):
        if key in spec:
            problem = "not text" if not isinstance(spec[key], str) else link_problem(spec[key])
            if problem:
                raise ManifestError(f"{where}.{key}: expected an http(s) URL: {problem}")
            links[field] = spec[key]
    return links


def paper_table(*, benchmark: PreferenceBenchmark, source: str = QURE_SOURCE) -> list[dict[str, Any]]:
    """The paper's rows in its order, each with the linked model's score on ``benchmark`` (percent, or None)."""
    out = []
    for row in ReportedScore.objects.filter(benchmark_name=benchmark.name, source=source).select_related("model"):
        score = ModelScore.objects.filter(model_id=row.model_id, benchmark=benchmark).first() if row.model_id else None
        platform = score.preference_ratio * 100 if score and score.preference_ratio is not None else None
        out.append({
            "label": row.label,
            "paper": row.preference_ratio,
            "platform": platform,
            "difference": None if platform is None else platform - row.preference_ratio,
            "model": row.model.name if row.model else None,
            "how": None if row.model is None else (
                "scores submitted" if row.model.family == ModelEntry.Family.SCORES else "run on the platform"),
            "status": score.status if score else None,
            "error": (score.error.splitlines()[0] if score and score.error else ""),
        })
    return out


def load_manifest(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON (line {exc.lineno}): {exc.msg}") from None
