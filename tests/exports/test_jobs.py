"""Export jobs on both databases: through the API (run, follow, download, cancel, fail,
recover), and shared by several API processes (two ``ExportJobs`` on one database)."""

import hashlib
import io
import json
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from clickme.app import create_app
from clickme.core.config import Settings
from clickme.core.db import Database, utcnow
from clickme.exports import jobs
from clickme.exports.jobs import INTERRUPTED, UNEXPECTED, ExportJobs, JobProgress, Timing
from clickme.exports.models import ExportJob
from clickme.exports.schemas import ExportJobCreate
from clickme.scoring.scorer import Scorer
from tests.accounts.staff import add_staff_user, staff_headers
from tests.exports.fill import add_campaign, add_photos, add_players, add_rounds

RESEARCHER = "researcher@example.org"
FINISHED = ("done", "failed", "cancelled")
# Processes that poll and beat every 50 ms and call a job silent after 1 s of no beat.
FAST = Timing(poll_s=0.05, heartbeat_s=0.05, stale_after_s=1.0)
# A process that, once it has taken a job, never beats (nor sweeps) again: as if it hung or died.
SILENT = Timing(poll_s=0.05, heartbeat_s=3600, stale_after_s=3600)


@pytest.fixture
def campaign_id(database: Database, game_settings: Settings) -> int:
    """A campaign 'study' on 4 photos of set 'synthetic-0', played by 5 players each (a map
    needs 5 valid rounds)."""
    with database.session() as session:
        image_set, images = add_photos(session, game_settings.images_dir, 4)
        campaign = add_campaign(session, image_set)
        add_rounds(session, campaign, images, add_players(session, 5))
        return campaign.id


@pytest.fixture
def researcher_id(database: Database) -> int:
    """A researcher (researchers may run exports)."""
    return add_staff_user(database, RESEARCHER, "researcher")


@pytest.fixture
def headers(database: Database, researcher_id: int) -> dict[str, str]:
    """The researcher's signed-in headers."""
    return staff_headers(database, RESEARCHER)


@dataclass
class Pause:
    """The next export's first image: ``reached`` once the export waits there (until its job
    is stopped, 30 s at most), ``released`` once it was stopped while it waited."""

    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def paused_at_first_image(monkeypatch: pytest.MonkeyPatch) -> Pause:
    pause = Pause()
    real_advance = JobProgress.advance

    def advance(progress: JobProgress) -> None:
        if not pause.reached.is_set():
            pause.reached.set()
            if progress.stop.wait(30):
                pause.released.set()
        real_advance(progress)

    monkeypatch.setattr(JobProgress, "advance", advance)
    return pause


@pytest.fixture
def processes(
    database: Database, game_settings: Settings
) -> Iterator[Callable[[Timing], ExportJobs]]:
    """Starts export workers on the test database, each with an engine of its own, as separate
    API processes would; closes them all at the end."""
    started: list[ExportJobs] = []

    def start_process(timing: Timing = FAST) -> ExportJobs:
        started.append(ExportJobs.start(Database(database.url), game_settings, timing))
        return started[-1]

    yield start_process
    for worker in started:
        worker.close()
        worker.database.dispose()


