"""Reproduce the shipped demo models and print their figures (no database needed).

    python bench/demo_models.py                 # generate data, train both, save checkpoints, evaluate
    python bench/demo_models.py --skip-train    # evaluate the shipped checkpoints only

1. Generates the demo dataset (``hpbench.catalog.demo.make_demo_dataset``, seed 0, 400 images per category)
   into ``--data`` and reads the folder directly (FashionIQ layout).
2. Trains the ``demo`` family from the same random initialisation with QuRe's objective and with the
   contrastive (InfoNCE) baseline (``models_zoo.qure.trainer``) on the train split, and copies
   ``model.safetensors`` + ``config.json`` + ``train_log.jsonl`` to ``--out/demo-qure`` and
   ``--out/demo-contrastive``.
3. Evaluates on the val split, FashionIQ protocol (gallery = the category's val images, reference kept):
   Recall@10/@50 of demo-QuRe, demo-contrastive and heuristics built from demo-contrastive's encoders:
   image-only (the reference's image embedding), text-only (the text encoder's output, normalised) and sum
   (normalise(image + text), CLIP4Cir's element-wise-sum baseline).
4. Oracle agreement, as HP-FashionIQ: for every val query and every two models, the two top-5 sets form a
   pair (identical sets skipped); the oracle annotator (``hpbench.catalog.oracle.oracle_prefers``) prefers the
   set whose images meet more of the requested attributes on average. Each model scores both sets (set score
   = mean of its scores over the set's 5 images) and agrees when its higher-scored set is the oracle's
   (``hpbench.metrics.preference.agreement``; oracle ties excluded). A model's own top-5 is by construction
   the set it scores highest, so agreement is also reported on "neutral" pairs: those formed only by the
   heuristics' sets, which no trained model produced.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from hpbench.catalog import oracle  # noqa: E402
from hpbench.catalog.demo import make_demo_dataset  # noqa: E402
from hpbench.metrics.preference import agreement, preference_ratio  # noqa: E402
from hpbench.metrics.retrieval import fashioniq_recall, target_ranks_from_scores  # noqa: E402
from models_zoo import load_model  # noqa: E402
from models_zoo.demo import DemoCIR, DemoConfig, build_vocab, save_demo_model  # noqa: E402
from models_zoo.qure.folders import fashioniq_folder_queries  # noqa: E402
from models_zoo.qure.trainer import TrainConfig, encode_image_ids, fashioniq_validation, train  # noqa: E402

SHIPPED = ("model.safetensors", "config.json", "train_log.jsonl")
HEURISTICS = ("image-only", "text-only", "sum")
HEURISTIC_VARIANTS = {"image-only": "image", "text-only": "text", "sum": "sum"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "var" / "demo-bench" / "data")
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "demo-bench" / "runs")
    parser.add_argument("--out", type=Path, default=ROOT / "models_zoo" / "demo" / "checkpoints")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-category", type=int, default=400)
    parser.add_argument("--queries-per-image", type=float, default=1.0)
    parser.add_argument("--pretrain-epochs", type=int, default=6, help="shared contrastive start (0: none)")
    parser.add_argument("--pretrain-lr", type=float, default=2e-3)
    parser.add_argument("--epochs", type=int, default=12, help="fine-tuning epochs per objective")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--image-size", default="40,32", help="demo model input height,width")
    parser.add_argument("--objectives", default="qure,contrastive")
    parser.add_argument("--skip-train", action="store_true", help="evaluate the checkpoints in --out only")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    return parser.parse_args()


def demo_config(args: argparse.Namespace, vocab: list[str]) -> DemoConfig:
    height, width = (int(x) for x in args.image_size.split(","))
    return DemoConfig(vocab=vocab, image_size=(height, width))


def run_training(
    name: str, objective: str, epochs: int, lr: float, args: argparse.Namespace, train_set, val_set, model: DemoCIR
) -> Path:
    """Train ``model`` in ``--work/name`` and return that folder."""
    work = args.work / name
    shutil.rmtree(work, ignore_errors=True)
    config = TrainConfig(
        objective=objective, epochs=epochs, lr=lr, batch_size=args.batch_size, seed=args.seed, device="cpu"
    )

    def report(record: dict) -> None:
        negatives = record.get("negative_set_size")
        extra = f" negatives[{record['negatives_action']}] {negatives}" if negatives else ""
        print(
            f"  [{name}] epoch {record['epoch']:>2}/{epochs} loss {record['loss']:.4f} "
            f"tau {record['tau']:.4f} val R@10 {record['validation']['R@10']:.2f} "
            f"R@50 {record['validation']['R@50']:.2f} ({record['seconds']:.1f} s){extra}",
            flush=True,
        )

    train(
        model,
        train_set,
        config=config,
        out_dir=work,
        save_model=save_demo_model,
        validate=lambda m: fashioniq_validation(m, val_set),
        on_epoch=report,
    )
    return work


def train_all(objectives: list[str], args: argparse.Namespace, train_set, val_set, vocab: list[str]) -> dict:
    """The shared contrastive pre-training, then one fine-tuning per objective; copy the results to --out."""
    timings = {}
    tick = time.perf_counter()
    torch.manual_seed(args.seed)
    start = DemoCIR(demo_config(args, vocab))
    pretrain = None
    if args.pretrain_epochs:
        print(f"pre-training (contrastive, shared by both): {args.pretrain_epochs} epochs, lr {args.pretrain_lr}")
        pretrain = run_training(
            "pretrain", "contrastive", args.pretrain_epochs, args.pretrain_lr, args, train_set, val_set, start
        )
        timings["pretrain"] = time.perf_counter() - tick
    for objective in objectives:
        tick = time.perf_counter()
        print(f"fine-tuning demo-{objective}: {args.epochs} epochs, lr {args.lr}, batch {args.batch_size}")
        if pretrain is not None:
            model = load_model("demo", pretrain, device="cpu").train()
        else:
            torch.manual_seed(args.seed)
            model = DemoCIR(demo_config(args, vocab))
        work = run_training(f"demo-{objective}", objective, args.epochs, args.lr, args, train_set, val_set, model)
        destination = args.out / f"demo-{objective}"
        destination.mkdir(parents=True, exist_ok=True)
        for name in SHIPPED:
            shutil.copy2(work / name, destination / name)
        if pretrain is not None:
            shutil.copy2(pretrain / "train_log.jsonl", destination / "pretrain_log.jsonl")
        timings[objective] = time.perf_counter() - tick
    return timings


@torch.no_grad()
def score_matrices(model, val_set) -> dict[str, torch.Tensor]:
    """Per category: ``(queries of that category, its gallery)`` scores."""
    out = {}
    categories = sorted(set(val_set.categories))
    for category in categories:
        rows = [i for i, c in enumerate(val_set.categories) if c == category]
        gallery = encode_image_ids(
            model,
            val_set.images,
            torch.tensor(val_set.galleries[category]),
            batch_size=128,
            device=torch.device("cpu"),
            amp=False,
        )
        pixels = val_set.images.pixels([val_set.reference[i] for i in rows])
        queries = model.encode_queries(pixels, [val_set.texts[i] for i in rows])
        out[category] = model.score(queries, gallery).float()
    return out


def evaluate(models: dict, folder, attributes: dict) -> dict:
    val_set = folder.queries
    scores = {name: score_matrices(model, val_set) for name, model in models.items()}
    categories = sorted(set(val_set.categories))
    rows_of = {c: [i for i, cat in enumerate(val_set.categories) if cat == c] for c in categories}
    figures: dict[str, dict] = {}
    for name in models:
        ranks = {}
        for category in categories:
            position = {image: j for j, image in enumerate(val_set.galleries[category])}
            targets = [position[val_set.target[i]] for i in rows_of[category]]
            ranks[category] = target_ranks_from_scores(scores[name][category].numpy(), targets)
        recall = fashioniq_recall(ranks)
        figures[name] = {"R@10": recall["mean"]["R@10"], "R@50": recall["mean"]["R@50"], "avg": recall["avg"]}

    # Pairs of top-5 sets from two different models, per val query.
    pairs = []  # (producer a, producer b, category, local row, set a (gallery idx), set b, oracle code)
    for category in categories:
        gallery = val_set.galleries[category]
        for local, row in enumerate(rows_of[category]):
            reference = folder.names[val_set.reference[row]]
            requested = oracle.requested_attributes(folder.captions[row], attributes[reference])
            tops = {name: torch.topk(scores[name][category][local], 5).indices.tolist() for name in models}
            for a, b in itertools.combinations(models, 2):
                if set(tops[a]) == set(tops[b]):
                    continue
                answer = oracle.oracle_prefers(
                    [attributes[folder.names[gallery[j]]] for j in tops[a]],
                    [attributes[folder.names[gallery[j]]] for j in tops[b]],
                    requested,
                )
                code = {"a": 1, "b": 2, "tie": 0}[answer]
                pairs.append((a, b, category, local, tops[a], tops[b], code))
    human = np.array([p[6] for p in pairs])
    neutral = np.array([p[0] in HEURISTICS and p[1] in HEURISTICS for p in pairs])
    for name in models:
        s1 = np.array([float(scores[name][p[2]][p[3], p[4]].mean()) for p in pairs])
        s2 = np.array([float(scores[name][p[2]][p[3], p[5]].mean()) for p in pairs])
        everything = agreement(s1, s2, human)
        held = agreement(s1[neutral], s2[neutral], human[neutral])
        figures[name]["agreement"] = everything["agreement"]
        figures[name]["agreement_neutral"] = held["agreement"]
        figures[name]["preference_ratio"] = preference_ratio(s1, s2, human == 1)
        figures[name]["pairs"] = everything["pairs"]
        figures[name]["pairs_neutral"] = held["pairs"]
    # How good each model's own top-5 is for the oracle: mean relevance and share of requested attributes.
    for name in models:
        relevances = []
        for category in categories:
            gallery = val_set.galleries[category]
            for local, row in enumerate(rows_of[category]):
                reference = folder.names[val_set.reference[row]]
                requested = oracle.requested_attributes(folder.captions[row], attributes[reference])
                top = torch.topk(scores[name][category][local], 5).indices.tolist()
                chosen = [attributes[folder.names[gallery[j]]] for j in top]
                relevances.append(oracle.set_relevance(chosen, requested) / max(len(requested), 1))
        figures[name]["top5_attribute_share"] = float(np.mean(relevances))
    return figures


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    summary = make_demo_dataset(
        args.data, seed=args.seed, per_category=args.per_category, queries_per_image=args.queries_per_image
    )
    print(
        f"demo dataset: {summary.image_count} images, {summary.queries_per_split()} queries "
        f"({summary.seconds:.1f} s) in {args.data}"
    )
    attributes = json.loads((args.data / "attributes.json").read_text())

    probe = DemoCIR(demo_config(args, ["<pad>", "<unk>"]))
    train_folder = fashioniq_folder_queries(args.data, "train", preprocess=probe.image_preprocessor)
    val_folder = fashioniq_folder_queries(args.data, "val", preprocess=probe.image_preprocessor)
    vocab = build_vocab(train_folder.queries.texts)

    objectives = [o for o in args.objectives.split(",") if o]
    timings = {}
    if not args.skip_train:
        timings = train_all(objectives, args, train_folder.queries, val_folder.queries, vocab)

    models: dict = {}
    for objective in objectives:
        models[f"demo-{objective}"] = load_model("demo", args.out / f"demo-{objective}", device="cpu")
    base = "demo-contrastive" if "demo-contrastive" in models else f"demo-{objectives[0]}"
    for kind in HEURISTICS:  # the demo family's zero-shot-style variants over the base model's encoders
        models[kind] = load_model("demo", args.out / base, variant=HEURISTIC_VARIANTS[kind], device="cpu")
    figures = evaluate(models, val_folder, attributes)

    print()
    print(
        f"val split: {len(val_folder.queries)} queries, galleries of "
        f"{ {c: len(g) for c, g in val_folder.queries.galleries.items()} } images; heuristics use "
        f"{'demo-contrastive' if 'demo-contrastive' in models else 'the first'} model's encoders"
    )
    header = (
        f"{'model':<18} {'R@10':>6} {'R@50':>6} {'avg':>6} {'agree':>6} {'agree*':>7} {'P-ratio':>7} {'top5 attr':>9}"
    )
    print(header)
    print("-" * len(header))
    for name, f in figures.items():
        print(
            f"{name:<18} {f['R@10']:6.2f} {f['R@50']:6.2f} {f['avg']:6.2f} {f['agreement']:6.3f} "
            f"{f['agreement_neutral']:7.3f} {f['preference_ratio']:7.3f} {f['top5_attribute_share']:9.3f}"
        )
    any_model = next(iter(figures.values()))
    print(
        f"agree: all {any_model['pairs']} oracle-decided pairs; agree*: the {any_model['pairs_neutral']} "
        "pairs formed by heuristic sets only; P-ratio: QuRe Eq. 9 over all pairs; top5 attr: share of "
        "requested attributes met by the model's own top-5, averaged over queries"
    )
    for objective, seconds in timings.items():
        print(f"training {objective}: {seconds:.0f} s")
    print(f"total {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"figures": figures, "train_seconds": timings}, indent=1))


if __name__ == "__main__":
    main()
