"""QuRe's negative schedule and the per-query sampler."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from models_zoo.qure.sampler import KEEP, REDEFINE, WARMUP, NegativeSampler, definition_period, schedule_action


def test_thirty_epochs_give_a_warm_up_block_then_a_redefinition_every_five_epochs():
    actions = [schedule_action(e, 30) for e in range(30)]
    assert actions[:5] == [WARMUP] * 5
    assert [e for e, a in enumerate(actions) if a == REDEFINE] == [5, 10, 15, 20, 25]
    assert actions.count(KEEP) == 30 - 5 - 5


def test_a_remainder_of_epochs_forms_one_more_block():
    assert [e for e in range(14) if schedule_action(e, 14) == REDEFINE] == [2, 4, 6, 8, 10, 12]


def test_fewer_than_six_epochs_redefine_at_every_epoch_after_the_first():
    assert definition_period(4) == 1
    assert [schedule_action(e, 4) for e in range(4)] == [WARMUP, REDEFINE, REDEFINE, REDEFINE]
    assert [schedule_action(0, 1)] == [WARMUP]
    with pytest.raises(ValueError, match="epochs"):
        definition_period(0)


def make_sampler(seed: int = 0) -> NegativeSampler:
    corpus = torch.arange(10)
    return NegativeSampler(
        corpora=[corpus, corpus, torch.tensor([3, 7])], targets=[0, 5, 7], generator=torch.Generator().manual_seed(seed)
    )


def test_a_query_sees_every_image_of_its_set_once_before_any_repeats():
    sampler = make_sampler()
    sets = [torch.tensor([1, 2, 3]), torch.tensor([6, 7, 8, 9]), torch.tensor([3])]
    sampler.set_negatives(sets)
    draws = torch.stack([sampler.hard_draw() for _ in range(12)])  # (epochs, queries)
    for query, s in enumerate(sets):
        size = len(s)
        for cycle in range(12 // size):
            chunk = draws[cycle * size : (cycle + 1) * size, query].tolist()
            assert sorted(chunk) == sorted(s.tolist()), (query, cycle, chunk)


def test_redefining_the_sets_restarts_the_cycles():
    sampler = make_sampler()
    sampler.set_negatives([torch.tensor([1, 2]), torch.tensor([6, 7]), torch.tensor([3])])
    sampler.hard_draw()
    sampler.set_negatives([torch.tensor([8, 9]), torch.tensor([1, 2]), torch.tensor([3])])
    first_two = torch.stack([sampler.hard_draw(), sampler.hard_draw()])
    assert sorted(first_two[:, 0].tolist()) == [8, 9]
    assert sorted(first_two[:, 1].tolist()) == [1, 2]


def test_warm_up_draws_uniformly_from_the_corpus_minus_the_target():
    sampler = make_sampler()
    counts = Counter(int(sampler.warmup_draw()[0]) for _ in range(2700))
    assert set(counts) == set(range(1, 10))  # never the target 0
    assert min(counts.values()) > 200 and max(counts.values()) < 400  # ~300 each
    assert {int(sampler.warmup_draw()[2]) for _ in range(20)} == {3}  # corpus {3, 7}, target 7


def test_it_refuses_sets_that_hold_the_target_or_nothing():
    sampler = make_sampler()
    with pytest.raises(ValueError, match="query 1: its hard-negative set contains its target"):
        sampler.set_negatives([torch.tensor([1]), torch.tensor([5, 6]), torch.tensor([3])])
    with pytest.raises(ValueError, match="query 0: empty"):
        sampler.set_negatives([torch.tensor([], dtype=torch.long), torch.tensor([6]), torch.tensor([3])])
    with pytest.raises(ValueError, match="not in its corpus"):
        NegativeSampler(corpora=[torch.tensor([1, 2])], targets=[3])


def test_its_saved_state_replays_the_same_draws():
    sampler = make_sampler()
    sampler.set_negatives([torch.tensor([1, 2, 3, 4]), torch.tensor([6, 7, 8]), torch.tensor([3])])
    sampler.hard_draw()
    state = sampler.state_dict()
    expected = [sampler.hard_draw().tolist() for _ in range(5)]
    restored = make_sampler(seed=99)
    restored.load_state_dict(state)
    assert [restored.hard_draw().tolist() for _ in range(5)] == expected
