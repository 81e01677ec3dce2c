"""Image sets from outside: an uploaded zip unpacked with bounds, or a folder under a set root.

The zip is checked before anything is written (entry count, declared unpacked total); each entry
is then refused on its own when its path leaves the target folder, it is a link or other special
file, or its compression ratio betrays a zip bomb. What is left goes through `import_directory`.
"""

import contextlib
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from sqlalchemy.orm import Session

from clickme.core.config import Settings
from clickme.core.errors import Forbidden, NotFound, Unprocessable
from clickme.images.service import ImportProblem, ImportReport, import_directory

COPY_CHUNK_BYTES = 1 << 20
NAME_MAX_BYTES = 255  # one file or folder name (ext4, XFS, tmpfs, ...)
PATH_MAX_BYTES = 4095  # the whole path below the target folder included


@dataclass(frozen=True)
class ZipLimits:
    max_entries: int
    max_unpacked_bytes: int
    max_ratio: float

    @classmethod
    def from_settings(cls, settings: Settings) -> "ZipLimits":
        return cls(
            max_entries=settings.upload_max_entries,
            max_unpacked_bytes=settings.upload_max_unpacked_bytes,
            max_ratio=settings.upload_max_ratio,
        )


class _EntryRefused(Exception):
    """A zip entry that is not unpacked, with the reason."""


def _open_zip(upload: BinaryIO) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(upload)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise Unprocessable("bad_zip", f"not a readable zip file: {exc}") from exc


def _check_archive(entries: list[zipfile.ZipInfo], limits: ZipLimits) -> None:
    """Refuse the whole archive when it has too many entries or unpacks too large."""
    if len(entries) > limits.max_entries:
        message = f"{len(entries)} entries in the zip; at most {limits.max_entries}"
        raise Unprocessable("too_many_entries", message)
    unpacked = sum(entry.file_size for entry in entries)
    if unpacked > limits.max_unpacked_bytes:
        raise Unprocessable(
            "zip_too_large",
            f"the zip unpacks to {unpacked} bytes; at most {limits.max_unpacked_bytes}",
        )


def _safe_relative_path(name: str) -> PurePosixPath:
    """The entry's path inside the target folder; refused if it is absolute or climbs out."""
    path = PurePosixPath(name)
    climbs_out = not path.parts or path.is_absolute() or ".." in path.parts
    # Backslashes and a drive ("C:") mean the same escapes on Windows.
    if climbs_out or "\\" in name or ":" in path.parts[0]:
        raise _EntryRefused("refused: the path leaves the target folder")
    if any(len(part.encode()) > NAME_MAX_BYTES for part in path.parts):
        raise _EntryRefused(f"refused: a name in the path is over {NAME_MAX_BYTES} bytes")
    return path


def _check_entry(entry: zipfile.ZipInfo, limits: ZipLimits) -> None:
    file_type = stat.S_IFMT(entry.external_attr >> 16)
    if file_type == stat.S_IFLNK:
        raise _EntryRefused("refused: a symbolic link")
    if file_type not in (0, stat.S_IFREG):
        raise _EntryRefused("refused: not a regular file")
    if entry.flag_bits & 0x1:
        raise _EntryRefused("refused: encrypted")
    ratio = entry.file_size / max(entry.compress_size, 1)
    if ratio > limits.max_ratio:
        raise _EntryRefused(
            f"refused as a possible zip bomb: it unpacks {ratio:.0f} times its packed size"
            f" (at most {limits.max_ratio:g})"
        )


def _unpack_entry(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, target: Path) -> None:
    """Write one checked entry below `target` (resolved again: nothing may land outside)."""
    destination = (target / _safe_relative_path(entry.filename)).resolve()
    if not destination.is_relative_to(target):
        raise _EntryRefused("refused: the path leaves the target folder")
    if len(str(destination).encode()) > PATH_MAX_BYTES:
        raise _EntryRefused(f"refused: the path is over {PATH_MAX_BYTES} bytes")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _EntryRefused("cannot unpack: a file of the zip has the name of its folder") from exc
    try:
        with archive.open(entry) as reader, destination.open("xb") as writer:
            shutil.copyfileobj(reader, writer, COPY_CHUNK_BYTES)
    except FileExistsError as exc:
        raise _EntryRefused("refused: a second entry with the same name") from exc
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        _remove(destination)
        raise _EntryRefused(f"corrupt zip entry: {exc}") from exc
    except (NotImplementedError, RuntimeError, OSError) as exc:
        _remove(destination)
        raise _EntryRefused(f"cannot unpack: {getattr(exc, 'strerror', None) or exc}") from exc


def _remove(path: Path) -> None:
    """Remove what an entry left half-written, if it could be written at all."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def unpack_zip(
    upload: BinaryIO, target: Path, limits: ZipLimits
) -> tuple[int, list[ImportProblem]]:
    """Unpack the zip's acceptable files into the (existing, empty) `target`: how many, and the
    entries refused. Raises Unprocessable when the archive as a whole is refused."""
    target = target.resolve()
    with _open_zip(upload) as archive:
        entries = archive.infolist()
        _check_archive(entries, limits)
        unpacked, problems = 0, []
        for entry in entries:
            if entry.is_dir():
                continue
            try:
                _safe_relative_path(entry.filename)
                _check_entry(entry, limits)
                _unpack_entry(archive, entry, target)
                unpacked += 1
            except _EntryRefused as refused:
                problems.append(ImportProblem(entry.filename, str(refused)))
    return unpacked, problems


def import_zip(
    session: Session, upload: BinaryIO, image_set_name: str, settings: Settings
) -> ImportReport:
    """Unpack an uploaded zip in a temporary folder of the data dir and import it into the set.

    When no entry could be unpacked, no set is created and the report holds only the refusals.
    """
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.uploads_dir, prefix="zip-") as folder:
        target = Path(folder)
        unpacked, problems = unpack_zip(upload, target, ZipLimits.from_settings(settings))
        if unpacked == 0:
            return ImportReport(image_set=image_set_name, problems=problems)
        report = import_directory(session, target, image_set_name, settings.images_dir)
    report.problems[:0] = problems
    return report


def resolve_import_folder(import_root: Path | None, requested: str) -> Path:
    """The server folder to import: `requested` (relative to the root, or absolute) resolved, and
    only if it stays inside the configured import root."""
    if import_root is None:
        raise Forbidden(
            "import_root_not_set", "importing server folders is off (set CLICKME_IMPORT_ROOT)"
        )
    root = import_root.resolve()
    if "\x00" in requested:
        raise Unprocessable("invalid_path", "the path holds a NUL character")
    folder = (root / requested).resolve()
    if not folder.is_relative_to(root):
        raise Forbidden("outside_import_root", "the folder is not inside the import root")
    if not folder.is_dir():
        raise NotFound("folder_not_found", f"no folder {requested!r} in the import root")
    return folder
