"""Research exports: a campaign's human maps and raw rounds, streamed image by image to files.

Everything is written in a hidden staging folder inside the export folder; only when every
writer has finished are the files renamed into place, ``manifest.json`` last. A failure (or an
interruption) removes the staging folder, so a folder with a manifest is a complete export.
"""

import hashlib
import hmac
import os
import shutil
import uuid
from collections import defaultdict, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from clickme.campaigns.models import Campaign
from clickme.exports.manifest import MANIFEST_NAME, build_manifest, write_manifest
from clickme.exports.writers import FORMATS, ROUND_FORMATS, ExportItem, RoundRecord, Writer
from clickme.game.models import Round
from clickme.game.service import points_by_round
from clickme.images.labels import class_name, synset_of
from clickme.images.models import Image, ImageSet
from clickme.maps.aggregate import MapSettings, human_map, to_eval
from clickme.maps.reliability import split_half
from clickme.maps.valid import IMAGES_PER_CHUNK, ImageRounds, valid_rounds
from clickme.players.service import excluded_player_ids

DEFAULT_SHARD_SIZE = 1000
DEFAULT_SPLITS = 50
POINTER_TYPES = ("mouse", "touch", "pen")
STAGING_PREFIX = ".export-staging-"
WORKERS = os.cpu_count() or 1
# Images whose maps are being made or wait to be written.
WINDOW = 4 * WORKERS
# An exported image with each writer's encoding of it (in the writers' order).
Encoded = tuple[ExportItem, list[Any]]


class ExportError(Exception):
    """An export that cannot be made, said in words for the person who asked for it."""


class Progress(Protocol):
    def start(self, total: int) -> None: ...

    def advance(self) -> None: ...


@dataclass(frozen=True)
class ExportRequest:
    """What to export. ``min_rounds`` None keeps ``MapSettings``'s default; the other filters
    None mean no filter. Excluded players are always left out, and players with an open flag
    of the ``exclude_flags`` kinds too. ``n_splits`` 0 skips the
    split-half values (NaN in the export; the costly part: ~2 ms per split per image)."""

    campaign: str
    formats: tuple[str, ...]
    campaign_version: int | None = None
    image_set: str | None = None
    min_rounds: int | None = None
    classes: tuple[int, ...] | None = None
    min_reliability: float | None = None
    pointer_type: str | None = None
    shard_size: int = DEFAULT_SHARD_SIZE
    n_splits: int = DEFAULT_SPLITS
    map_settings: MapSettings = field(default_factory=MapSettings)
    exclude_flags: tuple[str, ...] = ()

    def settings(self) -> MapSettings:
        settings = self.map_settings
        if self.exclude_flags:
            settings = replace(settings, exclude_flags=tuple(sorted(set(self.exclude_flags))))
        if self.min_rounds is None:
            return settings
        return replace(settings, min_rounds=self.min_rounds)

    def filters(self) -> dict[str, Any]:
        """The request as the manifest records it (JSON types only)."""
        settings = self.settings()
        return {
            "campaign": self.campaign,
            "campaign_version": self.campaign_version,
            "image_set": self.image_set,
            "classes": sorted(self.classes) if self.classes is not None else None,
            "min_reliability": self.min_reliability,
            "pointer_type": self.pointer_type,
            "excluded_players": "left out",
            "excluded_flags": list(settings.exclude_flags),
            "map_settings": {
                **asdict(settings),
                "outcomes": list(settings.outcomes),
                "exclude_flags": list(settings.exclude_flags),
            },
            "split_half_splits": self.n_splits,
            "shard_size": self.shard_size,
        }


@dataclass
class ExportCounts:
    images: int = 0
    valid_rounds: int = 0
    exported_rounds: int = 0
    players: set[int] = field(default_factory=set)

    def as_dict(self) -> dict[str, int]:
        return {
            "images": self.images,
            "valid_rounds": self.valid_rounds,
            "exported_rounds": self.exported_rounds,
            "players": len(self.players),
        }


