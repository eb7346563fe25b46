"""Structured logs that cannot carry what people wrote.

Threat (docs/threat-model.md, "curious insider", "stolen backup"): logs are copied,
shipped and kept far longer than Redis data. Hotline's own log calls pass only
fixed event names and ``extra`` fields of safe kinds (channels, codes, counts,
durations); third-party loggers are held at WARNING because Rasa logs message text
at DEBUG; the access log names the route, not the URL, and never the client's IP.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

__all__ = ["OWN_LOGGERS", "AccessLogger", "JsonFormatter", "setup_logging"]

OWN_LOGGERS = ("bot", "channels", "triage", "console", "hotline")
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event and the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.msg if isinstance(record.msg, str) else type(record.msg).__name__,
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info and record.exc_info[0] is not None:
            # The exception's type only: its message may quote the input.
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, default=str, ensure_ascii=False)


class AccessLogger(AbstractAccessLogger):
    """Method, route pattern, status and time; no query string, no IP, no headers."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        match_info = getattr(request, "match_info", None)
        route = getattr(getattr(match_info, "route", None), "resource", None)
        self.logger.info(
            "http",
            extra={
                "method": request.method,
                "route": route.canonical if route is not None else "unmatched",
                "status": response.status,
                "ms": round(time * 1000, 1),
            },
        )


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.INFO)
