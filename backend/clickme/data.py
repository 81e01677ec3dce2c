"""``clickme.data``: a torch Dataset over an export's WebDataset shards, for training.

It reads ``webdataset/clickme-*.tar`` of an export (``clickme export --format webdataset``): the
shards are indexed once (member offsets), then each item is read by seeking, so any index is
random-access and nothing but the index stays in memory. Each item is ``(image, map, label,
has_map)``: the photo as a float tensor 3x224x224 in [0, 1] (short side resized to 256, centre
crop 224, bicubic; no mean/std normalisation), the map as a float tensor 1x224x224 in [0, 1]
(its evaluation view, ``clickme.maps.aggregate.to_eval``), the ImageNet class index and whether
the image has a human map. An image without one (too few valid rounds, no painted pixel in its
224 view, below the export's minimum reliability: ``clickme.maps.qualify``) is not a map target:
its map is all zeros and ``has_map`` False; ``no_map_reasons`` says why, by image id.

``split``: None for every image, else "train" or "val", a fixed split by image id (every
``VAL_EVERY``-th image id is validation), the same for every export of the same images.
"""

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image as PilImage
from torch.utils.data import Dataset

from clickme.exports.writers import read_map_png
from clickme.images.transform import EVAL_SIZE, to_eval_space
from clickme.maps.aggregate import to_eval
from clickme.maps.qualify import view_is_painted

VAL_EVERY = 10
SHARD_GLOB = "webdataset/clickme-*.tar"
Split = Literal["train", "val"]


@dataclass(frozen=True)
class _Member:
    offset: int
    size: int


@dataclass(frozen=True)
class _Sample:
    shard: Path
    photo: _Member
    map: _Member | None
    meta: _Member


def _in_split(image_id: int, split: Split | None) -> bool:
    if split is None:
        return True
    return (image_id % VAL_EVERY == 0) == (split == "val")


def _index_shard(shard: Path) -> list[_Sample]:
    members: dict[str, dict[str, _Member]] = {}
    with tarfile.open(shard) as tar:
        for info in tar:
            key, _, kind = info.name.partition(".")
            members.setdefault(key, {})[kind] = _Member(info.offset_data, info.size)
    return [
        _Sample(shard, parts["jpg"], parts.get("map.png"), parts["json"])
        for parts in members.values()
    ]


def _read(shard: Path, member: _Member) -> bytes:
    with shard.open("rb") as stream:
        stream.seek(member.offset)
        return stream.read(member.size)


class ClickMeDataset(Dataset):
    """The images of an export's WebDataset shards with their human maps (see module doc)."""

    def __init__(self, export_dir: Path | str, split: Split | None = None) -> None:
        if split not in (None, "train", "val"):
            raise ValueError(f"split must be None, 'train' or 'val', got {split!r}")
        shards = sorted(Path(export_dir).glob(SHARD_GLOB))
        if not shards:
            raise FileNotFoundError(f"no WebDataset shards ({SHARD_GLOB}) in {export_dir}")
        self.samples: list[_Sample] = []
        self.image_ids: list[int] = []
        self.no_map_reasons: dict[int, str] = {}
        for shard in shards:
            for sample in _index_shard(shard):
                meta = json.loads(_read(shard, sample.meta))
                if not _in_split(meta["image_id"], split):
                    continue
                if sample.map is None or not meta.get("has_map", True):
                    reason = meta.get("no_map_reason") or "no map in the export"
                    self.no_map_reasons[meta["image_id"]] = reason
                self.samples.append(sample)
                self.image_ids.append(meta["image_id"])

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int, bool]:
        sample = self.samples[index]
        meta = json.loads(_read(sample.shard, sample.meta))
        with PilImage.open(io.BytesIO(_read(sample.shard, sample.photo))) as photo:
            pixels = to_eval_space(photo.convert("RGB"))
        image = torch.from_numpy(pixels.transpose(2, 0, 1).astype(np.float32) / 255.0)
        values = np.zeros((EVAL_SIZE, EVAL_SIZE), dtype=np.float32)
        map_member = None if meta["image_id"] in self.no_map_reasons else sample.map
        has_map = map_member is not None
        if map_member is not None:
            values = to_eval(read_map_png(_read(sample.shard, map_member)))
            has_map = view_is_painted(values)  # an export made before the rule was checked
        return image, torch.from_numpy(values[None].copy()), int(meta["class_index"]), has_map
