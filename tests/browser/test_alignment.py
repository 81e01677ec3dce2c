"""The models page's human-alignment card in a real Chromium: the table and the picture."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, BrowserContext, expect

from clickme.alignment.score import summarise
from clickme.alignment.service import alignment_result, save_result
from clickme.maps.aggregate import MapSettings
from clickme.scoring.registry import DEFAULT_MODEL
from tests.browser.test_play_round import DESKTOP
from tests.live_server import TEST_IMAGE, TEST_IMAGE_SET, LiveServer

pytestmark = pytest.mark.browser

EMAIL = "alignment-researcher@example.org"
PASSWORD = "a long enough passphrase"


@pytest.fixture(scope="module")
def scored(live_server: LiveServer) -> LiveServer:
    """A researcher; the default model's alignment with the default campaign (as `clickme
    align` stores it) and its top-1 on the test image set."""
    live_server.cli(
        "admin", "create-user", EMAIL, "--role", "researcher", "--password-stdin", stdin=PASSWORD
    )
    with live_server.engine.begin() as connection:
        campaign_id = connection.scalar(sa.text("SELECT id FROM campaigns WHERE slug = 'default'"))
        set_id = connection.scalar(
            sa.text("SELECT id FROM image_sets WHERE name = :name"), {"name": TEST_IMAGE_SET}
        )
        connection.execute(
            sa.text(
                "INSERT INTO model_evaluations (model_name, model_version, image_set_id, top1,"
                " top5, n_images, created_at) VALUES (:name, 'v1', :set_id, 0.75, 0.9, 4,"
                " CURRENT_TIMESTAMP)"
            ),
            {"name": DEFAULT_MODEL, "set_id": set_id},
        )
    score = summarise({1: 0.3, 2: 0.4, 3: 0.5}, 0.8, np.random.default_rng(0))
    result = alignment_result(campaign_id, "default", DEFAULT_MODEL, "v1", "gradient",
                              MapSettings(), score)  # fmt: skip
    save_result(live_server.data_dir, result)
    return live_server


@pytest.fixture
def console(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(**DESKTOP)
    yield context
    context.close()


def test_a_researcher_sees_the_alignment_table_and_plot(
    scored: LiveServer, console: BrowserContext, shots_dir: Path
) -> None:
    page = console.new_page()
    page.goto(f"{scored.base_url}/admin")
    page.get_by_test_id("login-email").fill(EMAIL)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("campaigns-table")).to_be_visible()
    page.goto(f"{scored.base_url}/admin#models")
    row = page.get_by_test_id("alignment-table").locator(f"tr[data-model='{DEFAULT_MODEL}']")
    expect(row).to_contain_text("75.0%")  # top-1
    expect(row).to_contain_text("0.400 [")  # mean Spearman and its interval
    expect(row).to_contain_text("50.0% [")  # of the 0.8 ceiling
    expect(page.locator("#alignment-set")).to_have_value(str(_set_id(scored)))
    point = page.get_by_test_id("alignment-plot").get_by_test_id(f"alignment-point-{DEFAULT_MODEL}")
    expect(point).to_be_visible()
    expect(page.get_by_test_id("alignment-chart")).to_contain_text("human ceiling 0.80")
    page.get_by_test_id("alignment").screenshot(path=shots_dir / "console-alignment.png")

    # "Try it" offers the photos of a set by name: no image id to look up.
    try_form = page.locator("#try-form")
    try_form.get_by_label("From the image set").select_option(str(_set_id(scored)))
    photo = try_form.get_by_label("Photo")
    expect(photo.locator("option")).to_have_text([f"espresso \u00b7 {TEST_IMAGE}"])
    page.get_by_test_id("try-submit").click()
    expect(page.get_by_test_id("try-guesses").locator("li")).to_have_count(5)

    # An alignment started here runs in the background and says how it ended: the default
    # campaign's one photo has too few rounds for a human map.
    run = page.get_by_test_id("alignment-run-form")
    run.get_by_label("Model to align").select_option(DEFAULT_MODEL)
    run.get_by_label("Split-half splits").fill("2")
    run.get_by_test_id("alignment-start").click()
    job = page.get_by_test_id("alignment-jobs").locator("tbody tr").first
    expect(job).to_contain_text(DEFAULT_MODEL)
    expect(job.locator(".badge")).to_have_text("failed", timeout=30_000)
    expect(job).to_contain_text("has no image with a human map yet")
    page.get_by_test_id("alignment").screenshot(path=shots_dir / "console-alignment-jobs.png")


def _set_id(server: LiveServer) -> int:
    with server.engine.connect() as connection:
        return connection.scalar(
            sa.text("SELECT id FROM image_sets WHERE name = :name"), {"name": TEST_IMAGE_SET}
        )
