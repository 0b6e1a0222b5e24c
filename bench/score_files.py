"""Validating and scoring an HP-FashionIQ score file, as the upload and the worker do: size and time.

Builds a throwaway SQLite database (migrated here), imports the released HP-FashionIQ file onto image rows
without pixels, writes a relevance file for every (question, candidate) pair as JSON Lines and as Parquet,
and prints each file's size, the time ``validate_score_file`` takes on it (what the upload request waits for),
and the time of the scoring step (set means, preference ratio, agreement, 1,000-round bootstrap).

    .venv/bin/python bench/score_files.py [--file ../shared/data/hp-fashioniq/hpfiq.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_scratch = tempfile.mkdtemp(prefix="hpbench-bench-")
os.environ["HPBENCH_VAR_DIR"] = _scratch
os.environ.pop("DATABASE_URL", None)  # a fresh SQLite database under the scratch folder
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hpbench.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from django.core.management import call_command  # noqa: E402

from hpbench.catalog.models import Dataset, Image  # noqa: E402
from hpbench.leaderboard.hpfiq import image_names, load_questions  # noqa: E402
from hpbench.leaderboard.scorefiles import (  # noqa: E402
    benchmark_questions,
    question_id,
    relevance_set_scores,
    validate_score_file,
)
from hpbench.leaderboard.services.benchmarks import benchmark_import_hpfiq  # noqa: E402
from hpbench.leaderboard.services.figures import preference_figures  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", default=str(ROOT.parent / "shared" / "data" / "hp-fashioniq" / "hpfiq.json"))
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    dataset = Dataset.objects.create(name="fiq", kind=Dataset.Kind.FASHIONIQ, image_root=_scratch)
    names = image_names(load_questions(args.file))
    Image.objects.bulk_create([Image(dataset=dataset, name=n, category=c, split="val", file_path=f"{n}.png")
                               for n, c in names.items()], batch_size=2000)
    benchmark = benchmark_import_hpfiq(path=args.file, dataset=dataset).benchmark
    questions = benchmark_questions(benchmark)
    rng = np.random.default_rng(0)
    rows = [(question_id(benchmark, q.position), name, float(rng.normal())) for q in questions for name in q.images]
    jsonl = "".join(json.dumps({"question": q, "image": i, "score": s}) + "\n" for q, i, s in rows).encode()
    buffer = io.BytesIO()
    pq.write_table(pa.table({"question": [r[0] for r in rows], "image": [r[1] for r in rows],
                             "score": [r[2] for r in rows]}), buffer)
    print(f"{benchmark.label}: {len(questions)} questions, {len(rows)} (question, image) rows")
    for label, payload in (("scores.jsonl", jsonl), ("scores.parquet", buffer.getvalue())):
        times = []
        for _ in range(3):
            started = time.perf_counter()
            validated = validate_score_file(io.BytesIO(payload), name=label, size=len(payload))
            times.append(time.perf_counter() - started)
        print(f"{label:<15} {len(payload) / 1e6:6.2f} MB  validate (upload): {min(times):.2f} s (best of 3)")
    started = time.perf_counter()
    set1, set2 = relevance_set_scores(validated.relevance)
    human = list(benchmark.pairs.order_by("position").values_list("preference", flat=True))
    figures = preference_figures(set1=set1, set2=set2, human=human)
    print(f"scoring (set means, ratio, agreement, bootstrap): {time.perf_counter() - started:.2f} s; random scores "
          f"give preference ratio {figures['preference_ratio']:.3f}, agreement {figures['agreement']:.3f}")


if __name__ == "__main__":
    main()
