"""A Prolific participant in a real Chromium: the study's consent text, one round, the completion
code and the redirect back to the recruiter; coming back shows the code again; an MTurk preview
shows the how-to and a sample photo and creates nobody."""

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, BrowserContext, Page, expect

from clickme.campaigns import service
from clickme.campaigns.schemas import CampaignCreate
from clickme.core.db import Database
from clickme.images.models import ImageSet
from clickme.scoring.tables import DnnModel
from tests.live_server import TEST_IMAGE_SET, LiveServer

pytestmark = pytest.mark.browser

SLUG = "recruit-study"
CODE = "DONE-1"
CONSENT = "By playing you agree to <b>study 1</b>'s terms."
PROLIFIC_QUERY = f"campaign={SLUG}&PROLIFIC_PID=abc123&STUDY_ID=s1&SESSION_ID=x1"
DESKTOP = {"viewport": {"width": 1280, "height": 800}}


def add_campaign(live_server: LiveServer, states: list[str], **fields) -> None:
    """A campaign of the live server's test set and model, taken through ``states``."""
    database = Database(f"sqlite:///{live_server.data_dir / 'clickme.db'}")
    try:
        with database.session() as session:
            body = CampaignCreate(
                image_set_id=session.scalar(
                    sa.select(ImageSet.id).where(ImageSet.name == TEST_IMAGE_SET)
                ),
                model_id=session.scalar(sa.select(DnnModel.id)),
                **fields,
            )
            campaign = service.create_campaign(session, body)
            for state in states:
                service.change_state(session, campaign, state)
    finally:
        database.dispose()


@pytest.fixture(scope="module")
def study(live_server: LiveServer) -> str:
    """An active campaign of one image per player, whose completion URL is the live server's
    health check (so the redirect can be followed); the study's URL."""
    add_campaign(
        live_server,
        ["active"],
        name="Recruited study",
        slug=SLUG,
        max_images_per_player=1,
        consent_text=CONSENT,
        instructions_text="Paint the espresso.",
        completion_code=CODE,
        screened_out_code="SCREENED-1",
        completion_url=f"{live_server.base_url}/healthz?from=study",
    )
    return f"{live_server.base_url}/?{PROLIFIC_QUERY}"


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(**DESKTOP)
    yield context
    context.close()


def players(live_server: LiveServer) -> list[sa.Row]:
    with live_server.engine.connect() as connection:
        return connection.execute(
            sa.text("SELECT id, source, external_id, study_id, session_id FROM players")
        ).all()


def expect_completion(page: Page, live_server: LiveServer) -> None:
    """The completion screen with the code and the link back; then the redirect to it."""
    expect(page.get_by_test_id("complete-screen")).to_be_visible()
    expect(page.get_by_test_id("completion-message")).to_have_text(
        "Thank you \u2014 your completion code is"
    )
    expect(page.get_by_test_id("completion-code")).to_have_text(CODE)
    back = f"{live_server.base_url}/healthz?from=study&cc={CODE}"
    expect(page.get_by_test_id("completion-link")).to_have_attribute("href", back)
    page.wait_for_url(back, timeout=15_000)


def test_a_prolific_participant_plays_and_gets_the_completion_code(
    context: BrowserContext, browser: Browser, live_server: LiveServer, study: str
) -> None:
    page = context.new_page()
    page.goto(study)
    consent = page.get_by_test_id("campaign-consent")
    expect(consent).to_have_text(CONSENT)  # as text: the markup shows, nothing is bolded
    assert consent.locator("b").count() == 0
    expect(page.get_by_test_id("campaign-instructions")).to_have_text("Paint the espresso.")

    def is_round_start(response) -> bool:
        return response.request.method == "POST" and response.url.endswith("/api/rounds")

    with page.expect_response(is_round_start) as started:
        page.get_by_test_id("consent-accept").click()
    assert started.value.status == 201, started.value.text()
    expect(page.locator("#game-screen[data-state='playing']")).to_be_visible()
    box = page.get_by_test_id("game-canvas").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    for step in range(1, 41):
        fx = 0.3 + 0.4 * step / 40
        page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * 0.5)
    page.mouse.up()
    time_limit = started.value.json()["time_limit_ms"]
    expect(page.get_by_test_id("round-result")).to_be_visible(timeout=time_limit + 10_000)

    page.get_by_test_id("next-button").click()
    expect_completion(page, live_server)
    recruited = [row for row in players(live_server) if row.source == "prolific"]
    assert [(r.external_id, r.study_id, r.session_id) for r in recruited] == [
        ("abc123", "s1", "x1")
    ]

    # The same participant in another browser: recognised, done, the code again.
    again = browser.new_context(**DESKTOP)
    try:
        returning = again.new_page()
        returning.goto(study)
        returning.get_by_test_id("consent-accept").click()
        expect_completion(returning, live_server)
    finally:
        again.close()
    assert [r.id for r in players(live_server) if r.source == "prolific"] == [recruited[0].id]


def test_an_mturk_preview_shows_the_how_to_and_creates_nobody(
    context: BrowserContext, live_server: LiveServer, study: str
) -> None:
    before = len(players(live_server))
    page = context.new_page()
    page.goto(
        f"{live_server.base_url}/?campaign={SLUG}&assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=H1"
    )
    expect(page.get_by_test_id("preview-screen")).to_be_visible()
    expect(page.get_by_text("Accept the HIT to play.")).to_be_visible()
    expect(page.get_by_test_id("consent-accept")).to_be_hidden()
    sample = page.locator("#preview-image")
    expect(sample).to_be_visible()
    page.wait_for_function("document.getElementById('preview-image').naturalWidth > 0")
    assert len(players(live_server)) == before


@pytest.mark.parametrize(
    ("states", "title"),
    [
        ([], "This study has not started yet"),
        (["active", "paused"], "This study is paused"),
        (["active", "completed"], "This study is finished. Thank you!"),
    ],
)
def test_a_study_link_to_a_closed_campaign_says_which(
    context: BrowserContext, live_server: LiveServer, states: list[str], title: str
) -> None:
    """Not 'Can't reach the game': the page says the study has not started, is paused or ended."""
    slug = f"closed-{len(states)}-{states[-1] if states else 'draft'}"
    add_campaign(live_server, states, name="Closed study", slug=slug)
    page = context.new_page()
    page.goto(f"{live_server.base_url}/?campaign={slug}&PROLIFIC_PID=p{len(states)}")
    expect(page.get_by_test_id("closed-screen")).to_be_visible()
    expect(page.locator("#closed-title")).to_have_text(title)
    expect(page.locator("#error-screen")).to_be_hidden()
