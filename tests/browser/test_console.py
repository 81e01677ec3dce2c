"""The staff console in a real Chromium against the real server: from sign-in to a counted round."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, BrowserContext, Page, Response, expect

from tests.browser.test_play_round import DESKTOP, line, paint_with_mouse
from tests.images.zips import sample_entries, zip_of
from tests.live_server import LiveServer

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "console-admin@example.org"
RESEARCHER_EMAIL = "console-researcher@example.org"
PASSWORD = "a long enough passphrase"
SLUG = "console-check"
TIME_LIMIT_MS = 2500


@pytest.fixture(scope="module")
def staff(live_server: LiveServer) -> LiveServer:
    """The live server with an admin and a researcher, created by `clickme admin create-user`."""
    for email, role in ((ADMIN_EMAIL, "admin"), (RESEARCHER_EMAIL, "researcher")):
        live_server.cli(
            "admin", "create-user", email, "--role", role, "--password-stdin", stdin=PASSWORD
        )
    return live_server


@pytest.fixture
def console(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(**DESKTOP)
    yield context
    context.close()


@pytest.fixture
def player(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(**DESKTOP)
    yield context
    context.close()


def sign_in(page: Page, server: LiveServer, email: str) -> None:
    page.goto(f"{server.base_url}/admin")
    page.get_by_test_id("login-email").fill(email)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("campaigns-table")).to_be_visible()
    expect(page.get_by_test_id("staff-email")).to_have_text(email)


def _is_round_start(response: Response) -> bool:
    return response.request.method == "POST" and response.url.endswith("/api/rounds")


def play_one_round(page: Page, server: LiveServer, slug: str) -> dict:
    """Opens the campaign's players' link, consents, paints a stroke and waits for the result."""
    page.goto(f"{server.base_url}/?campaign={slug}")
    with page.expect_response(_is_round_start) as started:
        page.get_by_test_id("consent-accept").click()
    assert started.value.status == 201, started.value.text()
    body = started.value.json()
    expect(page.locator("#game-screen[data-state='playing']")).to_be_visible()  # photo shown
    box = page.get_by_test_id("game-canvas").bounding_box()
    assert box is not None
    left, top, width, height = box["x"], box["y"], box["width"], box["height"]
    stroke = line(
        (round(left + 0.2 * width), round(top + 0.5 * height)),
        (round(left + 0.8 * width), round(top + 0.5 * height)),
        6,
    )
    paint_with_mouse(page, stroke)
    expect(page.get_by_test_id("round-result")).to_be_visible(timeout=TIME_LIMIT_MS + 15_000)
    return body


def raise_flag(server: LiveServer, player_id: int, kind: str, reason: str) -> None:
    """An open flag on the player, as `clickme players flag` would leave it."""
    with server.engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO player_flags (player_id, kind, reason, created_at, resolved)"
                " VALUES (:player_id, :kind, :reason, CURRENT_TIMESTAMP, 0)"
            ),
            {"player_id": player_id, "kind": kind, "reason": reason},
        )


def fill_campaign_form(page: Page, name: str, slug: str) -> None:
    form = page.get_by_test_id("campaign-form")
    form.get_by_label("Name").fill(name)
    form.get_by_label("Slug").fill(slug)
    form.get_by_label("Time limit").fill(str(TIME_LIMIT_MS))
    form.get_by_label("Plays wanted per image").fill("1")
    form.get_by_label("Consent text").fill("You agree to paint for science.")
    image_set = form.get_by_label("Image set")
    expect(image_set).to_have_value("")  # chosen on purpose, never the demo set by default
    image_set.select_option(index=1)


def test_admin_creates_starts_and_sees_a_round_counted(
    console: BrowserContext, player: BrowserContext, staff: LiveServer, shots_dir: Path
) -> None:
    page = console.new_page()
    sign_in(page, staff, ADMIN_EMAIL)
    default_row = page.get_by_test_id("campaigns-table").locator("tr[data-slug='default']")
    expect(default_row).to_be_visible()
    page.screenshot(path=shots_dir / "console-campaigns.png", full_page=True)

    page.get_by_test_id("campaign-new").click()
    fill_campaign_form(page, "Console check", "Not A Slug")
    page.get_by_test_id("campaign-form").get_by_label("Top-k").fill("99")
    page.get_by_test_id("campaign-save").click()
    expect(page.get_by_test_id("field-error-slug")).to_contain_text("lowercase letters")
    expect(page.get_by_test_id("field-error-top_k")).to_be_visible()
    page.screenshot(path=shots_dir / "console-form-errors.png", full_page=True)

    page.get_by_test_id("campaign-form").get_by_label("Slug").fill(SLUG)
    page.get_by_test_id("campaign-form").get_by_label("Top-k").fill("5")
    page.get_by_test_id("campaign-save").click()
    state = page.get_by_test_id(f"campaign-state-{SLUG}")
    expect(state).to_contain_text("draft")
    expect(page.get_by_test_id("campaign-form")).to_be_hidden()

    state.get_by_role("button", name="Start").click()
    expect(state).to_contain_text("active")
    expect(state.get_by_role("button", name="Pause")).to_be_visible()
    expect(page.get_by_test_id(f"campaign-rounds-{SLUG}")).to_have_text("0")

    player_page = player.new_page()
    round_started = play_one_round(player_page, staff, SLUG)
    assert round_started["campaign"] == SLUG
    assert round_started["time_limit_ms"] == TIME_LIMIT_MS
    player_id = player_page.request.get(f"{staff.base_url}/api/players/me").json()["id"]

    page.reload()
    expect(page.get_by_test_id(f"campaign-rounds-{SLUG}")).to_have_text("1")
    row = page.get_by_test_id("campaigns-table").locator(f"tr[data-slug='{SLUG}']")
    expect(row.locator("td.retired")).to_contain_text("1 / 1")
    page.screenshot(path=shots_dir / "console-counted.png", full_page=True)

    row.get_by_role("link", name="Console check").click()
    detail = page.get_by_test_id("campaign-detail")
    expect(detail.get_by_test_id("campaign-chart")).to_contain_text("1 of 1")
    expect(detail.get_by_test_id("campaign-versions")).to_contain_text("first version")
    links = detail.get_by_test_id("study-links")
    expect(links.get_by_test_id("link-players")).to_have_value(f"{staff.base_url}/?campaign={SLUG}")
    expect(links.get_by_test_id("link-prolific")).to_have_value(
        f"{staff.base_url}/?campaign={SLUG}&PROLIFIC_PID={{{{%PROLIFIC_PID%}}}}"
        "&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"
    )
    settings = detail.locator("dl.settings")
    expect(settings).not_to_contain_text("Image set id")
    expect(settings.locator("dt:has-text('DNN model') + dd")).to_contain_text("efficientnet-lite0")
    expect(detail).to_contain_text("You agree to paint for science.")
    page.screenshot(path=shots_dir / "console-detail.png", full_page=True)
    pictures = detail.get_by_test_id("campaign-pictures")
    expect(pictures.get_by_test_id("plays-chart")).to_contain_text("1 in all")
    expect(pictures.get_by_test_id("revealed-chart")).to_contain_text("n=1")
    expect(pictures.get_by_test_id("map-card").locator("img")).to_have_js_property(
        "naturalWidth", 224
    )
    pictures.screenshot(path=shots_dir / "console-maps.png")
    reliability = detail.get_by_test_id("campaign-reliability")
    expect(reliability).to_contain_text("No image has 5 valid rounds (a map) yet.", timeout=20_000)

    detail.get_by_test_id("campaign-edit").click()
    form = detail.get_by_test_id("campaign-form")
    expect(form.get_by_label("Slug")).to_have_value(SLUG)
    form.get_by_label("Time limit").fill("3000")
    form.get_by_label("A player who has seen every image").select_option("true")
    page.get_by_test_id("campaign-save").click()
    versions = detail.get_by_test_id("campaign-versions")
    expect(versions).to_contain_text("time_limit_ms: 2500 → 3000")
    expect(versions).to_contain_text("repeat_when_exhausted: false → true")
    expect(versions).to_contain_text(ADMIN_EMAIL)  # who made it, by email
    expect(detail).to_contain_text("version 2")
    page.screenshot(path=shots_dir / "console-edited.png", full_page=True)

    raise_flag(staff, player_id, "paints_everything", "paints 93% of the image on average")
    page.get_by_role("link", name="Players").click()
    page.get_by_label("Flagged only").check()
    players = page.get_by_test_id("players-table")
    played_row = players.locator(f"tr[data-player='{player_id}']")
    expect(played_row).to_contain_text("paints 93% of the image on average")
    expect(played_row).to_contain_text("included")
    page.screenshot(path=shots_dir / "console-flagged.png", full_page=True)
    played_row.get_by_role("button", name="Resolve").click()
    expect(played_row).to_have_count(0)  # no open flag left
    page.get_by_label("Flagged only").uncheck()
    expect(played_row.locator(".flag.resolved")).to_contain_text("paints_everything")
    played_row.get_by_test_id(f"player-exclude-{player_id}").click()
    page.get_by_test_id("ask-confirm").click()
    expect(page.get_by_test_id("ask-dialog")).to_contain_text("Please give a reason")
    page.get_by_test_id("ask-reason").fill("painted for the test")
    page.get_by_test_id("ask-confirm").click()
    expect(played_row).to_contain_text("excluded")
    expect(played_row).to_contain_text("painted for the test")
    page.screenshot(path=shots_dir / "console-players.png", full_page=True)


def test_researcher_sees_campaigns_without_write_buttons(
    console: BrowserContext, staff: LiveServer, shots_dir: Path
) -> None:
    page = console.new_page()
    sign_in(page, staff, RESEARCHER_EMAIL)
    expect(page.get_by_test_id("staff-role")).to_have_text("researcher")
    state = page.get_by_test_id("campaign-state-default")
    expect(state).to_contain_text("active")
    expect(state.get_by_role("button")).to_have_count(0)
    expect(page.get_by_test_id("campaign-new")).to_be_hidden()
    page.get_by_role("link", name="Players").click()
    expect(page.get_by_test_id("players-table").locator("tbody tr").first).to_be_visible()
    expect(page.get_by_test_id("players-table").get_by_role("button")).to_have_count(0)
    page.screenshot(path=shots_dir / "console-researcher.png", full_page=True)

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_test_id("login-submit")).to_be_visible()
    page.reload()
    expect(page.get_by_test_id("login-submit")).to_be_visible()  # the session is gone


def test_admin_uploads_a_zip_and_sees_its_images(
    console: BrowserContext,
    staff: LiveServer,
    demo_photos: list[Path],
    tmp_path: Path,
    shots_dir: Path,
) -> None:
    photos = demo_photos[:2]  # a tabby and a missile
    archive = tmp_path / "mine.zip"
    archive.write_bytes(zip_of([*sample_entries(photos), ("notes.txt", b"two photos")]))
    page = console.new_page()
    sign_in(page, staff, ADMIN_EMAIL)
    page.get_by_role("link", name="Images").click()

    form = page.get_by_test_id("upload-form")
    form.get_by_label("Image set").fill("mine")
    form.get_by_label("Zip of photos").set_input_files(archive)
    page.get_by_test_id("upload-submit").click()
    report = page.get_by_test_id("import-report")
    expect(report).to_contain_text(
        "2 imported, 0 already in the set, 0 problems, 1 skipped (not photos: notes.txt)"
    )
    mine_row = page.get_by_test_id("image-sets-table").locator("tr[data-set='mine']")
    expect(mine_row.locator("td.num")).to_have_text("2")

    report.get_by_role("link", name="See the images").click()
    grid = page.get_by_test_id("image-grid")
    expect(grid.locator("figure")).to_have_count(2)
    expect(grid).to_contain_text("tabby")
    expect(grid).to_contain_text("missile")
    for image in grid.locator("img").all():
        image.scroll_into_view_if_needed()
        expect(image).to_have_js_property("complete", True)
        assert image.evaluate("img => img.naturalWidth") > 0
    page.screenshot(path=shots_dir / "console-images.png", full_page=True)

    first = grid.locator("figure").first
    with page.expect_response(lambda response: response.request.method == "PATCH") as marking:
        first.get_by_role("checkbox", name="catch trial").check()
    assert marking.value.ok
    expect(page.get_by_test_id("image-grid").locator("input:checked")).to_have_count(1)
    with staff.engine.connect() as connection:
        marked = connection.execute(sa.text("SELECT count(*) FROM images WHERE is_catch")).scalar()
    assert marked == 1


def test_wrong_password_is_refused_on_the_form(console: BrowserContext, staff: LiveServer) -> None:
    page = console.new_page()
    page.goto(f"{staff.base_url}/admin")
    page.get_by_test_id("login-email").fill(ADMIN_EMAIL)
    page.get_by_test_id("login-password").fill("not the password at all")
    page.get_by_test_id("login-submit").click()
    expect(page.locator("#login-error")).to_have_text("Wrong email or password.")
    expect(page.get_by_test_id("campaigns-table")).to_be_hidden()


# The share of the photo's own brightness the replay shows, where it painted and far from it.
REPLAY_LEVELS = """async (roundId) => {
  const replay = await (await fetch(`/api/admin/rounds/${roundId}/points`)).json();
  const canvas = document.querySelector("[data-testid=replay-canvas]");
  const photo = new Image();
  photo.src = replay.image.url;
  await photo.decode();
  const raw = document.createElement("canvas");
  raw.width = canvas.width;
  raw.height = canvas.height;
  const plain = raw.getContext("2d");
  plain.drawImage(photo, 0, 0, raw.width, raw.height);
  const shown = canvas.getContext("2d");
  const sum = (data) => data.reduce((total, value, i) => total + (i % 4 === 3 ? 0 : value), 0);
  const level = (x, y) => {
    const [left, top] = [Math.round(x) - 2, Math.round(y) - 2];
    return sum(shown.getImageData(left, top, 5, 5).data) /
      Math.max(1, sum(plain.getImageData(left, top, 5, 5).data));
  };
  const scale = canvas.width / replay.image.width;
  const [x, y] = replay.points[Math.floor(replay.points.length / 2)];
  return { painted: level(x * scale, y * scale), corner: level(4, 4) };
}"""


def test_staff_open_a_players_page_resolve_a_flag_and_replay_a_round(
    console: BrowserContext, player: BrowserContext, staff: LiveServer, shots_dir: Path
) -> None:
    round_id = play_one_round(player.new_page(), staff, "default")["round_id"]
    with staff.engine.connect() as connection:
        player_id, n_points, campaign = connection.execute(
            sa.text(
                "SELECT r.player_id, r.n_points, c.name FROM rounds r"
                " JOIN campaigns c ON c.id = r.campaign_id WHERE r.id = :id"
            ),
            {"id": round_id},
        ).one()
    raise_flag(staff, player_id, "too_fast", "paints faster than a hand can")
    page = console.new_page()
    sign_in(page, staff, ADMIN_EMAIL)
    page.get_by_role("link", name="Players").click()
    page.get_by_test_id("players-campaign").select_option(label=campaign)
    expect(page.locator("#players-summary")).to_contain_text(f"in {campaign}")
    row = page.get_by_test_id("players-table").locator(f"tr[data-player='{player_id}']")
    row.get_by_role("link").click()

    detail = page.get_by_test_id("player-detail")
    expect(detail.get_by_test_id("player-measures")).to_contain_text("Rounds")
    flags = detail.get_by_test_id("player-flags")
    expect(flags).to_contain_text("paints faster than a hand can")
    flags.get_by_role("button", name="Resolve").click()
    expect(page.get_by_test_id("player-flags").locator(".flag.resolved")).to_contain_text(
        "too_fast"
    )
    played = page.get_by_test_id("player-rounds").locator(f"tr[data-round='{round_id}']")
    expect(played).to_contain_text(campaign)
    played.get_by_role("button", name="Replay").click()
    canvas = page.get_by_test_id("replay-canvas")
    expect(canvas).to_have_attribute("data-state", "done", timeout=15_000)
    expect(canvas).to_have_attribute("data-drawn", str(n_points))
    levels = page.evaluate(REPLAY_LEVELS, round_id)
    assert levels["painted"] > 0.8 and levels["corner"] < 0.5, levels
    expect(page.get_by_test_id("replay-toggle")).to_have_text("Play")
    page.screenshot(path=shots_dir / "console-player.png", full_page=True)
    paused = page.evaluate(PAUSED_REPLAY, round_id)
    assert paused["state"] == "paused" and 0 < paused["drawn"] < 50, paused
    assert paused["later"] == paused["drawn"], "the replay went on while paused"
    assert paused["resumed"] == 50, paused


# The player's round replayed by the console's RoundReplay with 50 points 100 ms apart: paused
# after 0.5 s, looked at again 0.5 s later, then played to the end.
PAUSED_REPLAY = """async (roundId) => {
  const { RoundReplay } = await import("/static/admin/replay.js");
  const replay = await (await fetch(`/api/admin/rounds/${roundId}/points`)).json();
  replay.points = Array.from({ length: 50 }, (_, i) => [10 + i, 10 + i, 100 * (i + 1)]);
  const player = new RoundReplay(document.createElement("canvas"), () => {});
  await player.load(replay);
  const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  player.play();
  await wait(500);
  player.pause();
  const { state, drawn } = player;
  await wait(500);
  const later = player.drawn;
  player.play();
  for (let i = 0; i < 200 && player.state !== "done"; i += 1) await wait(50); // 10 s at most
  return { state, drawn, later, resumed: player.drawn };
}"""
