"""Train any CIR family with QuRe's objective or the contrastive baseline (plain PyTorch, no Django).

Usage::

    from models_zoo.qure.trainer import TrainConfig, train, fashioniq_validation

    log = train(model, train_queries, config=TrainConfig(objective="qure", epochs=12, lr=1e-3),
                out_dir="runs/demo-qure", validate=lambda m: fashioniq_validation(m, val_queries))

What one epoch does (``objective="qure"``; see :mod:`models_zoo.qure.sampler` for the schedule):

1. At a block start after the warm-up, the hard-negative sets are redefined from the current model: every
   training query and its category's corpus are encoded in ``no_grad`` batches (eval mode) and
   :func:`models_zoo.qure.negatives.hard_negative_sets` is applied per category.
2. One negative per query is drawn (warm-up: uniform over the corpus minus the target; later: from its set).
3. The learning rate is set by cosine decay from ``lr`` to ``lr / 100`` over the epochs (per epoch, as QuRe).
4. Mini-batches of shuffled queries: Bradley-Terry loss ``-log sigmoid((s(q,t) - s(q,n)) / tau)``, with the
   learned temperature; AdamW (weight decay 0.05) over the model's trainable parameters and ``log tau``;
   autocast (bf16, or fp16 with a gradient scaler) on CUDA.

``objective="contrastive"``: the same loop with InfoNCE over in-batch targets, no negative sets.

After each epoch: the ``validate(model)`` callback's metrics join the epoch's log record, the model is
written to ``out_dir`` (``save_model(model, out_dir)``, by default ``model.safetensors`` holding the state
dict), then ``trainer_state.pt`` (optimizer, temperature, sampler, generators, epoch) and one JSON line in
``train_log.jsonl``. ``resume=True`` reloads ``model.safetensors`` and ``trainer_state.pt`` and continues with
the next epoch; the sampler's sets and cycles come back exactly, so a resumed run draws what an
uninterrupted one would have drawn.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from models_zoo.base import CIRModel
from models_zoo.encoding import autocast_context, resolve_device
from models_zoo.qure.data import PixelSource, QuerySet
from models_zoo.qure.losses import INITIAL_TAU, Temperature, bradley_terry_loss, info_nce_loss, pair_scores
from models_zoo.qure.negatives import OUTCOMES, hard_negative_sets
from models_zoo.qure.sampler import DEFINITIONS, KEEP, REDEFINE, WARMUP, NegativeSampler, schedule_action

OBJECTIVES = ("qure", "contrastive")
STATE_FILE = "trainer_state.pt"
LOG_FILE = "train_log.jsonl"
MODEL_FILE = "model.safetensors"

ModelSaver = Callable[[CIRModel, Path], None]
Validator = Callable[[CIRModel], dict[str, Any]]


@dataclass
class TrainConfig:
    """Training hyper-parameters. ``device``: ``auto``/``cpu``/``cuda[:N]``."""

    objective: str = "qure"
    epochs: int = 6
    lr: float = 1e-4
    batch_size: int = 32
    weight_decay: float = 0.05
    tau: float = INITIAL_TAU
    learn_tau: bool = True
    definitions: int = DEFINITIONS
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    encode_batch_size: int = 128

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; use one of {', '.join(OBJECTIVES)}")
        for name in ("epochs", "batch_size", "encode_batch_size", "definitions"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.tau <= 0 or self.weight_decay < 0:
            raise ValueError("lr and tau must be positive and weight_decay non-negative")


def cosine_lr(epoch: int, epochs: int, lr: float) -> float:
    """QuRe's per-epoch schedule: ``lr/100 + (lr - lr/100) * (1 + cos(pi * epoch / epochs)) / 2``."""
    low = lr / 100
    return low + (lr - low) * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))


# ---- no-grad encoding ---------------------------------------------------------------------------------


