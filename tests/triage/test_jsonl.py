"""`hotline triage`'s reader: a bad line gets a clear error, the next line still counts."""

from __future__ import annotations

import json
from typing import Any

from bot.languages import Languages
from triage.assess import Triage
from triage.jsonl import triage_lines
from triage.lexicon import Hit, Lexicon

TRIAGE = Triage(Lexicon([("locked in", Hit("indicators", "immediate_danger", "locked in", "en"))]),
                Languages.load())


async def no_nlu(text: str) -> dict[str, Any]:
    return {}


async def test_every_line_is_answered_in_order() -> None:
    lines = [
        '{"text": "i am locked in", "channel": "sms"}',
        "not json",
        '["a list"]',
        '{"text": ""}',
        '{"text": "hello", "channel": "pigeon"}',
        "",
        '{"text": "' + "x" * 5000 + '"}',
        '{"text": "hola", "lang": "es"}',
    ]
    out = [json.loads(line) async for line in triage_lines(lines, TRIAGE, no_nlu)]
    assert out[0]["priority"] == "P1" and out[0]["channel"] == "sms" and out[0]["language"] == "en"
    assert [o.get("error") for o in out[1:6]] == [
        "not JSON (Expecting value)", "not a JSON object", '"text" must be a non-empty string',
        '"channel" must be one of sms, telegram, webchat', '"text" is over 4096 characters']
    assert [o.get("line") for o in out[1:6]] == [2, 3, 4, 5, 7]
    assert out[6]["language"] == "es" and out[6]["priority"] == "P4"
