"""Export writers: each takes one image at a time (bounded memory) and writes deterministic bytes.

Every writer writes under a staging folder (see ``service``); the service renames the finished
files into the export folder. A writer's costly part (compression) is its ``encode``, which the
service runs on its worker threads; ``add`` then only writes, in image-id order. Determinism:
members in image-id order, fixed zip/tar time stamps and modes, HDF5 without time stamps and
with tracked creation order, sorted JSON keys.
"""

import io
import json
import re
import shutil
import struct
import tarfile
import tempfile
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, Self

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from isal import isal_zlib
from PIL import Image as PilImage
from PIL.PngImagePlugin import PngInfo

from clickme.game.points import POINT_DTYPE
from clickme.images.transform import load_rgb
from clickme.maps.service import heat_colours

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
MAP_PNG_MAX = 65535
# Overlays: the photo dimmed to this share of its brightness, the map at most this opaque.
OVERLAY_DIM = 0.4
OVERLAY_OPACITY = 0.9
# The heat scale's value for the map's lowest values (its red, not its black).
OVERLAY_COLD = 0.35
OVERLAY_ROWS = 256
PARQUET_ROWS_PER_GROUP = 10_000
# Deflate level of NPZ members, HDF5 datasets and PNGs: float maps barely shrink past level 1.
# NPZ and HDF5 maps are deflated by ISA-L (standard deflate streams, 6x faster than zlib on
# maps, 4% larger): zlib's 5 ms per image were most of an export's time.
COMPRESS_LEVEL = 1


@dataclass(frozen=True)
class RoundRecord:
    """One finished round of an exported image, its player known only by a pseudonym."""

    round_id: int
    player: str
    image_id: int
    points: np.ndarray  # structured x, y, t (native pixels, ms), in the order painted
    seqs: np.ndarray  # int32: each point's batch sequence number
    outcome: str | None
    pointer_type: str | None
    campaign_version: int
    model_version: str
    valid: bool  # counts in the image's map under the export's map settings


def image_key(image_id: int, synset: str, class_name: str) -> str:
    """An exported image's name in every format: ``679_n03793489_mouse`` (id, synset, class
    name with apostrophes dropped and any other run of characters but letters, digits and
    hyphens made one underscore; never a dot, so WebDataset keys stay whole)."""
    name = re.sub(r"[^A-Za-z0-9-]+", "_", class_name.replace("'", "")).strip("_")
    return f"{image_id}_{synset}_{name}"


@dataclass(frozen=True)
class ExportItem:
    """Everything the writers need about one exported image; the maps only where it has one."""

    image_id: int
    width: int
    height: int
    class_index: int
    class_name: str
    synset: str
    original_name: str
    image_path: Path
    n_rounds: int  # finished rounds matching the filters
    valid_rounds: int
    n_players: int  # players of the valid rounds
    split_half: float  # Spearman-Brown corrected split-half value, NaN when not computed
    no_map: str | None  # why it has no map (``clickme.maps.qualify.NoMap``), None with one
    map_native: np.ndarray | None = None  # float32 (height, width) in [0, 1]
    map_eval: np.ndarray | None = None  # float32 (224, 224) in [0, 1]
    rounds: list[RoundRecord] = field(default_factory=list)

    @property
    def key(self) -> str:
        return image_key(self.image_id, self.synset, self.class_name)

    @property
    def has_map(self) -> bool:
        return self.no_map is None

    def metadata(self) -> dict[str, Any]:
        """The image's fields as JSON types (NaN split-half as None)."""
        return {
            "image_id": self.image_id,
            "original_name": self.original_name,
            "synset": self.synset,
            "class_index": self.class_index,
            "class_name": self.class_name,
            "width": self.width,
            "height": self.height,
            "valid_rounds": self.valid_rounds,
            "n_players": self.n_players,
            "split_half": None if np.isnan(self.split_half) else self.split_half,
            "has_map": self.has_map,
            "no_map_reason": self.no_map,
        }


