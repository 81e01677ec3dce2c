"""A researcher exports a campaign from the console in a real Chromium and downloads the zip."""

import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, BrowserContext, expect

from clickme.campaigns.schemas import CampaignCreate
from clickme.campaigns.service import change_state, create_campaign
from clickme.core.db import Database
from clickme.images.models import Image, ImageSet
from clickme.maps.aggregate import MapSettings
from clickme.scoring.tables import DnnModel
from tests.browser.test_console import PASSWORD, sign_in
from tests.exports.fill import add_players, add_rounds
from tests.live_server import TEST_IMAGE_SET, LiveServer

pytestmark = pytest.mark.browser

EMAIL = "export-researcher@example.org"
SLUG = "export-check"


@pytest.fixture(scope="module")
def campaign_id(live_server: LiveServer) -> int:
    """A researcher, and a campaign whose photo three players painted; the campaign's id."""
    live_server.cli(
        "admin", "create-user", EMAIL, "--role", "researcher", "--password-stdin", stdin=PASSWORD
    )
    database = Database(f"sqlite:///{live_server.data_dir / 'clickme.db'}")
    try:
        with database.session() as session:
            image_set = session.scalar(sa.select(ImageSet).where(ImageSet.name == TEST_IMAGE_SET))
            body = CampaignCreate(
                name="Export check", slug=SLUG, image_set_id=image_set.id,
                model_id=session.scalar(sa.select(DnnModel.id)),
            )  # fmt: skip
            campaign = create_campaign(session, body)
            change_state(session, campaign, "active")  # version 1: the rules its rounds follow
            change_state(session, campaign, "completed")  # nobody else plays it
            images = list(
                session.scalars(sa.select(Image).where(Image.image_set_id == image_set.id))
            )
            add_rounds(session, campaign, images, add_players(session, 3))
            return campaign.id
    finally:
        database.dispose()


@pytest.fixture
def console(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    yield context
    context.close()


def test_a_researcher_exports_a_campaign_and_downloads_it(
    console: BrowserContext, live_server: LiveServer, campaign_id: int, shots_dir: Path
) -> None:
    page = console.new_page()
    sign_in(page, live_server, EMAIL)
    page.goto(f"{live_server.base_url}/admin#campaigns/{campaign_id}")
    page.get_by_test_id("campaign-export").click()
    form = page.get_by_test_id("export-form")
    expect(form.get_by_label("Campaign", exact=True)).to_have_value(str(campaign_id))
    preview = page.get_by_test_id("export-preview")
    expect(preview).to_contain_text("1 image matches the filters, with 3 finished rounds (3 valid)")
    expect(form).to_contain_text(f"(empty: the map default: {MapSettings().min_rounds})")
    form.get_by_label("Min. valid rounds per image").fill("4")
    expect(preview).to_contain_text("1 image has fewer than 4 valid rounds")
    expect(page.get_by_test_id("export-preview-problem")).to_contain_text("no image has a map")
    form.get_by_label("Min. valid rounds per image").fill("3")
    expect(preview).to_contain_text("1 image matches the filters, with 3 finished rounds (3 valid)")
    expect(preview).to_contain_text("1 image qualifies for a map, with 3 valid rounds")
    expect(page.get_by_test_id("export-preview-problem")).to_have_count(0)
    expect(preview).not_to_contain_text("null")
    form.get_by_label("Classes").fill("7")
    expect(page.get_by_test_id("export-preview-problem")).to_contain_text("0 of class 7")
    form.get_by_label("Classes").fill("")
    form.get_by_role("checkbox", name="CSV").check()
    form.get_by_label("Split-half splits").fill("2")
    expect(preview).to_contain_text("1 image qualifies for a map")
    page.screenshot(path=shots_dir / "console-export-preview.png", full_page=True)
    page.get_by_test_id("export-start").click()

    row = page.get_by_test_id("exports-table").locator("tbody tr").first
    expect(row).to_contain_text("Export check")
    job_id = row.get_attribute("data-export")
    state = page.get_by_test_id(f"export-state-{job_id}")
    expect(state).to_have_text(re.compile("done|failed|cancelled"), timeout=60_000)
    assert state.inner_text() == "done", row.inner_text()  # a failed export shows its error
    expect(page.get_by_test_id(f"export-progress-{job_id}")).to_have_attribute("aria-valuenow", "1")
    expect(row).to_contain_text("1 image (1 with a map) · 3 valid rounds · 3 players")
    page.screenshot(path=shots_dir / "console-exports.png", full_page=True)

    with page.expect_download() as download:
        page.get_by_test_id(f"export-download-{job_id}").click()
    assert download.value.suggested_filename == f"{SLUG}-export-{job_id}.zip"
    with zipfile.ZipFile(download.value.path()) as archive:
        manifest = json.loads(archive.read(f"{SLUG}-export-{job_id}/manifest.json"))
        assert sorted(manifest["files"]) == ["images.csv", "maps.npz", "points.csv", "rounds.csv"]
        assert len(archive.namelist()) == 5
