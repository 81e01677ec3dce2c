"""Saliency maps of torch classifiers, in the 224 x 224 evaluation space.

A saliency method takes the model, a batch of normalised inputs (B, 3, 224, 224) and the true
labels, and returns the logits with a (B, 224, 224) map. The gradient method is the published
benchmark's ("Saliency" in Fel et al. 2022, after Simonyan et al. 2014): the gradient of the true
class's logit with respect to the normalised input, absolute value, maximum over the colour
channels. Other methods are added to ``SALIENCY_METHODS`` behind the same signature.
"""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from clickme.scoring.registry import Preprocessing


class Explanation(NamedTuple):
    logits: torch.Tensor  # (B, num_classes)
    saliency: torch.Tensor  # (B, H, W), non-negative


SaliencyMethod = Callable[[nn.Module, torch.Tensor, torch.Tensor, bool], Explanation]


def gradient_saliency(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, create_graph: bool = False
) -> Explanation:
    """|d logit[label] / d input|, the maximum over colour channels, per image.

    The images' logits are summed before differentiating, so each image's map is its own only
    when the model treats the images of a batch independently (batch norm in eval mode).
    ``create_graph`` keeps the map differentiable with respect to the model's weights (the
    harmonizer's double backpropagation).
    """
    if not inputs.requires_grad:
        inputs = inputs.detach().requires_grad_(True)
    logits = model(inputs)
    true_logits = logits.gather(1, labels.to(logits.device).view(-1, 1)).sum()
    (gradient,) = torch.autograd.grad(true_logits, inputs, create_graph=create_graph)
    return Explanation(logits=logits, saliency=gradient.abs().amax(dim=1))


SALIENCY_METHODS: dict[str, SaliencyMethod] = {"gradient": gradient_saliency}


def saliency_method(name: str) -> SaliencyMethod:
    try:
        return SALIENCY_METHODS[name]
    except KeyError:
        known = ", ".join(sorted(SALIENCY_METHODS))
        raise KeyError(f"unknown saliency method {name!r}; known: {known}") from None


def normalised(images: torch.Tensor, preprocessing: Preprocessing) -> torch.Tensor:
    """(B, 3, H, W) pixels in [0, 1] -> the model's input: ``(x - mean) / std`` per channel."""
    mean = torch.tensor(preprocessing.mean, dtype=images.dtype, device=images.device)
    std = torch.tensor(preprocessing.std, dtype=images.dtype, device=images.device)
    return (images - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


def saliency_maps(
    model: nn.Module,
    preprocessing: Preprocessing,
    images: torch.Tensor,
    labels: torch.Tensor,
    method: str = "gradient",
    batch_size: int = 16,
) -> np.ndarray:
    """float32 (B, H, W) maps of (B, 3, H, W) [0, 1] pixels, batch by batch on the model's
    device (the model should be in eval mode)."""
    explain = saliency_method(method)
    device = next(model.parameters()).device
    maps = []
    for start in range(0, len(images), batch_size):
        inputs = normalised(images[start : start + batch_size].to(device), preprocessing)
        explanation = explain(model, inputs, labels[start : start + batch_size], False)
        maps.append(explanation.saliency.detach().float().cpu().numpy())
    return np.concatenate(maps) if maps else np.zeros((0, *images.shape[-2:]), np.float32)
