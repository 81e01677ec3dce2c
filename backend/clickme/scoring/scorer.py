"""DNN scorers: evaluation-crop images in, softmax probabilities out (ONNX Runtime or torch)."""

import os
import uuid
import warnings
from abc import ABC, abstractmethod
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import onnxruntime as ort
import torch

from clickme.core.config import Settings
from clickme.core.errors import Unavailable
from clickme.images.transform import EVAL_SIZE
from clickme.scoring.batcher import MicroBatcher
from clickme.scoring.registry import ModelSpec

ONNX_OPSET = 17
ONNX_ALLOW_SPINNING = "session.intra_op.allow_spinning"
IMAGE_SHAPE = (EVAL_SIZE, EVAL_SIZE, 3)


class ScorerBusyError(Unavailable):
    """503 ``scorer_busy``: the DNN cannot answer now (too slow, or out of reach); try again."""

    def __init__(
        self, message: str = "the DNN partner is busy, try again", retry_after_s: int | None = None
    ) -> None:
        headers = None if retry_after_s is None else {"Retry-After": str(retry_after_s)}
        super().__init__("scorer_busy", message, headers)


@dataclass(frozen=True)
class Guess:
    class_index: int
    probability: float


class Scorer(Protocol):
    spec: ModelSpec

    async def classify(self, image: np.ndarray) -> np.ndarray:
        """uint8 (224, 224, 3) -> float32 (num_classes,) probabilities, micro-batched."""
        ...

    def send(self, image: np.ndarray) -> Future[np.ndarray]:
        """``classify`` from a thread other than the event loop's (it may block for a round trip
        to Redis): the future gets the probabilities or the error; cancelling it gives up."""
        ...

    def classify_batch_sync(self, images: np.ndarray) -> np.ndarray:
        """uint8 (B, 224, 224, 3) -> float32 (B, num_classes) probabilities, on this thread."""
        ...

    def expected_wait_s(self) -> float:
        """How long a request queued now would wait for its answer, from the recent answer
        rate (0 while there is no estimate): past the timeout, it is better refused at once."""
        ...

    def start(self) -> None: ...

    def close(self) -> None: ...


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float32) - logits.max(axis=-1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def top_guesses(probs: np.ndarray, k: int) -> list[Guess]:
    """The ``k`` most probable classes, most probable first (ties: lower index first): ``k``
    passes of ``argmax`` (the first of the largest) over what is left. For the few guesses a
    round shows, after an idle pause, about 16 µs against 110 for a partition then a sort."""
    left = probs.copy()
    guesses = []
    for _ in range(min(k, len(probs))):
        best = int(left.argmax())
        guesses.append(Guess(class_index=best, probability=float(probs[best])))
        left[best] = -np.inf
    return guesses


def check_batch(images: np.ndarray) -> np.ndarray:
    """The batch itself, or ValueError unless it is uint8 (B, 224, 224, 3)."""
    if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(
            f"expected uint8 (B, {EVAL_SIZE}, {EVAL_SIZE}, 3), got {images.dtype} {images.shape}"
        )
    return images


class _BatchedScorer(ABC):
    """What both backends share: normalisation, softmax, micro-batching and warm-up."""

    def __init__(self, spec: ModelSpec, max_batch: int, max_wait_ms: float) -> None:
        self.spec = spec
        self._batcher = MicroBatcher(self.classify_batch_sync, max_batch, max_wait_ms)

    @abstractmethod
    def _logits(self, inputs: np.ndarray) -> np.ndarray:
        """Normalised float32 (B, 3, 224, 224) -> (B, num_classes) logits."""

    def classify_batch_sync(self, images: np.ndarray) -> np.ndarray:
        inputs = self.spec.preprocessing.normalise(check_batch(images))
        return softmax(self._logits(inputs))

    async def classify(self, image: np.ndarray) -> np.ndarray:
        check_batch(image[np.newaxis])
        return await self._batcher.submit(image)

    def send(self, image: np.ndarray) -> Future[np.ndarray]:
        check_batch(image[np.newaxis])
        return self._batcher.send(image)

    def expected_wait_s(self) -> float:
        return self._batcher.expected_wait_s()

    def start(self) -> None:
        """Runs one warm-up pass (the first is slow), then starts the inference thread."""
        self.classify_batch_sync(np.zeros((1, *IMAGE_SHAPE), dtype=np.uint8))
        self._batcher.start()

    def close(self) -> None:
        self._batcher.close()


def onnx_model_path(spec: ModelSpec, models_dir: Path) -> Path:
    return models_dir / f"{spec.name}-{spec.weights_sha256[:12]}.onnx"


def export_onnx(spec: ModelSpec, models_dir: Path) -> Path:
    """The spec's ONNX graph (batch axis dynamic), exported once and reused afterwards."""
    path = onnx_model_path(spec, models_dir)
    if path.exists():
        return path
    models_dir.mkdir(parents=True, exist_ok=True)
    partial = models_dir / f".{path.name}.{uuid.uuid4().hex}.partial"
    example = torch.zeros(1, 3, EVAL_SIZE, EVAL_SIZE)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's tracer chatter
            torch.onnx.export(
                spec.build(),
                (example,),
                str(partial),
                input_names=["input"],
                output_names=["logits"],
                dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                dynamo=False,
                opset_version=ONNX_OPSET,
            )
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def onnx_session_options(threads: int) -> ort.SessionOptions:
    """Full graph optimisation (conv/BN/clip fusion, NCHWc layout), one sequential intra-op pool
    whose threads sleep when idle: spinning ones burn the cores the API processes share (on the
    2-core machine, beside other work: 90 CPU ms per image instead of 20 at one image per
    100 ms, and batches of 8 a third slower; benchmarks/bench_load.py)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry(ONNX_ALLOW_SPINNING, "0")
    return options


class OnnxScorer(_BatchedScorer):
    """ONNX Runtime on the CPU; the ONNX file is cached in ``models_dir`` by weights hash."""

    def __init__(
        self, spec: ModelSpec, models_dir: Path, threads: int, max_batch: int, max_wait_ms: float
    ) -> None:
        super().__init__(spec, max_batch, max_wait_ms)
        self.onnx_path = export_onnx(spec, models_dir)
        self._session = ort.InferenceSession(
            str(self.onnx_path), onnx_session_options(threads), providers=["CPUExecutionProvider"]
        )

    def _logits(self, inputs: np.ndarray) -> np.ndarray:
        (logits,) = self._session.run(["logits"], {"input": inputs})
        return logits


class TorchScorer(_BatchedScorer):
    """The torch module itself, channels-last, on ``device`` ("cpu", "cuda", "cuda:1", ...)."""

    def __init__(self, spec: ModelSpec, device: str, max_batch: int, max_wait_ms: float) -> None:
        super().__init__(spec, max_batch, max_wait_ms)
        self.device = torch.device(device)
        # torch's stubs leave out ``memory_format``, which ``Module.to`` takes (channels-last).
        model = spec.build().to(self.device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        self._model = model.eval()

    def _logits(self, inputs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            batch = torch.from_numpy(inputs).to(self.device)
            logits = self._model(batch.contiguous(memory_format=torch.channels_last))
            return logits.float().cpu().numpy()


def build_scorer(settings: Settings, spec: ModelSpec) -> Scorer:
    """The configured backend for ``spec``, not started yet (call ``start()``).

    ``scorer_device`` applies to the torch backend (ONNX Runtime runs on the CPU); for torch,
    ``scorer_threads`` sets the process-wide intra-op thread count.
    """
    threads = settings.scorer_threads or os.cpu_count() or 1
    if settings.scorer_backend == "onnx":
        return OnnxScorer(
            spec,
            settings.models_dir,
            threads=threads,
            max_batch=settings.batch_max_size,
            max_wait_ms=settings.batch_max_wait_ms,
        )
    torch.set_num_threads(threads)
    return TorchScorer(
        spec,
        settings.scorer_device,
        max_batch=settings.batch_max_size,
        max_wait_ms=settings.batch_max_wait_ms,
    )


def start_scorer(settings: Settings, spec: ModelSpec) -> Scorer:
    """A scorer for the model on the configured backend, started and warmed up."""
    scorer = build_scorer(settings, spec)
    scorer.start()
    scorer.classify_batch_sync(np.zeros((1, 224, 224, 3), dtype=np.uint8))
    return scorer