def player_pseudonym(secret: str, player_id: int) -> str:
    """A stable pseudonym for a player: HMAC-SHA256 of the id under the server secret."""
    digest = hmac.new(secret.encode(), f"player:{player_id}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def check_request(request: ExportRequest) -> None:
    """Refuses a request whose formats or filters make no sense, before any data is read."""
    unknown = sorted(set(request.formats) - set(FORMATS))
    if not request.formats or unknown:
        raise ExportError(f"unknown format(s) {unknown}: choose from {', '.join(FORMATS)}")
    if request.pointer_type is not None and request.pointer_type not in POINTER_TYPES:
        raise ExportError(f"pointer type must be one of {', '.join(POINTER_TYPES)}")
    if request.shard_size < 1 or request.n_splits < 0:
        raise ExportError("shard size must be at least 1 and the number of splits at least 0")
    if request.n_splits == 0 and request.min_reliability is not None:
        raise ExportError("a minimum reliability needs split-half values: splits must be > 0")


def _campaign(session: Session, slug: str) -> Campaign:
    campaign = session.scalar(select(Campaign).where(Campaign.slug == slug))
    if campaign is None:
        raise ExportError(f"no campaign {slug!r}")
    played = session.scalar(
        select(func.count(Round.id)).where(
            Round.campaign_id == campaign.id, Round.outcome.is_not(None)
        )
    )
    if not played:
        raise ExportError(f"campaign {slug!r} has no finished rounds: nothing to export")
    return campaign


def check_image_set(session: Session, campaign: Campaign, image_set: str | None) -> None:
    """A campaign plays one image set: a filter naming another one is an error."""
    if image_set is None:
        return
    played = session.scalar(select(ImageSet.name).where(ImageSet.id == campaign.image_set_id))
    if played != image_set:
        raise ExportError(
            f"campaign {campaign.slug!r} plays image set {played!r}, not {image_set!r}"
        )


def _staging_folder(out_dir: Path) -> Path:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        staging = out_dir / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        staging.mkdir()
    except OSError as error:
        raise ExportError(f"cannot write to {out_dir}: {error.strerror or error}") from error
    return staging


class _Exporter:
    """One export's queries and filters, image by image."""

    def __init__(
        self, session: Session, campaign: Campaign, request: ExportRequest, secret: str,
        images_dir: Path,
    ) -> None:  # fmt: skip
        self.session = session
        self.images_dir = images_dir
        self.campaign = campaign
        self.request = request
        self.secret = secret
        self.settings = request.settings()
        self.excluded = excluded_player_ids(session, self.settings.exclude_flags)
        self.with_rounds = bool(ROUND_FORMATS & set(request.formats))
        self.counts = ExportCounts()

    def candidates(self) -> int:
        """How many images the campaign has rounds on (the progress bar's total)."""
        count = self.session.scalar(
            select(func.count(distinct(Round.image_id))).where(
                Round.campaign_id == self.campaign.id
            )
        )
        return int(count or 0)

    def _pointer_players(self, image_ids: list[int]) -> set[tuple[int, int]] | None:
        """(image id, player id) of the images' rounds played with the requested pointer type;
        None without a pointer filter."""
        if self.request.pointer_type is None:
            return None
        rows = self.session.execute(
            select(Round.image_id, Round.player_id).where(
                Round.campaign_id == self.campaign.id,
                Round.image_id.in_(image_ids),
                Round.pointer_type == self.request.pointer_type,
            )
        )
        return {(row.image_id, row.player_id) for row in rows}

    def _pointer_filtered(
        self, image: ImageRounds, pointer_players: set[tuple[int, int]] | None
    ) -> ImageRounds:
        if pointer_players is None:
            return image
        kept = [
            i
            for i, player in enumerate(image.player_ids)
            if (image.image_id, player) in pointer_players
        ]
        return replace(
            image,
            player_ids=[image.player_ids[i] for i in kept],
            rounds_points=[image.rounds_points[i] for i in kept],
        )

    def _round_records(self, image_ids: list[int]) -> dict[int, list[RoundRecord]]:
        """Every finished round of the images by players not excluded (the raw data), by
        image."""
        query = select(
            Round.id, Round.image_id, Round.player_id, Round.outcome, Round.pointer_type,
            Round.campaign_version, Round.model_version,
        ).where(
            Round.campaign_id == self.campaign.id,
            Round.image_id.in_(image_ids),
            Round.outcome.is_not(None),
            Round.player_id.not_in(self.excluded),
        ).order_by(Round.image_id, Round.id)  # fmt: skip
        if self.request.pointer_type is not None:
            query = query.where(Round.pointer_type == self.request.pointer_type)
        if self.request.campaign_version is not None:
            query = query.where(Round.campaign_version == self.request.campaign_version)
        rows = self.session.execute(query).all()
        points = points_by_round(self.session, [row.id for row in rows])
        empty = np.zeros(0, dtype=np.dtype([("x", "<f4"), ("y", "<f4"), ("t", "<i4")]))
        records: dict[int, list[RoundRecord]] = defaultdict(list)
        for row in rows:
            records[row.image_id].append(
                RoundRecord(
                    round_id=row.id,
                    player=player_pseudonym(self.secret, row.player_id),
                    image_id=row.image_id,
                    points=points.get(row.id, empty),
                    outcome=row.outcome,
                    pointer_type=row.pointer_type,
                    campaign_version=row.campaign_version,
                    model_version=row.model_version,
                )
            )
        return records

    def _split_half(self, image: ImageRounds) -> float:
        """The image's corrected split-half value (seeded by its id); NaN without splits or
        under two players."""
        if self.request.n_splits == 0:
            return float("nan")
        rng = np.random.default_rng(image.image_id)
        reliability = split_half(
            image.rounds_points, image.width, image.height, self.settings,
            self.request.n_splits, rng,
        )  # fmt: skip
        return reliability.corrected if reliability is not None else float("nan")

    def _selected(
        self, image: ImageRounds, pointer_players: set[tuple[int, int]] | None
    ) -> ImageRounds | None:
        """The image's rounds after the class, pointer and minimum-rounds filters."""
        if self.request.classes is not None and image.class_index not in self.request.classes:
            return None
        image = self._pointer_filtered(image, pointer_players)
        return image if len(image.rounds_points) >= max(1, self.settings.min_rounds) else None

    def _prepared(
        self, batch: list[ImageRounds]
    ) -> Iterator[tuple[ImageRounds, Path, list[RoundRecord]]]:
        """The batch's selected images with their photo paths and (for the round formats)
        round records: a few queries per batch of images, none per image."""
        pointer_players = self._pointer_players([image.image_id for image in batch])
        selected = [
            kept for image in batch if (kept := self._selected(image, pointer_players)) is not None
        ]
        image_ids = [image.image_id for image in selected]
        rows = self.session.execute(
            select(Image.id, Image.file_name).where(Image.id.in_(image_ids))
        )
        file_names = {row.id: row.file_name for row in rows}
        records = self._round_records(image_ids) if self.with_rounds and image_ids else {}
        for image in selected:
            path = self.images_dir / file_names[image.image_id]
            yield image, path, records.get(image.image_id, [])

    def _with_maps(
        self, image: ImageRounds, image_path: Path, rounds: list[RoundRecord],
        writers: Sequence[Writer],
    ) -> Encoded | None:  # fmt: skip
        """The image's maps and split-half value, with each writer's encoding of them; None
        below the minimum reliability. No database access: it runs on worker threads (NumPy,
        SciPy, ISA-L and PIL release the GIL)."""
        value = self._split_half(image)
        if self.request.min_reliability is not None and not value >= self.request.min_reliability:
            return None
        native = human_map(image.rounds_points, image.width, image.height, self.settings)
        item = ExportItem(
            image_id=image.image_id,
            width=image.width,
            height=image.height,
            class_index=image.class_index,
            label=class_name(image.class_index),
            synset=synset_of(image.class_index),
            image_path=image_path,
            n_players=len(image.player_ids),
            split_half=float(value),
            map_native=native,
            map_eval=to_eval(native),
            rounds=rounds,
        )
        return item, [writer.encode(item) for writer in writers]

    def _accepted(self, future: "Future[Encoded | None]", players: list[int]) -> list[Encoded]:
        result = future.result()
        if result is None:
            return []
        item = result[0]
        self.counts.images += 1
        self.counts.valid_rounds += item.n_players
        self.counts.exported_rounds += len(item.rounds)
        self.counts.players.update(players)
        return [result]

    def items(self, writers: Sequence[Writer]) -> Iterator[Encoded]:
        """The exported images in image-id order, each with its writers' encodings; at most
        ``WINDOW`` are in memory at once."""
        images = valid_rounds(
            self.session, self.campaign.id, self.settings, self.request.campaign_version
        )
        pending: deque[tuple[Future[Encoded | None], list[int]]] = deque()
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            while batch := list(islice(images, IMAGES_PER_CHUNK)):
                for image, image_path, rounds in self._prepared(batch):
                    job = pool.submit(self._with_maps, image, image_path, rounds, writers)
                    pending.append((job, image.player_ids))
                    if len(pending) >= WINDOW:
                        yield from self._accepted(*pending.popleft())
            while pending:
                yield from self._accepted(*pending.popleft())

    def versions(self) -> tuple[list[int], list[str]]:
        """The campaign versions and model versions the campaign's rounds were played under."""
        rows = self.session.execute(
            select(Round.campaign_version, Round.model_version)
            .where(Round.campaign_id == self.campaign.id, Round.player_id.not_in(self.excluded))
            .distinct()
        ).all()
        return sorted({row[0] for row in rows}), sorted({row[1] for row in rows})


def _publish(staging: Path, out_dir: Path) -> None:
    """Moves each finished top-level file or folder of the staging folder into the export; an
    earlier export's manifest goes first, so it never vouches for a mix of old and new files."""
    (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
    for entry in sorted(staging.iterdir()):
        target = out_dir / entry.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(entry, target)
    staging.rmdir()


def run_export(
    session: Session,
    request: ExportRequest,
    out_dir: Path,
    *,
    secret: str,
    images_dir: Path,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Writes the export into ``out_dir`` and returns its manifest (also in manifest.json)."""
    check_request(request)
    campaign = _campaign(session, request.campaign)
    check_image_set(session, campaign, request.image_set)
    exporter = _Exporter(session, campaign, request, secret, images_dir)
    staging = _staging_folder(out_dir)
    try:
        if progress is not None:
            progress.start(exporter.candidates())
        with ExitStack() as stack:
            writers: list[Writer] = []
            for name in sorted(set(request.formats)):
                writer = FORMATS[name](staging, request.shard_size)
                stack.callback(writer.close)
                writers.append(writer)
            for item, encoded in exporter.items(writers):
                for writer, data in zip(writers, encoded, strict=True):
                    writer.add(item, data)
                if progress is not None:
                    progress.advance()
        if exporter.counts.images == 0:
            raise ExportError("no image of the campaign matches the filters")
        campaign_versions, model_versions = exporter.versions()
        manifest = build_manifest(
            staging,
            campaign={"id": campaign.id, "slug": campaign.slug, "name": campaign.name,
                      "version": campaign.version, "versions": campaign_versions},
            model_versions=model_versions,
            filters=request.filters(),
            formats=sorted(set(request.formats)),
            counts=exporter.counts.as_dict(),
        )  # fmt: skip
        _publish(staging, out_dir)
        write_manifest(manifest, out_dir)
    except OSError as error:
        raise ExportError(f"writing the export failed: {error}") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest
