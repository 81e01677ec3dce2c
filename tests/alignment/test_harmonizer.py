"""The harmonization loss against values worked out by hand on small tensors."""

import math

import pytest
import torch

from clickme.alignment.harmonizer import (
    downsample,
    harmonization_loss,
    harmonizer_loss,
    pyramid,
    pyramidal_mse,
    standardize_cut,
)


def delta(value: float, row: int, col: int, size: int = 4) -> torch.Tensor:
    """A (1, size, size) map: zero but for one pixel."""
    map_ = torch.zeros(1, size, size, dtype=torch.float64)
    map_[0, row, col] = value
    return map_


def test_standardize_cut_is_the_positive_part_of_the_z_score() -> None:
    # One 4 among fifteen zeros: mean 0.25, population std sqrt(1 - 0.0625).
    cut = standardize_cut(delta(4.0, 0, 0))
    expected = delta(3.75 / (math.sqrt(0.9375) + 1e-5), 0, 0)
    torch.testing.assert_close(cut, expected)
    # An offset changes nothing, a scale only through the epsilon; a flat map is all zeros.
    scaled = delta(3 * 3.75 / (3 * math.sqrt(0.9375) + 1e-5), 0, 0)
    torch.testing.assert_close(standardize_cut(3 * delta(4.0, 0, 0) + 7), scaled)
    assert standardize_cut(torch.ones(1, 4, 4)).abs().max() == 0


def test_downsampling_is_a_binomial_blur_with_tensorflow_same_padding() -> None:
    # 1-D taps [1, 4, 6, 4, 1] / 16; padding one before and two after: the first output sees
    # inputs 0-3 with 4, 6, 4, 1 (15/16), the second inputs 1-3 with 1, 4, 6 (11/16).
    ones = downsample(torch.ones(1, 4, 4, dtype=torch.float64))
    first, second = 15 / 16, 11 / 16
    expected = [[first * first, first * second], [second * first, second * second]]
    torch.testing.assert_close(ones, torch.tensor([expected], dtype=torch.float64))
    corner = downsample(delta(1.0, 0, 0))
    torch.testing.assert_close(corner, torch.tensor([[[1 / 16, 0.0], [0.0, 0.0]]]).double())


def test_the_pyramid_has_five_levels_halving_the_size() -> None:
    levels = pyramid(torch.rand(2, 224, 224))
    assert [level.shape[1:] for level in levels] == [(224, 224), (112, 112), (56, 56), (28, 28),
                                                     (14, 14)]  # fmt: skip


def test_pyramidal_mse_averages_the_levels_means() -> None:
    # Level 0: one 1 among 16 pixels; level 1: one 1/16 among 4.
    loss = pyramidal_mse(delta(1.0, 0, 0), torch.zeros(1, 4, 4).double(), torch.ones(1), levels=2)
    assert loss.item() == pytest.approx((1 / 16 + (1 / 16) ** 2 / 4) / 2)
    # Five levels of a 4 x 4 map: 4, 2, 1, 1, 1 pixels a side. From 2 to 1 the kernel sees the
    # inputs with 4 and 6; from 1 to 1 with 6 (padding two before and two after).
    values = [1.0, 1 / 16, 1 / 16 * (4 / 16) ** 2]
    values += [values[-1] * (6 / 16) ** 2, values[-1] * (6 / 16) ** 4]
    sizes = [16, 4, 1, 1, 1]
    five = pyramidal_mse(delta(1.0, 0, 0), torch.zeros(1, 4, 4).double(), torch.ones(1))
    expected = sum(value**2 / size for value, size in zip(values, sizes, strict=True)) / 5
    assert five.item() == pytest.approx(expected)


def test_the_human_map_is_rescaled_to_the_saliency_s_maximum() -> None:
    saliency, human = delta(4.0, 0, 0), delta(1.0, 3, 3)
    cut_saliency = 3.75 / (math.sqrt(0.9375) + 1e-5)  # as above
    cut_human = (15 / 16) / (math.sqrt(15) / 16 + 1e-5)  # mean 1/16, std sqrt(15)/16
    target = delta(cut_human / (cut_human + 1e-6) * (cut_saliency + 1e-6), 3, 3)
    expected = pyramidal_mse(delta(cut_saliency, 0, 0), target, torch.ones(1))
    loss = harmonization_loss(saliency, human, torch.tensor([True]))
    assert loss.item() == pytest.approx(expected.item())


def test_maps_equal_up_to_scale_and_offset_cost_nothing() -> None:
    human = torch.rand(3, 8, 8, dtype=torch.float64)
    loss = harmonization_loss(5 * human + 2, human, torch.ones(3, dtype=torch.bool))
    assert loss.item() == pytest.approx(0.0, abs=1e-10)  # the epsilons only


def test_images_without_a_map_add_nothing_but_count_in_the_batch_mean() -> None:
    saliency, human = torch.rand(1, 8, 8), torch.rand(1, 8, 8)
    alone = harmonization_loss(saliency, human, torch.tensor([True]))
    for garbage in (torch.rand(1, 8, 8), torch.zeros(1, 8, 8)):
        pair = harmonization_loss(
            torch.cat([saliency, torch.rand(1, 8, 8)]),
            torch.cat([human, garbage]),
            torch.tensor([True, False]),
        )
        assert pair.item() == pytest.approx(alone.item() / 2)


def test_the_gradient_flows_through_the_saliency_only() -> None:
    saliency = torch.rand(2, 8, 8, dtype=torch.float64, requires_grad=True)
    human = torch.rand(2, 8, 8, dtype=torch.float64, requires_grad=True)
    has_map = torch.ones(2, dtype=torch.bool)
    harmonization_loss(saliency, human, has_map).backward()
    assert human.grad is None and saliency.grad is not None and saliency.grad.abs().sum() > 0
    # The saliency's maximum scales the target without a gradient: the same gradient as with
    # the rescaled human map fixed beforehand.
    cut_human = standardize_cut(human.detach())
    peak = standardize_cut(saliency.detach()).amax(dim=(1, 2), keepdim=True) + 1e-6
    target = cut_human / (cut_human.amax(dim=(1, 2), keepdim=True) + 1e-6) * peak
    fresh = saliency.detach().clone().requires_grad_(True)
    pyramidal_mse(standardize_cut(fresh), target, torch.ones(2)).backward()
    torch.testing.assert_close(saliency.grad, fresh.grad)


def test_the_total_adds_lambda_times_the_harmonization_to_smoothed_cross_entropy() -> None:
    # p = (3/4, 1/4) for the label 0; smoothed target (0.95, 0.05) over two classes.
    logits = torch.tensor([[math.log(3.0), 0.0]], dtype=torch.float64)
    saliency, human = delta(4.0, 0, 0), delta(1.0, 3, 3)
    loss = harmonizer_loss(
        logits, torch.tensor([0]), saliency, human, torch.tensor([True]), weight=0.5
    )
    cross_entropy = -(0.95 * math.log(0.75) + 0.05 * math.log(0.25))
    assert loss.cross_entropy.item() == pytest.approx(cross_entropy)
    assert loss.harmonization.item() == pytest.approx(
        harmonization_loss(saliency, human, torch.tensor([True])).item()
    )
    assert loss.total.item() == pytest.approx(cross_entropy + 0.5 * loss.harmonization.item())
