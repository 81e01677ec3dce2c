"""A folder's files as a zip archive, produced chunk by chunk (never whole in memory)."""

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

CHUNK = 1024 * 1024


class _Pending(io.RawIOBase):
    """An unseekable sink: what the zip writer wrote since the last ``take``."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._chunks.append(bytes(data))
        return len(data)

    def drain(self) -> Iterator[bytes]:
        """What was written since the last drain, as one chunk (none when nothing was)."""
        if self._chunks:
            data = b"".join(self._chunks)
            self._chunks.clear()
            yield data


def zip_chunks(folder: Path, names: list[str], root: str) -> Iterator[bytes]:
    """The named files of the folder as an uncompressed zip (maps and shards are compressed
    already), each under ``root/``; memory stays at about one ``CHUNK``."""
    sink = _Pending()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED) as archive:
        for name in names:
            path = folder / name
            info = zipfile.ZipInfo.from_file(path, f"{root}/{name}")
            info.compress_type = zipfile.ZIP_STORED
            with path.open("rb") as source, archive.open(info, "w") as target:
                while chunk := source.read(CHUNK):
                    target.write(chunk)
                    yield from sink.drain()
            yield from sink.drain()
    yield from sink.drain()
