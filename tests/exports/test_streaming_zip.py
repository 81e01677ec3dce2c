"""The NPZ's zip writer: members streamed to the file, the central directory spilled to disk."""

import errno
import io
import os
import shutil
import struct
import subprocess
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from clickme.exports.writers import (
    CENTRAL_HEADER,
    END64_LOCATOR,
    END64_RECORD,
    END_RECORD,
    ZIP64_LIMIT,
    ZIP_EPOCH,
    Deflated,
    DeflatedZipFile,
    central_record,
    deflated,
    end_records,
)

MiB = 1 << 20


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _zlib_deflated(name: str, raw: bytes) -> Deflated:
    """``raw`` deflated as ``zipfile`` deflates it (zlib, default level, raw stream)."""
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
    return Deflated(name, len(raw), zlib.crc32(raw), compressor.compress(raw) + compressor.flush())


def _zipfile_bytes(members: dict[str, bytes]) -> bytes:
    """The zip ``zipfile.ZipFile`` writes of ``members`` with the export's fields."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, raw in members.items():
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, raw)
    return buffer.getvalue()


def _streamed_bytes(path: Path, members: dict[str, bytes]) -> bytes:
    with DeflatedZipFile(path) as archive:
        for name, raw in members.items():
            archive.write_deflated(_zlib_deflated(name, raw))
    return path.read_bytes()


def test_round_trip_through_numpy_zipfile_and_unzip(tmp_path: Path) -> None:
    arrays = {
        "000000001/map": np.linspace(0, 1, 240 * 320, dtype=np.float32).reshape(240, 320),
        "000000001/label": np.array("tench"),
        "000000002/n_players": np.array(4, dtype=np.int64),
        "000000002/étiquette": np.array("tanche"),
    }
    raws = {f"{key}.npy": _npy(value) for key, value in arrays.items()}
    path = tmp_path / "maps.npz"
    with DeflatedZipFile(path) as archive:
        for name, raw in raws.items():
            archive.write_deflated(deflated(name, raw))
    assert list(tmp_path.iterdir()) == [path]  # the spilled directory is gone

    with np.load(path) as npz:
        assert npz.files == list(arrays)
        for key, value in arrays.items():
            np.testing.assert_array_equal(npz[key], value)
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        infos = archive.infolist()
    assert [info.filename for info in infos] == list(raws)
    assert [info.file_size for info in infos] == [len(raw) for raw in raws.values()]
    assert [info.CRC for info in infos] == [zlib.crc32(raw) for raw in raws.values()]
    assert [info.flag_bits for info in infos] == [0, 0, 0, 0x800]  # UTF-8 only where needed
    for info in infos:
        assert (info.compress_type, info.create_system) == (zipfile.ZIP_DEFLATED, 3)
        assert info.external_attr >> 16 == 0o100644
        assert info.date_time == ZIP_EPOCH
    if shutil.which("unzip"):
        subprocess.run(["unzip", "-tq", str(path)], check=True, capture_output=True)


def test_same_bytes_as_zipfile(tmp_path: Path) -> None:
    members = {
        "000000001/map.npy": bytes(range(256)) * 40,
        "000000001/empty.npy": b"",
        "000000002/étiquette.npy": b"tanche" * 3,
    }
    assert _streamed_bytes(tmp_path / "a.zip", members) == _zipfile_bytes(members)
    assert _streamed_bytes(tmp_path / "empty.zip", {}) == _zipfile_bytes({})


def test_more_than_65535_members_take_zip64_end_records(tmp_path: Path) -> None:
    count = 0x10000 + 1
    members = {f"{index}.npy": index.to_bytes(4, "little") for index in range(count)}
    data = _streamed_bytes(tmp_path / "many.zip", members)
    assert data == _zipfile_bytes(members)

    classic = END_RECORD.unpack(data[-END_RECORD.size :])
    assert classic[3:5] == (0xFFFF, 0xFFFF)  # counts left to the ZIP64 end record
    locator = END64_LOCATOR.unpack(data[-END_RECORD.size - END64_LOCATOR.size : -END_RECORD.size])
    zip64 = END64_RECORD.unpack(data[locator[2] : locator[2] + END64_RECORD.size])
    assert (zip64[0], zip64[6], zip64[7]) == (b"PK\x06\x06", count, count)
    with zipfile.ZipFile(tmp_path / "many.zip") as archive:
        assert len(archive.infolist()) == count
        assert archive.read(f"{count - 1}.npy") == (count - 1).to_bytes(4, "little")


def test_central_record_takes_a_zip64_offset_past_the_limit() -> None:
    member = deflated("000000001/map.npy", b"x" * 100)
    below = central_record(member, ZIP64_LIMIT)
    assert len(below) == CENTRAL_HEADER.size + len(member.name)
    assert CENTRAL_HEADER.unpack(below[: CENTRAL_HEADER.size])[-1] == ZIP64_LIMIT

    offset = 5 << 30
    record = central_record(member, offset)
    fields = CENTRAL_HEADER.unpack(record[: CENTRAL_HEADER.size])
    assert fields[0] == b"PK\x01\x02"
    assert (fields[1], fields[2], fields[3]) == (45, 3, 45)  # versions made by (Unix), needed
    assert (fields[9], fields[10], fields[11]) == (member.crc, len(member.data), member.size)
    assert fields[-1] == 0xFFFFFFFF
    name_end = CENTRAL_HEADER.size + fields[12]
    assert record[CENTRAL_HEADER.size : name_end] == member.name.encode()
    assert fields[13] == 12
    assert struct.unpack("<HHQ", record[name_end:]) == (1, 8, offset)


def test_end_records_past_the_offset_limit() -> None:
    assert end_records(3, 100, 200) == END_RECORD.pack(b"PK\x05\x06", 0, 0, 3, 3, 100, 200, 0)

    offset = 5 << 30
    data = end_records(3, 100, offset)
    zip64 = END64_RECORD.unpack(data[: END64_RECORD.size])
    assert zip64 == (b"PK\x06\x06", 44, 45, 45, 0, 0, 3, 3, 100, offset)
    locator = END64_LOCATOR.unpack(data[END64_RECORD.size : END64_RECORD.size + 20])
    assert locator == (b"PK\x06\x07", 0, offset + 100, 1)
    classic = END_RECORD.unpack(data[END64_RECORD.size + END64_LOCATOR.size :])
    assert classic == (b"PK\x05\x06", 0, 0, 3, 3, 100, 0xFFFFFFFF, 0)


def test_memory_stays_flat_however_many_members(tmp_path: Path) -> None:
    payload = deflated("payload", b"\x00" * 128)

    def write(archive: DeflatedZipFile, indices: range) -> int:
        """Traced memory after writing small members (6 per image key) of ``indices``."""
        for index in indices:
            name = f"{index // 6:09d}/map_{index % 6}.npy"
            archive.write_deflated(Deflated(name, payload.size, payload.crc, payload.data))
        return tracemalloc.get_traced_memory()[0]

    tracemalloc.start()
    try:
        with DeflatedZipFile(tmp_path / "flat.zip") as archive:
            after_few = write(archive, range(6_000))
            after_many = write(archive, range(6_000, 60_000))
    finally:
        tracemalloc.stop()
    assert after_many - after_few < 2 * MiB
    with zipfile.ZipFile(tmp_path / "flat.zip") as archive:
        assert len(archive.infolist()) == 60_000


def test_members_needing_zip64_sizes_are_refused(tmp_path: Path) -> None:
    with DeflatedZipFile(tmp_path / "big.zip") as archive:
        with pytest.raises(ValueError, match="larger than"):
            archive.write_deflated(Deflated("big.npy", ZIP64_LIMIT + 1, 0, b""))
        archive.write_deflated(deflated("small.npy", b"small"))
    with zipfile.ZipFile(tmp_path / "big.zip") as archive:
        assert archive.testzip() is None
        assert archive.namelist() == ["small.npy"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_fails_the_write(tmp_path: Path) -> None:
    full = tmp_path / "maps.npz"
    full.symlink_to("/dev/full")
    archive = DeflatedZipFile(full)
    with pytest.raises(OSError) as error:
        archive.write_deflated(deflated("map.npy", os.urandom(1 << 16)))
    assert error.value.errno == errno.ENOSPC
    with pytest.raises(OSError):
        archive.close()
    archive.close()  # closed even so: a second close does nothing
