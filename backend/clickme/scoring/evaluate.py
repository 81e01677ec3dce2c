"""Top-1 and top-5 accuracy of a scorer on labelled image files (decoding overlaps inference)."""

import re
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
from tqdm import tqdm

from clickme.images.labels import index_of_synset
from clickme.images.transform import load_rgb, to_eval_space
from clickme.scoring.scorer import Scorer

SAMPLE_FILE_NAME = re.compile(r"^(n\d{8})_.+\.(jpe?g|png)$", re.IGNORECASE)


def sample_items(folder: Path) -> list[tuple[Path, int]]:
    """The ``nXXXXXXXX_name.JPEG`` files of a folder with the class index of their synset."""
    items = []
    for path in sorted(folder.iterdir()):
        match = SAMPLE_FILE_NAME.match(path.name)
        if match is None:
            continue
        index = index_of_synset(match.group(1))
        if index is None:
            raise ValueError(f"{path.name}: {match.group(1)} is not an ImageNet-1k synset")
        items.append((path, index))
    return items


def _chunks(items: Iterable[tuple[Path, int]], size: int) -> Iterator[list[tuple[Path, int]]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _eval_pixels(path: Path) -> np.ndarray:
    return to_eval_space(load_rgb(path))


def _decoded_batches(
    items: Iterable[tuple[Path, int]], batch_size: int, pool: ThreadPoolExecutor
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(pixels, labels) batches; the next batch decodes while the caller works on this one."""
    pending: tuple[list[Future[np.ndarray]], list[int]] | None = None
    for chunk in _chunks(items, batch_size):
        submitted = ([pool.submit(_eval_pixels, path) for path, _ in chunk], [i for _, i in chunk])
        if pending is not None:
            yield np.stack([f.result() for f in pending[0]]), np.asarray(pending[1])
        pending = submitted
    if pending is not None:
        yield np.stack([f.result() for f in pending[0]]), np.asarray(pending[1])


@dataclass(frozen=True)
class Accuracy:
    top1: float
    top5: float
    n_images: int


def _hits(probabilities: np.ndarray, labels: np.ndarray, k: int) -> int:
    """How many rows have their label among their k most probable classes."""
    top_k = np.argpartition(-probabilities, k - 1, axis=1)[:, :k]
    return int(np.sum((top_k == labels[:, np.newaxis]).any(axis=1)))


def top_k_hits(
    scorer: Scorer, items: Iterable[tuple[Path, int]], k: int, batch_size: int = 32
) -> Iterator[list[bool]]:
    """Batch by batch, whether each item's label is among the scorer's k most probable
    classes on the whole photo (its evaluation view)."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="decode") as pool:
        for pixels, labels in _decoded_batches(items, batch_size, pool):
            probabilities = scorer.classify_batch_sync(pixels)
            top_k = np.argpartition(-probabilities, k - 1, axis=1)[:, :k]
            yield [bool(hit) for hit in (top_k == labels[:, np.newaxis]).any(axis=1)]


def evaluate_accuracy(
    scorer: Scorer,
    items: Iterable[tuple[Path, int]],
    batch_size: int = 32,
    progress: bool = False,
) -> Accuracy:
    """The share of items whose label is the most probable class (top-1) or among the five
    most probable (top-5)."""
    items = list(items)
    if not items:
        raise ValueError("no items to evaluate")
    top1 = top5 = 0
    with (
        ThreadPoolExecutor(max_workers=2, thread_name_prefix="decode") as pool,
        tqdm(total=len(items), disable=not progress, unit="image") as bar,
    ):
        for pixels, labels in _decoded_batches(items, batch_size, pool):
            probabilities = scorer.classify_batch_sync(pixels)
            top1 += _hits(probabilities, labels, 1)
            top5 += _hits(probabilities, labels, 5)
            bar.update(len(labels))
    return Accuracy(top1=top1 / len(items), top5=top5 / len(items), n_images=len(items))
