"""Export 1,000,000 synthetic votes to Parquet through the real code path; report time and peak memory.

Creates its own PostgreSQL database (``hpbench_bench_export`` by default), migrates it, loads the votes with
COPY, runs ``export_write`` in a child process (so its peak RSS is the export's alone), and drops the database.

    .venv/bin/python bench/export_parquet.py [--votes 1000000] [--chunk-size 10000] [--keep]

Goal (issue 7): peak memory under 300 MB while exporting 1M votes.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")


def _admin_connection():
    import psycopg2

    conn = psycopg2.connect(f"{SERVER}/postgres")
    conn.autocommit = True
    return conn


class _Rows(io.TextIOBase):
    """A read()-able text stream over generated tab-separated lines, for COPY without holding them."""

    def __init__(self, lines) -> None:
        self._lines = iter(lines)
        self._buffer = ""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> str:
        while size < 0 or len(self._buffer) < size:
            try:
                self._buffer += next(self._lines)
            except StopIteration:
                break
        if size < 0:
            out, self._buffer = self._buffer, ""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    readline = read


def _copy(cursor, table: str, columns: list[str], lines) -> None:
    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", _Rows(lines), size=1 << 20)


def populate(n_votes: int) -> dict:
    """Create the synthetic campaign data (10 campaigns, 5 votes per comparison) with COPY."""
    from django.db import connection, transaction
    from django.utils import timezone

    from annotate.models import Campaign
    from hpbench.catalog.models import Dataset, Image, ModelEntry, Query

    rng = random.Random(0)
    per = 5
    n_comparisons = max(1, n_votes // per)
    n_campaigns = 10
    n_queries = -(-n_comparisons // n_campaigns)
    n_images, n_annotators = 10_000, 5_000
    now = timezone.now().isoformat()
    with transaction.atomic():
        dataset = Dataset.objects.create(name="bench", kind=Dataset.Kind.FASHIONIQ, image_root="/tmp")
        Image.objects.bulk_create(
            [
                Image(
                    dataset=dataset,
                    name=f"B{i:09d}",
                    category=("shirt", "dress", "toptee")[i % 3],
                    split="val",
                    file_path=f"{i}.jpg",
                )
                for i in range(n_images)
            ],
            batch_size=5000,
        )
        image_ids = list(Image.objects.filter(dataset=dataset).values_list("pk", flat=True))
        Query.objects.bulk_create(
            [
                Query(
                    dataset=dataset,
                    key=f"q{q}",
                    split="val",
                    category="shirt",
                    reference_id=image_ids[q % n_images],
                    target_id=image_ids[(q * 7 + 1) % n_images],
                    captions=[f"is darker {q}", f"has a logo {q}"],
                )
                for q in range(n_queries)
            ],
            batch_size=5000,
        )
        query_ids = list(Query.objects.filter(dataset=dataset).order_by("pk").values_list("pk", "reference_id"))
        models = [ModelEntry.objects.create(name=f"bench-model-{m}", family=ModelEntry.Family.DEMO) for m in range(4)]
        campaigns = [
            Campaign.objects.create(
                slug=f"bench-{c}",
                name=f"Bench {c}",
                dataset=dataset,
                allow_tie=True,
                ask_ratings=True,
                ask_irrelevant=True,
            )
            for c in range(n_campaigns)
        ]
        with connection.cursor() as cursor:
            raw = cursor.cursor
            _copy(
                raw,
                "annotate_annotator",
                [
                    "id",
                    "campaign_id",
                    "pseudonym",
                    "source",
                    "external_id_hash",
                    "study_id",
                    "session_id",
                    "assignment_id",
                    "hit_id",
                    "submit_to",
                    "votes_count",
                    "flagged",
                    "created_at",
                ],
                (
                    f"{a + 1}\t{campaigns[a % n_campaigns].pk}\tann_{a:016x}\tprolific\t{uuid.uuid4().hex}\t\t\t\t\t\t"
                    f"0\t{'t' if a % 50 == 0 else 'f'}\t{now}\n"
                    for a in range(n_annotators)
                ),
            )

            def comparisons():
                for c in range(n_comparisons):
                    campaign = campaigns[c % n_campaigns].pk
                    qid, ref = query_ids[c // n_campaigns]
                    a = json.dumps(rng.sample(image_ids, 5))
                    b = json.dumps(rng.sample(image_ids, 5))
                    ma, mb = rng.sample(models, 2)
                    yield (
                        f"{c + 1}\t{campaign}\t{qid}\t{ref}\tis darker and has a logo\t{c}\t{a}\t{b}\t{ma.pk}\t"
                        f"{mb.pk}\tf\t\t0\t{per}\t0\t{now}\n"
                    )

            _copy(
                raw,
                "annotate_comparison",
                [
                    "id",
                    "campaign_id",
                    "query_id",
                    "reference_image_id",
                    "text",
                    "position",
                    "set_a_images",
                    "set_b_images",
                    "set_a_model_id",
                    "set_b_model_id",
                    "is_gold",
                    "gold_answer",
                    "seed",
                    "votes_count",
                    "open_slots",
                    "created_at",
                ],
                comparisons(),
            )

            def annotator_of(v: int) -> int:
                c, j = divmod(v, per)
                # same campaign as the comparison, distinct annotators within a comparison
                return (
                    (c % n_campaigns) + n_campaigns * ((c // n_campaigns + j * 97) % (n_annotators // n_campaigns))
                ) + 1

            _copy(
                raw,
                "annotate_assignment",
                [
                    "id",
                    "lease",
                    "campaign_id",
                    "annotator_id",
                    "comparison_id",
                    "left_is_a",
                    "state",
                    "created_at",
                    "expires_at",
                ],
                (
                    f"{v + 1}\t{uuid.uuid4()}\t{campaigns[(v // per) % n_campaigns].pk}\t{annotator_of(v)}\t"
                    f"{v // per + 1}\tt\tsubmitted\t{now}\t{now}\n"
                    for v in range(n_comparisons * per)
                ),
            )

            def votes():
                for v in range(n_comparisons * per):
                    choice = rng.choice(("a", "a", "b", "b", "tie"))
                    ra, rb = rng.randint(1, 5), rng.randint(1, 5)
                    yield (
                        f"{v + 1}\t{v + 1}\t{v // per + 1}\t{annotator_of(v)}\t{choice}\t{ra}\t{rb}\t"
                        f"{'t' if rng.random() < 0.05 else 'f'}\t{rng.randint(2000, 60000)}\tbench-{v}\tf\t{now}\n"
                    )

            _copy(
                raw,
                "annotate_vote",
                [
                    "id",
                    "assignment_id",
                    "comparison_id",
                    "annotator_id",
                    "choice",
                    "rating_a",
                    "rating_b",
                    "irrelevant",
                    "time_ms",
                    "idempotency_key",
                    "excluded",
                    "created_at",
                ],
                votes(),
            )
            cursor.execute("ANALYZE")
    return {
        "votes": n_comparisons * per,
        "comparisons": n_comparisons,
        "campaigns": n_campaigns,
        "annotators": n_annotators,
        "images": n_images,
    }


def export_child(out: str, chunk_size: int, trace: bool) -> None:
    """Run in a fresh process: export every vote (flagged annotators included) and print figures as JSON."""
    import django

    django.setup()
    import tracemalloc

    from hpbench.exports import services
    from hpbench.exports.selectors.params import params_parse

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if trace:
        tracemalloc.start()
    params = params_parse(include_excluded=True)
    started = time.perf_counter()
    summary = services.export_write(params=params, fmt="parquet", out=out, chunk_size=chunk_size)
    seconds = time.perf_counter() - started
    figures = {
        "rows": summary.rows,
        "seconds": round(seconds, 2),
        "rows_per_second": round(summary.rows / seconds),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_after_django_setup_mb": round(rss_before / 1024, 1),
        "file_mb": round(Path(out).stat().st_size / 1e6, 1),
    }
    if trace:
        figures["tracemalloc_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 1e6, 1)
    print("FIGURES " + json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, default=10_000)
    parser.add_argument("--db", default="hpbench_bench_export")
    parser.add_argument("--keep", action="store_true", help="Keep the database (drop it yourself).")
    parser.add_argument("--tracemalloc", action="store_true", help="Also trace Python allocations (slower).")
    parser.add_argument("--child", metavar="OUT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = f"{SERVER}/{args.db}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hpbench.settings")
    if args.child:
        export_child(args.child, args.chunk_size, args.tracemalloc)
        return

    admin = _admin_connection()
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{args.db}"')
    try:
        import django
        from django.core.management import call_command

        django.setup()
        t0 = time.perf_counter()
        call_command("migrate", verbosity=0)
        t1 = time.perf_counter()
        counts = populate(args.votes)
        t2 = time.perf_counter()
        print(f"migrate {t1 - t0:.1f} s; loaded {counts} in {t2 - t1:.1f} s", flush=True)
        from django.db import connections

        connections.close_all()
        with tempfile.TemporaryDirectory() as tmp:
            out = str(Path(tmp) / "votes.parquet")
            command = [
                sys.executable,
                __file__,
                "--db",
                args.db,
                "--votes",
                str(args.votes),
                "--chunk-size",
                str(args.chunk_size),
                "--child",
                out,
            ]
            if args.tracemalloc:
                command.append("--tracemalloc")
            result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
            if result.returncode:
                raise SystemExit(f"export failed:\n{result.stdout}\n{result.stderr}")
            line = next(x for x in result.stdout.splitlines() if x.startswith("FIGURES "))
            figures = json.loads(line[len("FIGURES ") :])
            import pyarrow.parquet as pq

            meta = pq.read_metadata(out)
            figures["row_groups"] = meta.num_row_groups
            assert meta.num_rows == counts["votes"], (meta.num_rows, counts["votes"])
        print(json.dumps({"votes": counts["votes"], "chunk_size": args.chunk_size, **figures}, indent=2))
        verdict = "under" if figures["peak_rss_mb"] < 300 else "OVER"
        print(f"peak RSS {figures['peak_rss_mb']} MB: {verdict} the 300 MB goal")
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            with admin.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    main()
