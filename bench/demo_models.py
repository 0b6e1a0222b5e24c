"""Reproduce the shipped demo models and print their figures (no database needed).

    python bench/demo_models.py                 # generate data, train both, save checkpoints, evaluate
    python bench/demo_models.py --skip-train    # evaluate the shipped checkpoints only

1. Generates the demo dataset (``hpbench.catalog.demo.make_demo_dataset``, seed 0, 400 images per category)
   into ``--data`` and reads the folder directly (FashionIQ layout); prints its near-targets per query.
2. Trains the ``demo`` family from the same random initialisation with QuRe's objective and with the
   contrastive (InfoNCE) baseline (``models_zoo.qure.trainer``) on the train split, and copies
   ``model.safetensors`` + ``config.json`` + ``train_log.jsonl`` to ``--out/demo-qure`` and
   ``--out/demo-contrastive``.
3. Evaluates on the val split, FashionIQ protocol (gallery = the category's val images, reference kept):
   Recall@10/@50 of demo-QuRe, demo-contrastive and heuristics built from demo-contrastive's encoders:
   image-only (the reference's image embedding), text-only (the text encoder's output, normalised) and sum
   (normalise(image + text), CLIP4Cir's element-wise-sum baseline). Intervals: 95% bootstrap over queries
   (resampled within each category, 1,000 rounds).
4. Agreement with a simulated crowd, as HP-FashionIQ and as the demo benchmark of ``manage.py up``: for every
   val query and every two models, the two top-5 sets form a pair (identical sets skipped). Three members of
   a crowd of 9 simulated annotators (``hpbench.catalog.oracle.annotator_draw``, 10% lapses, each with their
   own bias and noise) vote on it with the oracle's relevance (requested change met AND the rest of the
   reference kept); the verdict is the strict plurality (else a tie), as ``benchmark_freeze`` takes it. Each
   model scores both sets (set score = mean of its scores over the set's 5 images) and agrees when its
   higher-scored set is the crowd's (``hpbench.metrics.preference.preference_summary``: human ties excluded,
   95% bootstrap interval over pairs). A model's own top-5 is by construction the set it scores highest, so
   agreement is also reported on "neutral" pairs: those formed only by the heuristics' sets, which no
   trained model produced. The human ceiling is the crowd's pairwise agreement.
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

import random  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from hpbench.catalog import oracle  # noqa: E402
from hpbench.catalog.demo import make_demo_dataset  # noqa: E402
from hpbench.metrics.preference import preference_ratio, preference_summary  # noqa: E402
from hpbench.metrics.reliability import pairwise_agreement  # noqa: E402
from hpbench.metrics.retrieval import fashioniq_recall, target_ranks_from_scores  # noqa: E402
from models_zoo import load_model  # noqa: E402
from models_zoo.demo import DemoCIR, DemoConfig, build_vocab, save_demo_model  # noqa: E402
from models_zoo.qure.folders import fashioniq_folder_queries  # noqa: E402
from models_zoo.qure.trainer import TrainConfig, encode_image_ids, fashioniq_validation, train  # noqa: E402

SHIPPED = ("model.safetensors", "config.json", "train_log.jsonl")
HEURISTICS = ("image-only", "text-only", "sum")
HEURISTIC_VARIANTS = {"image-only": "image", "text-only": "text", "sum": "sum"}
CROWD_SIZE, VOTES_PER_PAIR, CROWD_NOISE = 9, 3, 0.1


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


def recall_interval(ranks: dict[str, np.ndarray], *, rounds: int = 1000, seed: int = 0) -> dict[str, tuple]:
    """95% percentile bootstrap intervals of the FashionIQ mean R@10 and R@50, queries resampled per category."""
    rng = np.random.default_rng(seed)
    draws = {10: np.zeros(rounds), 50: np.zeros(rounds)}
    for category_ranks in ranks.values():
        category_ranks = np.asarray(category_ranks)
        resampled = category_ranks[rng.integers(0, len(category_ranks), size=(rounds, len(category_ranks)))]
        for k in draws:
            draws[k] += 100.0 * (resampled < k).mean(axis=1) / len(ranks)
    return {f"R@{k}": tuple(float(x) for x in np.quantile(v, [0.025, 0.975])) for k, v in draws.items()}


def crowd_verdict(votes: list[str]) -> int:
    """Strict plurality of "a"/"b"/"tie" as a human code (1 = set a, 2 = set b, 0 = tie)."""
    counts = sorted(((votes.count(answer), answer) for answer in oracle.ANSWERS), reverse=True)
    if counts[0][0] == counts[1][0]:
        return 0
    return {"a": 1, "b": 2, "tie": 0}[counts[0][1]]


def evaluate(models: dict, folder, attributes: dict, *, seed: int = 0) -> tuple[dict, dict]:
    """Per model: recall with intervals and agreement with the simulated crowd; and the crowd's own figures."""
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
        intervals = recall_interval(ranks, seed=seed)
        figures[name]["R@10_ci"], figures[name]["R@50_ci"] = intervals["R@10"], intervals["R@50"]

    crowd_rng = random.Random(f"crowd-{seed}")
    crowd = [oracle.annotator_draw(crowd_rng, noise=CROWD_NOISE) for _ in range(CROWD_SIZE)]
    vote_rng = random.Random(f"votes-{seed}")
    # Pairs of top-5 sets from two different models, per val query.
    pairs = []  # (producer a, producer b, category, local row, set a (gallery idx), set b, crowd code)
    all_votes = []
    for category in categories:
        gallery = val_set.galleries[category]
        for local, row in enumerate(rows_of[category]):
            reference = attributes[folder.names[val_set.reference[row]]]
            requested = oracle.requested_attributes(folder.captions[row], reference)
            tops = {name: torch.topk(scores[name][category][local], 5).indices.tolist() for name in models}
            for a, b in itertools.combinations(models, 2):
                if set(tops[a]) == set(tops[b]):
                    continue
                set_a = [attributes[folder.names[gallery[j]]] for j in tops[a]]
                set_b = [attributes[folder.names[gallery[j]]] for j in tops[b]]
                votes = [
                    person.prefers(set_a, set_b, reference, requested, rng=vote_rng)
                    for person in vote_rng.sample(crowd, VOTES_PER_PAIR)
                ]
                all_votes.append(votes)
                pairs.append((a, b, category, local, tops[a], tops[b], crowd_verdict(votes)))
    human = np.array([p[6] for p in pairs])
    neutral = np.array([p[0] in HEURISTICS and p[1] in HEURISTICS for p in pairs])
    for name in models:
        s1 = np.array([float(scores[name][p[2]][p[3], p[4]].mean()) for p in pairs])
        s2 = np.array([float(scores[name][p[2]][p[3], p[5]].mean()) for p in pairs])
        everything = preference_summary(s1, s2, human, seed=seed)["agreement"]
        held = preference_summary(s1[neutral], s2[neutral], human[neutral], seed=seed)["agreement"]
        figures[name]["agreement"] = everything["value"]
        figures[name]["agreement_ci"] = (everything["lower"], everything["upper"])
        figures[name]["agreement_neutral"] = held["value"]
        figures[name]["agreement_neutral_ci"] = (held["lower"], held["upper"])
        figures[name]["preference_ratio"] = float(preference_ratio(s1, s2, human == 1))
        figures[name]["pairs"] = everything["pairs"]
        figures[name]["pairs_neutral"] = held["pairs"]
    # How good each model's own top-5 is for the oracle: mean relevance and share of near-targets + target.
    for name in models:
        relevances, satisfied = [], []
        for category in categories:
            gallery = val_set.galleries[category]
            for local, row in enumerate(rows_of[category]):
                reference = attributes[folder.names[val_set.reference[row]]]
                requested = oracle.requested_attributes(folder.captions[row], reference)
                top = torch.topk(scores[name][category][local], 5).indices.tolist()
                chosen = [attributes[folder.names[gallery[j]]] for j in top]
                relevances.append(oracle.set_relevance(chosen, reference, requested))
                satisfied.append(np.mean([oracle.satisfies(image, reference, requested) for image in chosen]))
        figures[name]["top5_relevance"] = float(np.mean(relevances))
        figures[name]["top5_satisfying"] = float(np.mean(satisfied))
    crowd_figures = {
        "pairs": len(pairs),
        "human_ties": int((human == 0).sum()),
        "pairwise_agreement": pairwise_agreement(all_votes),
        "annotators": [vars(person) for person in crowd],
    }
    return figures, crowd_figures


