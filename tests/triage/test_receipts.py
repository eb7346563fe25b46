"""Receipt codes in a real Redis: stored only as argon2id + a keyed lookup, rate-limited."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest
from argon2 import PasswordHasher
from redis.asyncio import Redis

from bot.crypto import Cipher
from tests.conftest import FAST_ARGON2
from triage.receipts import CODE_SHOWN, WRONG_OVERALL, WRONG_PER_CONVERSATION, Receipts, formatted, redact


class PolicyRecordingHasher(PasswordHasher):
    """FAST_ARGON2's cost; notes the CPU scheduling policy of the thread each hash runs on."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.policies: list[int] = []

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.policies.append(os.sched_getscheduler(threading.get_native_id()))
        return super().hash(password, salt=salt)


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


async def test_codes_are_hashed_ahead_at_idle_priority_and_open_their_cases(empty_redis: Redis) -> None:
    hasher = PolicyRecordingHasher()
    receipts = Receipts(empty_redis, Cipher({"k1": b"\x07" * 32}, "k1"), b"\x08" * 32, hasher)
    # Nothing hashed ahead (a burst that outran them): the code is hashed as it is issued.
    early, _ = await receipts.issue("case-0")
    assert hasher.policies == [os.SCHED_OTHER]
    hasher.policies.clear()
    with receipts.ready.filling():
        assert await asyncio.to_thread(receipts.ready.full.wait, 30)
        issued = [await receipts.issue(f"case-{n}") for n in range(1, 4)]
    assert hasher.policies and set(hasher.policies) == {os.SCHED_IDLE}
    assert "receipt-codes" not in {thread.name for thread in threading.enumerate()}
    codes = [early] + [code for code, _ in issued]
    assert len(set(codes)) == 4
    for n, code in enumerate(codes):
        assert (await receipts.check("web:back", code)).case_id == f"case-{n}"
    # What is stored is the same as for a code hashed on demand: no code, only argon2id.
    stored = b"".join([await empty_redis.dump(k) or b"" for k in await empty_redis.keys("*")])
    assert not any(code[:6].encode() in stored for code in codes)
