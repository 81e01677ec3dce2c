"""Logging to stderr, one line an event: JSON (production) or text (demo), with the request id.

Lines carry no headers, cookies, query strings or bodies: only what ``REQUEST_FIELDS`` names.
A request's own line (``log_request``) skips ``logging``'s machinery while the handler that
``configure_logging`` made is the only one it would reach: the same line, written the same way.
"""

import logging
import sys
import time
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal, NamedTuple, TextIO

import orjson

# The id of the request being served ("-" outside one); thread-pool work inherits it.
REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")
# What a request's line adds (passed as ``extra=``).
REQUEST_FIELDS = ("method", "route", "status", "duration_ms")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class _WithRequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class Line(NamedTuple):
    """What a line says, without a ``LogRecord``."""

    created: float
    level: str
    logger: str
    request_id: str
    message: str
    fields: Mapping  # the ``REQUEST_FIELDS`` among them


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT`` as ``logging.Formatter`` writes it, the time's seconds formatted once a
    second; ``line`` makes a line without a record."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self._stamped: tuple[int, str] = (-1, "")  # a second and its text, set at once

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self._asctime(record.created)

    def line(self, line: Line) -> str:
        """What ``format`` writes for a record of the line (its fields: in the message)."""
        values = {"levelname": line.level, "name": line.logger, "request_id": line.request_id}
        return TEXT_FORMAT % {
            **values,
            "asctime": self._asctime(line.created),
            "message": line.message,
        }

    def _asctime(self, created: float) -> str:
        second, stamp = self._stamped
        if int(created) != second:
            second = int(created)
            stamp = time.strftime(self.default_time_format, self.converter(created))
            self._stamped = (second, stamp)
        return f"{stamp},{int((created - second) * 1000):03d}"  # logging's default_msec_format


class JsonFormatter(logging.Formatter):
    """time, level, logger, message, request_id, the request's fields, and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {name: getattr(record, name) for name in REQUEST_FIELDS if hasattr(record, name)}
        request_id = getattr(record, "request_id", REQUEST_ID.get())
        line = Line(
            record.created, record.levelname, record.name, request_id, record.getMessage(), fields
        )
        values = _json_values(line)
        if record.exc_info:
            values["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(values).decode()

    def line(self, line: Line) -> str:
        """What ``format`` writes for a record of the line (its fields as the record's extra)."""
        return orjson.dumps(_json_values(line)).decode()


def _json_values(line: Line) -> dict[str, object]:
    return {
        "time": datetime.fromtimestamp(line.created, UTC).isoformat(timespec="milliseconds"),
        "level": line.level,
        "logger": line.logger,
        "message": line.message,
        "request_id": line.request_id,
        **{name: line.fields[name] for name in REQUEST_FIELDS if name in line.fields},
    }


class _Configured(NamedTuple):
    """What ``configure_logging`` set up last."""

    handler: logging.StreamHandler
    formatter: TextFormatter | JsonFormatter
    with_id: logging.Filter


_configured: _Configured | None = None


def configure_logging(log_format: Literal["json", "text"], stream: TextIO | None = None) -> None:
    """Every logger (uvicorn's too) through one handler at INFO, in the given format."""
    global _configured
    handler = logging.StreamHandler(stream or sys.stderr)
    with_id = _WithRequestId()
    handler.addFilter(with_id)
    formatter = JsonFormatter() if log_format == "json" else TextFormatter()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    _configured = _Configured(handler, formatter, with_id)


def _alone(logger: logging.Logger) -> _Configured | None:
    """What ``configure_logging`` set up, when an INFO line of the logger would reach its
    handler and nothing else (no other handler, filter or formatter on the way); else None."""
    configured = _configured
    if configured is None or not logger.isEnabledFor(logging.INFO):
        return None
    handler = configured.handler
    if handler.formatter is not configured.formatter or handler.filters != [configured.with_id]:
        return None
    node: logging.Logger | None = logger
    while node is not None:
        if node.filters or node.handlers != ([handler] if node is logging.root else []):
            return None
        node = node.parent if node.propagate else None
    return configured if handler.level <= logging.INFO else None


def log_request(logger: logging.Logger, message_format: str, fields: Mapping) -> None:
    """A request's INFO line (``message_format % fields``, the fields as ``extra``): written
    straight to the stream of the handler ``configure_logging`` made, formatted as its formatter
    does, when that handler alone would write it (about 0.1 CPU ms of the event loop less per
    request after a pause: `docs/performance.md`); else through ``logging``."""
    configured = _alone(logger)
    if configured is None:
        logger.info(message_format, fields, extra=dict(fields))
        return
    message = message_format % fields
    line = configured.formatter.line(
        Line(time.time(), "INFO", logger.name, REQUEST_ID.get(), message, fields)
    )
    handler = configured.handler
    handler.acquire()
    try:
        handler.stream.write(line + handler.terminator)
        handler.flush()
    except Exception:  # as the handler's own emit: reported, never raised into the request
        handler.handleError(logging.makeLogRecord({"name": logger.name, "msg": message}))
    finally:
        handler.release()
