"""Zip members deflated ahead of writing (on the export's worker threads)."""

import zipfile
from pathlib import Path

from clickme.exports.writers import ZIP_EPOCH, DeflatedZipFile, deflated


def test_members_deflated_ahead_read_back_with_their_crc_checked(tmp_path: Path) -> None:
    members = {"a/map.npy": bytes(range(256)) * 400, "a/empty.npy": b"", "b/x.npy": b"x" * 7}
    with DeflatedZipFile(tmp_path / "ahead.zip", "w") as archive:
        for name, raw in members.items():
            archive.write_deflated(deflated(name, raw))
    with zipfile.ZipFile(tmp_path / "ahead.zip") as archive:
        assert archive.testzip() is None
        assert archive.namelist() == list(members)
        assert {archive.read(name) for name in members} == set(members.values())
        infos = archive.infolist()
        assert {info.compress_type for info in infos} == {zipfile.ZIP_DEFLATED}
        assert {info.date_time for info in infos} == {ZIP_EPOCH}
        assert infos[0].compress_size < len(members["a/map.npy"]) // 10


def test_more_than_65535_members_take_zip64(tmp_path: Path) -> None:
    count = 0x10000 + 3
    with DeflatedZipFile(tmp_path / "many.zip", "w") as archive:
        for index in range(count):
            archive.write_deflated(deflated(f"{index}.npy", index.to_bytes(4, "little")))
    with zipfile.ZipFile(tmp_path / "many.zip") as archive:
        assert len(archive.infolist()) == count
        assert archive.read(f"{count - 1}.npy") == (count - 1).to_bytes(4, "little")