class Writer(Protocol):
    def encode(self, item: ExportItem) -> Any:
        """The item's bytes that take time to make (thread-safe: runs on worker threads)."""

    def add(self, item: ExportItem, encoded: Any) -> None:
        """Writes the item with what ``encode`` made of it; called in image-id order."""

    def close(self) -> None: ...


def _npy_parts(array: np.ndarray) -> tuple[bytes, memoryview]:
    """The ``.npy`` file of an array as its header and its data, the data not copied (a
    12-megapixel map's 48 MB were copied twice into a buffer before being compressed)."""
    array = np.asarray(array, order="C")
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(array))
    return header.getvalue(), array.reshape(-1).data.cast("B")


@dataclass(frozen=True)
class Deflated:
    """A zip member compressed ahead of writing: its raw deflate stream, size and CRC-32."""

    name: str
    size: int
    crc: int
    data: bytes


def deflated(name: str, *parts: bytes | memoryview) -> Deflated:
    """The parts, one after the other, as a zip member's raw deflate stream (any zip reader
    inflates it)."""
    compressor = isal_zlib.compressobj(COMPRESS_LEVEL, isal_zlib.DEFLATED, -isal_zlib.MAX_WBITS)
    data, size, crc = [], 0, 0
    for part in parts:
        data.append(compressor.compress(part))
        size, crc = size + len(part), isal_zlib.crc32(part, crc)
    data.append(compressor.flush())
    return Deflated(name, size, crc, b"".join(data))


# Zip layout (APPNOTE 6.3), with the fields, versions and ZIP64 limits ``zipfile`` uses: the bytes
# are the ones ``zipfile.ZipFile`` writes for the same members.
ZIP64_LIMIT = (1 << 31) - 1  # zipfile's: offsets and sizes past it take ZIP64 fields
ZIP_COUNT_LIMIT = 0xFFFF
ZIP_VERSION = 20
ZIP64_VERSION = 45
ZIP_UNIX = 3  # create_system: external_attr holds a Unix mode
ZIP_DEFLATED = 8
ZIP_UTF8_NAME = 0x800
ZIP_EXTERNAL_ATTR = (0o100000 | FILE_MODE) << 16
ZIP_DOS_DATE = (ZIP_EPOCH[0] - 1980) << 9 | ZIP_EPOCH[1] << 5 | ZIP_EPOCH[2]
ZIP_DOS_TIME = ZIP_EPOCH[3] << 11 | ZIP_EPOCH[4] << 5 | ZIP_EPOCH[5] // 2
LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
CENTRAL_HEADER = struct.Struct("<4s4B4HL2L5H2L")
ZIP64_OFFSET_EXTRA = struct.Struct("<2HQ")
END64_RECORD = struct.Struct("<4sQ2H2L4Q")
END64_LOCATOR = struct.Struct("<4sLQL")
END_RECORD = struct.Struct("<4s4H2LH")


def _zip_name(member: Deflated) -> tuple[bytes, int]:
    """The member's name as stored and its flag bits (UTF-8 flag only for non-ASCII names)."""
    try:
        return member.name.encode("ascii"), 0
    except UnicodeEncodeError:
        return member.name.encode("utf-8"), ZIP_UTF8_NAME


def local_header(member: Deflated) -> bytes:
    """The member's local file header; refuses sizes that would need ZIP64 fields."""
    if max(member.size, len(member.data)) > ZIP64_LIMIT:
        raise ValueError(f"zip member {member.name!r} is larger than {ZIP64_LIMIT} bytes")
    name, flags = _zip_name(member)
    return LOCAL_HEADER.pack(
        b"PK\x03\x04", ZIP_VERSION, 0, flags, ZIP_DEFLATED, ZIP_DOS_TIME, ZIP_DOS_DATE,
        member.crc, len(member.data), member.size, len(name), 0,
    ) + name  # fmt: skip


