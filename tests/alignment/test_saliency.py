"""Saliency maps: |gradient of the true logit|, maximum over channels; fast double backprop."""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from clickme.alignment.double_backward import fast_grouped_convolutions
from clickme.alignment.saliency import gradient_saliency, normalised, saliency_maps
from clickme.scoring.registry import Preprocessing
from tests.alignment.tiny import MapNet, TinyNet


class PixelLinear(nn.Module):
    """logit[c] = sum over channels and pixels of weight[c] * input: its gradient is weight[c]."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bkhw,ckhw->bc", inputs, self.weight)


def test_the_map_is_the_absolute_gradient_of_the_true_logit_maxed_over_channels() -> None:
    weight = torch.randn(2, 3, 224, 224)
    model = PixelLinear(weight)
    inputs = torch.rand(3, 3, 224, 224)
    labels = torch.tensor([0, 1, 1])
    explanation = gradient_saliency(model, inputs, labels)
    assert explanation.saliency.shape == (3, 224, 224)
    assert explanation.saliency.min() >= 0
    for index, label in enumerate(labels):
        expected = weight[label].abs().amax(dim=0)
        torch.testing.assert_close(explanation.saliency[index], expected)
    torch.testing.assert_close(explanation.logits, model(inputs))


def test_the_map_of_a_fixed_map_model_is_that_map_in_absolute_value() -> None:
    wanted = torch.randn(224, 224)
    saliency = gradient_saliency(MapNet(wanted), torch.rand(1, 3, 224, 224), torch.tensor([7]))
    torch.testing.assert_close(saliency.saliency[0], wanted.abs())


def test_batches_give_each_image_its_own_map() -> None:
    torch.manual_seed(0)
    model = TinyNet().eval()
    images, labels = torch.rand(5, 3, 224, 224), torch.tensor([1, 2, 3, 4, 5])
    preprocessing = Preprocessing()
    together = saliency_maps(model, preprocessing, images, labels, batch_size=2)
    alone = [saliency_maps(model, preprocessing, images[i : i + 1], labels[i : i + 1])[0]
             for i in range(5)]  # fmt: skip
    assert together.shape == (5, 224, 224) and together.dtype == np.float32
    np.testing.assert_allclose(together, np.stack(alone), rtol=1e-5, atol=1e-7)


def test_normalised_pixels_match_the_scorers_normalisation() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    preprocessing = Preprocessing(mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3))
    images = torch.from_numpy(pixels.transpose(0, 3, 1, 2).astype(np.float32) / 255)
    np.testing.assert_allclose(
        normalised(images, preprocessing).numpy(), preprocessing.normalise(pixels), atol=1e-5
    )


def _double_backward(model: nn.Module, fast: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The saliency and the weights' gradient of a loss on it."""
    model.zero_grad()
    inputs = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    if fast:
        with fast_grouped_convolutions():
            explanation = gradient_saliency(model, inputs, torch.tensor([3, 4]), True)
    else:
        explanation = gradient_saliency(model, inputs, torch.tensor([3, 4]), True)
    (explanation.saliency.square().mean() + explanation.logits.mean()).backward()
    grads = {name: parameter.grad.clone() for name, parameter in model.named_parameters()}
    return explanation.saliency.detach(), grads


def test_fast_grouped_convolutions_give_the_same_values_and_gradients() -> None:
    torch.manual_seed(0)
    model = TinyNet().eval()
    slow_saliency, slow_grads = _double_backward(model, fast=False)
    fast_saliency, fast_grads = _double_backward(model, fast=True)
    torch.testing.assert_close(fast_saliency, slow_saliency)
    assert fast_grads.keys() == slow_grads.keys()
    for name, fast in fast_grads.items():
        torch.testing.assert_close(fast, slow_grads[name], rtol=1e-4, atol=1e-6)
    assert fast_grads["depthwise.weight"].abs().sum() > 0


def test_string_padding_and_ungrouped_convolutions_are_left_alone() -> None:
    inputs, weight = torch.rand(1, 4, 9, 9), torch.rand(4, 1, 3, 3)
    with fast_grouped_convolutions():
        same = F.conv2d(inputs, weight, padding="same", groups=4)
        plain = F.conv2d(inputs, torch.rand(2, 4, 3, 3))
    torch.testing.assert_close(same, F.conv2d(inputs, weight, padding="same", groups=4))
    assert plain.shape == (1, 2, 7, 7)
