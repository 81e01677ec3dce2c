"""``manifest.json``: what an export holds and how it was made, with a sha256 of every file.

Every field but ``created_at`` is a function of the data and the filters.
"""

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import clickme

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
HASH_CHUNK = 1024 * 1024


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under the folder, keyed by its POSIX path relative to it."""
    return {
        path.relative_to(folder).as_posix(): file_sha256(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def build_manifest(
    folder: Path,
    *,
    campaign: dict[str, Any],
    model_versions: list[str],
    filters: dict[str, Any],
    formats: list[str],
    counts: dict[str, int],
    without_map: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The manifest of the files in ``folder``; ``without_map``: the images that have no map,
    by the rule they failed (``clickme.maps.qualify``)."""
    return {
        "manifest_format": MANIFEST_FORMAT,
        "software": {"name": "clickme", "version": clickme.__version__},
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "campaign": campaign,
        "model_versions": model_versions,
        "filters": filters,
        "formats": formats,
        "counts": counts,
        "without_map": without_map,
        "files": file_hashes(folder),
    }


def write_manifest(manifest: dict[str, Any], folder: Path) -> Path:
    """Writes manifest.json under a temporary name, then renames it into place."""
    target = folder / MANIFEST_NAME
    temporary = folder / f".{MANIFEST_NAME}.partial"
    temporary.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, target)
    return target


def read_manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
