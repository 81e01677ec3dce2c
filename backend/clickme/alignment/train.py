"""The neural harmonizer: fine-tuning a registered model on an export's human maps.

Each step takes a batch of ``clickme.data.ClickMeDataset`` items, computes the logits and the
saliency with a graph (double backpropagation), and follows the gradient of ``harmonizer_loss``
with AdamW. The model trains with dropout on but its batch norms in eval mode (running
statistics frozen: fine-tuning batches are small, and each image's saliency stays its own). On
CUDA the forward and saliency passes run under bfloat16 autocast (no loss scaling needed), the
loss in float32.

Everything random is seeded: the order of an epoch's batches by (seed, epoch), each step's
dropout by (seed, step), so training resumed from a checkpoint ends in the same weights as
training straight through. A checkpoint (model, optimiser, position) is written at the end of
each epoch and every ``checkpoint_every`` steps.
"""

import hashlib
import os
from collections.abc import Callable, Sized
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from clickme.alignment.double_backward import fast_grouped_convolutions
from clickme.alignment.harmonizer import harmonizer_loss
from clickme.alignment.saliency import normalised, saliency_method
from clickme.scoring.registry import ModelSpec, Preprocessing

CHECKPOINT_NAME = "checkpoint.pt"
WEIGHTS_NAME = "harmonized.pt"
# The settings a resumed run must share with its checkpoint (they define what was trained).
RESUME_INVARIANTS = (
    "batch_size", "learning_rate", "weight", "weight_decay", "method", "seed", "freeze_classifier",
)  # fmt: skip


class ResumeError(ValueError):
    """A checkpoint that does not belong to this training run."""


@dataclass(frozen=True)
class HarmonizeConfig:
    """weight: the harmonization term's lambda; mixed_precision: bfloat16 autocast on CUDA;
    checkpoint_every: steps between checkpoints (0: at each epoch's end only);
    freeze_classifier: leave the model's last linear layer as it is (fine-tuning on photos of a
    few classes would otherwise tilt it towards those classes)."""

    epochs: int = 1
    batch_size: int = 8
    learning_rate: float = 1e-5
    weight: float = 1.0
    weight_decay: float = 0.0
    method: str = "gradient"
    device: str = "cpu"
    mixed_precision: bool = True
    seed: int = 0
    checkpoint_every: int = 0
    workers: int = 0
    freeze_classifier: bool = False


@dataclass(frozen=True)
class StepLoss:
    epoch: int
    step: int
    total: float
    cross_entropy: float
    harmonization: float


@dataclass(frozen=True)
class Position:
    """Where training stands: epochs finished, batches done in the next one, steps in all."""

    epoch: int = 0
    batch: int = 0
    step: int = 0


def epoch_batches(n_items: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The item indices of each batch of an epoch, shuffled by (seed, epoch)."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n_items, generator=generator).tolist()
    return [order[start : start + batch_size] for start in range(0, n_items, batch_size)]


def fine_tuning_mode(model: nn.Module) -> nn.Module:
    """Training mode with every batch norm in eval mode (running statistics frozen)."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
    return model


def classifier_of(model: nn.Module) -> nn.Linear:
    """The model's last linear layer (its classifier)."""
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no linear layer to freeze")
    return linears[-1]


def trainable_parameters(model: nn.Module, config: HarmonizeConfig) -> list[nn.Parameter]:
    """The parameters fine-tuning changes: all, or all but the classifier's (then frozen)."""
    if config.freeze_classifier:
        classifier_of(model).requires_grad_(False)
    return [parameter for parameter in model.parameters() if parameter.requires_grad]


def _autocast(device: torch.device, config: HarmonizeConfig) -> AbstractContextManager:
    if device.type == "cuda" and config.mixed_precision:
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


def train_step(
    model: nn.Module,
    preprocessing: Preprocessing,
    batch: tuple[torch.Tensor, ...],
    optimizer: torch.optim.Optimizer,
    config: HarmonizeConfig,
) -> tuple[float, float, float]:
    """One optimiser step on a (images, maps, labels, has_map) batch: (total, cross-entropy,
    harmonization) losses before the step."""
    device = next(model.parameters()).device
    images, maps, labels, has_map = (tensor.to(device) for tensor in batch)
    inputs = normalised(images, preprocessing).requires_grad_(True)
    with _autocast(device, config), fast_grouped_convolutions():
        explanation = saliency_method(config.method)(model, inputs, labels, True)
    loss = harmonizer_loss(
        explanation.logits.float(), labels, explanation.saliency.float(), maps[:, 0], has_map,
        config.weight,
    )  # fmt: skip
    optimizer.zero_grad(set_to_none=True)
    loss.total.backward()
    optimizer.step()
    return loss.total.item(), loss.cross_entropy.item(), loss.harmonization.item()


def _save_atomically(payload: dict[str, Any], path: Path) -> None:
    partial = path.with_name(f".{path.name}.partial")
    torch.save(payload, partial)
    os.replace(partial, path)


def _resume(
    out_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer, config: HarmonizeConfig
) -> Position:
    path = out_dir / CHECKPOINT_NAME
    if not path.is_file():
        return Position()
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    changed = [
        name for name in RESUME_INVARIANTS if checkpoint["config"][name] != getattr(config, name)
    ]
    if changed:
        raise ResumeError(f"{path} was made with other settings: {', '.join(changed)}")
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    return Position(**checkpoint["position"])


def _checkpoint(
    out_dir: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    config: HarmonizeConfig,
    position: Position,
) -> None:
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "config": asdict(config),
        "position": asdict(position),
    }
    _save_atomically(payload, out_dir / CHECKPOINT_NAME)


