"""The trainer on a toy CIR model: the loss goes down, checkpoints resume exactly, validation is logged."""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models_zoo.base import CIRModel
from models_zoo.qure.data import QuerySet, TensorPixels
from models_zoo.qure.losses import bradley_terry_loss, pair_scores
from models_zoo.qure.trainer import TrainConfig, define_hard_negatives, fashioniq_validation, train

WORDS = ("red", "blue", "long", "short")


class ToyModel(CIRModel):
    """Linear image encoder, bag-of-words text encoder, sum combiner, cosine score."""

    family = "toy"

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.image = nn.Linear(3 * 4 * 4, 16)
        self.words = nn.EmbeddingBag(32, 16, mode="mean")

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image(pixel_values.flatten(1)), dim=-1)

    def encode_queries(self, pixel_values: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        ids = [torch.tensor([zlib.crc32(w.encode()) % 32 for w in t.split()]) for t in texts]
        offsets = torch.tensor([0] + [len(i) for i in ids[:-1]]).cumsum(0)
        text = self.words(torch.cat(ids), offsets)
        return F.normalize(self.image(pixel_values.flatten(1)) + text, dim=-1)


def toy_queries(n_bases: int = 12, seed: int = 0) -> QuerySet:
    """Queries whose target is the reference shifted by a word-specific pattern: learnable by the toy model.

    Images ``0..n_bases-1`` are random bases; image ``n_bases * (k + 1) + i`` is base ``i`` plus word ``k``'s
    shift. Even bases are dresses, odd ones shirts, so each category's corpus holds ``n_bases`` targets.
    """
    g = torch.Generator().manual_seed(seed)
    bases = torch.randn(n_bases, 3, 4, 4, generator=g)
    shifts = torch.randn(2, 3, 4, 4, generator=g)
    pixels = torch.cat([bases] + [bases + shifts[k] for k in range(2)])
    reference, target, texts, categories = [], [], [], []
    for i in range(n_bases):
        for k, word in enumerate(WORDS[:2]):
            reference.append(i)
            target.append(n_bases * (k + 1) + i)
            texts.append(word)
            categories.append("dress" if i % 2 == 0 else "shirt")
    galleries = {c: list(range(len(pixels))) for c in ("dress", "shirt")}
    return QuerySet(TensorPixels(pixels), reference, target, texts, categories, galleries)


def fixed_negative_loss(model: CIRModel, queries: QuerySet) -> float:
    g = torch.Generator().manual_seed(123)
    negatives = torch.tensor(
        [
            (t + 1 + int(torch.randint(len(queries.images) - 1, (1,), generator=g))) % len(queries.images)
            for t in queries.target
        ]
    )
    with torch.no_grad():
        q = model.encode_queries(queries.images.pixels(queries.reference), queries.texts)
        t = model.encode_images(queries.images.pixels(queries.target))
        n = model.encode_images(queries.images.pixels(negatives))
        return float(bradley_terry_loss(pair_scores(model, q, t), pair_scores(model, q, n), 0.07))


def config(**overrides) -> TrainConfig:
    values = dict(objective="qure", epochs=4, lr=3e-2, batch_size=8, device="cpu", seed=0)
    values.update(overrides)
    return TrainConfig(**values)


def test_qure_training_lowers_the_loss_and_logs_each_epoch(tmp_path):
    queries = toy_queries()
    model = ToyModel()
    before = fixed_negative_loss(model, queries)
    recall_before = fashioniq_validation(model, queries)["R@10"]
    records = train(
        model, queries, config=config(), out_dir=tmp_path, validate=lambda m: fashioniq_validation(m, queries)
    )
    after = fixed_negative_loss(model, queries)
    assert after < before * 0.5, (before, after)
    assert [r["negatives_action"] for r in records] == ["warmup", "redefine", "redefine", "redefine"]
    assert records[0]["negative_set_size"] == {"mean": 11.0, "min": 11, "max": 11}  # 12 targets per category
    assert sum(records[1]["negative_outcomes"].values()) == len(queries)
    assert records[-1]["validation"]["R@10"] > recall_before
    assert records[-1]["lr"] < records[0]["lr"]
    logged = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in logged] == [1, 2, 3, 4]
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "trainer_state.pt").is_file()


def test_contrastive_training_lowers_its_loss(tmp_path):
    records = train(ToyModel(), toy_queries(), config=config(objective="contrastive"), out_dir=tmp_path)
    assert "negatives_action" not in records[0]
    assert records[-1]["loss"] < records[0]["loss"]


class Interrupted(Exception):
    pass


def test_a_resumed_run_ends_exactly_where_an_uninterrupted_one_does(tmp_path):
    queries = toy_queries()
    straight = ToyModel()
    expected = train(straight, queries, config=config(epochs=6), out_dir=tmp_path / "straight")

    def stop_after_three(record):
        if record["epoch"] == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(ToyModel(), queries, config=config(epochs=6), out_dir=tmp_path / "broken", on_epoch=stop_after_three)
    resumed_model = ToyModel(seed=42)  # different initial weights: everything must come from the checkpoint
    resumed = train(resumed_model, queries, config=config(epochs=6), out_dir=tmp_path / "broken", resume=True)

    assert [r["epoch"] for r in resumed] == [4, 5, 6]
    assert [r["loss"] for r in resumed] == pytest.approx([r["loss"] for r in expected[3:]], rel=1e-5)
    for name, value in straight.state_dict().items():
        assert torch.allclose(value, resumed_model.state_dict()[name], atol=1e-6), name
    lines = (tmp_path / "broken" / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4, 5, 6]


def test_resuming_without_a_checkpoint_or_with_another_objective_is_refused(tmp_path):
    queries = toy_queries()
    with pytest.raises(ValueError, match="cannot resume"):
        train(ToyModel(), queries, config=config(), out_dir=tmp_path, resume=True)
    train(ToyModel(), queries, config=config(epochs=1), out_dir=tmp_path)
    with pytest.raises(ValueError, match="objective 'qure'"):
        train(ToyModel(), queries, config=config(objective="contrastive"), out_dir=tmp_path, resume=True)


def test_hard_negatives_come_from_the_querys_own_category_and_never_hold_its_target():
    queries = toy_queries()
    sets, outcome = define_hard_negatives(ToyModel(), queries)
    corpora = queries.category_corpora()
    for row, negatives in enumerate(sets):
        assert queries.target[row] not in negatives.tolist()
        assert set(negatives.tolist()) <= set(corpora[queries.categories[row]].tolist())
    assert len(outcome) == len(queries)


def test_bad_configurations_are_refused():
    with pytest.raises(ValueError, match="unknown objective"):
        TrainConfig(objective="triplet")
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
