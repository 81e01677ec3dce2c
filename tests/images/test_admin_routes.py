"""The image-set admin API: listing sets and images, zip uploads and server-folder imports."""

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from clickme.app import create_app
from clickme.core.config import Settings
from clickme.core.db import Database
from clickme.scoring.scorer import Scorer
from tests.accounts.staff import add_staff_user, staff_headers
from tests.images.zips import entry_name, hostile_entries, sample_entries, zip_of

URL = "/api/admin/image-sets"
ADMIN = "admin@example.org"

MakeClient = Callable[..., TestClient]


@pytest.fixture
def photos(demo_photos: list[Path]) -> list[Path]:
    """A tabby, a missile and a moped."""
    return demo_photos[:3]


@pytest.fixture
def make_client(
    game_settings: Settings, shared_scorer: Scorer, database: Database
) -> Iterator[MakeClient]:
    """An admin's client on an app whose settings are changed by the keyword arguments."""
    add_staff_user(database, ADMIN, "admin")
    clients: list[TestClient] = []

    def make(**changes: object) -> TestClient:
        settings = game_settings.model_copy(update=changes)
        client = TestClient(create_app(settings, scorer=shared_scorer)).__enter__()
        client.headers.update(staff_headers(database, ADMIN))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def admin(make_client: MakeClient) -> TestClient:
    return make_client()


def upload(client: TestClient, content: bytes, set_name: str = "uploaded", **data: str):
    files = {"file": ("photos.zip", content, "application/zip")}
    return client.post(f"{URL}/upload", files=files, data={"set": set_name, **data})


def error_code(response) -> str:
    return response.json()["error"]["code"]


def test_a_zip_of_sample_photos_is_imported_and_listed(
    admin: TestClient, photos: list[Path], game_settings: Settings
) -> None:
    content = zip_of(sample_entries(photos))
    assert len(content) > game_settings.max_body_bytes  # the upload route has its own limit

    response = upload(admin, content)

    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["image_set"], report["imported"], report["duplicates"]) == ("uploaded", 3, 0)
    assert report["problems"] == []
    sets = {image_set["name"]: image_set for image_set in admin.get(URL).json()}
    assert sets["uploaded"]["image_count"] == 3 and sets["demo"]["image_count"] == 5
    assert sets["uploaded"]["id"] == report["image_set_id"]

    page = admin.get(f"{URL}/{report['image_set_id']}/images", params={"per_page": 2}).json()
    assert (page["total"], page["page"], len(page["images"])) == (3, 1, 2)
    first = page["images"][0]
    assert first["label"] == {"class_index": 281, "synset": "n02123045", "name": "tabby"}
    assert first["original_name"] == "n02123045_tabby.JPEG"
    assert first["width"] > 0 and first["height"] > 0
    thumbnail = admin.get(first["thumbnail_url"])
    assert thumbnail.status_code == 200 and thumbnail.content == photos[0].read_bytes()
    last = admin.get(f"{URL}/{report['image_set_id']}/images", params={"page": 2, "per_page": 2})
    assert [image["label"]["name"] for image in last.json()["images"]] == ["moped"]
    assert last.json()["images"][0]["original_name"] == "n03785016/moped.JPEG"

    again = upload(admin, content).json()
    assert (again["imported"], again["duplicates"]) == (0, 3)


def test_hostile_entries_are_reported_and_the_good_photo_imported(
    admin: TestClient, photos: list[Path], game_settings: Settings
) -> None:
    entries = hostile_entries(photos[0])
    readme = ("readme.txt", b"photos of my cat\n")
    response = upload(
        admin, zip_of([(photos[1].name, photos[1].read_bytes()), readme, *entries.values()])
    )

    assert response.status_code == 200, response.text
    report = response.json()
    assert report["imported"] == 1
    assert report["skipped"] == ["readme.txt"]  # not a photo: skipped, not a problem
    problems = {problem["path"]: problem["message"] for problem in report["problems"]}
    assert set(problems) == {entry_name(entry) for entry in entries.values()}
    assert problems[entry_name(entries["slip_parent"])].startswith("refused: the path leaves")
    assert problems[entry_name(entries["symlink"])] == "refused: a symbolic link"
    assert "zip bomb" in problems[entry_name(entries["zip_bomb"])]
    assert "truncated" in problems[entry_name(entries["truncated"])]
    assert "not an image" in problems[entry_name(entries["text"])]
    assert "no ImageNet synset" in problems[entry_name(entries["no_synset"])]
    assert "decompression bomb" in problems[entry_name(entries["pixel_bomb"])]
    assert "over 255 bytes" in problems[entry_name(entries["long_name"])]
    assert problems[entry_name(entries["sliver"])].startswith("too small: 60000 x 1 px")
    assert problems[entry_name(entries["narrow"])] == "too elongated: 300 x 37 px, at most 8:1"
    assert problems[entry_name(entries["tiny"])].startswith("too small: 31 x 40 px")
    data_dir = game_settings.data_dir
    assert not list(data_dir.parent.rglob("*escaped*")) and not list(Path("/tmp").glob("n0*"))
    assert list(game_settings.uploads_dir.iterdir()) == []  # the unpacked copy is gone


def test_whole_archive_refusals(make_client: MakeClient, photos: list[Path]) -> None:
    client = make_client(
        max_upload_bytes=150_000, upload_max_entries=3, upload_max_unpacked_bytes=60_000
    )
    too_many = zip_of([(f"n01440764_{i}.JPEG", b"x") for i in range(4)])
    too_large = zip_of([(photos[0].name, photos[0].read_bytes()), ("a.txt", bytes(30_000))])
    oversized = zip_of(sample_entries(photos))
    assert len(oversized) > 150_000

    cases = [
        (too_many, 422, "too_many_entries"),
        (too_large, 422, "zip_too_large"),
        (b"not a zip at all", 422, "bad_zip"),
        (oversized, 413, "body_too_large"),
    ]
    for content, status, code in cases:
        response = upload(client, content)
        assert (response.status_code, error_code(response)) == (status, code), response.text
    assert [s["name"] for s in client.get(URL).json()] == ["demo"]  # no set made


