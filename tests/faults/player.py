"""A player over HTTP for the fault tests: paints batches with sequence numbers, repeats a batch
the server did not acknowledge (same seq, same points), and remembers what was acknowledged."""

import time
from dataclasses import dataclass, field

import httpx
import sqlalchemy as sa

from clickme.campaigns.schemas import CampaignUpdate
from clickme.campaigns.service import DEFAULT_CAMPAIGN_SLUG, get_campaign_by_slug, update_campaign
from clickme.core.db import Database
from clickme.game.models import PointBatch
from clickme.game.points import pack_points
from tests.players.painting import crop_box, grid, human_times

POINTS_PER_BATCH = 8
RETRY_EVERY_S = 0.25
# Long enough that no round times out while a fault is repaired (a server restarts, say).
LONG_TIME_LIMIT_MS = 120_000


@dataclass(frozen=True)
class Batch:
    round_id: int
    seq: int
    points: list[list[float]]

    def body(self) -> dict:
        return {"seq": self.seq, "points": self.points, "pointer_type": "mouse"}


@dataclass
class Player:
    """One player; ``acknowledged`` maps (round, seq) to the points the server acknowledged."""

    http: httpx.Client
    acknowledged: dict[tuple[int, int], list[list[float]]] = field(default_factory=dict)
    duplicates: int = 0
    _stroke: list[list[float]] = field(default_factory=list)
    _round_id: int = 0
    _seq: int = 0

    @classmethod
    def join(cls, base_url: str) -> "Player":
        player = cls(httpx.Client(base_url=base_url, timeout=60))
        response = player.http.post("/api/players", json={"consent": True})
        assert response.status_code == 201, response.text
        return player

    def next_batch(self) -> Batch:
        """The next batch of the running round (a new round when there is none)."""
        if not self._stroke:
            self._start_round()
        points, self._stroke = self._stroke[:POINTS_PER_BATCH], self._stroke[POINTS_PER_BATCH:]
        self._seq += 1
        return Batch(self._round_id, self._seq, points)

    def send(self, batch: Batch) -> httpx.Response | None:
        """One attempt; the response, or None when the connection failed (no answer at all)."""
        try:
            response = self.http.post(f"/api/rounds/{batch.round_id}/points", json=batch.body())
        except httpx.TransportError:
            return None
        if response.status_code == 200:
            self._acknowledge(batch, response.json())
        return response

    def send_until_acknowledged(self, batch: Batch, timeout_s: float = 120.0) -> dict:
        """Repeat the batch until acknowledged; every refusal on the way must be a clear 503."""
        deadline = time.monotonic() + timeout_s
        while True:
            response = self.send(batch)
            if response is not None and response.status_code == 200:
                return response.json()
            if response is not None:
                assert_unavailable(response)
            assert time.monotonic() < deadline, f"batch {batch.seq} never acknowledged"
            time.sleep(RETRY_EVERY_S)

    def play(self, batches: int) -> None:
        for _ in range(batches):
            self.send_until_acknowledged(self.next_batch())

    def _start_round(self) -> None:
        response = self.http.post("/api/rounds", json={"viewport_width": 1280})
        assert response.status_code == 201, response.text
        round_ = response.json()
        xy = grid(crop_box(round_, 0.05, 0.05, 0.9), round_["brush"]["radius_px"])
        times = human_times(len(xy), seed=round_["round_id"])
        self._stroke = [[x, y, t] for (x, y), t in zip(xy, times, strict=True)]
        self._round_id, self._seq = round_["round_id"], 0

    def _acknowledge(self, batch: Batch, reveal: dict) -> None:
        assert reveal["seq"] == batch.seq
        self.duplicates += reveal["duplicate"]
        self.acknowledged[batch.round_id, batch.seq] = batch.points
        if reveal["state"] != "playing":  # the DNN got it: the next batch starts a new round
            self._stroke = []


def assert_unavailable(response: httpx.Response, code: str = "database_unavailable") -> None:
    """What the player's page gets while a backend is down: a 503 it can show and retry."""
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == code
    assert response.headers["Retry-After"] == "5"


def lengthen_rounds(database_url: str) -> None:
    """The default campaign's rounds last LONG_TIME_LIMIT_MS (a new campaign version)."""
    database = Database(database_url)
    try:
        with database.session() as session:
            campaign = get_campaign_by_slug(session, DEFAULT_CAMPAIGN_SLUG)
            update_campaign(session, campaign, CampaignUpdate(time_limit_ms=LONG_TIME_LIMIT_MS))
    finally:
        database.dispose()


def stored_batches(database_url: str) -> list[tuple[int, int, bytes]]:
    """Every stored batch: round, seq and packed points."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            query = sa.select(PointBatch.round_id, PointBatch.seq, PointBatch.data)
            return [tuple(row) for row in connection.execute(query)]
    finally:
        engine.dispose()


def assert_stored_exactly_once(database_url: str, player: Player) -> None:
    """Every acknowledged batch is stored once, with its points; nothing else is stored."""
    rows = stored_batches(database_url)
    keys = [(round_id, seq) for round_id, seq, _ in rows]
    assert len(keys) == len(set(keys)), "a batch was stored twice"
    stored = {(round_id, seq): data for round_id, seq, data in rows}
    acknowledged = player.acknowledged.items()
    expected = {key: pack_points([tuple(p) for p in points]) for key, points in acknowledged}
    assert stored == expected
