"""``bench_device.py``, small, on the CPU: every measure made, the views drawn with torch equal to
numpy's within one grey level, and the worker's step answering each request it is given."""

import argparse
from pathlib import Path

import numpy as np
import pytest

from benchmarks import bench_device
from clickme.scoring.registry import DEFAULT_MODEL, get_model_spec
from clickme.scoring.remote import ViewAnswer, decode_answer
from clickme.scoring.reveal import PreparedImageCache, ViewComposer
from clickme.scoring.scorer import TorchScorer

SMALL = ["--device", "cpu", "--batch", "3", "--repeats", "1", "--train-batch", "1"]


def test_every_measure_is_made_and_printed(capsys: pytest.CaptureFixture[str]) -> None:
    bench_device.main([*SMALL, "--train-repeats", "1"])
    out = capsys.readouterr().out
    assert "Device: CPU" in out
    for row in (
        "| bare forward, batch 1 |",
        "| bare forward, batch 3 |",
        "| 3 views drawn on the device (60 points each) |",
        "| the same views drawn with numpy on the CPU",
        "| the worker's batch of 3 view requests",
        "| a harmonizer step, batch 1, float32 |",
    ):
        assert row in out
    assert "bfloat16" not in out  # autocast is CUDA's: no such row on the CPU


def test_the_views_on_a_device_match_numpys() -> None:
    args = argparse.Namespace(
        device="cpu", batch=4, points=60, repeats=1, train_batch=1, train_repeats=1
    )
    figures = bench_device.measure(args)
    assert figures.most_apart <= 1
    assert figures.bare.items == figures.worker.items == 4
    assert set(figures.harmonizer_ms) == {"float32"}
    assert all(step_ms > 0 for step_ms in figures.harmonizer_ms.values())


def test_the_workers_step_answers_every_request_with_its_share(tmp_path: Path) -> None:
    composer = ViewComposer(tmp_path, PreparedImageCache(8))
    views = bench_device.views(bench_device.demo_folder(tmp_path), composer, 6, 20)
    scorer = TorchScorer(get_model_spec(DEFAULT_MODEL), "cpu", 6, max_wait_ms=0)
    worker = bench_device.worker_step("cpu", scorer, composer)  # its Redis is never asked
    requests = bench_device.requests_for(views)
    answers = [decode_answer(raw) for raw in worker.score(requests)]
    assert [request_id for request_id, _ in answers] == [r.request_id for r in requests]
    for (_, answer), view in zip(answers, views, strict=True):
        assert isinstance(answer, ViewAnswer)
        assert answer.probs.shape == (1000,) and np.isclose(answer.probs.sum(), 1, atol=1e-4)
        assert answer.revealed == pytest.approx(composer.draw(view)[1], abs=1e-6)