def central_record(member: Deflated, offset: int) -> bytes:
    """The member's central-directory record, its local header at ``offset``; an offset past
    ``ZIP64_LIMIT`` goes in a ZIP64 extra field."""
    name, flags = _zip_name(member)
    extra, version = b"", ZIP_VERSION
    if offset > ZIP64_LIMIT:
        extra = ZIP64_OFFSET_EXTRA.pack(1, ZIP64_OFFSET_EXTRA.size - 4, offset)
        offset, version = 0xFFFFFFFF, ZIP64_VERSION
    return CENTRAL_HEADER.pack(
        b"PK\x01\x02", version, ZIP_UNIX, version, 0, flags, ZIP_DEFLATED, ZIP_DOS_TIME,
        ZIP_DOS_DATE, member.crc, len(member.data), member.size, len(name), len(extra), 0, 0, 0,
        ZIP_EXTERNAL_ATTR, offset,
    ) + name + extra  # fmt: skip


def end_records(count: int, directory_size: int, directory_offset: int) -> bytes:
    """The end-of-central-directory record, after the ZIP64 end record and locator where the
    member count, directory size or offset is past the classic record's limits."""
    zip64 = b""
    if count > ZIP_COUNT_LIMIT or max(directory_size, directory_offset) > ZIP64_LIMIT:
        zip64 = END64_RECORD.pack(
            b"PK\x06\x06", END64_RECORD.size - 12, ZIP64_VERSION, ZIP64_VERSION, 0, 0, count,
            count, directory_size, directory_offset,
        ) + END64_LOCATOR.pack(b"PK\x06\x07", 0, directory_offset + directory_size, 1)  # fmt: skip
        count = min(count, ZIP_COUNT_LIMIT)
        directory_size = min(directory_size, 0xFFFFFFFF)
        directory_offset = min(directory_offset, 0xFFFFFFFF)
    return zip64 + END_RECORD.pack(
        b"PK\x05\x06", 0, 0, count, count, directory_size, directory_offset, 0
    )


class DeflatedZipFile:
    """A zip file of members deflated ahead, on other threads, written as they come. Memory
    stays flat however many members: each member's central-directory record is spilled to a
    temporary file beside the zip and copied after the last member on ``close``. Member names
    must be unique (the caller's keys are; nothing per member is kept to check it)."""

    def __init__(self, path: Path, mode: Literal["w", "x"] = "w") -> None:
        self._file = path.open(f"{mode}b")
        try:
            self._spill = tempfile.TemporaryFile(dir=path.parent)  # noqa: SIM115
        except BaseException:
            self._file.close()
            raise
        self._lock = threading.Lock()
        self._offset = 0  # of the next local header; the central directory's, once all are in
        self._count = 0
        self._directory_size = 0

    def write_deflated(self, member: Deflated) -> None:
        header = local_header(member)
        with self._lock:
            record = central_record(member, self._offset)
            self._file.write(header)
            self._file.write(member.data)
            self._spill.write(record)
            self._offset += len(header) + len(member.data)
            self._count += 1
            self._directory_size += len(record)

    def close(self) -> None:
        """Writes the central directory and end records and closes the file; a no-op once
        closed."""
        with self._lock:
            if self._file.closed:
                return
            with self._file, self._spill:
                self._spill.seek(0)
                shutil.copyfileobj(self._spill, self._file)
                self._file.write(end_records(self._count, self._directory_size, self._offset))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _tar_info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, FILE_MODE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def map_png_bytes(values: np.ndarray) -> bytes:
    """A [0, 1] map as a 16-bit greyscale PNG (for programs: ``read_map_png``)."""
    grey = np.round(np.clip(values, 0.0, 1.0) * MAP_PNG_MAX).astype(np.uint16)
    buffer = io.BytesIO()
    PilImage.fromarray(grey).save(buffer, format="PNG", compress_level=COMPRESS_LEVEL)
    return buffer.getvalue()


def read_map_png(data: bytes) -> np.ndarray:
    """The float32 [0, 1] map of ``map_png_bytes``."""
    with PilImage.open(io.BytesIO(data)) as image:
        return np.asarray(image, dtype=np.float32) / MAP_PNG_MAX


