"""``python manage.py make_demo_dataset OUT [--seed 0] [--per-category 400] [--json]``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from hpbench.catalog.demo import SPLITS, DemoDatasetError, make_demo_dataset


class Command(BaseCommand):
    help = (
        "Write the generated demo dataset (garment images, relative captions, ground-truth attributes) in the "
        "FashionIQ folder layout, ready for `import_dataset fashioniq`. Deterministic for a seed."
    )
    # It only writes files: it needs no database and must work while the models are mid-migration.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out", type=Path, help="Folder to write: new, empty, or a previous demo dataset.")
        parser.add_argument("--seed", type=int, default=0, help="Random seed (default 0).")
        parser.add_argument("--per-category", type=int, default=400, help="Images per category (default 400).")
        parser.add_argument(
            "--queries-per-image", type=float, default=1.0, help="Queries per image in each split (default 1.0)."
        )
        parser.add_argument(
            "--json", dest="as_json", action="store_true", help="Print the summary as JSON (no progress bar)."
        )

    def handle(
        self, *args, out: Path, seed: int, per_category: int, queries_per_image: float, as_json: bool, **options
    ) -> None:
        show_bar = not as_json and options.get("verbosity", 1) > 0
        bars: list[tqdm] = []  # made on the first image, so a refused OUT prints no empty bar

        def progress(done: int, total: int) -> None:
            if not bars:
                bars.append(tqdm(total=total, desc="Drawing images", unit="img", file=sys.stderr))
            bars[0].update(done - bars[0].n)

        try:
            summary = make_demo_dataset(
                out,
                seed=seed,
                per_category=per_category,
                queries_per_image=queries_per_image,
                progress=progress if show_bar else None,
            )
        except DemoDatasetError as error:
            raise CommandError(str(error)) from error
        finally:
            for bar in bars:
                bar.close()

        if as_json:
            self.stdout.write(json.dumps(summary.to_dict(), indent=2))
            return
        lines = [f"Demo dataset (seed {summary.seed}) written to {summary.out.resolve()}"]
        lines.append(f"{'category':<10}" + "".join(f"{split:^11}" for split in SPLITS) + "  (images/queries)")
        for category, per_split in summary.images.items():
            cells = "".join(f"{per_split[split]:>5}/{summary.queries[category][split]:<5}" for split in SPLITS)
            lines.append(f"{category:<10}{cells}")
        per_split_queries = summary.queries_per_split()
        lines.append(
            f"{summary.image_count} images, {summary.query_count} queries ("
            + ", ".join(f"{split} {per_split_queries[split]}" for split in SPLITS)
            + f") in {summary.seconds:.1f}s"
        )
        for split, near in summary.near_targets.items():
            if near["queries"]:
                lines.append(
                    f"{split}: {near['mean']:.1f} near-targets per query (median {near['median']}, max {near['max']}; "
                    f"{near['exact_mean']:.1f} identical to the target), {100 * near['with_any']:.0f}% of queries "
                    "have at least one"
                )
        self.stdout.write(self.style.SUCCESS("\n".join(lines)))