def start(client: TestClient, headers: dict[str, str], campaign_id: int, **fields) -> dict:
    body = {"campaign_id": campaign_id, "formats": ["npz", "csv"], "splits": 2, "min_rounds": 3,
            **fields}  # fmt: skip
    response = client.post("/api/admin/exports", json=body, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["state"] == "queued"
    return response.json()


def finished(client: TestClient, headers: dict[str, str], job_id: int) -> dict:
    """The job once it is done, failed or cancelled."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = client.get(f"/api/admin/exports/{job_id}", headers=headers).json()
        if job["state"] in FINISHED:
            return job
        time.sleep(0.05)
    pytest.fail(f"export {job_id} still {job['state']}")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def job_folder(settings: Settings, job_id: int) -> Path:
    return settings.data_dir / "exports" / f"job-{job_id}"


def queue(database: Database, campaign_id: int, staff_id: int) -> int:
    """A job committed as the start route commits it, but no worker woken."""
    body = ExportJobCreate(campaign_id=campaign_id, formats=["npz"], splits=2)
    with database.session() as session:
        return jobs.create_job(session, body, staff_id).id


def row(database: Database, job_id: int) -> ExportJob:
    with database.session() as session:
        return session.get_one(ExportJob, job_id)


def wait_for(database: Database, job_id: int, ready: Callable[[ExportJob], bool]) -> ExportJob:
    """The job's row once it is ready."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = row(database, job_id)
        if ready(job):
            return job
        time.sleep(0.02)
    pytest.fail(f"export {job_id} still {job.state}")


def taken_and_paused(
    start_process: Callable[..., ExportJobs],
    database: Database,
    campaign_id: int,
    researcher_id: int,
    pause: Pause,
    timing: Timing = FAST,
) -> tuple[ExportJobs, int]:
    """A process that took a newly queued job and waits at its first image; the job's id."""
    process = start_process(timing)
    job_id = queue(database, campaign_id, researcher_id)
    process.wake()
    assert pause.reached.wait(60)
    return process, job_id


def gone(path: Path) -> bool:
    """Whether the path is gone within 10 s."""
    deadline = time.monotonic() + 10
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return not path.exists()


def test_a_job_runs_to_done_and_its_zip_matches_the_manifest(
    client: TestClient, headers: dict[str, str], campaign_id: int, game_settings: Settings
) -> None:
    job = finished(
        client, headers, start(client, headers, campaign_id, image_set="synthetic-0")["id"]
    )
    assert job["state"] == "done", job["error"]
    assert job["done"] == job["total"] == 4
    assert job["counts"] == {
        "images": 4, "rounds": 20, "valid_rounds": 20, "images_with_map": 4, "map_rounds": 20,
        "exported_rounds": 20, "players": 5,
    }  # fmt: skip
    folder = job_folder(game_settings, job["id"])
    assert {f["path"]: f["size"] for f in job["files"]} == {
        name: (folder / name).stat().st_size
        for name in ("images.csv", "maps.npz", "points.csv", "rounds.csv")
    }

    response = client.get(f"/api/admin/exports/{job['id']}/download", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert f"study-export-{job['id']}.zip" in response.headers["content-disposition"]
    root = f"study-export-{job['id']}"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.namelist()[0] == f"{root}/manifest.json"
        manifest = json.loads(archive.read(f"{root}/manifest.json"))
        assert manifest["filters"]["image_set"] == "synthetic-0"
        assert sorted(manifest["files"]) == ["images.csv", "maps.npz", "points.csv", "rounds.csv"]
        for name, digest in manifest["files"].items():
            assert sha256(archive.read(f"{root}/{name}")) == digest

    one = client.get(f"/api/admin/exports/{job['id']}/files/rounds.csv", headers=headers)
    assert one.status_code == 200 and sha256(one.content) == manifest["files"]["rounds.csv"]
    listed = client.get("/api/admin/exports", headers=headers).json()
    assert [(j["id"], j["campaign_slug"], j["state"]) for j in listed] == [
        (job["id"], "study", "done")
    ]


def test_a_bad_request_is_refused_before_any_job(
    client: TestClient, headers: dict[str, str], campaign_id: int
) -> None:
    refusals = [
        ({"formats": ["zip"]}, "unknown format"),
        ({"pointer_type": "stylus"}, "pointer type"),
        ({"splits": 0, "min_reliability": 0.5}, "needs split-half values"),
        ({"image_set": "other"}, "campaign 'study' plays image set 'synthetic-0', not 'other'"),
    ]
    for fields, message in refusals:
        body = {"campaign_id": campaign_id, "formats": ["npz"], **fields}
        response = client.post("/api/admin/exports", json=body, headers=headers)
        assert response.status_code == 422, fields
        assert response.json()["error"]["code"] == "invalid_export"
        assert message in response.json()["error"]["message"]
    ambiguous = {"campaign_id": campaign_id, "formats": ["npz"], "classes": ["crane"]}
    refused = client.post("/api/admin/exports", json=ambiguous, headers=headers)
    assert refused.status_code == 422 and "names several classes" in refused.text
    for body in ({"campaign_id": campaign_id, "formats": []}, {"formats": ["npz"]}):
        assert client.post("/api/admin/exports", json=body, headers=headers).status_code == 422
    missing = client.post("/api/admin/exports", json={"campaign_id": 999, "formats": ["npz"]},
                          headers=headers)  # fmt: skip
    assert missing.status_code == 404
    assert client.get("/api/admin/exports", headers=headers).json() == []


def test_the_preview_counts_what_would_be_exported_and_writes_nothing(
    client: TestClient, headers: dict[str, str], campaign_id: int, game_settings: Settings
) -> None:
    body = {"campaign_id": campaign_id, "formats": ["npz"], "min_rounds": 5}
    preview = client.post("/api/admin/exports/preview", json=body, headers=headers)
    assert preview.status_code == 200, preview.text
    assert preview.json()["counts"]["images_with_map"] == 4
    assert preview.json()["summary"][:2] == [
        "4 images match the filters, with 20 finished rounds (20 valid)",
        "4 images qualify for a map, with 20 valid rounds",
    ]
    assert preview.json()["problem"] is None and preview.json()["without_map"] == {}
    too_many = client.post(
        "/api/admin/exports/preview", json={**body, "min_rounds": 6}, headers=headers
    ).json()
    assert too_many["without_map"] == {
        "too_few_rounds": {"images": 4, "rule": "fewer than 6 valid rounds"}
    }
    assert too_many["summary"][-1] == "4 images have fewer than 6 valid rounds"
    assert too_many["problem"].startswith("no image has a map (")
    refused = client.post(
        "/api/admin/exports/preview", json={**body, "pointer_type": "stylus"}, headers=headers
    )
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_export"
    assert client.get("/api/admin/exports", headers=headers).json() == []
    assert not (game_settings.data_dir / "exports").exists()


def test_failed_jobs_say_why_and_leave_no_files(
    client: TestClient,
    headers: dict[str, str],
    campaign_id: int,
    database: Database,
    game_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with database.session() as session:
        image_set, _ = add_photos(session, game_settings.images_dir, 1, seed=9)
        empty_id = add_campaign(session, image_set, slug="empty").id
    empty = finished(client, headers, start(client, headers, empty_id)["id"])
    assert (empty["state"], empty["error"]) == (
        "failed", "campaign 'empty' has no finished rounds: nothing to export"
    )  # fmt: skip
    nothing = finished(client, headers, start(client, headers, campaign_id, classes=[7])["id"])
    assert (nothing["state"], nothing["error"]) == (
        "failed", "no image matches the filters: the campaign has 4 images with finished rounds "
        "by players not excluded, 0 of class 7",
    )  # fmt: skip
    assert nothing["files"] == [] and nothing["finished_at"] is not None
    assert not job_folder(game_settings, nothing["id"]).exists()

    def broken(*_args, **_kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(jobs, "run_export", broken)
    bug = finished(client, headers, start(client, headers, campaign_id)["id"])
    assert (bug["state"], bug["error"]) == ("failed", UNEXPECTED)
    refused = client.get(f"/api/admin/exports/{bug['id']}/download", headers=headers)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "export_not_done"


def test_cancel_stops_a_running_export_and_drops_a_queued_one(
    client: TestClient,
    headers: dict[str, str],
    campaign_id: int,
    game_settings: Settings,
    paused_at_first_image: Pause,
) -> None:
    running = start(client, headers, campaign_id)["id"]
    assert paused_at_first_image.reached.wait(60)
    queued = start(client, headers, campaign_id)["id"]
    seen = client.get(f"/api/admin/exports/{running}", headers=headers).json()
    assert (seen["state"], seen["done"], seen["total"]) == ("running", 0, 4)

    for job_id in (queued, running):
        response = client.post(f"/api/admin/exports/{job_id}/cancel", headers=headers)
        assert response.status_code == 200 and response.json()["state"] == "cancelled"
    # One worker runs the jobs in order: once a later job is done, the cancelled one has stopped.
    after = finished(client, headers, start(client, headers, campaign_id)["id"])
    assert after["state"] == "done"

    listed = client.get("/api/admin/exports", headers=headers).json()
    assert [(j["id"], j["state"]) for j in listed] == [
        (after["id"], "done"), (queued, "cancelled"), (running, "cancelled")
    ]  # fmt: skip
    assert listed[1]["started_at"] is None and listed[2]["done"] < listed[2]["total"]
    assert not job_folder(game_settings, running).exists()
    assert not job_folder(game_settings, queued).exists()
    again = client.post(f"/api/admin/exports/{after['id']}/cancel", headers=headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "export_finished"


def test_a_clean_stop_requeues_its_job_and_a_start_fails_a_killed_server_s(
    game_settings: Settings,
    shared_scorer: Scorer,
    database: Database,
    headers: dict[str, str],
    campaign_id: int,
    paused_at_first_image: Pause,
) -> None:
    with TestClient(create_app(game_settings, scorer=shared_scorer)) as client:
        requeued = start(client, headers, campaign_id)["id"]
        assert paused_at_first_image.reached.wait(60)
    # A clean stop puts its running job back in the queue, as if never started, files removed.
    job = row(database, requeued)
    assert (job.state, job.owner, job.heartbeat_at, job.started_at, job.done, job.error) == (
        "queued", None, None, None, 0, None
    )  # fmt: skip
    assert not job_folder(game_settings, requeued).exists()
    # A server killed outright leaves its job running, its heartbeat old, maybe a staging folder.
    with database.session() as session:
        old = dict(campaign_id=campaign_id, request={}, folder="", owner="gone:1:0",
                   heartbeat_at=utcnow() - timedelta(minutes=5))  # fmt: skip
        killed, kept = ExportJob(state="running", **old), ExportJob(state="done", **old)
        session.add_all([killed, kept])
        session.flush()
        for job in (killed, kept):
            job.folder = f"exports/job-{job.id}"
            (job_folder(game_settings, job.id) / ".export-staging-x").mkdir(parents=True)

    with TestClient(create_app(game_settings, scorer=shared_scorer)) as client:
        failed = row(database, killed.id)  # swept as the server started
        assert (failed.state, failed.error) == ("failed", INTERRUPTED)
        assert failed.finished_at is not None
        assert not job_folder(game_settings, killed.id).exists()
        assert finished(client, headers, requeued)["state"] == "done"
    assert row(database, kept.id).state == "done"
    assert job_folder(game_settings, kept.id).exists()


def test_of_two_processes_taking_the_same_job_exactly_one_does(
    database: Database, campaign_id: int, researcher_id: int
) -> None:
    job_id = queue(database, campaign_id, researcher_id)

    def take_as_b() -> bool:
        with database.session() as session:
            return jobs.take(session, job_id, "b:2:bb")

    with database.session() as session, ThreadPoolExecutor(1) as pool:
        assert jobs.take(session, job_id, "a:1:aa")
        second = pool.submit(take_as_b)
        time.sleep(0.3)
        assert not second.done()  # B's conditional update waits for A's to commit
        session.commit()
        assert second.result(30) is False
    job = row(database, job_id)
    assert (job.state, job.owner) == ("running", "a:1:aa")
    assert job.heartbeat_at == job.started_at is not None
    assert jobs.claim(database, "b:2:bb") is None


def test_two_processes_run_every_job_once(
    processes: Callable[..., ExportJobs],
    database: Database,
    campaign_id: int,
    researcher_id: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs: list[str] = []
    real_run_export = jobs.run_export

    def counted(session, request, out_dir: Path, **kwargs):
        runs.append(out_dir.name)
        return real_run_export(session, request, out_dir, **kwargs)

    monkeypatch.setattr(jobs, "run_export", counted)
    a, b = processes(), processes()
    ids = [queue(database, campaign_id, researcher_id) for _ in range(4)]
    a.wake()
    b.wake()
    ended = [wait_for(database, job_id, lambda job: job.state in FINISHED) for job_id in ids]
    assert [job.state for job in ended] == ["done"] * 4
    assert sorted(runs) == sorted(f"job-{job_id}" for job_id in ids)
    assert {job.owner for job in ended} <= {a.owner, b.owner}


def test_a_starting_process_leaves_a_live_process_s_job_alone(
    processes: Callable[..., ExportJobs],
    database: Database,
    game_settings: Settings,
    campaign_id: int,
    researcher_id: int,
    paused_at_first_image: Pause,
) -> None:
    a, job_id = taken_and_paused(
        processes, database, campaign_id, researcher_id, paused_at_first_image
    )
    taken = row(database, job_id)
    assert (taken.state, taken.owner) == ("running", a.owner)

    processes()  # sweeps as it starts, then every 50 ms
    time.sleep(2 * FAST.stale_after_s)
    alive = row(database, job_id)
    assert (alive.state, alive.owner, alive.done) == ("running", a.owner, 0)
    # A beats while its export makes no progress.
    assert alive.heartbeat_at > taken.heartbeat_at
    assert job_folder(game_settings, job_id).exists()


def test_a_silent_process_s_job_is_failed_by_the_sweep(
    processes: Callable[..., ExportJobs],
    database: Database,
    game_settings: Settings,
    campaign_id: int,
    researcher_id: int,
    paused_at_first_image: Pause,
) -> None:
    a, job_id = taken_and_paused(
        processes, database, campaign_id, researcher_id, paused_at_first_image, SILENT
    )
    taken = row(database, job_id)
    assert job_folder(game_settings, job_id).exists()

    processes()
    failed = wait_for(database, job_id, lambda job: job.state != "running")
    assert (failed.state, failed.error) == ("failed", INTERRUPTED)
    assert failed.finished_at - taken.heartbeat_at >= timedelta(seconds=FAST.stale_after_s)
    assert not job_folder(game_settings, job_id).exists()
    a.close()  # its export, stopped, cannot put the failed job back in the queue
    assert row(database, job_id).state == "failed"


def test_the_keeper_sweeps_about_a_third_of_the_silence_apart_not_at_every_beat(
    processes: Callable[..., ExportJobs], monkeypatch: pytest.MonkeyPatch
) -> None:
    timing = Timing(poll_s=5.0, heartbeat_s=0.01, stale_after_s=0.3)
    assert (timing.beats_per_sweep, Timing().beats_per_sweep, SILENT.beats_per_sweep) == (10, 2, 1)
    sweeps: list[float] = []
    monkeypatch.setattr(ExportJobs, "sweep", lambda self: sweeps.append(time.monotonic()) or 0)

    processes(timing)
    time.sleep(0.6)
    # One as it started, then one about every 0.1 s: at every beat it would be about 60.
    assert 2 <= len(sweeps) <= 10, sweeps


def test_an_idle_process_asks_whether_there_is_work_without_opening_a_session(
    processes: Callable[..., ExportJobs],
    database: Database,
    campaign_id: int,
    researcher_id: int,
) -> None:
    """Its polls and sweeps (every 50 ms and 350 ms here) find nothing to do in one statement
    each (``JobTable.any_queued``, ``any_silent``): no session, which cost three times as much
    after a pause; a job queued meanwhile is still found and run."""
    worker = processes()
    sessions = []
    make_session = worker.database.sessionmaker

    def counted() -> Session:
        sessions.append(time.monotonic())
        return make_session()

    worker.database.sessionmaker = counted  # type: ignore[assignment]
    time.sleep(0.8)
    assert sessions == []
    job_id = queue(database, campaign_id, researcher_id)
    assert wait_for(database, job_id, lambda job: job.state in FINISHED).state == "done"
    assert sessions


def test_a_job_queued_by_a_process_that_is_gone_is_run_by_another(
    processes: Callable[..., ExportJobs],
    database: Database,
    campaign_id: int,
    researcher_id: int,
) -> None:
    b = processes()
    # A committed the job and stopped before its worker took it: nobody wakes B, it polls.
    job_id = queue(database, campaign_id, researcher_id)
    ran = wait_for(database, job_id, lambda job: job.state in FINISHED)
    assert (ran.state, ran.owner) == ("done", b.owner)


def test_a_cancel_through_another_process_stops_the_running_export(
    processes: Callable[..., ExportJobs],
    database: Database,
    game_settings: Settings,
    campaign_id: int,
    researcher_id: int,
    paused_at_first_image: Pause,
) -> None:
    a, job_id = taken_and_paused(
        processes, database, campaign_id, researcher_id, paused_at_first_image
    )
    b = processes()

    with b.database.session() as session:  # what B's cancel route does
        jobs.cancel_job(session, jobs.get_job(session, job_id))
    b.stop(job_id)
    # A's next beat finds its job cancelled and stops the export.
    assert paused_at_first_image.released.wait(10)
    assert gone(job_folder(game_settings, job_id))
    cancelled = row(database, job_id)
    assert (cancelled.state, cancelled.owner, cancelled.done) == ("cancelled", a.owner, 0)


@pytest.fixture
def done_job(client: TestClient, headers: dict[str, str], campaign_id: int) -> dict:
    job = finished(client, headers, start(client, headers, campaign_id)["id"])
    assert job["state"] == "done"
    return job


def test_the_files_route_serves_only_the_export_s_own_files(
    client: TestClient, headers: dict[str, str], done_job: dict, game_settings: Settings
) -> None:
    base = f"/api/admin/exports/{done_job['id']}/files"
    assert client.get(f"{base}/manifest.json", headers=headers).status_code == 200
    folder = job_folder(game_settings, done_job["id"])
    (folder / "extra.txt").write_text("not in the manifest")
    outside = game_settings.data_dir / "secret.txt"
    outside.write_text("the secret content")
    (folder / "rounds.csv").unlink()
    (folder / "rounds.csv").symlink_to(outside)
    for path in (
        "..%2F..%2Fsecret.txt",
        "%2E%2E/%2E%2E/secret.txt",
        f"%2F{str(outside).lstrip('/')}",
        "extra.txt",
        "rounds.csv",
        "%2E/maps.npz",
        "png",
    ):
        response = client.get(f"{base}/{path}", headers=headers)
        assert response.status_code == 404, path
        assert b"secret content" not in response.content
    assert client.get(f"{base}/maps.npz", headers=headers).status_code == 200


def test_a_done_export_expires_after_the_retention_days(
    client: TestClient,
    headers: dict[str, str],
    campaign_id: int,
    database: Database,
    game_settings: Settings,
) -> None:
    job_id = finished(client, headers, start(client, headers, campaign_id)["id"])["id"]
    folder = job_folder(game_settings, job_id)

    def finished_days_ago(days: float) -> None:
        with database.session() as session:
            session.get_one(ExportJob, job_id).finished_at = utcnow() - timedelta(days=days)

    sweep = client.app.state.export_jobs.sweep
    finished_days_ago(game_settings.export_retention_days - 1)
    sweep()
    assert row(database, job_id).state == "done" and (folder / "maps.npz").is_file()

    finished_days_ago(game_settings.export_retention_days + 1)
    sweep()
    job = client.get(f"/api/admin/exports/{job_id}", headers=headers).json()
    assert job["state"] == "expired"
    assert f"deleted after {game_settings.export_retention_days:g} days" in job["error"]
    assert not folder.exists()
    for path in ("download", "files/maps.npz"):
        response = client.get(f"/api/admin/exports/{job_id}/{path}", headers=headers)
        assert response.status_code == 410
        assert response.json()["error"]["code"] == "export_expired"


def test_a_retention_of_zero_keeps_exports_forever(
    database: Database, game_settings: Settings, campaign_id: int, researcher_id: int
) -> None:
    job_id = queue(database, campaign_id, researcher_id)
    with database.session() as session:
        jobs.move(session, job_id, ("queued",), state="done",
                  finished_at=utcnow() - timedelta(days=3650))  # fmt: skip
    forever = game_settings.model_copy(update={"export_retention_days": 0})
    with database.session() as session:
        assert jobs.expire_old(session, forever) == 0
        assert jobs.expire_old(session, game_settings) == 1