def _png_text(item: ExportItem) -> PngInfo:
    """The image's names as PNG text chunks (any PNG tool lists them)."""
    info = PngInfo()
    for name in ("image_id", "original_name", "synset", "class_name"):
        info.add_itxt(name, str(getattr(item, name)))
    return info


def _png(pixels: np.ndarray, item: ExportItem) -> bytes:
    buffer = io.BytesIO()
    PilImage.fromarray(pixels).save(
        buffer, format="PNG", compress_level=COMPRESS_LEVEL, pnginfo=_png_text(item)
    )
    return buffer.getvalue()


def map_preview_pixels(values: np.ndarray) -> np.ndarray:
    """A [0, 1] map as 8-bit grey (0 black, the peak white): what any viewer shows."""
    return np.round(np.clip(values, 0.0, 1.0) * 255).astype(np.uint8)


def overlay_pixels(photo: np.ndarray, values: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3): the photo dimmed to ``OVERLAY_DIM``, under the map in the console's heat
    colours from red (low) to pale yellow (the peak); the hotter, the more opaque (up to
    ``OVERLAY_OPACITY``; the square root keeps the map's lower half visible), so the painted
    parts stand out clearly from the dimmed rest. Made ``OVERLAY_ROWS`` rows at a time (a
    12-megapixel photo's colours in float64 were 288 MB at once)."""
    overlay = np.empty(photo.shape, dtype=np.uint8)
    for start in range(0, len(values), OVERLAY_ROWS):
        rows = slice(start, start + OVERLAY_ROWS)
        v = np.clip(values[rows], 0.0, 1.0)
        opacity = (OVERLAY_OPACITY * np.sqrt(v))[..., None]
        colours = heat_colours(OVERLAY_COLD + (1.0 - OVERLAY_COLD) * v)
        mixed = photo[rows].astype(np.float32) * OVERLAY_DIM * (1.0 - opacity) + colours * opacity
        overlay[rows] = np.rint(mixed)
    return overlay


class NpzWriter:
    """``maps.npz``: per image ``{key}/`` + ``original_name``, ``synset``, ``class_name``,
    ``class_index``, ``valid_rounds``, ``n_players``, ``split_half``, ``has_map``,
    ``no_map_reason`` ("" with a map) and, with a map, ``map`` (native) and ``map_224``;
    members written one by one."""

    def __init__(self, folder: Path) -> None:
        self.archive = DeflatedZipFile(folder / "maps.npz")

    def encode(self, item: ExportItem) -> list[Deflated]:
        arrays: dict[str, np.ndarray] = {}
        if item.map_native is not None and item.map_eval is not None:
            arrays["map"] = item.map_native.astype(np.float32, copy=False)
            arrays["map_224"] = item.map_eval.astype(np.float32, copy=False)
        arrays |= {
            "original_name": np.array(item.original_name),
            "synset": np.array(item.synset),
            "class_name": np.array(item.class_name),
            "class_index": np.array(item.class_index, dtype=np.int64),
            "valid_rounds": np.array(item.valid_rounds, dtype=np.int64),
            "n_players": np.array(item.n_players, dtype=np.int64),
            "split_half": np.array(item.split_half, dtype=np.float64),
            "has_map": np.array(item.has_map),
            "no_map_reason": np.array(item.no_map or ""),
        }
        return [deflated(f"{item.key}/{name}.npy", *_npy_parts(a)) for name, a in arrays.items()]

    def add(self, item: ExportItem, encoded: list[Deflated]) -> None:
        for member in encoded:
            self.archive.write_deflated(member)

    def close(self) -> None:
        self.archive.close()


class Hdf5Writer:
    """``maps.h5``: one group per image key, its fields as attributes (as the NPZ's) and, with a
    map, datasets ``map`` and ``map_224``. Each map is one gzip chunk, compressed by ``encode``
    (HDF5's deflate filter is zlib's)."""

    def __init__(self, folder: Path) -> None:
        self.file = h5py.File(folder / "maps.h5", "w", track_order=True, libver="earliest")

    def encode(self, item: ExportItem) -> dict[str, tuple[tuple[int, ...], bytes]]:
        if item.map_native is None or item.map_eval is None:
            return {}
        maps = {"map": item.map_native, "map_224": item.map_eval}
        return {
            name: (values.shape, isal_zlib.compress(values.astype("<f4").tobytes(), COMPRESS_LEVEL))
            for name, values in maps.items()
        }

    def add(self, item: ExportItem, encoded: dict[str, tuple[tuple[int, ...], bytes]]) -> None:
        group = self.file.create_group(item.key, track_order=True)
        for name, (shape, chunk) in encoded.items():
            dataset = group.create_dataset(
                name, shape=shape, dtype="<f4", chunks=shape, track_times=False,
                compression="gzip", compression_opts=COMPRESS_LEVEL,
            )  # fmt: skip
            dataset.id.write_direct_chunk((0,) * len(shape), chunk)
        fields = {**item.metadata(), "split_half": item.split_half,
                  "no_map_reason": item.no_map or ""}  # fmt: skip
        for name, value in fields.items():
            group.attrs[name] = value

    def close(self) -> None:
        self.file.close()


class PngWriter:
    """For each image with a map: ``png/maps/{key}.png`` (8-bit grey, native size: what any
    viewer shows; exact values are in the NPZ and HDF5) and ``png/overlays/{key}.png`` (the map
    in colour over the dimmed photo); the image's names in PNG text chunks."""

    def __init__(self, folder: Path) -> None:
        self.maps = folder / "png" / "maps"
        self.overlays = folder / "png" / "overlays"
        self.maps.mkdir(parents=True)
        self.overlays.mkdir(parents=True)

    def encode(self, item: ExportItem) -> tuple[bytes, bytes] | None:
        if item.map_native is None:
            return None
        photo = np.asarray(load_rgb(item.image_path), dtype=np.uint8)
        return (
            _png(map_preview_pixels(item.map_native), item),
            _png(overlay_pixels(photo, item.map_native), item),
        )

    def add(self, item: ExportItem, encoded: tuple[bytes, bytes] | None) -> None:
        if encoded is None:
            return
        map_png, overlay_png = encoded
        (self.maps / f"{item.key}.png").write_bytes(map_png)
        (self.overlays / f"{item.key}.png").write_bytes(overlay_png)

    def close(self) -> None:
        return None


# The tables of the round formats: per image, per round, per point (long form).
IMAGE_SCHEMA = pa.schema(
    [
        ("image_id", pa.int64()),
        ("original_name", pa.string()),
        ("synset", pa.string()),
        ("class_index", pa.int32()),
        ("class_name", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("rounds", pa.int32()),
        ("valid_rounds", pa.int32()),
        ("players", pa.int32()),
        ("has_map", pa.bool_()),
        ("no_map_reason", pa.string()),
        ("split_half", pa.float64()),
    ]
)
ROUND_SCHEMA = pa.schema(
    [
        ("round_id", pa.int64()),
        ("image_id", pa.int64()),
        ("original_name", pa.string()),
        ("synset", pa.string()),
        ("class_index", pa.int32()),
        ("class_name", pa.string()),
        ("player", pa.string()),
        ("outcome", pa.string()),
        ("pointer_type", pa.string()),
        ("n_points", pa.int32()),
        ("valid", pa.bool_()),
        ("campaign_version", pa.int32()),
        ("model_version", pa.string()),
    ]
)
POINT_SCHEMA = pa.schema(
    [
        ("round_id", pa.int64()),
        ("image_id", pa.int64()),
        ("seq", pa.int32()),
        ("point", pa.int32()),
        ("x", pa.float32()),
        ("y", pa.float32()),
        ("t", pa.int32()),
        ("pointer_type", pa.string()),
    ]
)
TABLES = {"images": IMAGE_SCHEMA, "rounds": ROUND_SCHEMA, "points": POINT_SCHEMA}


def image_table(item: ExportItem) -> pa.Table:
    row = {
        "image_id": item.image_id, "original_name": item.original_name, "synset": item.synset,
        "class_index": item.class_index, "class_name": item.class_name, "width": item.width,
        "height": item.height, "rounds": item.n_rounds, "valid_rounds": item.valid_rounds,
        "players": item.n_players, "has_map": item.has_map, "no_map_reason": item.no_map,
        "split_half": None if np.isnan(item.split_half) else item.split_half,
    }  # fmt: skip
    return pa.Table.from_pylist([row], schema=IMAGE_SCHEMA)


def _round_row(item: ExportItem, record: RoundRecord) -> dict[str, Any]:
    return {
        "round_id": record.round_id, "image_id": item.image_id,
        "original_name": item.original_name, "synset": item.synset,
        "class_index": item.class_index, "class_name": item.class_name, "player": record.player,
        "outcome": record.outcome, "pointer_type": record.pointer_type,
        "n_points": len(record.points), "valid": record.valid,
        "campaign_version": record.campaign_version, "model_version": record.model_version,
    }  # fmt: skip


def rounds_table(item: ExportItem) -> pa.Table:
    rows = [_round_row(item, record) for record in item.rounds]
    return pa.Table.from_pylist(rows, schema=ROUND_SCHEMA)


def points_table(item: ExportItem) -> pa.Table:
    """One row per point: its round, batch ``seq``, order in the round (``point``), x, y, t."""
    counts = [len(record.points) for record in item.rounds]
    empty = np.zeros(0, dtype=POINT_DTYPE)
    points = np.concatenate([empty, *(record.points for record in item.rounds)])
    columns = {
        "round_id": np.repeat([record.round_id for record in item.rounds], counts),
        "image_id": np.full(len(points), item.image_id, dtype=np.int64),
        "seq": np.concatenate([np.zeros(0, np.int32), *(r.seqs for r in item.rounds)]),
        "point": np.concatenate([np.zeros(0, np.int32), *map(np.arange, counts)]),
        "x": points["x"],
        "y": points["y"],
        "t": points["t"],
    }
    arrays = [pa.array(values, type=POINT_SCHEMA.field(name).type)
              for name, values in columns.items()]  # fmt: skip
    pointer = pa.array([record.pointer_type for record in item.rounds], pa.string())
    arrays.append(pointer.take(pa.array(np.repeat(np.arange(len(counts)), counts))))
    return pa.Table.from_arrays(arrays, schema=POINT_SCHEMA)


def round_tables(item: ExportItem) -> dict[str, pa.Table]:
    """The item's rows of each table of the round formats."""
    return {"images": image_table(item), "rounds": rounds_table(item),
            "points": points_table(item)}  # fmt: skip


class CsvWriter:
    """``images.csv``, ``rounds.csv`` and ``points.csv`` (one row per point), with a header;
    strings quoted, missing values empty, booleans ``true``/``false``."""

    def __init__(self, folder: Path) -> None:
        self.streams = {name: (folder / f"{name}.csv").open("wb") for name in TABLES}
        for name, schema in TABLES.items():
            pacsv.write_csv(schema.empty_table(), self.streams[name])

    def encode(self, item: ExportItem) -> dict[str, bytes]:
        encoded = {}
        for name, table in round_tables(item).items():
            buffer = io.BytesIO()
            if table.num_rows:
                pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False))
            encoded[name] = buffer.getvalue()
        return encoded

    def add(self, item: ExportItem, encoded: dict[str, bytes]) -> None:
        for name, data in encoded.items():
            self.streams[name].write(data)

    def close(self) -> None:
        """Close every file, also when one fails (a full disk fails the first flush)."""
        with ExitStack() as stack:
            for stream in self.streams.values():
                stack.callback(stream.close)


class ParquetWriter:
    """``images.parquet``, ``rounds.parquet`` and ``points.parquet``: the CSV's columns, typed;
    row groups of ``PARQUET_ROWS_PER_GROUP`` rows written as they fill."""

    def __init__(self, folder: Path) -> None:
        self.writers = {
            name: pq.ParquetWriter(folder / f"{name}.parquet", schema)
            for name, schema in TABLES.items()
        }
        self.pending: dict[str, list[pa.Table]] = {name: [] for name in TABLES}
        self.rows = dict.fromkeys(TABLES, 0)

    def _flush(self, name: str) -> None:
        if self.rows[name]:
            self.writers[name].write_table(pa.concat_tables(self.pending[name]))
            self.pending[name], self.rows[name] = [], 0

    def encode(self, item: ExportItem) -> dict[str, pa.Table]:
        return round_tables(item)

    def add(self, item: ExportItem, encoded: dict[str, pa.Table]) -> None:
        for name, table in encoded.items():
            self.pending[name].append(table)
            self.rows[name] += table.num_rows
            if self.rows[name] >= PARQUET_ROWS_PER_GROUP:
                self._flush(name)

    def close(self) -> None:
        """Write what is pending and close every file, also when one fails."""
        with ExitStack() as stack:
            for name, writer in self.writers.items():
                stack.callback(writer.close)
                stack.callback(self._flush, name)  # runs first: callbacks run last in, first out


class WebDatasetWriter:
    """``webdataset/clickme-{n:06d}.tar`` shards of ``shard_size`` images: ``{key}.jpg`` (the
    photo file as stored, JPEG or PNG bytes under the ``.jpg`` name PIL opens either way),
    ``{key}.map.png`` (16-bit native-size map, only with a map), ``{key}.preview.png`` (the
    same map in 8-bit grey, what any viewer shows, with the image's names as the PNG maps') and
    ``{key}.json`` (the image's fields, ``has_map`` and ``no_map_reason`` among them)."""

    def __init__(self, folder: Path, shard_size: int) -> None:
        self.folder = folder / "webdataset"
        self.folder.mkdir()
        self.shard_size = shard_size
        self.count = 0
        self.tar: tarfile.TarFile | None = None

    def _shard(self) -> tarfile.TarFile:
        if self.tar is None or self.count % self.shard_size == 0:
            self.close()
            name = self.folder / f"clickme-{self.count // self.shard_size:06d}.tar"
            self.tar = tarfile.open(name, "w", format=tarfile.USTAR_FORMAT)  # noqa: SIM115
        return self.tar

    def _member(self, tar: tarfile.TarFile, name: str, data: bytes) -> None:
        tar.addfile(_tar_info(name, len(data)), io.BytesIO(data))

    def encode(self, item: ExportItem) -> dict[str, bytes]:
        members = {f"{item.key}.jpg": item.image_path.read_bytes()}
        if item.map_native is not None:
            members[f"{item.key}.map.png"] = map_png_bytes(item.map_native)
            members[f"{item.key}.preview.png"] = _png(map_preview_pixels(item.map_native), item)
        members[f"{item.key}.json"] = json.dumps(item.metadata(), sort_keys=True).encode()
        return members

    def add(self, item: ExportItem, encoded: dict[str, bytes]) -> None:
        tar = self._shard()
        for name, data in encoded.items():
            self._member(tar, name, data)
        self.count += 1

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()
            self.tar = None


WriterFactory = Callable[[Path, int], Writer]

FORMATS: dict[str, WriterFactory] = {
    "npz": lambda folder, _shard: NpzWriter(folder),
    "hdf5": lambda folder, _shard: Hdf5Writer(folder),
    "png": lambda folder, _shard: PngWriter(folder),
    "csv": lambda folder, _shard: CsvWriter(folder),
    "parquet": lambda folder, _shard: ParquetWriter(folder),
    "webdataset": WebDatasetWriter,
}
ROUND_FORMATS = frozenset({"csv", "parquet"})
