"""Where a profiled API process spends its samples, by reveal stage (first match wins).

    py-spy record --nonblocking -r 100 -d 30 -f raw -o api.txt --pid <clickme serve's pid>
    .venv/bin/python benchmarks/profile_breakdown.py api.txt

Run beside ``bench_load.py`` or ``bench_reveal.py``; ``docs/performance.md`` has the results.
"""

import sys
from collections import Counter
from pathlib import Path

CATS = [
    (
        "model forward (micro-batcher / worker scorer)",
        ["micro-batcher", "classify_batch_sync", "OnnxScorer", "_logits"],
    ),
    (
        "player cookie check (SELECT token_epoch)",
        ["player_id_from_cookie", "player_of_token", "verify_player_token"],
    ),
    ("rate limit", ["enforce (clickme/players/ratelimit"]),
    (
        "DB write + commit (store_batch)",
        [
            "store_any_batch",
            "store_next_batch",
            "store_batch",
            "Session.commit",
            "Session.close",
            "Session.__exit__",
            "session (clickme/core/db",
        ],
    ),
    ("round facts (cache / DB)", ["round_facts", "load_facts"]),
    (
        "mask render + compose",
        [
            "render_mask",
            "compose (",
            "_reveal_mask",
            "revealed_fraction",
            "reveal_delta",
            "_min_squared",
        ],
    ),
    ("prepared image cache", ["PreparedImageCache"]),
    (
        "validation (pydantic request)",
        ["request_body_to_args", "_validate_points", "validate_python", "_validate_value"],
    ),
    (
        "scorer hand-off (submit/settle, redis send)",
        [
            "submit (clickme/scoring",
            "send (clickme/scoring",
            "settled_off_loop",
            "wait_for",
            "_read (clickme/scoring/answers",
            "_receive",
            "send_view",
            "_queue (clickme/scoring",
            "ScoreRequest",
            "call_soon_threadsafe",
            "settle",
        ],
    ),
    (
        "answer serialisation (response model, JSON)",
        [
            "serialize_response",
            "jsonable_encoder",
            "JSONResponse.render",
            "ORJSON",
            "_prepare_response_content",
            "dump_json",
            "RevealOut",
            "_guesses",
            "top_guesses",
        ],
    ),
    (
        "thread hops (anyio threadpool)",
        ["run_in_threadpool", "run_sync", "to_thread", "WorkerThread.run", "anyio"],
    ),
    (
        "middleware",
        [
            "RequestObserver",
            "SecurityHeaders",
            "HeadAsGet",
            "HttpsOnly",
            "BodySizeLimit",
            "_observe",
            "ExceptionMiddleware",
            "ServerErrorMiddleware",
            "send_with",
            "limited_receive",
            "tracking_send",
        ],
    ),
    (
        "routing + dependency injection",
        [
            "solve_dependencies",
            "Router.__call__",
            "APIRoute",
            "Route.matches",
            "get_request_handler",
            "request_response",
            "Mount",
        ],
    ),
    (
        "HTTP parsing + transport (uvicorn/httptools)",
        [
            "httptools_impl",
            "h11_impl",
            "uvloop",
            "on_headers",
            "on_body",
            "on_url",
            "data_received",
            "transport",
            "RequestResponseCycle",
        ],
    ),
    ("event loop", ["run_forever", "_run_once", "select", "Handle._run", "asyncio"]),
]


def breakdown(lines: list[str]) -> Counter[str]:
    """Samples per stage from py-spy's raw lines (``frame;frame;... count``)."""
    totals: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if "export-worker" in stack or "retirement" in stack:
            totals["background (exports, retirement)"] += int(count)
            continue
        stage = next((name for name, keys in CATS if any(k in stack for k in keys)), "other")
        totals[stage] += int(count)
    return totals


def main() -> None:
    totals = breakdown(Path(sys.argv[1]).read_text().splitlines())
    samples = sum(totals.values())
    for name, count in totals.most_common():
        print(f"{count:6d} {100 * count / samples:5.1f}%  {name}")


if __name__ == "__main__":
    main()
