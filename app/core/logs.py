"""One logging configuration: JSON lines in production, readable lines in development, a request id on each.

The standard library's logging, not structlog: uvicorn, SQLAlchemy and alembic already log through it,
so one `dictConfig` governs every line the process prints, and no second logging system has to be
bridged. Every handler runs `redact` over the finished line as a last guard: whatever slips into a
message or a traceback (an exception quoting its input), emails and phone numbers leave masked.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
from datetime import UTC, datetime
from typing import Any

from app.core.context import current_request_id

_EMAIL = re.compile(r"([A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]*@([A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+)")
# International numbers (+358 40 123 4567) and Finnish national ones (040 123 4567, 0401234567).
_PHONE = re.compile(r"(?<![\w.:/-])(\+|00|0)(\d[\d \-]{5,16}\d)(?![\w:-]|\.\d)")


def redact(text: str) -> str:
    """Mask emails (`m***@example.fi`) and phone numbers (`+358******67`) in a finished log line."""
    text = _EMAIL.sub(r"\1***@\2", text)
    return _PHONE.sub(lambda m: m.group(1) + "*" * (len(m.group(2)) - 2) + m.group(2)[-2:], text)


class RequestIdFilter(logging.Filter):
    """Stamp every record with the id of the request being served (`-` outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add `request_id`; never drop a record."""
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id() or "-"
        return True


_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id", "color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, request id, message, extra fields, traceback."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one redacted JSON line."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, ensure_ascii=False, default=str))


class TextFormatter(logging.Formatter):
    """`12:00:00.123 INFO  rekisteri.access [rid] message`, redacted."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-5s %(name)s [%(request_id)s] %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        """The record as a readable, redacted line (with the traceback, if any, below it)."""
        return redact(super().format(record))


def logging_config(*, fmt: str, level: str) -> dict[str, Any]:
    """The `dictConfig` of the process (also handed to uvicorn, so its workers log the same way)."""
    formatter = JsonFormatter if fmt == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"default": {"()": formatter}},
        "handlers": {"default": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                 "formatter": "default", "filters": ["request_id"]}},
        "loggers": {
            "rekisteri": {"level": level, "handlers": ["default"], "propagate": False},
            "uvicorn": {"level": "INFO", "handlers": ["default"], "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            # The service writes its own access log (route templates, never query strings).
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
            # Statements only at WARNING: at INFO SQLAlchemy would print them (parameters are hidden anyway).
            "sqlalchemy": {"level": "WARNING"},
            "alembic": {"level": "INFO"},
        },
        "root": {"level": "WARNING", "handlers": ["default"]},
    }


def configure_logging(*, fmt: str, level: str = "INFO") -> dict[str, Any]:
    """Install the configuration in this process and return it."""
    config = logging_config(fmt=fmt, level=level)
    logging.config.dictConfig(config)
    return config

