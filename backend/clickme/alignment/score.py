"""Human alignment of a DNN: how well its saliency ranks the pixels as the human maps do.

Per image: the Spearman correlation, over the 224 x 224 evaluation-space pixels, between the
model's saliency blurred like the human maps and the human map (``maps.aggregate``). The score
is the mean over images with a 95% percentile bootstrap interval over images; divided by the
human ceiling (the mean corrected split-half value of the same images,
``maps.reliability.campaign_reliability``) it is the "human alignment, % of ceiling". The
interval of that share is the alignment's interval divided by the ceiling's value.

Blur: a human map is blurred at the photo's native size with a disc of 21 px per 256 px of short
side, then viewed with the short side resized (nearest-exact) to 256 and cropped to 224. In
evaluation space the disc is therefore the one of a 256-px short side; the saliency is blurred
with it (twice, each pass cropped, as ``blur`` does) by placing the 224 crop in the 256 x 256
frame it comes from (zeros around, as ``blur`` counts pixels outside the image) and cropping
back.
"""

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path

import numpy as np
import torch
from sqlalchemy import select
from sqlalchemy.orm import Session
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from clickme.alignment.saliency import saliency_maps
from clickme.images.models import Image
from clickme.images.service import image_file_path
from clickme.images.transform import EVAL_RESIZE, EVAL_SIZE, load_rgb, to_eval_space
from clickme.maps.aggregate import MapSettings, blur, human_map, to_eval
from clickme.maps.qualify import MapTally, rounds_reason, view_reason
from clickme.maps.reliability import BOOTSTRAP_SAMPLES, campaign_reliability, spearman
from clickme.maps.valid import ImageRounds, valid_rounds
from clickme.scoring.registry import Preprocessing

FRAME_MARGIN = (EVAL_RESIZE - EVAL_SIZE) // 2


@dataclass(frozen=True)
class Explainer:
    """A model (on its device, in eval mode) with its input normalisation and saliency method."""

    model: nn.Module
    preprocessing: Preprocessing
    method: str = "gradient"
    batch_size: int = 16


@dataclass(frozen=True)
class AlignmentScore:
    """per_image: image id -> Spearman; mean and its 95% bootstrap interval over images;
    ceiling: the images' mean corrected split-half value, None when not computable."""

    per_image: dict[int, float]
    mean: float
    ci_low: float
    ci_high: float
    ceiling: float | None

    @property
    def n_images(self) -> int:
        return len(self.per_image)

    def of_ceiling(self) -> tuple[float, float, float] | None:
        """(mean, ci_low, ci_high) divided by the ceiling; None without a positive ceiling."""
        if self.ceiling is None or not self.ceiling > 0:
            return None
        return self.mean / self.ceiling, self.ci_low / self.ceiling, self.ci_high / self.ceiling


def blur_like_human_maps(saliency: np.ndarray, settings: MapSettings) -> np.ndarray:
    """float64 (..., 224, 224): the saliency blurred as a human map is (see module doc)."""
    margins = [(0, 0)] * (saliency.ndim - 2) + [(FRAME_MARGIN, FRAME_MARGIN)] * 2
    framed = blur(np.pad(np.asarray(saliency, dtype=np.float64), margins), settings)
    return framed[..., FRAME_MARGIN:-FRAME_MARGIN, FRAME_MARGIN:-FRAME_MARGIN]


def summarise(
    per_image: dict[int, float], ceiling: float | None, rng: np.random.Generator
) -> AlignmentScore:
    """The mean of the finite per-image values with its bootstrap interval over images."""
    finite = {image_id: value for image_id, value in per_image.items() if np.isfinite(value)}
    if not finite:
        raise ValueError("no image with a finite alignment value")
    values = np.fromiter(finite.values(), dtype=np.float64)
    resampled = values[rng.integers(0, values.size, (BOOTSTRAP_SAMPLES, values.size))]
    low, high = np.percentile(resampled.mean(axis=1), [2.5, 97.5])
    return AlignmentScore(finite, float(values.mean()), float(low), float(high), ceiling)


def image_alignments(
    explainer: Explainer,
    images: torch.Tensor,
    labels: torch.Tensor,
    human_maps: np.ndarray,
    settings: MapSettings,
) -> list[float]:
    """Spearman of each image's blurred saliency with its (224, 224) human map; images are
    (B, 3, 224, 224) pixels in [0, 1]."""
    saliency = saliency_maps(
        explainer.model, explainer.preprocessing, images, labels, explainer.method,
        explainer.batch_size,
    )  # fmt: skip
    blurred = blur_like_human_maps(saliency, settings)
    return [spearman(one, human) for one, human in zip(blurred, human_maps, strict=True)]


