"""Receipt codes in a real Redis: stored only as argon2id + a keyed lookup, rate-limited."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from bot.crypto import Cipher
from tests.conftest import FAST_ARGON2
from triage.receipts import CODE_SHOWN, WRONG_OVERALL, WRONG_PER_CONVERSATION, Receipts, formatted, redact


@pytest.fixture
def receipts(empty_redis: Redis) -> Receipts:
    return Receipts(empty_redis, Cipher({"k1": b"\x07" * 32}, "k1"), b"\x08" * 32, FAST_ARGON2)


def test_codes_are_found_in_any_grouping_and_never_passed_on() -> None:
    for typed in ("1234 5678 9012 3456", "1234-5678-9012-3456", "1234567890123456", "1234.5678 90123456"):
        text, code = redact(f"STATUS {typed} please")
        assert code == "1234567890123456"
        assert text == f"STATUS {CODE_SHOWN} please"
    # A phone number (at most 15 digits) or a longer number is not a code.
    assert redact("call +44 7700 900123") == ("call +44 7700 900123", None)
    assert redact("12345678901234567")[1] is None
    assert formatted("1234567890123456") == "1234 5678 9012 3456"


async def test_a_code_opens_its_case_and_nothing_of_it_is_stored(receipts: Receipts, empty_redis: Redis
                                                                 ) -> None:
    code, key = await receipts.issue("case-1")
    assert len(code) == 16 and code.isdigit()
    assert (await receipts.check("sms:other", code)).case_id == "case-1"
    stored = b"".join([await empty_redis.dump(k) or b"" for k in await empty_redis.keys("*")])
    assert code.encode() not in stored and code[:6].encode() not in stored and b"case-1" not in stored
    assert b"$argon2id$" in stored
    await receipts.revoke(key)
    assert (await receipts.check("sms:other", code)).case_id is None


async def test_wrong_codes_are_limited_per_conversation(receipts: Receipts) -> None:
    code, _ = await receipts.issue("case-2")
    wrong = "0" * 16 if code != "0" * 16 else "1" * 16
    for _ in range(WRONG_PER_CONVERSATION):
        check = await receipts.check("tg:guesser", wrong)
        assert check.case_id is None and not check.limited
    # Now even the right code is not checked for the guesser; others are unaffected.
    assert (await receipts.check("tg:guesser", code)).limited
    assert (await receipts.check("web:someone", code)).case_id == "case-2"


async def test_wrong_codes_are_limited_overall(receipts: Receipts) -> None:
    code, _ = await receipts.issue("case-3")
    for n in range(WRONG_OVERALL):
        await receipts.check(f"sms:{n}", "9" * 16)
    assert (await receipts.check("sms:new", code)).limited
