"""Research exports: a campaign's human maps and raw rounds, streamed image by image to files.

The filters (campaign version, pointer type, classes; excluded players always out) choose the
images: every image with a finished round matching them is exported, its rounds and points to
the round formats whether or not it has a map; the map rules (``clickme.maps.qualify``) decide
which images have a map, and each image says why it has none. ``preview_export`` counts the
same without writing anything.

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
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from clickme.campaigns.models import Campaign
from clickme.exports.manifest import MANIFEST_NAME, build_manifest, write_manifest
from clickme.exports.writers import FORMATS, ROUND_FORMATS, ExportItem, RoundRecord, Writer
from clickme.game.models import Round
from clickme.game.outcomes import COUNTED
from clickme.game.points import POINT_DTYPE, xy_of
from clickme.game.service import points_with_seq_by_round
from clickme.images.labels import class_name, synset_of
from clickme.images.models import Image, ImageSet
from clickme.maps.aggregate import MapSettings, human_map, to_eval
from clickme.maps.qualify import (
    MapTally,
    NoMap,
    reliability_reason,
    rounds_reason,
    rules_text,
    view_reason,
)
from clickme.maps.reliability import split_half
from clickme.maps.valid import IMAGES_PER_CHUNK, valid_round_ids
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


class NothingToExport(ExportError):
    """A valid request that finds nothing to export (the message says exactly why)."""


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
            "repeat_rounds": "left out",  # replays of a photo the player had seen
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
    """What an export holds: the images matching the filters and their finished rounds; of
    those, the valid rounds, the images with a map (and their valid rounds), the players of the
    valid rounds, and the rounds written to the round formats."""

    images: int = 0
    rounds: int = 0
    valid_rounds: int = 0
    images_with_map: int = 0
    map_rounds: int = 0
    exported_rounds: int = 0
    players: set[int] = field(default_factory=set)

    def as_dict(self) -> dict[str, int]:
        return {
            "images": self.images,
            "rounds": self.rounds,
            "valid_rounds": self.valid_rounds,
            "images_with_map": self.images_with_map,
            "map_rounds": self.map_rounds,
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
            Round.campaign_id == campaign.id, Round.outcome.is_not(None), COUNTED
        )
    )
    if not played:
        raise NothingToExport(f"campaign {slug!r} has no finished rounds: nothing to export")
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


@dataclass(frozen=True)
class _Work:
    """One image to export: its row, its rounds (all finished ones for the round formats, else
    only the valid ones) and its valid rounds' points and players."""

    image: Any  # an Image row: id, width, height, class_index, file_name, original_name
    n_rounds: int
    rounds: list[RoundRecord]
    valid_points: list[np.ndarray]
    valid_players: list[int]


