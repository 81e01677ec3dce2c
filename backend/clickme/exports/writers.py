"""Export writers: each takes one image at a time (bounded memory) and writes deterministic bytes.

Every writer writes under a staging folder (see ``service``); the service renames the finished
files into the export folder. A writer's costly part (compression) is its ``encode``, which the
service runs on its worker threads; ``add`` then only writes, in image-id order. Determinism:
members in image-id order, fixed zip/tar time stamps and modes, HDF5 without time stamps and
with tracked creation order, sorted JSON keys.
"""

import csv
import io
import json
import shutil
import struct
import tarfile
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, Self

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from isal import isal_zlib
from PIL import Image as PilImage

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
MAP_PNG_MAX = 65535
OVERLAY_ALPHA = 0.6
PARQUET_ROWS_PER_GROUP = 10_000
# Deflate level of NPZ members, HDF5 datasets and PNGs: float maps barely shrink past level 1.
# NPZ and HDF5 maps are deflated by ISA-L (standard deflate streams, 6x faster than zlib on
# maps, 4% larger): zlib's 5 ms per image were most of an export's time.
COMPRESS_LEVEL = 1


@dataclass(frozen=True)
class RoundRecord:
    """One round of an exported image, its player known only by a pseudonym."""

    round_id: int
    player: str
    image_id: int
    points: np.ndarray  # structured x, y, t (native pixels, ms)
    outcome: str | None
    pointer_type: str | None
    campaign_version: int
    model_version: str


@dataclass(frozen=True)
class ExportItem:
    """Everything the writers need about one exported image."""

    image_id: int
    width: int
    height: int
    class_index: int
    label: str
    synset: str
    image_path: Path
    n_players: int
    split_half: float  # Spearman-Brown corrected split-half value, NaN when not computable
    map_native: np.ndarray  # float32 (height, width) in [0, 1]
    map_eval: np.ndarray  # float32 (224, 224) in [0, 1]
    rounds: list[RoundRecord] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.image_id:09d}"

    def metadata(self) -> dict[str, Any]:
        return {
            "image_id": self.image_id,
            "width": self.width,
            "height": self.height,
            "class_index": self.class_index,
            "label": self.label,
            "synset": self.synset,
            "n_players": self.n_players,
            "split_half": None if np.isnan(self.split_half) else self.split_half,
            "has_map": True,
        }


class Writer(Protocol):
    def encode(self, item: ExportItem) -> Any:
        """The item's bytes that take time to make (thread-safe: runs on worker threads)."""

    def add(self, item: ExportItem, encoded: Any) -> None:
        """Writes the item with what ``encode`` made of it; called in image-id order."""

    def close(self) -> None: ...


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


@dataclass(frozen=True)
class Deflated:
    """A zip member compressed ahead of writing: its raw deflate stream, size and CRC-32."""

    name: str
    size: int
    crc: int
    data: bytes


def deflated(name: str, raw: bytes) -> Deflated:
    """``raw`` as a zip member's raw deflate stream (any zip reader inflates it)."""
    compressor = isal_zlib.compressobj(COMPRESS_LEVEL, isal_zlib.DEFLATED, -isal_zlib.MAX_WBITS)
    data = compressor.compress(raw) + compressor.flush()
    return Deflated(name, len(raw), isal_zlib.crc32(raw), data)


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
    """A [0, 1] map as a 16-bit greyscale PNG."""
    grey = np.round(np.clip(values, 0.0, 1.0) * MAP_PNG_MAX).astype(np.uint16)
    buffer = io.BytesIO()
    PilImage.fromarray(grey).save(buffer, format="PNG", compress_level=COMPRESS_LEVEL)
    return buffer.getvalue()


def read_map_png(data: bytes) -> np.ndarray:
    """The float32 [0, 1] map of ``map_png_bytes``."""
    with PilImage.open(io.BytesIO(data)) as image:
        return np.asarray(image, dtype=np.float32) / MAP_PNG_MAX


def _heat(values: np.ndarray) -> np.ndarray:
    """A simple blue -> red heat colouring of a [0, 1] map, uint8 (H, W, 3)."""
    v = np.clip(values, 0.0, 1.0)
    rgb = np.stack([v, 1.0 - np.abs(2.0 * v - 1.0), 1.0 - v], axis=-1)
    return (rgb * 255).astype(np.uint8)


def overlay_png_bytes(photo: PilImage.Image, values: np.ndarray) -> bytes:
    """The photo with the map's heat blended in where the map is high."""
    base = np.asarray(photo.convert("RGB"), dtype=np.float32)
    alpha = (OVERLAY_ALPHA * np.clip(values, 0.0, 1.0))[..., None]
    mixed = base * (1.0 - alpha) + _heat(values).astype(np.float32) * alpha
    buffer = io.BytesIO()
    overlay = PilImage.fromarray(np.round(mixed).astype(np.uint8))
    overlay.save(buffer, format="PNG", compress_level=COMPRESS_LEVEL)
    return buffer.getvalue()


class NpzWriter:
    """``maps.npz``: per image ``{key}/map`` (native), ``{key}/map_224``, ``{key}/label``,
    ``{key}/class_index``, ``{key}/n_players``, ``{key}/split_half``; members written one by one."""

    def __init__(self, folder: Path) -> None:
        self.archive = DeflatedZipFile(folder / "maps.npz")

    def encode(self, item: ExportItem) -> list[Deflated]:
        arrays = {
            "map": item.map_native.astype(np.float32, copy=False),
            "map_224": item.map_eval.astype(np.float32, copy=False),
            "label": np.array(item.label),
            "class_index": np.array(item.class_index, dtype=np.int64),
            "n_players": np.array(item.n_players, dtype=np.int64),
            "split_half": np.array(item.split_half, dtype=np.float64),
        }
        return [deflated(f"{item.key}/{name}.npy", _npy_bytes(a)) for name, a in arrays.items()]

    def add(self, item: ExportItem, encoded: list[Deflated]) -> None:
        for member in encoded:
            self.archive.write_deflated(member)

    def close(self) -> None:
        self.archive.close()


