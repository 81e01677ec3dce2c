"""The real EfficientNet-Lite0 behind both backends: agreement, the demo photo, the ONNX cache."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from clickme.core.config import Settings
from clickme.images.transform import to_eval_space
from clickme.scoring.registry import DEFAULT_MODEL, get_model_spec
from clickme.scoring.scorer import (
    ONNX_ALLOW_SPINNING,
    Guess,
    OnnxScorer,
    Scorer,
    TorchScorer,
    build_scorer,
    onnx_model_path,
    onnx_session_options,
    top_guesses,
)

ESPRESSO = 967


@pytest.fixture(scope="module")
def onnx_scorer(models_cache_dir: Path) -> Iterator[Scorer]:
    scorer = build_scorer(Settings(data_dir=models_cache_dir), get_model_spec(DEFAULT_MODEL))
    scorer.start()
    yield scorer
    scorer.close()


@pytest.fixture(scope="module")
def torch_scorer(models_cache_dir: Path) -> Iterator[Scorer]:
    settings = Settings(data_dir=models_cache_dir, scorer_backend="torch")
    scorer = build_scorer(settings, get_model_spec(DEFAULT_MODEL))
    scorer.start()
    yield scorer
    scorer.close()


@pytest.fixture(scope="module")
def coffee() -> np.ndarray:
    return to_eval_space(Image.fromarray(skimage.data.coffee()))


def varied_inputs(coffee: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, size=coffee.shape, dtype=np.uint8)
    astronaut = to_eval_space(Image.fromarray(skimage.data.astronaut()))
    return np.stack([coffee, noise, astronaut, np.zeros_like(coffee)])


def test_build_scorer_picks_the_configured_backend(
    onnx_scorer: Scorer, torch_scorer: Scorer
) -> None:
    assert isinstance(onnx_scorer, OnnxScorer)
    assert isinstance(torch_scorer, TorchScorer)
    assert onnx_scorer.spec.name == torch_scorer.spec.name == DEFAULT_MODEL


def test_probabilities_are_a_distribution(onnx_scorer: Scorer, coffee: np.ndarray) -> None:
    probs = onnx_scorer.classify_batch_sync(coffee[None])
    assert probs.shape == (1, 1000)
    assert probs.dtype == np.float32
    assert (probs >= 0).all()
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("backend", ["onnx_scorer", "torch_scorer"])
def test_the_demo_photo_is_an_espresso(
    backend: str, coffee: np.ndarray, request: pytest.FixtureRequest
) -> None:
    scorer: Scorer = request.getfixturevalue(backend)
    (best, *_) = top_guesses(scorer.classify_batch_sync(coffee[None])[0], 5)
    assert best.class_index == ESPRESSO
    assert best.probability > 0.5


def test_onnx_and_torch_agree(
    onnx_scorer: Scorer, torch_scorer: Scorer, coffee: np.ndarray
) -> None:
    inputs = varied_inputs(coffee)
    from_onnx = onnx_scorer.classify_batch_sync(inputs)
    from_torch = torch_scorer.classify_batch_sync(inputs)
    assert np.abs(from_onnx - from_torch).max() < 1e-3
    np.testing.assert_array_equal(from_onnx.argmax(axis=1), from_torch.argmax(axis=1))


@pytest.mark.parametrize("backend", ["onnx_scorer", "torch_scorer"])
async def test_concurrent_classify_calls_get_their_own_answers(
    backend: str, coffee: np.ndarray, request: pytest.FixtureRequest
) -> None:
    scorer: Scorer = request.getfixturevalue(backend)
    inputs = varied_inputs(coffee)
    answers = await asyncio.gather(*(scorer.classify(image) for image in inputs))
    expected = scorer.classify_batch_sync(inputs)
    for answer, row in zip(answers, expected, strict=True):
        assert answer.shape == (1000,)
        np.testing.assert_allclose(answer, row, atol=1e-5)


async def test_inputs_are_checked(onnx_scorer: Scorer, coffee: np.ndarray) -> None:
    with pytest.raises(ValueError):
        onnx_scorer.classify_batch_sync(coffee[None].astype(np.float32))
    with pytest.raises(ValueError):
        onnx_scorer.classify_batch_sync(coffee[None, :100])
    with pytest.raises(ValueError):
        await onnx_scorer.classify(coffee[:, :, :2])


def test_onnx_export_is_cached_and_reused(tmp_path: Path, coffee: np.ndarray) -> None:
    spec = get_model_spec(DEFAULT_MODEL)
    first = OnnxScorer(spec, tmp_path, threads=1, max_batch=1, max_wait_ms=0)
    path = onnx_model_path(spec, tmp_path)
    assert first.onnx_path == path
    assert path.name == f"{DEFAULT_MODEL}-{spec.weights_sha256[:12]}.onnx"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no partial files left
    written = path.stat().st_mtime_ns
    second = OnnxScorer(spec, tmp_path, threads=1, max_batch=1, max_wait_ms=0)
    assert path.stat().st_mtime_ns == written
    np.testing.assert_array_equal(
        first.classify_batch_sync(coffee[None]), second.classify_batch_sync(coffee[None])
    )


def test_onnx_threads_sleep_when_idle_rather_than_spin() -> None:
    """Spinning intra-op threads take the CPU that API processes on the same cores need."""
    assert onnx_session_options(2).get_session_config_entry(ONNX_ALLOW_SPINNING) == "0"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_torch_scorer_on_cuda_agrees_with_cpu(torch_scorer: Scorer, coffee: np.ndarray) -> None:
    on_gpu = TorchScorer(get_model_spec(DEFAULT_MODEL), "cuda", max_batch=8, max_wait_ms=1)
    inputs = varied_inputs(coffee)
    gpu, cpu = on_gpu.classify_batch_sync(inputs), torch_scorer.classify_batch_sync(inputs)
    assert np.abs(gpu - cpu).max() < 1e-3


def test_top_guesses_are_ordered_and_break_ties_by_index() -> None:
    probs = np.array([0.1, 0.3, 0.05, 0.3, 0.25], dtype=np.float32)
    assert [g.class_index for g in top_guesses(probs, 3)] == [1, 3, 4]
    assert top_guesses(probs, 1) == [Guess(class_index=1, probability=pytest.approx(0.3))]
    assert [g.class_index for g in top_guesses(probs, 10)] == [1, 3, 4, 0, 2]
    assert top_guesses(probs, 0) == []


@pytest.mark.parametrize("seed", range(20))
def test_top_guesses_rank_as_a_stable_sort_does(seed: int) -> None:
    """Against a full sort, most probable first and ties by index, on probabilities with many
    ties (a few levels), for every k up to past their number."""
    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 60))
    probs = (rng.integers(0, 4, size) / 8).astype(np.float32)
    ranked = np.argsort(-probs, kind="stable")
    for k in range(size + 3):
        expected = [Guess(int(i), float(probs[i])) for i in ranked[:k]]
        assert top_guesses(probs, k) == expected