def print_table(figures: dict, crowd: dict) -> None:
    header = (
        f"{'model':<18} {'R@10 [95% CI]':>20} {'R@50 [95% CI]':>21} {'agreement [95% CI]':>24} "
        f"{'agree*':>7} {'P-ratio':>7} {'top5 rel':>8} {'top5 sat':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, f in figures.items():
        r10, r50, ag = f["R@10_ci"], f["R@50_ci"], f["agreement_ci"]
        print(
            f"{name:<18} {f['R@10']:6.2f} [{r10[0]:5.1f}, {r10[1]:5.1f}] "
            f"{f['R@50']:6.2f} [{r50[0]:5.1f}, {r50[1]:5.1f}]"
            f"  {f['agreement']:6.3f} [{ag[0]:.3f}, {ag[1]:.3f}] {f['agreement_neutral']:7.3f} "
            f"{f['preference_ratio']:7.3f} {f['top5_relevance']:8.3f} {f['top5_satisfying']:8.3f}"
        )
    any_model = next(iter(figures.values()))
    print(
        f"agreement: {any_model['pairs']} crowd-decided pairs ({crowd['pairs']} pairs, {crowd['human_ties']} crowd "
        f"ties left out); agree*: the {any_model['pairs_neutral']} pairs formed by heuristic sets only; "
        f"human ceiling (pairwise agreement of the simulated crowd): {crowd['pairwise_agreement']:.3f}; "
        "P-ratio: QuRe Eq. 9; top5 rel: mean oracle relevance of the model's own top-5; top5 sat: share of "
        "its top-5 that satisfies the query (target or near-target)"
    )


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
    for split, near in summary.near_targets.items():
        print(
            f"  {split}: near-targets per query mean {near['mean']}, median {near['median']}, max {near['max']}, "
            f"{100 * near['with_any']:.0f}% of queries have one; identical to the target: mean {near['exact_mean']}"
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
    figures, crowd = evaluate(models, val_folder, attributes, seed=args.seed)

    print()
    print(
        f"val split: {len(val_folder.queries)} queries, galleries of "
        f"{ {c: len(g) for c, g in val_folder.queries.galleries.items()} } images; heuristics use "
        f"{'demo-contrastive' if 'demo-contrastive' in models else 'the first'} model's encoders"
    )
    print_table(figures, crowd)
    for objective, seconds in timings.items():
        print(f"training {objective}: {seconds:.0f} s")
    print(f"total {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"figures": figures, "crowd": crowd, "near_targets": summary.near_targets, "train_seconds": timings},
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
