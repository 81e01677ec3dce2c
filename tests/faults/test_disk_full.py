"""The disk fills up during an export (a real 2 MiB tmpfs): the export fails with a clear
"No space left on device" message, leaves no manifest nor staging folder behind, and a later
export to a roomy folder works. As an export job, the job ends failed with that message.

What the admin sees: the console's export shows "failed" and the message (the job's ``error``);
nothing half-written is offered for download. Nothing is lost: an export only reads the database.
"""

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.exports.jobs import EXPORTS_FOLDER, ExportJobs, Timing, create_job
from clickme.exports.manifest import MANIFEST_NAME
from clickme.exports.models import ExportJob
from clickme.exports.schemas import ExportJobCreate
from clickme.exports.service import ExportError, ExportRequest, run_export
from tests.accounts.staff import add_staff_user
from tests.exports.fill import add_campaign, add_photos, add_players, add_rounds

DISK_SIZE = "2m"
FORMATS = ("npz", "png", "csv")
NO_SPACE = "No space left on device"
FAST = Timing(poll_s=0.05, heartbeat_s=0.05, stale_after_s=5.0)


@contextmanager
def small_disk_at(folder: Path) -> Iterator[Path]:
    """A DISK_SIZE tmpfs on the folder, unmounted at the end; skipped where mounting is
    impossible (not root, or an unprivileged container), but never in CI (it runs as root)."""
    folder.mkdir(parents=True, exist_ok=True)
    why = "mounting a tmpfs needs root"
    if os.getuid() == 0:
        command = ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(folder)]
        mounted = subprocess.run(command, capture_output=True, text=True)
        if mounted.returncode == 0:
            try:
                yield folder
            finally:
                subprocess.run(["umount", str(folder)], check=True)
            return
        why = f"cannot mount a tmpfs: {mounted.stderr.strip()}"
    if os.environ.get("CI"):
        pytest.fail(f"{why} (CI runs this test as root)")
    pytest.skip(why)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with small_disk_at(tmp_path / "small") as folder:
        yield folder


@pytest.fixture
def campaign_id(database: Database, settings: Settings) -> int:
    """A campaign 'study' on 12 photos, 5 players each: its maps overflow the small disk."""
    with database.session() as session:
        image_set, images = add_photos(session, settings.images_dir, 12)
        campaign = add_campaign(session, image_set)
        add_rounds(session, campaign, images, add_players(session, 5))
        return campaign.id


def export(database: Database, settings: Settings, out_dir: Path) -> dict:
    with database.session() as session:
        request = ExportRequest(campaign="study", formats=FORMATS, n_splits=0)
        return run_export(
            session, request, out_dir, secret="s" * 32, images_dir=settings.images_dir
        )


def test_a_full_disk_fails_the_export_cleanly(
    database: Database, settings: Settings, campaign_id: int, small_disk: Path, tmp_path: Path
) -> None:
    with pytest.raises(ExportError, match=NO_SPACE) as failed:
        export(database, settings, small_disk)
    assert str(failed.value).startswith("writing the export failed")
    assert list(small_disk.iterdir()) == []  # no manifest, no staging folder, no stray file

    roomy = tmp_path / "roomy"
    manifest = export(database, settings, roomy)
    assert manifest["counts"]["images"] == 12
    assert (roomy / MANIFEST_NAME).is_file()


def finished_job(database: Database, job_id: int) -> ExportJob:
    deadline = time.monotonic() + 120
    while True:
        with database.session() as session:
            job = session.get_one(ExportJob, job_id)
        if job.state not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, f"export job {job_id} still {job.state}"
        time.sleep(0.05)


def test_a_full_disk_fails_the_export_job_with_its_message(
    database: Database, settings: Settings, campaign_id: int
) -> None:
    with small_disk_at(settings.data_dir / EXPORTS_FOLDER) as exports:
        staff_id = add_staff_user(database, "researcher@example.org", "researcher")
        body = ExportJobCreate(campaign_id=campaign_id, formats=list(FORMATS), splits=0)
        with database.session() as session:
            job_id = create_job(session, body, staff_id).id
        worker = ExportJobs.start(database, settings, FAST)
        try:
            job = finished_job(database, job_id)
        finally:
            worker.close()
        assert job.state == "failed", job.error
        assert job.error is not None and NO_SPACE in job.error
        assert job.manifest is None
        assert list(exports.iterdir()) == []  # nothing half-written to download