class _Exporter:
    """One export's queries, filters and map rules, image by image."""

    def __init__(
        self, session: Session, campaign: Campaign, request: ExportRequest, secret: str,
        images_dir: Path, dry_run: bool = False,
    ) -> None:  # fmt: skip
        self.session = session
        self.images_dir = images_dir
        self.campaign = campaign
        self.request = request
        self.secret = secret
        self.settings = request.settings()
        self.excluded = excluded_player_ids(session, self.settings.exclude_flags)
        self.with_rounds = not dry_run and bool(ROUND_FORMATS & set(request.formats))
        # A dry run measures split-half values only where the minimum reliability needs them.
        self.measure = request.n_splits > 0 and (not dry_run or request.min_reliability is not None)
        self.counts = ExportCounts()
        self.tally = MapTally(self.settings, request.min_reliability)
        self._image_ids: list[int] | None = None

    def _rounds_where(self, query: Select, version: bool = True, pointer: bool = True) -> Select:
        """The query restricted to the campaign's finished rounds that count (never repeats) by
        players not excluded, of the requested campaign version and pointer type."""
        query = query.where(
            Round.campaign_id == self.campaign.id,
            Round.outcome.is_not(None),
            COUNTED,
            Round.player_id.not_in(self.excluded),
        )
        if version and self.request.campaign_version is not None:
            query = query.where(Round.campaign_version == self.request.campaign_version)
        if pointer and self.request.pointer_type is not None:
            query = query.where(Round.pointer_type == self.request.pointer_type)
        return query

    def _images_query(
        self, version: bool = True, pointer: bool = True, classes: bool = True
    ) -> Select:
        query = self._rounds_where(select(Round.image_id).distinct(), version, pointer)
        if classes and self.request.classes is not None:
            query = query.join(Image, Image.id == Round.image_id).where(
                Image.class_index.in_(self.request.classes)
            )
        return query

    def image_ids(self) -> list[int]:
        """The images matching the filters (a finished round matching them), by id."""
        if self._image_ids is None:
            query = self._images_query().order_by(Round.image_id)
            self._image_ids = list(self.session.scalars(query))
        return self._image_ids

    def _count_images(self, version: bool, pointer: bool, classes: bool) -> int:
        query = self._images_query(version, pointer, classes).subquery()
        return int(self.session.scalar(select(func.count()).select_from(query)) or 0)

    def why_no_image(self) -> str:
        """Which filter left no image, with the images left after each one."""
        request = self.request
        version, pointer = request.campaign_version is not None, request.pointer_type is not None
        parts = [
            f"{self._count_images(False, False, False)} images with finished rounds by players "
            "not excluded"
        ]
        if version:
            parts.append(f"{self._count_images(True, False, False)} of them with rounds of "
                         f"version {request.campaign_version}")  # fmt: skip
        if pointer:
            parts.append(f"{self._count_images(version, True, False)} with "
                         f"{request.pointer_type} rounds")  # fmt: skip
        if request.classes is not None:
            classes = ", ".join(str(index) for index in sorted(request.classes))
            parts.append(f"{self._count_images(version, pointer, True)} of class {classes}")
        return "no image matches the filters: the campaign has " + ", ".join(parts)

    def _image_rows(self, image_ids: list[int]) -> dict[int, Any]:
        query = select(
            Image.id, Image.width, Image.height, Image.class_index, Image.file_name,
            Image.original_name,
        ).where(Image.id.in_(image_ids))  # fmt: skip
        return {row.id: row for row in self.session.execute(query)}

    def _round_rows(self, image_ids: list[int]) -> dict[int, list[Any]]:
        """The images' finished rounds matching the filters, by image, in round-id order."""
        query = select(
            Round.id, Round.image_id, Round.player_id, Round.outcome, Round.pointer_type,
            Round.campaign_version, Round.model_version,
        ).where(Round.image_id.in_(image_ids))  # fmt: skip
        by_image: dict[int, list[Any]] = defaultdict(list)
        for row in self.session.execute(self._rounds_where(query).order_by(Round.id)):
            by_image[row.image_id].append(row)
        return by_image

    def _record(self, row: Any, points: tuple[np.ndarray, np.ndarray], valid: bool) -> RoundRecord:
        return RoundRecord(
            round_id=row.id, player=player_pseudonym(self.secret, row.player_id),
            image_id=row.image_id, points=points[0], seqs=points[1], outcome=row.outcome,
            pointer_type=row.pointer_type, campaign_version=row.campaign_version,
            model_version=row.model_version, valid=valid,
        )  # fmt: skip

    def _works(self, image_ids: list[int]) -> Iterator[_Work]:
        """The images' work items: a few queries per chunk of images, none per image."""
        images = self._image_rows(image_ids)
        valid = valid_round_ids(
            self.session, self.campaign.id, self.settings, image_ids,
            self.request.campaign_version, self.request.pointer_type,
        )  # fmt: skip
        by_image = self._round_rows(image_ids)
        loaded = [
            row.id
            for rows in by_image.values()
            for row in rows
            if self.with_rounds or row.id in valid
        ]
        points = points_with_seq_by_round(self.session, loaded)
        no_points = (np.zeros(0, dtype=POINT_DTYPE), np.zeros(0, dtype=np.int32))
        for image_id in image_ids:
            rows = by_image[image_id]
            valid_rows = [row for row in rows if row.id in valid]
            records = [
                self._record(row, points.get(row.id, no_points), row.id in valid)
                for row in (rows if self.with_rounds else [])
            ]
            yield _Work(
                image=images[image_id],
                n_rounds=len(rows),
                rounds=records,
                valid_points=[xy_of(points.get(row.id, no_points)[0]) for row in valid_rows],
                valid_players=[row.player_id for row in valid_rows],
            )

    def _split_half(self, work: _Work) -> float:
        """The image's corrected split-half value (seeded by its id); NaN when not measured or
        under two players."""
        if not self.measure:
            return float("nan")
        rng = np.random.default_rng(work.image.id)
        reliability = split_half(
            work.valid_points, work.image.width, work.image.height, self.settings,
            self.request.n_splits, rng,
        )  # fmt: skip
        return reliability.corrected if reliability is not None else float("nan")

    def _item(self, work: _Work, writers: Sequence[Writer]) -> Encoded:
        """The image's map rules, maps and split-half value, with each writer's encoding of
        them. No database access: it runs on worker threads (NumPy, SciPy, ISA-L, Arrow and
        PIL release the GIL)."""
        image = work.image
        native = view = None
        value = float("nan")
        reason = rounds_reason(len(work.valid_points), self.settings)
        if reason is None:
            native = human_map(work.valid_points, image.width, image.height, self.settings)
            view = to_eval(native)
            reason = view_reason(view)
        if reason is None:
            value = self._split_half(work)
            reason = reliability_reason(value, self.request.min_reliability)
        item = ExportItem(
            image_id=image.id, width=image.width, height=image.height,
            class_index=image.class_index, class_name=class_name(image.class_index),
            synset=synset_of(image.class_index), original_name=image.original_name,
            image_path=self.images_dir / image.file_name, n_rounds=work.n_rounds,
            valid_rounds=len(work.valid_points), n_players=len(set(work.valid_players)),
            split_half=float(value), no_map=None if reason is None else reason.value,
            map_native=native if reason is None else None,
            map_eval=view if reason is None else None, rounds=work.rounds,
        )  # fmt: skip
        return item, [writer.encode(item) for writer in writers]

    def _accepted(self, future: "Future[Encoded]", players: list[int]) -> Encoded:
        encoded = future.result()
        item = encoded[0]
        self.counts.images += 1
        self.counts.rounds += item.n_rounds
        self.counts.valid_rounds += item.valid_rounds
        self.counts.exported_rounds += len(item.rounds)
        self.counts.players.update(players)
        self.tally.add(None if item.no_map is None else NoMap(item.no_map), item.valid_rounds)
        self.counts.images_with_map = self.tally.images_with_map
        self.counts.map_rounds = self.tally.map_rounds
        return encoded

    def items(self, writers: Sequence[Writer]) -> Iterator[Encoded]:
        """The exported images in image-id order, each with its writers' encodings; at most
        ``WINDOW`` are in memory at once."""
        ids = iter(self.image_ids())
        pending: deque[tuple[Future[Encoded], list[int]]] = deque()
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            while chunk := list(islice(ids, IMAGES_PER_CHUNK)):
                for work in self._works(chunk):
                    pending.append((pool.submit(self._item, work, writers), work.valid_players))
                    if len(pending) >= WINDOW:
                        yield self._accepted(*pending.popleft())
            while pending:
                yield self._accepted(*pending.popleft())

    def check_found(self) -> None:
        """Raises ``NothingToExport`` (saying why) when no image matches the filters, or when
        only map formats were asked for and no image has a map."""
        if self.counts.images == 0:
            raise NothingToExport(self.why_no_image())
        if self.tally.images_with_map == 0 and not ROUND_FORMATS & set(self.request.formats):
            raise NothingToExport(
                f"no image has a map ({rules_text(self.settings)}): "
                + "; ".join(self.tally.lines())
            )

    def versions(self) -> tuple[list[int], list[str]]:
        """The campaign versions and model versions the campaign's rounds were played under."""
        rows = self.session.execute(
            select(Round.campaign_version, Round.model_version)
            .where(
                Round.campaign_id == self.campaign.id,
                COUNTED,
                Round.player_id.not_in(self.excluded),
            )
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
            progress.start(len(exporter.image_ids()))
        if not exporter.image_ids():
            raise NothingToExport(exporter.why_no_image())
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
        exporter.check_found()
        campaign_versions, model_versions = exporter.versions()
        manifest = build_manifest(
            staging,
            campaign={"id": campaign.id, "slug": campaign.slug, "name": campaign.name,
                      "version": campaign.version, "versions": campaign_versions},
            model_versions=model_versions,
            filters=request.filters(),
            formats=sorted(set(request.formats)),
            counts=exporter.counts.as_dict(),
            without_map=exporter.tally.reasons(),
        )  # fmt: skip
        _publish(staging, out_dir)
        write_manifest(manifest, out_dir)
    except OSError as error:
        raise ExportError(f"writing the export failed: {error}") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _images(count: int, one: str, many: str) -> str:
    """ "1 image matches", "2 images match"."""
    return f"{_plural(count, 'image')} {one if count == 1 else many}"


def summary_lines(counts: dict[str, int], tally: MapTally) -> list[str]:
    """What an export holds, in words: the images and rounds, those that qualify for a map,
    and for those that do not, how many fail each rule."""
    return [
        f"{_images(counts['images'], 'matches', 'match')} the filters, with "
        f"{_plural(counts['rounds'], 'finished round')} ({counts['valid_rounds']} valid)",
        f"{_images(counts['images_with_map'], 'qualifies', 'qualify')} for a map, with "
        f"{_plural(counts['map_rounds'], 'valid round')}",
        *tally.lines(),
    ]


def preview_export(session: Session, request: ExportRequest) -> dict[str, Any]:
    """What the export would hold, counted as the export counts it but nothing written (split-
    half values only where a minimum reliability needs them): ``counts``, ``without_map`` (per
    failed rule), ``summary`` (in words), ``rules`` and ``problem`` (why it would find nothing,
    else None). A request that makes no sense raises ``ExportError``."""
    check_request(request)
    settings = request.settings()
    exporter: _Exporter | None = None
    problem = None
    try:
        campaign = _campaign(session, request.campaign)
        check_image_set(session, campaign, request.image_set)
        exporter = _Exporter(session, campaign, request, "", Path(), dry_run=True)
        for _item in exporter.items([]):
            pass
        exporter.check_found()
    except NothingToExport as error:
        problem = str(error)
    counts = exporter.counts if exporter is not None else ExportCounts()
    tally = exporter.tally if exporter is not None else MapTally(settings, request.min_reliability)
    return {
        "counts": counts.as_dict(),
        "without_map": tally.reasons(),
        "summary": summary_lines(counts.as_dict(), tally),
        "rules": rules_text(settings),
        "map_settings": request.filters()["map_settings"],
        "problem": problem,
    }
