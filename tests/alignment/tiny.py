"""Tiny torch classifiers for the alignment tests (fast on the CPU, importable by factory)."""

from pathlib import Path

import torch
from torch import nn

from clickme.images.transform import EVAL_SIZE
from clickme.scoring.registry import ModelSpec, torch_classifier_spec

FACTORY = f"{__name__}:TinyNet"


class TinyNet(nn.Module):
    """A convolution, batch norm, a depthwise convolution (tanh), a linear head to 1000 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(4)
        self.depthwise = nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=4)
        self.head = nn.Linear(4, 1000)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = torch.relu(self.norm(self.conv(images)))
        return self.head(torch.tanh(self.depthwise(features)).mean(dim=(2, 3)))


class MapNet(nn.Module):
    """Every logit is the sum of the pixels weighted by a fixed (224, 224) map, so the gradient
    of any logit is that map in every colour channel."""

    def __init__(self, weights: torch.Tensor | None = None) -> None:
        super().__init__()
        initial = weights if weights is not None else torch.zeros(EVAL_SIZE, EVAL_SIZE)
        self.map = nn.Parameter(initial.clone())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images * self.map).sum(dim=(1, 2, 3))[:, None].expand(-1, 1000)


def tiny_spec(folder: Path, name: str = "tiny-net", seed: int = 0) -> ModelSpec:
    """A TinyNet with seeded random weights saved in ``folder``."""
    torch.manual_seed(seed)
    weights = folder / f"{name}.pt"
    torch.save(TinyNet().state_dict(), weights)
    return torch_classifier_spec(name, "1", FACTORY, weights, (0.5,) * 3, (0.25,) * 3)
