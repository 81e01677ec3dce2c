"""The log lines: a request's own line, written without ``logging``'s machinery, is the line
``logging`` writes; anything else on the way (another handler, a filter) gets it as before."""

import io
import logging
import time
from collections.abc import Iterator

import pytest

from clickme.core.logs import REQUEST_ID, TEXT_FORMAT, TextFormatter, configure_logging, log_request

REQUEST_LINE = "%(method)s %(route)s %(status)s %(duration_ms).2f ms"
FIELDS = {"method": "POST", "route": "/api/rounds/{round_id}/points", "status": 200,
          "duration_ms": 13.52}  # fmt: skip


@pytest.fixture
def requests_log(log_lines: io.StringIO) -> Iterator[logging.Logger]:
    logger = logging.getLogger("clickme.requests")
    token = REQUEST_ID.set("req-9")
    yield logger
    REQUEST_ID.reset(token)
    logger.filters.clear()


@pytest.fixture
def records(monkeypatch: pytest.MonkeyPatch) -> list[logging.LogRecord]:
    """Every record ``logging`` makes."""
    made: list[logging.LogRecord] = []
    make = logging.Logger.makeRecord

    def counted(self: logging.Logger, *args: object, **kwargs: object) -> logging.LogRecord:
        record = make(self, *args, **kwargs)  # type: ignore[arg-type]
        made.append(record)
        return record

    monkeypatch.setattr(logging.Logger, "makeRecord", counted)
    return made


@pytest.mark.parametrize("log_format", ["text", "json"])
@pytest.mark.parametrize("now", [1_765_000_000.0, 1_765_000_000.9996, 1_765_000_001.0004])
def test_a_request_line_is_the_line_logging_writes(
    log_format: str,
    now: float,
    requests_log: logging.Logger,
    log_lines: io.StringIO,
    records: list[logging.LogRecord],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(time, "time", lambda: now)
    configure_logging(log_format, log_lines)  # type: ignore[arg-type]
    log_request(requests_log, REQUEST_LINE, FIELDS)
    assert records == []  # written straight to the stream
    requests_log.addFilter(logging.Filter())  # something on the way: through logging
    log_request(requests_log, REQUEST_LINE, FIELDS)
    assert len(records) == 1
    direct, through_logging = log_lines.getvalue().splitlines()
    assert direct == through_logging
    assert "[req-9] POST /api/rounds/{round_id}/points 200 13.52 ms" in direct or (
        '"request_id":"req-9"' in direct and '"duration_ms":13.52' in direct
    )


def test_another_handler_gets_the_request_line_as_before(
    requests_log: logging.Logger,
    log_lines: io.StringIO,
    records: list[logging.LogRecord],
) -> None:
    configure_logging("text", log_lines)
    other = io.StringIO()
    handler = logging.StreamHandler(other)
    logging.getLogger("clickme").addHandler(handler)
    try:
        log_request(requests_log, REQUEST_LINE, FIELDS)
    finally:
        logging.getLogger("clickme").removeHandler(handler)
    assert len(records) == 1 and records[0].status == 200  # type: ignore[attr-defined]
    assert other.getvalue() == "POST /api/rounds/{round_id}/points 200 13.52 ms\n"
    assert "[req-9] POST /api/rounds/{round_id}/points 200 13.52 ms" in log_lines.getvalue()


def test_nothing_is_written_below_the_loggers_level(
    requests_log: logging.Logger, log_lines: io.StringIO
) -> None:
    configure_logging("text", log_lines)
    logging.getLogger().setLevel(logging.WARNING)
    log_request(requests_log, REQUEST_LINE, FIELDS)
    assert log_lines.getvalue() == ""


def test_the_text_time_is_loggings_across_seconds() -> None:
    ours, standard = TextFormatter(), logging.Formatter(TEXT_FORMAT)
    for created in (1_765_000_000.0, 1_765_000_000.4999, 1_765_000_000.9999, 1_765_000_001.0,
                    1_765_000_001.0011, 1_765_000_000.5, 1_765_086_399.999):  # fmt: skip
        record = logging.makeLogRecord({"created": created})
        record.msecs = int((created - int(created)) * 1000) + 0.0  # as LogRecord sets it
        assert ours.formatTime(record) == standard.formatTime(record)
