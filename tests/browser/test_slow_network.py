"""A phone's network (4 Mbit/s down, 150 ms round trip) and a 12-megapixel photo: the photo
shown comes quickly (its display version), and the round's clock starts when it is on screen,
so a player on a slow link gets the whole time limit. The same round unthrottled stays green."""

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import sqlalchemy as sa
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from clickme.game.models import Round
from tests.browser.test_play_round import (
    DESKTOP,
    PlayedRound,
    accept_consent_and_start,
    assert_sent_over_the_socket,
    line,
    round_is_over,
    watch_strokes,
)
from tests.live_server import LiveServer, running_server

pytestmark = pytest.mark.browser

CAT_SET = "cats"
CAT_FILE = "n02123045_chelsea.JPEG"  # tabby
PHOTO_SIZE = (4000, 3000)
# Chromium's network emulation: a phone on a slow mobile link.
SLOW_LINK = {
    "offline": False,
    "latency": 150,
    "downloadThroughput": 4_000_000 / 8,
    "uploadThroughput": 1_000_000 / 8,
}
ARRIVAL_LIMIT_S = 0.8
# The winning strokes start this long after the photo shows: on the server's old clock (started
# when the round was made) a photo arriving 3 s late left too little time for them.
WIN_FROM_S = 4.0
SWEEP_POINTS_PER_ROW = 15


def twelve_megapixel_cat(target: Path) -> int:
    """scikit-image's chelsea cropped to 4:3 and upscaled to 4000 x 3000 (about 1.5 MB as JPEG:
    the DNN still sees a tabby); its size in bytes."""
    cat = Image.fromarray(skimage.data.chelsea())
    left = (cat.width - cat.height * 4 // 3) // 2
    crop = cat.crop((left, 0, left + cat.height * 4 // 3, cat.height))
    crop.resize(PHOTO_SIZE, Image.Resampling.BICUBIC).save(target, quality=96)
    return target.stat().st_size


@pytest.fixture(scope="module")
def cat_server(
    models_cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """`clickme serve` whose default campaign plays the 12-megapixel cat, prepared beforehand."""
    root = tmp_path_factory.mktemp("slow-network")
    photos = root / "photos"
    photos.mkdir()
    size = twelve_megapixel_cat(photos / CAT_FILE)
    assert 1_300_000 < size < 1_700_000, size
    import_args = ["import", str(photos), "--set", CAT_SET]
    with running_server(root, models_cache_dir, import_args, CAT_SET) as server:
        server.cli("images", "prepare", "--campaign", "default")
        yield server


def photo_arrival_s(page: Page) -> float:
    """From the round's start (its creation answered) to the shown photo's last byte, as the
    browser's resource timing measured them."""
    entries = page.evaluate(
        """() => {
          const all = performance.getEntriesByType("resource");
          const round = all.filter((e) => e.name.endsWith("/api/rounds")).pop();
          const photo = all.filter((e) => e.initiatorType === "img").pop();
          return { round: round.responseEnd, photo: photo.responseEnd, url: photo.name };
        }"""
    )
    assert "/display/" in entries["url"], entries
    return (entries["photo"] - entries["round"]) / 1000


def stored_round(engine: sa.Engine, round_id: int) -> sa.Row:
    columns = (Round.outcome, Round.solved_ms, Round.last_seq, Round.started_at, Round.shown_at)
    with engine.connect() as connection:
        return connection.execute(sa.select(*columns).where(Round.id == round_id)).one()


def stored_receipts(engine: sa.Engine, round_id: int) -> list[int]:
    """Each stored batch's time on the round's clock (ms), in order."""
    with engine.connect() as connection:
        return list(
            connection.execute(
                sa.text("SELECT received_ms FROM point_batches WHERE round_id = :id ORDER BY seq"),
                {"id": round_id},
            ).scalars()
        )


def paint_the_edge_until(page: Page, played: PlayedRound, shown_at: float, until_s: float) -> None:
    """Presses and strokes up and down the photo's left edge (outside the DNN's centre crop: it
    cannot win from it) until ``until_s`` after the photo showed; the button stays down."""
    down = line(played.to_client(0.03, 0.1), played.to_client(0.03, 0.9), 8)
    path = itertools.cycle(down + down[::-1])
    page.mouse.move(*next(path))
    page.mouse.down()
    while time.monotonic() - shown_at < until_s:
        assert not round_is_over(page), "the round ended while painting the edge"
        page.mouse.move(*next(path))


def sweep_the_centre(page: Page, played: PlayedRound) -> None:
    """Continues the stroke left and right over the middle of the photo (the cat) at once: the
    moves are dispatched in the page, so a busy machine cannot slow them down; then releases."""
    points = []
    for index, fy in enumerate([0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]):
        xs = np.linspace(0.2, 0.8, SWEEP_POINTS_PER_ROW)
        points += [played.to_client(fx, fy) for fx in (xs if index % 2 == 0 else xs[::-1])]
    page.evaluate(
        """(points) => {
          const canvas = document.getElementById("game-canvas");
          for (const [x, y] of points) {
            const move = { clientX: x, clientY: y, buttons: 1, bubbles: true };
            canvas.dispatchEvent(new PointerEvent("pointermove", {
              ...move, pointerId: 1, pointerType: "mouse", isPrimary: true,
            }));
          }
        }""",
        points,
    )
    page.mouse.up()


@pytest.mark.parametrize("throttled", [True, False], ids=["4mbit-150ms", "unthrottled"])
def test_a_slow_link_gets_the_photo_fast_and_the_whole_time_limit(
    browser: Browser, cat_server: LiveServer, throttled: bool
) -> None:
    context = browser.new_context(**DESKTOP)
    page = context.new_page()
    strokes = watch_strokes(page)
    if throttled:
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", SLOW_LINK)
    played = accept_consent_and_start(page, cat_server)
    shown_at = time.monotonic()
    arrival = photo_arrival_s(page)
    print(f"\nphoto arrived {arrival:.3f} s after the round's start (throttled: {throttled})")
    assert arrival < ARRIVAL_LIMIT_S
    assert (played.width, played.height) == PHOTO_SIZE

    paint_the_edge_until(page, played, shown_at, WIN_FROM_S)
    sweep_the_centre(page, played)
    result = page.get_by_test_id("round-result")
    expect(result).to_be_visible(timeout=played.time_limit_ms + 10_000)

    row = stored_round(cat_server.engine, played.round_id)
    assert row.shown_at is not None
    display_ms = (row.shown_at - row.started_at).total_seconds() * 1000
    receipts = stored_receipts(cat_server.engine, played.round_id)
    print(f"time to display {display_ms:.0f} ms; won at {row.solved_ms} ms; batches {receipts}")
    answers = [a for a in strokes.answers if a["round_id"] == played.round_id]
    assert [a["status"] for a in answers] == [200] * len(answers), "a batch was refused"
    assert row.last_seq == len(receipts) == len(answers)
    assert_sent_over_the_socket(strokes, cat_server.engine, played.round_id)
    assert row.outcome == "correct", row
    assert WIN_FROM_S * 1000 <= row.solved_ms <= played.time_limit_ms
    assert page.locator("#result-title").inner_text().startswith("Correct!")
    context.close()
