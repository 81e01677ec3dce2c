"""The profile breakdown puts each sampled stack in its reveal stage."""

from benchmarks.profile_breakdown import breakdown


def test_stacks_go_to_their_stage_first_match_first() -> None:
    lines = [
        "thread (1): MainThread;run (uvicorn);post_points (clickme/game/routes.py:70) 3",
        "thread (2): AnyIO worker thread;WorkerThread.run (anyio);_store (clickme/game/reveal.py:1)"
        ";store_batch (clickme/game/service.py:430) 5",
        "thread (3): micro-batcher;_run (clickme/scoring/batcher.py:1) 7",
        "thread (4): export-worker;write 2",
    ]
    totals = breakdown(lines)
    assert totals["DB write + commit (store_batch)"] == 5
    assert totals["model forward (micro-batcher / worker scorer)"] == 7
    assert totals["background (exports, retirement)"] == 2
    assert totals["other"] == 3
