"""Simulated players for quality tests: rounds played through the API with chosen strokes."""

from collections.abc import Callable

import numpy as np
from fastapi.testclient import TestClient

from clickme.core.config import Settings
from clickme.images.transform import eval_geometry
from clickme.players.identity import PLAYER_COOKIE, sign_player_token

MAX_POINTS = 500


def new_player(client: TestClient) -> int:
    """A fresh player on the client (its cookie replaces any earlier one)."""
    client.cookies.clear()
    response = client.post("/api/players", json={"consent": True})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def act_as(client: TestClient, settings: Settings, player_id: int) -> None:
    """The client holds this player's cookie from now on."""
    client.cookies.clear()
    client.cookies.set(PLAYER_COOKIE, sign_player_token(settings.resolved_secret_key(), player_id))


def start(client: TestClient) -> dict:
    response = client.post("/api/rounds", json={"viewport_width": 1280, "viewport_height": 800})
    assert response.status_code == 201, response.text
    return response.json()


def crop_box(round_: dict, left: float, top: float, size: float) -> tuple[float, ...]:
    """A square inside the part of the image the DNN sees, in fractions of that part."""
    image = round_["image"]
    x0, y0, x1, _y1 = eval_geometry(image["width"], image["height"]).native_box()
    side = x1 - x0
    return x0 + left * side, y0 + top * side, x0 + (left + size) * side, y0 + (top + size) * side


def grid(box: tuple[float, ...], step: float) -> list[tuple[float, float]]:
    """Points on a grid over the box, at most MAX_POINTS (the step grows to fit)."""
    x0, y0, x1, y1 = box
    while True:
        xs = np.arange(x0 + step / 2, x1, step)
        ys = np.arange(y0 + step / 2, y1, step)
        if len(xs) * len(ys) <= MAX_POINTS:
            return [(float(x), float(y)) for y in ys for x in xs]
        step *= 1.1


def human_times(n: int, seed: int) -> list[int]:
    """Irregular, human-like times: 8-40 ms between points."""
    gaps = np.random.default_rng(seed).integers(8, 40, size=n)
    return np.cumsum(gaps).tolist()


def play(client: TestClient, stroke: Callable[[dict], list[list[float]]]) -> dict:
    """Start a round, send the stroke's points ([x, y, t]) in one batch, then skip (so the
    round is finished whether or not the DNN got it)."""
    round_ = start(client)
    response = client.post(
        f"/api/rounds/{round_['round_id']}/points",
        json={"seq": 1, "points": stroke(round_), "pointer_type": "mouse"},
    )
    assert response.status_code == 200, response.text
    assert client.post(f"/api/rounds/{round_['round_id']}/skip").status_code == 200
    return round_


def box_stroke(left: float, top: float, size: float) -> Callable[[dict], list[list[float]]]:
    """Paint a square part of what the DNN sees, densely, at a human pace."""

    def stroke(round_: dict) -> list[list[float]]:
        points = grid(crop_box(round_, left, top, size), 0.7 * round_["brush"]["radius_px"])
        times = human_times(len(points), seed=round_["round_id"])
        return [[x, y, t] for (x, y), t in zip(points, times, strict=True)]

    return stroke


def line_stroke(n: int, gap_px: float, gap_ms: int) -> Callable[[dict], list[list[float]]]:
    """A bot: n points on a diagonal, exactly gap_px apart and gap_ms apart."""

    def stroke(round_: dict) -> list[list[float]]:
        x0, y0, x1, _y1 = crop_box(round_, 0.0, 0.0, 1.0)
        step = min(gap_px, (x1 - x0) / n / 1.5)
        return [[x0 + i * step, y0 + i * step, 10 + i * gap_ms] for i in range(n)]

    return stroke
