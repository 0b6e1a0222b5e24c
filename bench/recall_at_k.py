"""Bench: FashionIQ Recall@10/@50 from cached embeddings at the real FashionIQ val size.

Goal (issue 3): under 1 s on the 2-core CPU for 3 categories with 15,536 gallery embeddings and 6,016
queries in total, dim 256 (random unit float32 vectors). Prints the time of the full
``fashioniq_recall_from_embeddings`` call (best, first and median of a few repeats), the time of top-50
lists for the same problem, and the recall figures.

    .venv/bin/python bench/recall_at_k.py [--dim D] [--repeats R] [--chunk C]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hpbench.metrics.retrieval import (  # noqa: E402
    fashioniq_recall_from_embeddings,
    target_ranks,
    topk_from_embeddings,
)

#: FashionIQ val split sizes (gallery images, queries) per category; totals 15,536 and 6,016.
SIZES = {"dress": (3817, 2017), "shirt": (6346, 2038), "toptee": (5373, 1961)}


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=None, help="queries per score block (default: auto)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    problem = {}
    for category, (n_gallery, n_queries) in SIZES.items():
        gallery = unit(rng, n_gallery, args.dim)
        target = rng.integers(0, n_gallery, n_queries)
        # queries near their targets so the recalls are neither 0 nor 100
        queries = gallery[target] + 6.0 * unit(rng, n_queries, args.dim)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        problem[category] = (queries, gallery, target)
    total_gallery = sum(g.shape[0] for _, g, _ in problem.values())
    total_queries = sum(q.shape[0] for q, _, _ in problem.values())

    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        result = fashioniq_recall_from_embeddings(problem, chunk=args.chunk)
        times.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    for queries, gallery, _ in problem.values():
        topk_from_embeddings(queries, gallery, 50, chunk=args.chunk)
    topk_time = time.perf_counter() - t0

    # cross-check the ranks against a plain stable full sort on one category
    queries, gallery, target = problem["dress"]
    order = np.argsort(-(queries @ gallery.T), axis=1, kind="stable")
    brute = np.argmax(order == target[:, None], axis=1)
    assert (brute == target_ranks(queries, gallery, target)).all()

    print(f"gallery={total_gallery:,} queries={total_queries:,} dim={args.dim} categories={len(SIZES)}")
    print(
        f"fashioniq_recall_from_embeddings: best {min(times):.3f} s, first {times[0]:.3f} s, "
        f"median {np.median(times):.3f} s over {args.repeats} runs (goal < 1 s)"
    )
    print(f"top-50 lists for all queries (topk_from_embeddings): {topk_time:.3f} s")
    print("result:", {k: v for k, v in result.items()})


if __name__ == "__main__":
    main()