def test_a_zip_with_nothing_to_unpack_makes_no_set(admin: TestClient, photos: list[Path]) -> None:
    entries = hostile_entries(photos[0])
    response = upload(admin, zip_of([entries["slip_parent"], entries["symlink"]]))
    assert response.status_code == 200
    assert response.json()["image_set_id"] is None and len(response.json()["problems"]) == 2
    assert [s["name"] for s in admin.get(URL).json()] == ["demo"]


def test_bad_form_fields(admin: TestClient) -> None:
    content = zip_of([])
    files = {"file": ("photos.zip", content, "application/zip")}
    for response in (
        admin.post(f"{URL}/upload", files=files),
        upload(admin, content, set_name="   "),
        upload(admin, content, set_name="x" * 201),
        upload(admin, content, set_name="<script>"),
        admin.post(f"{URL}/upload", data={"set": "no file"}),
        admin.post(f"{URL}/upload", json={"set": "json"}),
        admin.post(f"{URL}/upload", files={"set": ("a.txt", b"a file", "text/plain")}),
    ):
        assert response.status_code == 422, response.text
        assert error_code(response) == "invalid_request"
    two_files = {"file": ("a.zip", content), "other": ("b.zip", content)}
    response = admin.post(f"{URL}/upload", files=two_files, data={"set": "two"})
    assert response.status_code == 400


def test_unknown_set_and_bad_paging(admin: TestClient) -> None:
    assert error_code(admin.get(f"{URL}/999999/images")) == "image_set_not_found"
    assert admin.get(f"{URL}/1/images", params={"per_page": 201}).status_code == 422
    assert admin.get(f"{URL}/1/images", params={"page": 0}).status_code == 422


def test_import_a_server_folder_only_under_the_root(
    make_client: MakeClient, photos: list[Path], tmp_path: Path
) -> None:
    root = tmp_path / "server-photos"
    (root / "batch-1").mkdir(parents=True)
    for photo in photos[:2]:
        shutil.copyfile(photo, root / "batch-1" / photo.name)
    (tmp_path / "elsewhere").mkdir()

    refused = make_client().post(f"{URL}/import-folder", json={"path": "batch-1", "set": "b1"})
    assert (refused.status_code, error_code(refused)) == (403, "import_root_not_set")

    client = make_client(import_root=root)
    response = client.post(f"{URL}/import-folder", json={"path": "batch-1", "set": "b1"})
    assert response.status_code == 200, response.text
    assert (response.json()["imported"], response.json()["image_set"]) == (2, "b1")
    for path, status, code in [
        ("../elsewhere", 403, "outside_import_root"),
        (str(tmp_path / "elsewhere"), 403, "outside_import_root"),
        ("batch-2", 404, "folder_not_found"),
    ]:
        response = client.post(f"{URL}/import-folder", json={"path": path, "set": "x"})
        assert (response.status_code, error_code(response)) == (status, code), path
    assert client.post(f"{URL}/import-folder", json={"path": "", "set": "x"}).status_code == 422


def test_no_bad_upload_input_is_a_server_error(
    make_client: MakeClient, photos: list[Path], tmp_path: Path
) -> None:
    client = make_client(max_upload_bytes=500_000, import_root=tmp_path)
    entries = hostile_entries(photos[0])
    bodies = [zip_of([entry]) for entry in entries.values()]
    bodies += [b"", b"PK\x05\x06" + bytes(18), b"PK\x03\x04" + bytes(100), bytes(600_000)]
    responses = [upload(client, body) for body in bodies]
    responses += [
        client.post(
            f"{URL}/upload",
            content=b"--x\r\nbroken",
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        ),
        client.post(
            f"{URL}/upload", content=b"\xff" * 100, headers={"Content-Type": "multipart/form-data"}
        ),
        client.post(
            f"{URL}/upload",
            content=b"a=b",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        client.post(f"{URL}/import-folder", json={"path": "\x00", "set": "x"}),
        client.post(f"{URL}/import-folder", json={"path": "/" * 5000, "set": "x"}),
        client.post(f"{URL}/import-folder", json={"path": ".", "set": "\n"}),
        client.post(f"{URL}/import-folder", content=b"{not json"),
        client.get(f"{URL}/abc/images"),
    ]
    statuses = [response.status_code for response in responses]
    assert all(status < 500 for status in statuses), statuses
    assert all("error" in response.json() for response in responses if response.status_code >= 400)


def test_an_admin_marks_catch_trials_and_campaigns_see_them(admin: TestClient) -> None:
    demo = next(s for s in admin.get(URL).json() if s["name"] == "demo")
    image = admin.get(f"{URL}/{demo['id']}/images").json()["images"][0]
    marked = admin.patch(f"{URL}/{demo['id']}/images/{image['id']}", json={"is_catch": True})
    assert marked.status_code == 200 and marked.json()["is_catch"] is True
    listed = admin.get(f"{URL}/{demo['id']}/images").json()["images"]
    assert {i["id"]: i["is_catch"] for i in listed}[image["id"]] is True
    wrong_set = admin.patch(f"{URL}/999/images/{image['id']}", json={"is_catch": True})
    assert wrong_set.status_code == 404 and error_code(wrong_set) == "image_not_found"
    bad = admin.patch(f"{URL}/{demo['id']}/images/{image['id']}", json={"is_catch": "maybe"})
    assert bad.status_code == 422
