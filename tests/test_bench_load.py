"""The load benchmark's generator, briefly, against one real API process on PostgreSQL + Redis."""

from pathlib import Path

import pytest

from benchmarks.bench_load import (
    CONFIGS,
    TRANSPORTS,
    arguments,
    deployment,
    measure_step,
    spiral_point,
    started,
)
from tests.conftest import POSTGRES_ADMIN_URL, REDIS_TEST_URL


def test_spiral_starts_at_the_centre_and_moves_out_at_hand_speed() -> None:
    assert spiral_point(0, 400, 300, 18.0, 0.0) == (200.0, 150.0)
    radii = [
        abs(complex(*spiral_point(t, 400, 300, 18.0, 1.0)) - complex(200, 150))
        for t in (500, 1000, 2000)
    ]
    assert radii == sorted(radii)
    # The path is about HAND_SPEED short sides long after 1 s: its radius, far less.
    assert 0 < radii[1] < 0.8 * 300


@pytest.mark.parametrize("option", ["--write-seconds", "--duration"])
@pytest.mark.parametrize("seconds", ["0", "-1", "nan"])
def test_no_duration_of_zero_is_taken(
    option: str, seconds: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused at once: it would end the run in a division by zero after minutes of load."""
    with pytest.raises(SystemExit):
        arguments([option, seconds])
    assert "above 0" in capsys.readouterr().err
    parsed = arguments([option, "0.5"])
    assert (parsed.duration, parsed.write_seconds) == (
        (0.5, 8.0) if option == "--duration" else (20.0, 0.5)
    )


def test_two_players_for_three_seconds_lose_no_point_over_either_transport(
    tmp_path: Path, models_cache_dir: Path, redis_prefix: str
) -> None:
    with (
        deployment(
            tmp_path,
            admin_url=POSTGRES_ADMIN_URL,
            redis_url=REDIS_TEST_URL,
            redis_prefix=redis_prefix,
            models_dir=models_cache_dir / "models",
            images_dir=None,
        ) as deploy,
        started(deploy, CONFIGS["inproc"], worker_threads=0) as running,
    ):
        results = [
            measure_step(deploy, running, CONFIGS["inproc"], 2, 3.0, seed=1, transport=transport)
            for transport in TRANSPORTS
        ]
    for result in results:  # the batches over HTTP, then over the strokes' socket
        tally = result.tally
        assert result.reveals > 0, result.transport
        assert tally.acked_points == result.stored_points > 0
        assert tally.unconfirmed_points == 0
        assert tally.other_5xx == tally.transport_errors == 0
        assert result.cpu_s["api"] > 0 and result.cpu_s["postgres"] > 0
        assert result.images >= result.reveals
