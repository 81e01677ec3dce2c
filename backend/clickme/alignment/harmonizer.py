"""The neural harmonizer's loss (Fel et al. 2022), in PyTorch, as the reference code computes it.

loss = cross-entropy (label smoothing 0.1) + lambda * harmonization, where the harmonization
term compares the model's saliency with the human map:

- both maps are standardised per image (z-score over the pixels, population standard deviation
  plus 1e-5) and cut at zero (ReLU);
- the human map is rescaled to the saliency's maximum: divided by its own maximum (+ 1e-6) and
  multiplied by the saliency's maximum (+ 1e-6), with no gradient through that maximum;
- the squared difference is averaged over a 5-level pyramid: the map itself and four
  downsamplings, each a 5 x 5 binomial ([1, 4, 6, 4, 1] outer product, sum 1) convolution of
  stride 2 with TensorFlow's "SAME" zero padding;
- each image's squared differences are weighted by whether it has a human map (1 or 0) and the
  mean is over the whole batch, as the reference code does: images without a map add nothing
  (and a batch where half the images have maps weighs half as much).

The human maps are data: no gradient goes to them, only through the saliency. The saliency is
whatever method the caller uses (``clickme.alignment.train`` uses the benchmark's: absolute
gradient, maximum over channels, so that training and scoring see the same map; the reference
training code takes the channel mean of the signed gradient instead).
The reference's optional L2 penalty on the weights is not part of this loss (use the optimiser's
weight decay for it).
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F

LABEL_SMOOTHING = 0.1
PYRAMID_LEVELS = 5
BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)
STANDARDISE_EPSILON = 1e-5
MAX_EPSILON = 1e-6


class HarmonizerLoss(NamedTuple):
    total: torch.Tensor
    cross_entropy: torch.Tensor
    harmonization: torch.Tensor


def standardize_cut(maps: torch.Tensor) -> torch.Tensor:
    """(B, H, W) -> each map's z-score over its pixels, negative values set to zero."""
    mean = maps.mean(dim=(1, 2), keepdim=True)
    std = maps.std(dim=(1, 2), keepdim=True, correction=0)
    return F.relu((maps - mean) / (std + STANDARDISE_EPSILON))


def _binomial_kernel(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    taps = torch.tensor(BINOMIAL, device=device, dtype=dtype)
    kernel = torch.outer(taps, taps)
    return (kernel / kernel.sum()).view(1, 1, 5, 5)


def _same_padding(size: int) -> tuple[int, int]:
    """TensorFlow's "SAME" padding for a 5-tap kernel of stride 2: the extra pixel goes after."""
    total = max((-(-size // 2) - 1) * 2 + 5 - size, 0)
    return total // 2, total - total // 2


def downsample(maps: torch.Tensor) -> torch.Tensor:
    """(B, H, W) -> (B, ceil(H / 2), ceil(W / 2)): binomial blur, every other pixel."""
    top, bottom = _same_padding(maps.shape[1])
    left, right = _same_padding(maps.shape[2])
    padded = F.pad(maps[:, None], (left, right, top, bottom))
    kernel = _binomial_kernel(maps.device, maps.dtype)
    return F.conv2d(padded, kernel, stride=2)[:, 0]


def pyramid(maps: torch.Tensor, levels: int = PYRAMID_LEVELS) -> list[torch.Tensor]:
    """The maps and their ``levels - 1`` successive downsamplings."""
    found = [maps]
    while len(found) < levels:
        found.append(downsample(found[-1]))
    return found


def pyramidal_mse(
    first: torch.Tensor, second: torch.Tensor, weights: torch.Tensor, levels: int = PYRAMID_LEVELS
) -> torch.Tensor:
    """The mean over pyramid levels of the batch's mean squared difference, each image's
    squared differences multiplied by its weight."""
    per_level = [
        ((a - b).square() * weights.view(-1, 1, 1)).mean()
        for a, b in zip(pyramid(first, levels), pyramid(second, levels), strict=True)
    ]
    return torch.stack(per_level).mean()


def harmonization_loss(
    saliency: torch.Tensor, human_maps: torch.Tensor, has_map: torch.Tensor
) -> torch.Tensor:
    """The pyramidal MSE of the standardised-cut maps, the human map rescaled to the saliency's
    maximum; (B, H, W) maps, (B,) booleans."""
    cut_saliency = standardize_cut(saliency)
    cut_human = standardize_cut(human_maps.detach())
    human_peak = cut_human.amax(dim=(1, 2), keepdim=True) + MAX_EPSILON
    saliency_peak = cut_saliency.detach().amax(dim=(1, 2), keepdim=True) + MAX_EPSILON
    target = cut_human / human_peak * saliency_peak
    return pyramidal_mse(cut_saliency, target, has_map.to(saliency.dtype))


def harmonizer_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    saliency: torch.Tensor,
    human_maps: torch.Tensor,
    has_map: torch.Tensor,
    weight: float,
) -> HarmonizerLoss:
    """Cross-entropy (label smoothing 0.1) + ``weight`` (lambda) * the harmonization term."""
    cross_entropy = F.cross_entropy(logits, labels, label_smoothing=LABEL_SMOOTHING)
    harmonization = harmonization_loss(saliency, human_maps, has_map)
    return HarmonizerLoss(cross_entropy + weight * harmonization, cross_entropy, harmonization)
