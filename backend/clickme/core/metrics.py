"""Prometheus metrics of this process (served at /metrics; rates come from Prometheus).

Every metric object lives here, so that the API, the in-process micro-batcher and the remote
scoring worker report under the same names. One process, one registry: under several processes
(API replicas, workers) Prometheus scrapes each one; prometheus_client's multi-process mode is
not used.
"""

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

REQUEST_SECONDS = Histogram(
    "clickme_http_request_duration_seconds",
    "HTTP request latency, by route template (not the raw path), method and status.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
INFERENCE_BATCH_SIZE = Histogram(
    "clickme_inference_batch_size",
    "Images in one forward pass of the DNN.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
INFERENCE_QUEUE_WAIT_SECONDS = Histogram(
    "clickme_inference_queue_wait_seconds",
    "Time an image waited for its forward pass.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
INFERENCE_QUEUE_DEPTH = Gauge(
    "clickme_inference_queue_depth", "Images waiting for a forward pass in this process."
)
ROUNDS_FINISHED = Counter(
    "clickme_rounds_finished_total", "Rounds ended (committed), by outcome.", ["outcome"]
)
POINTS_STORED = Counter("clickme_points_stored_total", "Painted points stored.")


def record_batch(queue_waits_s: Iterable[float]) -> None:
    """One forward pass: its size and how long each of its images waited for it."""
    waits = list(queue_waits_s)
    INFERENCE_BATCH_SIZE.observe(len(waits))
    for wait in waits:
        INFERENCE_QUEUE_WAIT_SECONDS.observe(wait)
