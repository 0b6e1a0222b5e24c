"""The reward-model (Bradley-Terry) loss, InfoNCE and the learned temperature against direct computations."""

from __future__ import annotations

import math

import pytest
import torch

from models_zoo.qure.losses import Temperature, bradley_terry_loss, info_nce_loss


def test_the_bradley_terry_loss_is_minus_log_sigmoid_of_the_scaled_margin():
    target = torch.tensor([0.9, 0.2, -0.3])
    negative = torch.tensor([0.1, 0.5, -0.3])
    tau = 0.07
    direct = sum(
        -math.log(1 / (1 + math.exp(-(t - n) / tau))) for t, n in zip(target.tolist(), negative.tolist(), strict=True)
    )
    assert float(bradley_terry_loss(target, negative, tau)) == pytest.approx(direct / 3, rel=1e-5)


def test_the_bradley_terry_loss_equals_qures_kl_divergence_form():
    torch.manual_seed(0)
    target, negative = torch.randn(8), torch.randn(8)
    tau = torch.tensor(0.05)
    logits = torch.stack([target, negative], dim=1) / tau
    one_hot = torch.zeros_like(logits)
    one_hot[:, 0] = 1.0
    kl = torch.nn.functional.kl_div(torch.log_softmax(logits, dim=1), one_hot, reduction="batchmean")
    assert float(bradley_terry_loss(target, negative, tau)) == pytest.approx(float(kl), rel=1e-5)


def test_the_bradley_terry_loss_stays_finite_for_huge_margins():
    loss = bradley_terry_loss(torch.tensor([-50.0]), torch.tensor([50.0]), 0.01)
    assert torch.isfinite(loss)
    assert float(loss) == pytest.approx(10000.0, rel=1e-4)


def test_info_nce_is_the_cross_entropy_of_each_row_against_its_diagonal():
    scores = torch.tensor([[0.9, 0.1, 0.3], [0.2, 0.8, 0.4], [0.5, 0.6, 0.1]])
    tau = 0.1
    direct = 0.0
    for i in range(3):
        row = [s / tau for s in scores[i].tolist()]
        direct += -(row[i] - math.log(sum(math.exp(v) for v in row)))
    assert float(info_nce_loss(scores, tau)) == pytest.approx(direct / 3, rel=1e-5)


def test_info_nce_does_not_use_a_repeated_target_as_a_negative():
    scores = torch.tensor([[0.9, 0.9, 0.3], [0.9, 0.9, 0.4], [0.5, 0.6, 0.1]])
    ids = torch.tensor([7, 7, 2])
    tau = 0.1
    row0 = [0.9 / tau, 0.3 / tau]  # column 1 is the same image as row 0's target: left out
    row1 = [0.9 / tau, 0.4 / tau]  # likewise column 0 for row 1
    row2 = [v / tau for v in scores[2].tolist()]
    direct = -(row0[0] - math.log(sum(math.exp(v) for v in row0)))
    direct += -(row1[0] - math.log(sum(math.exp(v) for v in row1)))
    direct += -(row2[2] - math.log(sum(math.exp(v) for v in row2)))
    assert float(info_nce_loss(scores, tau, target_ids=ids)) == pytest.approx(direct / 3, rel=1e-5)


def test_the_temperature_starts_at_0_07_and_learns_through_its_logarithm():
    temperature = Temperature()
    assert float(temperature.tau.detach()) == pytest.approx(0.07)
    loss = bradley_terry_loss(torch.tensor([0.5]), torch.tensor([0.4]), temperature.tau)
    loss.backward()
    assert temperature.log_tau.grad is not None and float(temperature.log_tau.grad) != 0.0
    with pytest.raises(ValueError, match="positive"):
        Temperature(0.0)