def harmonize(
    model: nn.Module,
    preprocessing: Preprocessing,
    dataset: Dataset,
    out_dir: Path,
    config: HarmonizeConfig,
    resume: bool = False,
    progress: bool = False,
    on_step: Callable[[StepLoss], None] | None = None,
) -> Path:
    """Fine-tunes ``model`` (moved to ``config.device``) on ``dataset``; returns the path of the
    final weights (a state dict, ``WEIGHTS_NAME`` in ``out_dir``). ``resume`` continues from
    ``out_dir``'s checkpoint when there is one."""
    out_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(config.device)
    model = fine_tuning_mode(model.to(device))
    optimizer = torch.optim.AdamW(
        trainable_parameters(model, config), lr=config.learning_rate,
        weight_decay=config.weight_decay,
    )  # fmt: skip
    position = _resume(out_dir, model, optimizer, config) if resume else Position()
    n_items = len(cast(Sized, dataset))  # map-style: torch's Dataset type declares no __len__
    n_batches = -(-n_items // config.batch_size)
    remaining = max(0, (config.epochs - position.epoch) * n_batches - position.batch)
    with tqdm(total=remaining, disable=not progress, unit="step", desc="harmonize") as bar:
        for epoch in range(position.epoch, config.epochs):
            batches = epoch_batches(n_items, config.batch_size, config.seed, epoch)
            skipped = position.batch if epoch == position.epoch else 0
            loader = DataLoader(
                dataset, batch_sampler=batches[skipped:], num_workers=config.workers
            )
            for index, batch in enumerate(loader, start=skipped + 1):
                torch.manual_seed(config.seed * 100_003 + position.step)
                total, cross_entropy, harmonization = train_step(
                    model, preprocessing, batch, optimizer, config
                )
                position = Position(epoch, index, position.step + 1)
                if on_step is not None:
                    on_step(StepLoss(epoch, position.step, total, cross_entropy, harmonization))
                bar.set_postfix(ce=f"{cross_entropy:.3f}", harm=f"{harmonization:.3f}")
                bar.update()
                if config.checkpoint_every and position.step % config.checkpoint_every == 0:
                    _checkpoint(out_dir, model, optimizer, config, position)
            position = Position(epoch + 1, 0, position.step)
            _checkpoint(out_dir, model, optimizer, config, position)
    weights = out_dir / WEIGHTS_NAME
    _save_atomically(model.state_dict(), weights)
    return weights


def harmonized_spec(base: ModelSpec, weights_path: Path) -> ModelSpec:
    """``base`` with fine-tuned weights (a state dict) loaded: named ``<base>-harmonized`` and
    versioned by the first 12 hex digits of the weights file's SHA-256."""
    weights_path = Path(weights_path)
    digest = hashlib.sha256(weights_path.read_bytes()).hexdigest()

    def build() -> nn.Module:
        model = base.build()
        model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
        return model.eval()

    return ModelSpec(
        name=f"{base.name}-harmonized",
        version=digest[:12],
        architecture=base.architecture,
        weights_path=weights_path,
        build=build,
        preprocessing=base.preprocessing,
        num_classes=base.num_classes,
    )
