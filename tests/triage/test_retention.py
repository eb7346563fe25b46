"""Retention in a real Redis: closed cases go after their time, open and held ones stay."""

from __future__ import annotations

import subprocess

import pytest
from redis.asyncio import Redis

from bot.crypto import Cipher
from bot.settings import Settings
from tests.conftest import HOTLINE, PROJECT_ROOT, Clock, key_b64, server_environ
from tests.triage.test_cases import record
from triage.cases import CaseStore, Entry
from triage.retention import Retention, purge

DAY = 86400


@pytest.fixture
def store(empty_redis: Redis) -> tuple[CaseStore, Clock, Redis]:
    clock = Clock()
    return CaseStore(empty_redis, Cipher({"k1": b"\x02" * 32}, "k1"), clock=clock), clock, empty_redis


async def closed(cases: CaseStore, conversation: str, priority: str) -> str:
    case = await cases.open(conversation, "sms", "en", record(priority), [Entry(1.0, "person", "words")])
    await cases.claim(case.id, "s")
    await cases.close(case.id)
    return case.id


async def test_closed_cases_go_after_their_time_and_only_counts_remain(
        store: tuple[CaseStore, Clock, Redis]) -> None:
    cases, clock, client = store
    p4 = await closed(cases, "sms:p4", "P4")
    p2 = await closed(cases, "sms:p2", "P2")
    held = await closed(cases, "sms:held", "P2")
    await cases.hold(held, True)
    still_open = (await cases.open("sms:open", "sms", "en", record("P3"), [])).id
    retention = Retention(closed_days=90, closed_p4_days=7, grace_hours=24)

    clock.now += 8 * DAY
    assert [c.id for c in await purge(cases, retention, dry_run=True, clock=clock)] == [p4]
    assert await cases.get(p4) is not None  # a dry run erases nothing
    await purge(cases, retention, dry_run=False, clock=clock)
    assert await cases.get(p4) is None and await cases.transcript(p4) == []
    assert await cases.of_conversation("sms:p4") is None

    clock.now += 90 * DAY
    assert {c.id for c in await purge(cases, retention, dry_run=False, clock=clock)} == {p2}
    assert await cases.get(held) is not None and await cases.get(still_open) is not None
    assert not [k for k in await client.keys("case:*") if p2.encode() in k]
    per_day, _ = await cases.stats(days=120)
    assert sum(day.get("priority:P2", 0) for day in per_day.values()) == 2  # the counts survive


async def test_new_activity_restarts_the_clock(store: tuple[CaseStore, Clock, Redis]) -> None:
    cases, clock, _ = store
    case_id = await closed(cases, "sms:back", "P4")
    clock.now += 6 * DAY
    await cases.note(case_id, record("P4"))  # the person wrote again
    clock.now += 6 * DAY
    assert await purge(cases, Retention(), dry_run=True, clock=clock) == []


def test_hotline_purge_dry_run_lists_and_erases_nothing(settings: Settings) -> None:
    env = server_environ(settings.var_dir, REDIS_URL=settings.redis_url or "",
                         HOTLINE_PSEUDONYM_KEY=key_b64(1), HOTLINE_ENCRYPTION_KEYS=f"k1:{key_b64(2)}")
    result = subprocess.run([str(HOTLINE), "purge", "--dry-run"], capture_output=True, text=True, env=env,
                            cwd=PROJECT_ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("past their retention (nothing erased: --dry-run)")
    missing = subprocess.run([str(HOTLINE), "purge"], capture_output=True, text=True, env=env,
                             cwd=PROJECT_ROOT, timeout=60)
    assert missing.returncode == 2 and "--dry-run" in missing.stderr
