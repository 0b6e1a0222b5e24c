"""QuRe's released architecture (Blip2QuRe, clip_L) through the worker path: gallery rate and HP-FashionIQ time.

A random model in the released checkpoint layout (``models_zoo.blip2_cir.synthetic``) is written with
``torch.save`` and loaded with the zoo's loader, as a researcher's ``model.pth`` would be. ``--size full`` is the
released size (ViT-L/14: 23 blocks, width 1024, 224 px; 12-layer Q-Former, 32 query tokens); ``--size reduced``
(the default on CPU) keeps the layout at a size 2 CPU cores run in a few minutes. Prints, in one run:

1. gallery images/s: ``encode_image_batches`` (the worker path: DataLoader decode + preprocess, uint8 to the device,
   batched encode) against a bare ``model.encode_images`` loop on pre-built pixel batches (goal: >= 0.9);
2. the wall time of scoring every HP-FashionIQ question (3,050 pairs of 5-image sets, structure from
   ``hpfiq.json``; one FashionIQ-size JPEG synthesised per image name, decoded for real) through the platform's
   path (``worker.scoring.pair_set_scores``: every distinct image and query encoded once), against QuRe's
   released ``HP_FashionIQ/evaluate.py`` loop (per question and per set: encode the query, then the set's 5 images:
   12 encodes per question; goal: >= 30x). ``--loop-sample N`` times the released loop on the first N questions
   and extrapolates to all (said so in the output); both paths' set scores are compared on those questions.

    .venv/bin/python bench/qure_throughput.py                      # CPU: reduced size, loop sampled
    python3 bench/qure_throughput.py --size full --loop-sample 0   # GPU: released size, full loop

No database is touched; where Django is not installed (the GPU machine) its modules are stubbed so that
``worker.scoring`` imports. On 2 busy shared CPU cores the default CPU run (500 questions, loop sampled on 40)
takes a few minutes; ``--questions 0`` scores all 3,050 (about 10 minutes there).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
_scratch = tempfile.mkdtemp(prefix="hpbench-qure-bench-")


def _platform_without_django() -> None:
    """Let ``worker.scoring`` (the platform's scoring path) import where Django is not installed (the GPU machine).

    Only names that ``pair_set_scores`` never touches are stubbed: the Django settings and the ORM models and
    services ``worker.scoring`` / ``worker.embeddings`` import at module level; ``hpbench/__init__.py`` (the Celery
    app) is skipped as ``gpu_check.py`` does.
    """
    package = types.ModuleType("hpbench")
    package.__path__ = [str(ROOT / "hpbench")]
    sys.modules["hpbench"] = package
    stubs = {
        "django": {},
        "django.conf": {"settings": types.SimpleNamespace(HPBENCH_DEVICE="auto")},
        "hpbench.catalog.models": {"Image": None, "ModelEntry": None},
        "hpbench.leaderboard.models": {"ModelScore": None},
        "hpbench.leaderboard.services.scores": dict.fromkeys(
            ("model_score_claim", "model_score_fail", "model_score_progress", "model_score_store")
        ),
    }
    for name, attributes in stubs.items():
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        sys.modules[name] = module


try:
    import django
except ImportError:
    _platform_without_django()
else:
    os.environ.setdefault("HPBENCH_VAR_DIR", _scratch)  # no database is touched
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hpbench.settings")
    django.setup()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from encode_throughput import make_image_files, measure_throughput  # noqa: E402

from hpbench.leaderboard.hpfiq import image_names, load_questions  # noqa: E402
from hpbench.metrics.preference import preference_ratio  # noqa: E402
from models_zoo import load_model  # noqa: E402
from models_zoo.blip2_cir.synthetic import QuReSizes, qure_clip_l_state_dict  # noqa: E402
from models_zoo.encoding import encode_image_batches, encode_query_batches, resolve_device  # noqa: E402
from models_zoo.tiny import _write_bert_vocab  # noqa: E402
from worker.scoring import PairInput, pair_set_scores  # noqa: E402

FULL = QuReSizes(vocab_size=30523)
#: Same layout at a size 2 shared CPU cores encode ~9,000 times in a few minutes: a 112 px ViT-?/14 (65 tokens) of
#: 2 blocks of width 64, a 2-layer Q-Former of width 96 (12 heads), 32 query tokens, 256-d embeddings.
REDUCED = QuReSizes(
    width=64, layers=2, patch=14, image_size=112, mlp=256, qformer_hidden=96, qformer_layers=2,
    qformer_intermediate=384, cross_attention_freq=2, vocab_size=96, max_positions=64, query_tokens=32, embed_dim=256,
)


def build(sizes: QuReSizes, folder: Path, device: torch.device):
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    _write_bert_vocab(folder)
    path = folder / "model.pth"
    torch.save(qure_clip_l_state_dict(sizes, seed=0), path)
    model = load_model("blip2_cir", path, variant="qure", device=str(device))
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {sizes.layers} ViT blocks x {sizes.width} ({sizes.image_size} px / {sizes.patch}), "
          f"{sizes.qformer_layers}-layer Q-Former x {sizes.qformer_hidden}, {params / 1e6:.1f} M parameters, "
          f"{path.stat().st_size / 2**20:.0f} MiB file, built and loaded in {time.perf_counter() - started:.1f} s")
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("full", "reduced"), help="default: full on CUDA, reduced on CPU")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--file", default=str(ROOT.parent / "shared" / "data" / "hp-fashioniq" / "hpfiq.json"))
    parser.add_argument("--images", type=int, default=256, help="gallery images for the throughput section")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, help="DataLoader workers (default: 0 on CPU, 4 on CUDA)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--questions", type=int, help="score only the first N questions "
                        "(0 = all; default: all on CUDA, 500 on CPU)")
    parser.add_argument("--loop-sample", type=int, help="released loop on N questions, extrapolated "
                        "(0 = all; default: all on CUDA, 40 on CPU)")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    sizes = FULL if (args.size or ("full" if cuda else "reduced")) == "full" else REDUCED
    workers = args.workers if args.workers is not None else (4 if cuda else 0)
    questions_limit = args.questions if args.questions is not None else (0 if cuda else 500)
    loop_sample = args.loop_sample if args.loop_sample is not None else (0 if cuda else 40)
    scratch = Path(_scratch)
    print(f"device {device}, {torch.get_num_threads()} torch threads, DataLoader workers {workers}")
    model = build(sizes, scratch / "model", device)

    # --- 1. gallery throughput ------------------------------------------------------------------------------
    gallery = make_image_files(args.images, scratch / "gallery")
    rates = measure_throughput(model, gallery, batch_size=args.batch_size, device=device, workers=workers,
                               repeats=args.repeats)
    print(f"\n1. gallery of {args.images} FashionIQ-size JPEG files, batch {args.batch_size}:")
    print(f"   bare encode loop {rates['bare']:8.1f} images/s | worker path {rates['worker']:8.1f} images/s | "
          f"ratio {rates['ratio']:.2f} (goal >= 0.90) | DataLoader alone {rates['loader']:.1f} images/s")

    # --- 2. HP-FashionIQ ------------------------------------------------------------------------------------
    questions = load_questions(args.file)
    if questions_limit:
        questions = questions[:questions_limit]
    names = image_names(questions)
    started = time.perf_counter()
    files = make_image_files(len(names), scratch / "hpfiq")
    path = dict(enumerate(files))
    ids = {name: i for i, name in enumerate(names)}
    pairs = [
        PairInput(reference_id=ids[q.reference.name], text=q.text, set1=tuple(ids[r.name] for r in q.set1),
                  set2=tuple(ids[r.name] for r in q.set2))
        for q in questions
    ]
    print(f"\n2. {len(pairs)} questions over {len(names)} distinct images "
          f"(JPEG stand-ins written in {time.perf_counter() - started:.1f} s)")

    def encode_images(image_ids):
        return encode_image_batches(model, [path[i] for i in image_ids], batch_size=args.batch_size, device=device,
                                    num_workers=workers)

    def encode_queries(specs):
        return encode_query_batches(model, [path[s.reference_id] for s in specs], [s.text for s in specs],
                                    batch_size=args.batch_size, device=device, num_workers=workers)

    if cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    set1, set2 = pair_set_scores(pairs, encode_images=encode_images, encode_queries=encode_queries, score=model.score)
    once_seconds = time.perf_counter() - started
    distinct_queries = len({p.spec() for p in pairs})

    # QuRe's HP_FashionIQ/evaluate.py: get_score_of_image per set (query: batch 1; the 5 images: batch 5).
    sample = pairs if loop_sample == 0 else pairs[:loop_sample]
    loop1, loop2 = np.empty(len(sample)), np.empty(len(sample))
    started = time.perf_counter()
    for n, pair in enumerate(sample):
        for out, members in ((loop1, pair.set1), (loop2, pair.set2)):
            query = encode_query_batches(model, [path[pair.reference_id]], [pair.text], batch_size=1, device=device)
            images = encode_image_batches(model, [path[i] for i in members], batch_size=5, device=device)
            with torch.inference_mode():
                out[n] = model.score(query.to(device), images.to(device)).mean().item()
    if cuda:
        torch.cuda.synchronize()
    loop_measured = time.perf_counter() - started
    loop_seconds = loop_measured * len(pairs) / len(sample)
    extrapolated = "" if len(sample) == len(pairs) else f" (measured {loop_measured:.1f} s on {len(sample)}, scaled)"
    print(f"   platform path (each of {len(names)} images and {distinct_queries} queries encoded once): "
          f"{once_seconds:8.1f} s")
    print(f"   released loop ({12 * len(pairs)} encodes, 12 per question):{'':>21}{loop_seconds:8.1f} s{extrapolated}")
    print(f"   speed-up {loop_seconds / once_seconds:.1f}x (goal >= 30x)")
    diff = max(np.abs(set1[: len(sample)] - loop1).max(), np.abs(set2[: len(sample)] - loop2).max())
    human1 = np.array([q.preferred == 1 for q in questions])
    print(f"   largest set-score difference between the paths on {len(sample)} questions: {diff:.2e}; "
          f"preference ratio (random weights) {preference_ratio(set1, set2, human1):.4f}")


if __name__ == "__main__":
    main()