def _batches(n: int, size: int) -> Iterable[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


@torch.no_grad()
def encode_image_ids(
    model: CIRModel, images: PixelSource, ids: torch.Tensor, *, batch_size: int, device: torch.device, amp: bool
) -> torch.Tensor:
    """Gallery embeddings of image ``ids`` (CPU float32), in eval mode, ``no_grad`` batches."""
    chunks = []
    for part in _batches(len(ids), batch_size):
        pixels = images.pixels(ids[part]).to(device)
        with autocast_context(device, amp):
            chunks.append(model.encode_images(pixels).float().cpu())
    return torch.cat(chunks)


@torch.no_grad()
def encode_query_rows(
    model: CIRModel, queries: QuerySet, rows: torch.Tensor, *, batch_size: int, device: torch.device, amp: bool
) -> torch.Tensor:
    """Composed-query embeddings of query ``rows`` (CPU float32), in eval mode, ``no_grad`` batches."""
    chunks = []
    for part in _batches(len(rows), batch_size):
        chosen = rows[part].tolist()
        pixels = queries.images.pixels([queries.reference[i] for i in chosen]).to(device)
        with autocast_context(device, amp):
            chunks.append(model.encode_queries(pixels, [queries.texts[i] for i in chosen]).float().cpu())
    return torch.cat(chunks)


def _rows_by_category(queries: QuerySet) -> dict[str, torch.Tensor]:
    rows: dict[str, list[int]] = {}
    for i, category in enumerate(queries.categories):
        rows.setdefault(category, []).append(i)
    return {c: torch.tensor(r, dtype=torch.long) for c, r in sorted(rows.items())}


def define_hard_negatives(
    model: CIRModel,
    queries: QuerySet,
    *,
    batch_size: int = 128,
    device: str | torch.device = "cpu",
    amp: bool = True,
    score_rows: int = 1024,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Each training query's hard-negative set (image ids) under the current model, and the rule's outcome.

    The corpus of a query is its category's training targets (:meth:`QuerySet.category_corpora`). Scores
    come from ``model.score`` in blocks of ``score_rows`` queries. Leaves the model in eval mode.
    """
    target_device = resolve_device(device)
    was_training = model.training
    model.eval()
    try:
        corpora = queries.category_corpora()
        sets: list[torch.Tensor] = [torch.empty(0, dtype=torch.long)] * len(queries)
        outcome = torch.zeros(len(queries), dtype=torch.long)
        for category, rows in _rows_by_category(queries).items():
            corpus = corpora[category]
            gallery = encode_image_ids(
                model, queries.images, corpus, batch_size=batch_size, device=target_device, amp=amp
            )
            embedded = encode_query_rows(model, queries, rows, batch_size=batch_size, device=target_device, amp=amp)
            position = {int(image): j for j, image in enumerate(corpus.tolist())}
            local_targets = torch.tensor([position[queries.target[int(r)]] for r in rows], dtype=torch.long)
            for part in _batches(len(rows), score_rows):
                with torch.no_grad():
                    scores = model.score(embedded[part].to(target_device), gallery.to(target_device)).float()
                result = hard_negative_sets(scores, local_targets[part].to(scores.device))
                for offset, (row, local) in enumerate(zip(rows[part].tolist(), result.sets, strict=True)):
                    sets[row] = corpus[local]
                    outcome[row] = result.outcome[offset]
        return sets, outcome
    finally:
        model.train(was_training)


@torch.no_grad()
def fashioniq_validation(
    model: CIRModel,
    queries: QuerySet,
    *,
    batch_size: int = 128,
    device: str | torch.device = "cpu",
    amp: bool = True,
) -> dict[str, Any]:
    """FashionIQ-protocol Recall@10/@50 (percent) of ``model`` on ``queries``.

    Each category's gallery is ``queries.galleries[category]`` (every image of that category's split; the
    reference is not removed). Ranks use ``model.score`` and the tie rule of
    :mod:`hpbench.metrics.retrieval`. Returns ``{"R@10": mean, "R@50": mean, "avg": .., "per_category": ..}``.
    Raises ValueError when a category has no gallery or a target is not in its gallery.
    """
    from hpbench.metrics.retrieval import fashioniq_recall, target_ranks_from_scores

    target_device = resolve_device(device)
    was_training = model.training
    model.eval()
    try:
        ranks = {}
        for category, rows in _rows_by_category(queries).items():
            gallery_ids = queries.galleries.get(category)
            if not gallery_ids:
                raise ValueError(f"validation category {category!r} has no gallery")
            position = {image: j for j, image in enumerate(gallery_ids)}
            missing = [queries.target[int(r)] for r in rows if queries.target[int(r)] not in position]
            if missing:
                raise ValueError(f"validation category {category!r}: target image {missing[0]} is not in its gallery")
            gallery = encode_image_ids(
                model,
                queries.images,
                torch.tensor(gallery_ids, dtype=torch.long),
                batch_size=batch_size,
                device=target_device,
                amp=amp,
            )
            embedded = encode_query_rows(model, queries, rows, batch_size=batch_size, device=target_device, amp=amp)
            scores = model.score(embedded.to(target_device), gallery.to(target_device)).float().cpu().numpy()
            targets = [position[queries.target[int(r)]] for r in rows]
            ranks[category] = target_ranks_from_scores(scores, targets)
        result = fashioniq_recall(ranks)
    finally:
        model.train(was_training)
    return {
        "R@10": result["mean"]["R@10"],
        "R@50": result["mean"]["R@50"],
        "avg": result["avg"],
        "per_category": {c: v for c, v in result.items() if c not in ("mean", "avg")},
    }


# ---- checkpoints -------------------------------------------------------------------------------------


def save_state_dict(model: CIRModel, folder: Path) -> None:
    """The default saver: ``folder/model.safetensors`` with the model's state dict."""
    from safetensors.torch import save_model

    save_model(model, str(folder / MODEL_FILE))


def load_weights(model: CIRModel, folder: Path) -> None:
    """Load ``folder/model.safetensors`` (a state dict) into ``model``; ValueError naming the problem."""
    from safetensors.torch import load_model

    path = folder / MODEL_FILE
    if not path.is_file():
        raise ValueError(f"cannot resume: {path} does not exist")
    try:
        load_model(model, str(path), strict=True)
    except (RuntimeError, OSError) as exc:
        raise ValueError(f"cannot resume from {path}: {exc}") from exc


def _write_checkpoint(model: CIRModel, out: Path, save_model: ModelSaver) -> None:
    """Write the model into a scratch folder, then move its files over the previous epoch's."""
    scratch = out / ".epoch-tmp"
    scratch.mkdir(exist_ok=True)
    for stale in scratch.iterdir():
        stale.unlink()
    save_model(model, scratch)
    for produced in scratch.iterdir():
        os.replace(produced, out / produced.name)
    scratch.rmdir()


def _atomic_torch_save(obj: dict[str, Any], path: Path) -> None:
    partial = path.with_suffix(".partial")
    torch.save(obj, partial)
    os.replace(partial, path)


def _size_stats(sizes: torch.Tensor) -> dict[str, float]:
    sizes = sizes.float()
    return {"mean": round(float(sizes.mean()), 3), "min": int(sizes.min()), "max": int(sizes.max())}


# ---- the loop ----------------------------------------------------------------------------------------


def train(
    model: CIRModel,
    queries: QuerySet,
    *,
    config: TrainConfig,
    out_dir: str | Path,
    save_model: ModelSaver | None = None,
    validate: Validator | None = None,
    resume: bool = False,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    progress: Callable[..., Any] | None = None,
) -> list[dict[str, Any]]:
    """Train ``model`` on ``queries`` and return this call's per-epoch log records.

    Each record: ``epoch`` (1-based), ``objective``, ``negatives_action`` (warmup/redefine/keep, qure only),
    ``loss`` (mean over batches), ``lr``, ``tau``, ``negative_set_size`` (mean/min/max of the sets negatives
    were drawn from this epoch; the corpus minus the target during warm-up), ``negative_outcomes`` (how many
    sets came from the rule or each fallback, at a redefinition), ``validation`` (the callback's dict),
    ``seconds``. ``progress`` is a tqdm-like factory (``progress(total=, desc=)``) for a per-epoch bar;
    ``on_epoch(record)`` is called after each epoch is saved.

    Raises ValueError for a category whose corpus holds a single image, for ``resume`` without a usable
    state in ``out_dir``, or for a state written for another objective or query count.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    saver = save_model or save_state_dict
    model.to(device)

    temperature = Temperature(config.tau).to(device)
    temperature.log_tau.requires_grad_(config.learn_tau)
    parameters = [p for p in model.parameters() if p.requires_grad]
    if config.learn_tau:
        parameters.append(temperature.log_tau)
    if not parameters:
        raise ValueError("the model has no trainable parameters")
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    use_amp = config.amp and device.type == "cuda"
    fp16 = use_amp and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler("cuda", enabled=fp16)

    corpora = queries.category_corpora()
    for category, corpus in corpora.items():
        if len(corpus) < 2:
            raise ValueError(f"category {category!r} has a single training target; QuRe needs at least 2")
    query_corpora = [corpora[c] for c in queries.categories]
    generator = torch.Generator().manual_seed(config.seed)
    sampler = NegativeSampler(
        corpora=query_corpora, targets=queries.target, generator=torch.Generator().manual_seed(config.seed + 1)
    )
    target_tensor = torch.tensor(queries.target, dtype=torch.long)

    start_epoch = 0
    if not resume:
        for stale in (LOG_FILE, STATE_FILE):
            (out / stale).unlink(missing_ok=True)  # a fresh run does not continue an old log
    if resume:
        state_path = out / STATE_FILE
        if not state_path.is_file():
            raise ValueError(f"cannot resume: {state_path} does not exist")
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        if state["objective"] != config.objective or state["queries"] != len(queries):
            raise ValueError(
                f"cannot resume: {state_path} was written for objective {state['objective']!r} and "
                f"{state['queries']} queries, not {config.objective!r} and {len(queries)}"
            )
        load_weights(model, out)
        model.to(device)
        optimizer.load_state_dict(state["optimizer"])
        temperature.load_state_dict(state["temperature"])
        sampler.load_state_dict(state["sampler"])
        generator.set_state(state["generator"])
        if fp16 and "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        start_epoch = int(state["epoch"])

    records: list[dict[str, Any]] = []
    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        record: dict[str, Any] = {"epoch": epoch + 1, "objective": config.objective}
        negatives: torch.Tensor | None = None
        if config.objective == "qure":
            action = schedule_action(epoch, config.epochs, config.definitions)
            record["negatives_action"] = action
            if action == REDEFINE or (action == KEEP and sampler.sets is None):
                sets, outcome = define_hard_negatives(
                    model, queries, batch_size=config.encode_batch_size, device=device, amp=config.amp
                )
                sampler.set_negatives(sets)
                record["negative_outcomes"] = {name: int((outcome == k).sum()) for k, name in enumerate(OUTCOMES)}
            if action == WARMUP:
                negatives = sampler.warmup_draw()
                record["negative_set_size"] = _size_stats(torch.tensor([len(c) - 1 for c in query_corpora]))
            else:
                negatives = sampler.hard_draw()
                record["negative_set_size"] = _size_stats(torch.tensor([len(s) for s in sampler.sets or []]))

        lr = cosine_lr(epoch, config.epochs, config.lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        order = torch.randperm(len(queries), generator=generator)
        total, batches = 0.0, 0
        bar = progress(total=len(queries), desc=f"epoch {epoch + 1}/{config.epochs}") if progress else None
        for part in _batches(len(order), config.batch_size):
            rows = order[part]
            if config.objective == "contrastive" and len(rows) < 2:
                continue  # InfoNCE needs an in-batch negative
            reference = queries.images.pixels([queries.reference[i] for i in rows.tolist()]).to(device)
            texts = [queries.texts[i] for i in rows.tolist()]
            targets = target_tensor[rows]
            wanted = torch.cat([targets, negatives[rows]]) if negatives is not None else targets
            images = queries.images.pixels(wanted).to(device)
            optimizer.zero_grad(set_to_none=True)
            with autocast_context(device, use_amp):
                embedded_queries = model.encode_queries(reference, texts)
                embedded_images = model.encode_images(images)
                if negatives is not None:
                    n = len(rows)
                    positive = pair_scores(model, embedded_queries, embedded_images[:n])
                    negative = pair_scores(model, embedded_queries, embedded_images[n:])
                    loss = bradley_terry_loss(positive, negative, temperature.tau)
                else:
                    scores = model.score(embedded_queries, embedded_images)
                    loss = info_nce_loss(scores, temperature.tau, target_ids=targets.to(device))
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            total += float(loss.detach())
            batches += 1
            if bar is not None:
                bar.update(len(rows))
                bar.set_postfix(loss=f"{total / batches:.4f}")
        if bar is not None:
            bar.close()

        record["loss"] = total / max(batches, 1)
        record["lr"] = lr
        record["tau"] = float(temperature.tau.detach())
        if validate is not None:
            record["validation"] = validate(model)
            model.train()
        record["seconds"] = round(time.perf_counter() - started, 2)

        _write_checkpoint(model, out, saver)
        state = {
            "epoch": epoch + 1,
            "objective": config.objective,
            "queries": len(queries),
            "config": json.dumps(asdict(config)),
            "optimizer": optimizer.state_dict(),
            "temperature": temperature.state_dict(),
            "sampler": sampler.state_dict(),
            "generator": generator.get_state(),
        }
        if fp16:
            state["scaler"] = scaler.state_dict()
        _atomic_torch_save(state, out / STATE_FILE)
        with (out / LOG_FILE).open("a") as log:
            log.write(json.dumps(record) + "\n")
        records.append(record)
        if on_epoch is not None:
            on_epoch(record)
    return records