class Hdf5Writer:
    """``maps.h5``: one group per image key with datasets ``map``, ``map_224`` and attributes.
    Each map is one gzip chunk, compressed by ``encode`` (HDF5's deflate filter is zlib's)."""

    def __init__(self, folder: Path) -> None:
        self.file = h5py.File(folder / "maps.h5", "w", track_order=True, libver="earliest")

    def encode(self, item: ExportItem) -> dict[str, tuple[tuple[int, ...], bytes]]:
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
        group.attrs["image_id"] = item.image_id
        group.attrs["label"] = item.label
        group.attrs["class_index"] = item.class_index
        group.attrs["n_players"] = item.n_players
        group.attrs["split_half"] = item.split_half

    def close(self) -> None:
        self.file.close()


class PngWriter:
    """``png/maps/{key}.png`` (16-bit grey, native size) and ``png/overlays/{key}.png``."""

    def __init__(self, folder: Path) -> None:
        self.maps = folder / "png" / "maps"
        self.overlays = folder / "png" / "overlays"
        self.maps.mkdir(parents=True)
        self.overlays.mkdir(parents=True)

    def encode(self, item: ExportItem) -> tuple[bytes, bytes]:
        with PilImage.open(item.image_path) as photo:
            return map_png_bytes(item.map_native), overlay_png_bytes(photo, item.map_native)

    def add(self, item: ExportItem, encoded: tuple[bytes, bytes]) -> None:
        map_png, overlay_png = encoded
        (self.maps / f"{item.key}.png").write_bytes(map_png)
        (self.overlays / f"{item.key}.png").write_bytes(overlay_png)

    def close(self) -> None:
        return None


ROUND_COLUMNS = (
    "round_id", "player", "image_id", "x", "y", "t",
    "outcome", "pointer_type", "campaign_version", "model_version",
)  # fmt: skip


def _floats(values: np.ndarray) -> list[float]:
    return [float(value) for value in values]


def _round_row(record: RoundRecord) -> dict[str, Any]:
    return {
        "round_id": record.round_id,
        "player": record.player,
        "image_id": record.image_id,
        "x": _floats(record.points["x"]),
        "y": _floats(record.points["y"]),
        "t": [int(value) for value in record.points["t"]],
        "outcome": record.outcome,
        "pointer_type": record.pointer_type,
        "campaign_version": record.campaign_version,
        "model_version": record.model_version,
    }


class CsvWriter:
    """``rounds.csv``: one row per round; x, y and t are JSON lists."""

    def __init__(self, folder: Path) -> None:
        self.stream = (folder / "rounds.csv").open("w", newline="", encoding="utf-8")
        self.csv = csv.DictWriter(self.stream, fieldnames=ROUND_COLUMNS, lineterminator="\n")
        self.csv.writeheader()

    def encode(self, item: ExportItem) -> list[dict[str, Any]]:
        rows = [_round_row(record) for record in item.rounds]
        for row in rows:
            for name in ("x", "y", "t"):
                row[name] = json.dumps(row[name], separators=(",", ":"))
        return rows

    def add(self, item: ExportItem, encoded: list[dict[str, Any]]) -> None:
        self.csv.writerows(encoded)

    def close(self) -> None:
        self.stream.close()


ROUND_SCHEMA = pa.schema(
    [
        ("round_id", pa.int64()),
        ("player", pa.string()),
        ("image_id", pa.int64()),
        ("x", pa.list_(pa.float32())),
        ("y", pa.list_(pa.float32())),
        ("t", pa.list_(pa.int32())),
        ("outcome", pa.string()),
        ("pointer_type", pa.string()),
        ("campaign_version", pa.int32()),
        ("model_version", pa.string()),
    ]
)


class ParquetWriter:
    """``rounds.parquet``: the same columns as the CSV, points as typed lists; row groups of
    ``PARQUET_ROWS_PER_GROUP`` rounds written as they fill."""

    def __init__(self, folder: Path) -> None:
        self.writer = pq.ParquetWriter(folder / "rounds.parquet", ROUND_SCHEMA)
        self.rows: list[dict[str, Any]] = []

    def _flush(self) -> None:
        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=ROUND_SCHEMA))
            self.rows = []

    def encode(self, item: ExportItem) -> list[dict[str, Any]]:
        return [_round_row(record) for record in item.rounds]

    def add(self, item: ExportItem, encoded: list[dict[str, Any]]) -> None:
        self.rows.extend(encoded)
        if len(self.rows) >= PARQUET_ROWS_PER_GROUP:
            self._flush()

    def close(self) -> None:
        self._flush()
        self.writer.close()


class WebDatasetWriter:
    """``webdataset/clickme-{n:06d}.tar`` shards of ``shard_size`` images: ``{key}.jpg`` (the
    photo file as stored, JPEG or PNG bytes under the ``.jpg`` name PIL opens either way),
    ``{key}.map.png`` (16-bit native-size map) and ``{key}.json`` (metadata)."""

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
        return {
            f"{item.key}.jpg": item.image_path.read_bytes(),
            f"{item.key}.map.png": map_png_bytes(item.map_native),
            f"{item.key}.json": json.dumps(item.metadata(), sort_keys=True).encode(),
        }

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