def _batches(items: Iterable[ImageRounds], size: int) -> Iterator[list[ImageRounds]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _pixels(session: Session, images_dir: Path, batch: Sequence[ImageRounds]) -> torch.Tensor:
    """(B, 3, 224, 224) evaluation crops in [0, 1] of the images' stored files."""
    rows = session.scalars(select(Image).where(Image.id.in_([image.image_id for image in batch])))
    by_id = {row.id: row for row in rows}
    crops = [
        to_eval_space(load_rgb(image_file_path(images_dir, by_id[image.image_id])))
        for image in batch
    ]
    return torch.from_numpy(np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32) / 255.0)


def campaign_targets(
    session: Session,
    campaign_id: int,
    settings: MapSettings,
    image_ids: Collection[int] | None = None,
) -> tuple[list[ImageRounds], MapTally]:
    """The campaign's images that are alignment targets (enough valid rounds and a painted
    pixel in the map's 224 view: ``clickme.maps.qualify``), only ``image_ids`` if given, with
    the tally of the images with a valid round left out, by rule."""
    tally = MapTally(settings)
    targets = []
    for image in valid_rounds(session, campaign_id, replace(settings, min_rounds=1)):
        if image_ids is not None and image.image_id not in image_ids:
            continue
        reason = rounds_reason(len(image.rounds_points), settings)
        if reason is None:
            native = human_map(image.rounds_points, image.width, image.height, settings)
            reason = view_reason(to_eval(native))
        tally.add(reason, len(image.rounds_points))
        if reason is None:
            targets.append(image)
    return targets, tally


def campaign_images(
    session: Session,
    campaign_id: int,
    settings: MapSettings,
    image_ids: Collection[int] | None = None,
) -> list[ImageRounds]:
    """The campaign's images that are alignment targets (``campaign_targets``)."""
    return campaign_targets(session, campaign_id, settings, image_ids)[0]


def campaign_ceiling(
    images: Sequence[ImageRounds], settings: MapSettings, n_splits: int, rng: np.random.Generator
) -> float | None:
    """The corrected split-half ceiling of a campaign's images (None when none has one)."""
    ceiling = campaign_reliability(images, settings, n_splits, rng)["ceiling"]
    return ceiling.corrected if ceiling is not None else None


def campaign_alignment(
    session: Session,
    images: Sequence[ImageRounds],
    explainer: Explainer,
    images_dir: Path,
    settings: MapSettings,
    ceiling: float | None,
    rng: np.random.Generator,
    progress: bool = False,
    advance: Callable[[], None] | None = None,
) -> AlignmentScore:
    """The alignment on a campaign's images (``campaign_images``) and its share of their
    ``ceiling`` (``campaign_ceiling``); ``advance`` is called once per image explained."""
    per_image: dict[int, float] = {}
    with tqdm(total=len(images), disable=not progress, unit="image", desc="saliency") as bar:
        for batch in _batches(images, explainer.batch_size):
            human = np.stack(
                [to_eval(human_map(i.rounds_points, i.width, i.height, settings)) for i in batch]
            )
            labels = torch.tensor([image.class_index for image in batch])
            pixels = _pixels(session, images_dir, batch)
            values = image_alignments(explainer, pixels, labels, human, settings)
            per_image.update(zip((image.image_id for image in batch), values, strict=True))
            bar.update(len(batch))
            if advance is not None:
                for _ in batch:
                    advance()
    return summarise(per_image, ceiling, rng)


def dataset_alignment(
    explainer: Explainer,
    dataset: Dataset,
    image_ids: Sequence[int],
    settings: MapSettings,
    rng: np.random.Generator,
    ceiling: float | None = None,
) -> AlignmentScore:
    """The alignment on the items of a ``clickme.data.ClickMeDataset`` (image, map, label,
    has_map) that have a map; ``image_ids``: the items' image ids, in order."""
    per_image: dict[int, float] = {}
    loader = DataLoader(dataset, batch_size=explainer.batch_size, shuffle=False)
    ids = iter(image_ids)
    for images, maps, labels, has_map in loader:
        batch_ids = [next(ids) for _ in range(len(labels))]
        kept = has_map.bool()
        if not kept.any():
            continue
        values = image_alignments(
            explainer, images[kept], labels[kept], maps[kept, 0].numpy(), settings
        )
        kept_ids = [image_id for image_id, keep in zip(batch_ids, kept, strict=True) if keep]
        per_image.update(zip(kept_ids, values, strict=True))
    return summarise(per_image, ceiling, rng)
