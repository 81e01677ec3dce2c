"""Logging to stderr, one line an event: JSON (production) or text (demo), with the request id.

Lines carry no headers, cookies, query strings or bodies: only what ``REQUEST_FIELDS`` names.
"""

import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal, TextIO

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


class JsonFormatter(logging.Formatter):
    """time, level, logger, message, request_id, the request's fields, and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", REQUEST_ID.get()),
        }
        line.update(
            {name: getattr(record, name) for name in REQUEST_FIELDS if hasattr(record, name)}
        )
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def configure_logging(log_format: Literal["json", "text"], stream: TextIO | None = None) -> None:
    """Every logger (uvicorn's too) through one handler at INFO, in the given format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_WithRequestId())
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
