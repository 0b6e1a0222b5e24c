"""Scoring one tiny model on all HP-FashionIQ pairs: encode-once (hpbench) versus per-question re-encoding.

The released evaluation code (QuRe, HP_FashionIQ/evaluate.py) calls ``get_score_of_image`` once per set of
every question, each call encoding the query and the set's 5 images: 2 x (1 + 5) = 12 encodes per question.
hpbench's worker (``worker.scoring.pair_set_scores``) encodes every distinct image and query once.

Same tiny CLIP, same stand-in images (one small PNG per name the real file lists), same run. Prints the
number of forward passes (images and queries encoded, and encoder calls), wall times, their ratio, and checks
that both paths give the same per-pair set scores and preference ratio.

    .venv/bin/python bench/score_hpfiq.py [--limit N] [--file ../shared/data/hp-fashioniq/hpfiq.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_scratch = tempfile.mkdtemp(prefix="hpbench-bench-")
os.environ.setdefault("HPBENCH_VAR_DIR", _scratch)  # nothing is written to a database
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hpbench.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image as PILImage  # noqa: E402

from hpbench.leaderboard.hpfiq import image_names, load_questions  # noqa: E402
from hpbench.metrics.preference import preference_ratio  # noqa: E402
from models_zoo import load_model  # noqa: E402
from models_zoo.encoding import encode_image_batches, encode_query_batches  # noqa: E402
from models_zoo.tiny import make_tiny_clip  # noqa: E402
from worker.scoring import PairInput, pair_set_scores  # noqa: E402


class Counter:
    def __init__(self) -> None:
        self.images = self.queries = self.image_calls = self.query_calls = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", default=str(ROOT.parent / "shared" / "data" / "hp-fashioniq" / "hpfiq.json"))
    parser.add_argument("--limit", type=int, default=0, help="Only the first N questions (0 = all)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    questions = load_questions(args.file)
    if args.limit:
        questions = questions[: args.limit]
    names = image_names(questions)
    scratch = Path(_scratch)
    folder = scratch / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for name in names:
        PILImage.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    print(f"{len(questions)} questions, {len(names)} distinct image names "
          f"(stand-in 32x32 PNGs written in {time.perf_counter() - started:.1f} s)")
    model = load_model("clip_zeroshot", make_tiny_clip(scratch / "tiny-clip"), variant="sum", device="cpu")
    ids = {name: i for i, name in enumerate(names)}
    path = {i: str(folder / f"{name}.png") for name, i in ids.items()}
    pairs = [
        PairInput(reference_id=ids[q.reference.name], text=q.text, set1=tuple(ids[r.name] for r in q.set1),
                  set2=tuple(ids[r.name] for r in q.set2))
        for q in questions
    ]

    # --- hpbench: every distinct image and query once --------------------------------------------
    once = Counter()

    def encode_images(image_ids):
        once.images += len(image_ids)
        once.image_calls += 1
        return encode_image_batches(model, [path[i] for i in image_ids], batch_size=args.batch_size, device="cpu")

    def encode_queries(specs):
        once.queries += len(specs)
        once.query_calls += 1
        return encode_query_batches(model, [path[s.reference_id] for s in specs], [s.text for s in specs],
                                    batch_size=args.batch_size, device="cpu")

    started = time.perf_counter()
    set1, set2 = pair_set_scores(pairs, encode_images=encode_images, encode_queries=encode_queries, score=model.score)
    once_seconds = time.perf_counter() - started

    # --- released code: query + 5 images re-encoded for each set of each question -----------------
    loop = Counter()
    loop1, loop2 = np.empty(len(pairs)), np.empty(len(pairs))
    started = time.perf_counter()
    for n, pair in enumerate(pairs):
        for out, members in ((loop1, pair.set1), (loop2, pair.set2)):
            query = encode_query_batches(model, [path[pair.reference_id]], [pair.text], batch_size=1, device="cpu")
            images = encode_image_batches(model, [path[i] for i in members], batch_size=5, device="cpu")
            loop.queries += 1
            loop.images += len(members)
            loop.query_calls += 1
            loop.image_calls += 1
            with torch.inference_mode():
                out[n] = model.score(query, images).mean().item()
    loop_seconds = time.perf_counter() - started

    human1 = np.array([q.preferred == 1 for q in questions])
    print(f"\n{'path':<28}{'images':>9}{'queries':>9}{'encodes':>9}{'enc. calls':>12}{'seconds':>10}")
    for label, c, s in (("encode once (hpbench)", once, once_seconds), ("per question (released)", loop, loop_seconds)):
        print(f"{label:<28}{c.images:>9}{c.queries:>9}{c.images + c.queries:>9}"
              f"{c.image_calls + c.query_calls:>12}{s:>10.2f}")
    print(f"\nforward passes: {(loop.images + loop.queries) / (once.images + once.queries):.1f}x fewer; "
          f"wall time: {loop_seconds / once_seconds:.1f}x faster (same model, same run, CPU, "
          f"{torch.get_num_threads()} torch threads)")
    diff = max(np.abs(set1 - loop1).max(), np.abs(set2 - loop2).max())
    print(f"largest set-score difference between the paths: {diff:.2e}; preference ratio "
          f"{preference_ratio(set1, set2, human1):.4f} (encode once) vs {preference_ratio(loop1, loop2, human1):.4f} "
          "(per question)")


if __name__ == "__main__":
    main()
