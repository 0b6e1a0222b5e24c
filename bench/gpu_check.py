"""One-shot GPU check of the worker path, CUDA numerics and QuRe training (no database, no Django).

    python3 bench/gpu_check.py            # on the GPU machine: CUDA when present, else CPU
    .venv/bin/python bench/gpu_check.py --quick   # small sizes, to try the script on a CPU box first
    python3 bench/gpu_check.py --only throughput --files --images 4096 --families clip-base,demo --workers 0,4,8

1. Encode throughput (``encode_throughput.measure_throughput``): the bare ``model.encode_images`` loop against
   ``encode_image_batches`` with DataLoader workers 0 and 4 (``--workers``), for the demo family and the tiny
   BLIP-2 (``--families``; ``clip-base`` is a random ViT-B/32-size zero-shot CLIP), on in-memory PIL images or,
   with ``--files``, on paths of FashionIQ-size JPEG files (goal: worker/bare >= 0.90 on a GPU machine).
2. CPU against CUDA: the shipped demo-QuRe model (random demo weights if it is missing), the tiny BLIP-2 and the
   tiny CLIP zero-shot encode the same demo-dataset images and queries on CPU (float32) and on CUDA (with the
   worker path's autocast, and once without); prints the largest absolute difference, the cosine similarity
   of matching embeddings and how often the top-10 of each query agrees.
3. QuRe training of the demo family on the demo dataset (``models_zoo.qure.trainer.train``, AMP on CUDA) for
   2 epochs (warm-up, then a hard-negative redefinition), timed per epoch; then the same run stopped after
   epoch 1 and resumed from its checkpoint, whose epoch 2 must match the uninterrupted one.

``--only`` runs some of the sections (comma-separated: throughput, numerics, training). Prints a summary
table; writes it as JSON to ``$OUT/gpu_check.json`` when ``OUT`` is set (or to ``--json``).
Exits 1 when a section raised or a check failed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
import traceback
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def _hpbench_without_django() -> None:
    """Let ``hpbench.catalog.demo`` and ``hpbench.metrics`` import without ``hpbench/__init__.py``.

    That file starts the Celery app (Celery + Django), which the GPU machine lacks; the demo dataset, the
    oracle and the metrics need neither.
    """
    if "hpbench" not in sys.modules:
        package = types.ModuleType("hpbench")
        package.__path__ = [str(ROOT / "hpbench")]
        sys.modules["hpbench"] = package


_hpbench_without_django()
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # tiny checkpoints: the bars are only noise

import torch  # noqa: E402
from encode_throughput import FAMILIES, build_model, make_image_files, make_images, measure_throughput  # noqa: E402

from hpbench.catalog.demo import make_demo_dataset  # noqa: E402
from models_zoo import load_model  # noqa: E402
from models_zoo.demo import DemoCIR, DemoConfig, build_vocab, save_demo_model  # noqa: E402
from models_zoo.encoding import encode_image_batches, encode_query_batches, resolve_device  # noqa: E402
from models_zoo.qure.folders import fashioniq_folder_queries  # noqa: E402
from models_zoo.qure.trainer import TrainConfig, fashioniq_validation, train  # noqa: E402
from models_zoo.tiny import make_tiny_blip2, make_tiny_clip, make_tiny_clip4cir_openai  # noqa: E402

SHIPPED_DEMO = ROOT / "models_zoo" / "demo" / "checkpoints" / "demo-qure"
RATIO_GOAL = 0.90
SECTIONS = ("throughput", "numerics", "training")
RESUME_LOSS_TOLERANCE = 0.05  # relative; CUDA kernels (cuDNN backward, bf16) are not bit-reproducible


class _StopAfterEpoch(Exception):
    """Raised from ``on_epoch`` to stop a run after its checkpoint is written, as a killed job would."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a CPU try-out")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--only", default=",".join(SECTIONS), help="sections to run, comma-separated")
    parser.add_argument("--workers", default="0,4", help="DataLoader worker counts to compare")
    parser.add_argument("--families", default="demo,blip2", help=f"throughput families ({', '.join(FAMILIES)})")
    parser.add_argument("--files", action="store_true", help="throughput on JPEG files (paths), not PIL images")
    parser.add_argument("--images", type=int, help="throughput images (default 384, quick 64)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, help="throughput repeats, best kept (default 3, quick 1)")
    parser.add_argument("--per-category", type=int, help="demo dataset images per category (default 400, quick 24)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--json", type=Path, help="summary JSON path (default $OUT/gpu_check.json when OUT is set)")
    args = parser.parse_args()
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    args.families = [f.strip() for f in args.families.split(",") if f.strip()]
    for name, chosen, known in (("--only", args.only, SECTIONS), ("--families", args.families, FAMILIES)):
        if not chosen or set(chosen) - set(known):
            parser.error(f"{name} takes a comma-separated subset of {', '.join(known)}")
    args.images = args.images or (64 if args.quick else 384)
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.per_category = args.per_category or (24 if args.quick else 400)
    if args.json is None and os.environ.get("OUT"):
        args.json = Path(os.environ["OUT"]) / "gpu_check.json"
    return args


def environment(device: torch.device) -> dict[str, Any]:
    import transformers

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": str(device),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
        info["bf16"] = torch.cuda.is_bf16_supported()
    return info


# ---- 1. throughput ------------------------------------------------------------------------------------


def check_throughput(
    args: argparse.Namespace, device: torch.device, workers: list[int], scratch: Path
) -> list[dict[str, Any]]:
    rows = []
    started = time.perf_counter()
    images = make_image_files(args.images, scratch / "jpegs") if args.files else make_images(args.images)
    source = "files" if args.files else "pil"
    print(f"  {len(images)} images ({source}) in {time.perf_counter() - started:.1f} s", flush=True)
    for family in args.families:
        started = time.perf_counter()
        model = build_model(family)
        print(f"  {family}: model built in {time.perf_counter() - started:.1f} s", flush=True)
        for count in workers:
            rates = measure_throughput(
                model, images, batch_size=args.batch_size, device=device, workers=count, repeats=args.repeats
            )
            row = {"family": family, "source": source, "images": len(images), "workers": count}
            row.update({k: round(v, 3) for k, v in rates.items()})
            row["meets_goal"] = rates["ratio"] >= RATIO_GOAL
            rows.append(row)
            print(
                f"  {family:<9} workers={count}: bare {rates['bare']:9.1f} img/s  worker {rates['worker']:9.1f} img/s"
                f"  ratio {rates['ratio']:.3f}  loader alone {rates['loader']:9.1f} img/s",
                flush=True,
            )
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


# ---- 2. CPU against CUDA ------------------------------------------------------------------------------


def _rows(embeddings: torch.Tensor) -> torch.Tensor:
    """``(N, D)`` or ``(N, T, D)`` -> one embedding per row, ``(-1, D)``."""
    return embeddings.reshape(-1, embeddings.shape[-1])


def compare_embeddings(model, reference: dict[str, torch.Tensor], other: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Differences between two encodings (``{"gallery", "queries"}``) of the same inputs, and top-10 agreement."""
    differences = [(reference[k] - other[k]).abs().max() for k in ("gallery", "queries")]
    cosines = torch.cat(
        [torch.nn.functional.cosine_similarity(_rows(reference[k]), _rows(other[k]), dim=-1) for k in reference]
    )
    k = min(10, reference["gallery"].shape[0])
    top_a = model.score(reference["queries"], reference["gallery"]).topk(k, dim=1).indices
    top_b = model.score(other["queries"], other["gallery"]).topk(k, dim=1).indices
    overlap = [len(set(a) & set(b)) / k for a, b in zip(top_a.tolist(), top_b.tolist(), strict=True)]
    return {
        "max_abs_diff": float(max(differences)),
        "min_cosine": float(cosines.min()),
        "mean_cosine": float(cosines.mean()),
        "top10_same_order": float((top_a == top_b).all(dim=1).float().mean()),
        "top10_same_set": float(sum(o == 1.0 for o in overlap) / len(overlap)),
        "top10_mean_overlap": float(sum(overlap) / len(overlap)),
        "top1_same": float((top_a[:, 0] == top_b[:, 0]).float().mean()),
    }


def _encode(model, gallery: list[Path], references: list[Path], texts: list[str], *, device, amp: bool) -> dict:
    kwargs = {"batch_size": 64, "device": device, "amp": amp}
    return {
        "gallery": encode_image_batches(model, gallery, **kwargs),
        "queries": encode_query_batches(model, references, texts, **kwargs),
    }


def check_numerics(device: torch.device, folder, scratch: Path) -> list[dict[str, Any]]:
    val = folder.queries
    paths = val.images.paths
    gallery = [paths[i] for ids in val.galleries.values() for i in ids][:256]
    rows = list(range(min(64, len(val))))
    references = [paths[val.reference[i]] for i in rows]
    texts = [val.texts[i] for i in rows]
    if SHIPPED_DEMO.is_dir():
        demo_name, demo = "demo (shipped demo-qure)", lambda: load_model("demo", SHIPPED_DEMO)
    else:
        demo_name, demo = "demo (random)", lambda: build_model("demo")
    models: list[tuple[str, Callable[[], Any]]] = [
        (demo_name, demo),
        ("blip2_cir (tiny)", lambda: load_model("blip2_cir", make_tiny_blip2(scratch / "blip2"))),
        ("clip_zeroshot (tiny)", lambda: load_model("clip_zeroshot", make_tiny_clip(scratch / "clip"))),
        # CLIP4Cir's released layout on an OpenAI ResNet CLIP: runs in fp32 (autocast off) as the official code.
        ("clip4cir (tiny RN50x4 layout)", lambda: load_model("clip4cir", make_tiny_clip4cir_openai(scratch / "c4c"))),
    ]
    results = []
    for name, build in models:
        model = build()
        cpu = _encode(model, gallery, references, texts, device="cpu", amp=False)
        amp = _encode(model, gallery, references, texts, device=device, amp=True)
        plain = _encode(model, gallery, references, texts, device=device, amp=False)
        model.to("cpu")
        row = {"model": name, "gallery": len(gallery), "queries": len(rows), **compare_embeddings(model, cpu, amp)}
        row["fp32_max_abs_diff"] = compare_embeddings(model, cpu, plain)["max_abs_diff"]
        results.append(row)
        print(
            f"  {name:<26} max|diff| amp {row['max_abs_diff']:.2e} fp32 {row['fp32_max_abs_diff']:.2e}  "
            f"cos min {row['min_cosine']:.5f} mean {row['mean_cosine']:.5f}  top-10 same order "
            f"{row['top10_same_order']:.2f} same set {row['top10_same_set']:.2f} overlap "
            f"{row['top10_mean_overlap']:.3f} top-1 {row['top1_same']:.2f}",
            flush=True,
        )
    return results


# ---- 3. QuRe training and resume ----------------------------------------------------------------------


def _train_run(
    name: str, vocab: list[str], train_folder, val_folder, config: TrainConfig, work: Path, *, stop_after=None
) -> list[dict[str, Any]]:
    torch.manual_seed(config.seed)
    model = DemoCIR(DemoConfig(vocab=vocab, image_size=(40, 32)))
    records: list[dict[str, Any]] = []

    def report(record: dict[str, Any]) -> None:
        records.append(record)
        print(
            f"  [{name}] epoch {record['epoch']}/{config.epochs} {record.get('negatives_action', '')} "
            f"loss {record['loss']:.4f} tau {record['tau']:.4f} val R@10 {record['validation']['R@10']:.2f} "
            f"({record['seconds']:.2f} s)",
            flush=True,
        )
        if stop_after is not None and record["epoch"] == stop_after:
            raise _StopAfterEpoch

    def validate(m):
        return fashioniq_validation(m, val_folder.queries, device=config.device)

    common = {"config": config, "out_dir": work, "save_model": save_demo_model, "validate": validate}
    try:
        train(model, train_folder.queries, on_epoch=report, **common)
    except _StopAfterEpoch:
        torch.manual_seed(config.seed + 100)  # the resumed model starts from other weights: the checkpoint must win
        model = DemoCIR(DemoConfig(vocab=vocab, image_size=(40, 32)))
        stop_after = None
        train(model, train_folder.queries, on_epoch=report, resume=True, **common)
    return records


def check_training(args: argparse.Namespace, device: torch.device, data: Path, scratch: Path) -> dict[str, Any]:
    probe = DemoCIR(DemoConfig(vocab=["<pad>", "<unk>"], image_size=(40, 32)))
    train_folder = fashioniq_folder_queries(data, "train", preprocess=probe.image_preprocessor)
    val_folder = fashioniq_folder_queries(data, "val", preprocess=probe.image_preprocessor)
    vocab = build_vocab(train_folder.queries.texts)
    config = TrainConfig(objective="qure", epochs=args.epochs, lr=5e-4, batch_size=32, device=str(device), amp=True)
    print(f"  {len(train_folder.queries)} training queries, {len(val_folder.queries)} val queries, device {device}")
    full = _train_run("uninterrupted", vocab, train_folder, val_folder, config, scratch / "full")
    resumed = _train_run("stop+resume", vocab, train_folder, val_folder, config, scratch / "resumed", stop_after=1)
    last_full, last_resumed = full[-1], resumed[-1]
    loss_gap = abs(last_full["loss"] - last_resumed["loss"]) / max(abs(last_full["loss"]), 1e-12)
    return {
        "queries": len(train_folder.queries),
        "epoch_seconds": [r["seconds"] for r in full],
        "losses": [round(r["loss"], 5) for r in full],
        "val_R@10": [round(r["validation"]["R@10"], 2) for r in full],
        "loss_finite": all(math.isfinite(r["loss"]) for r in full + resumed),
        "resumed_epochs": [r["epoch"] for r in resumed],
        "resumed_epoch_seconds": [r["seconds"] for r in resumed],  # images already decoded by the first run
        "resumed_last_loss": round(last_resumed["loss"], 5),
        "resumed_val_R@10": round(last_resumed["validation"]["R@10"], 2),
        "resume_loss_rel_gap": round(loss_gap, 5),
        "resume_ok": [r["epoch"] for r in resumed] == list(range(1, args.epochs + 1))
        and loss_gap <= RESUME_LOSS_TOLERANCE,
    }


# ---- summary ------------------------------------------------------------------------------------------


def run_section(name: str, summary: dict[str, Any], failures: list[str], work: Callable[[], Any]) -> None:
    print(f"\n== {name}", flush=True)
    started = time.perf_counter()
    try:
        summary[name] = work()
    except Exception:  # one broken section must not hide the others' figures
        text = traceback.format_exc()
        print(text, flush=True)
        summary[name] = {"error": text}
        failures.append(name)
    print(f"  ({time.perf_counter() - started:.1f} s)", flush=True)


def print_summary(summary: dict[str, Any]) -> None:
    env = summary["environment"]
    print("\n== summary")
    print(f"device {env['device']} {env.get('gpu', '')} torch {env['torch']} transformers {env['transformers']}")
    throughput = summary.get("throughput")
    if isinstance(throughput, list):
        print(
            f"{'family':<9} {'source':<6} {'workers':>7} {'bare img/s':>11} {'worker img/s':>13} {'ratio':>6} "
            f"{'loader img/s':>13}  goal>={RATIO_GOAL}"
        )
        for r in throughput:
            print(
                f"{r['family']:<9} {r['source']:<6} {r['workers']:>7} {r['bare']:>11.1f} {r['worker']:>13.1f} "
                f"{r['ratio']:>6.3f} {r['loader']:>13.1f}  {'yes' if r['meets_goal'] else 'NO'}"
            )
    numerics = summary.get("numerics")
    if isinstance(numerics, list):
        print(
            f"{'model (cpu fp32 vs device)':<26} {'max|d| amp':>10} {'fp32':>9} {'cos min':>8} "
            f"{'top10 set':>9} {'top1':>5}"
        )
        for r in numerics:
            print(
                f"{r['model']:<26} {r['max_abs_diff']:>10.2e} {r['fp32_max_abs_diff']:>9.2e} {r['min_cosine']:>8.5f} "
                f"{r['top10_same_set']:>9.2f} {r['top1_same']:>5.2f}"
            )
    training = summary.get("training")
    if isinstance(training, dict) and "error" not in training:
        print(
            f"qure training: epoch s {training['epoch_seconds']} loss {training['losses']} val R@10 "
            f"{training['val_R@10']} finite {training['loss_finite']}; resume epochs {training['resumed_epochs']} "
            f"loss gap {training['resume_loss_rel_gap']:.2e} ok {training['resume_ok']}"
        )
    print(f"failed: {', '.join(summary['failed']) or 'none'}")


def _quiet_transformers() -> None:
    """Turn off transformers' weight-loading bars where this version has the switch (5.x moved things)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    for name in ("disable_progress_bar", "set_verbosity_error"):
        switch = getattr(hf_logging, name, None)
        if callable(switch):
            switch()


def main() -> int:
    args = parse_args()
    _quiet_transformers()
    device = resolve_device(args.device)
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    summary: dict[str, Any] = {"environment": environment(device), "quick": args.quick, "sections": args.only}
    print(json.dumps(summary["environment"]), flush=True)
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        scratch = Path(tmp)
        data = scratch / "demo-data"
        if "numerics" in args.only or "training" in args.only:
            made = make_demo_dataset(data, seed=0, per_category=args.per_category)
            print(f"demo dataset: {made.image_count} images, {made.queries_per_split()} queries ({made.seconds:.1f} s)")

        if "throughput" in args.only:
            run_section("throughput", summary, failures, lambda: check_throughput(args, device, workers, scratch))
        if "numerics" in args.only:
            probe = DemoCIR(DemoConfig(vocab=["<pad>", "<unk>"], image_size=(40, 32)))
            val_folder = fashioniq_folder_queries(data, "val", preprocess=probe.image_preprocessor)
            run_section("numerics", summary, failures, lambda: check_numerics(device, val_folder, scratch))
        if "training" in args.only:
            run_section("training", summary, failures, lambda: check_training(args, device, data, scratch))

    training = summary.get("training")
    if isinstance(training, dict) and "error" not in training:
        if not training["loss_finite"]:
            failures.append("training: non-finite loss")
        if not training["resume_ok"]:
            failures.append("training: resume")
    summary["failed"] = failures
    print_summary(summary)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1))
        print(f"wrote {args.json}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
