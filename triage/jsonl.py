"""``hotline triage``: JSON Lines in, one triage record (or a clear error) per line out."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from triage.assess import Triage

__all__ = ["MAX_TEXT", "triage_lines"]

MAX_TEXT = 4096  # characters: what the web chat accepts, and more than 10 SMS segments
CHANNELS = frozenset({"sms", "telegram", "webchat"})

Parse = Callable[[str], Awaitable[dict[str, Any]]]


async def triage_lines(lines: Iterable[str], triage: Triage, parse: Parse) -> AsyncIterator[str]:
    """One output line per input line, in order; a bad line gets ``{"error": ...}``
    and the next line is still read (blank lines are skipped)."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            text, lang, channel = _read(line)
        except ValueError as exc:
            yield json.dumps({"line": number, "error": str(exc)})
            continue
        record = triage.assess(text, lang=lang, parse=await parse(text))
        yield json.dumps({**record.as_dict(), **({"channel": channel} if channel else {})},
                         ensure_ascii=False)


def _read(line: str) -> tuple[str, str | None, str | None]:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    if not isinstance(item, dict):
        raise ValueError("not a JSON object")
    text, lang, channel = item.get("text"), item.get("lang"), item.get("channel")
    if not isinstance(text, str) or not text.strip():
        raise ValueError('"text" must be a non-empty string')
    if len(text) > MAX_TEXT:
        raise ValueError(f'"text" is over {MAX_TEXT} characters')
    if lang is not None and not isinstance(lang, str):
        raise ValueError('"lang" must be a string')
    if channel is not None and channel not in CHANNELS:
        raise ValueError(f'"channel" must be one of {", ".join(sorted(CHANNELS))}')
    return text, lang, channel
