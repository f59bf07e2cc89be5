"""Structured logs: one JSON object per line, with the message in plain words.

What a log call passes as `extra` (e.g. a job's `job_key` and `fields`) becomes keys of its
line, so an admin can filter on them without parsing the message.
"""
from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

# The attributes every LogRecord has; anything else on a record came in through `extra`.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_OWN = ("time", "level", "logger", "message", "error")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in _OWN and not key.startswith("_"):
                entry[key] = value
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # alembic narrates every plugin it loads; an admin needs only the migrations it ran.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
