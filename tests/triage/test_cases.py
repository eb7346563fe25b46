"""Cases in a real Redis: priority only rises, the queue orders and ages, content is sealed."""

from __future__ import annotations

import asyncio
import json

import pytest
from redis.asyncio import Redis

from bot.crypto import Cipher
from tests.conftest import Clock
from triage.assess import TriageRecord
from triage.cases import CHANNEL, EVENTS, WAIT_TARGETS, CaseStore, Entry, aged


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(empty_redis: Redis) -> Redis:
    return empty_redis


@pytest.fixture
def cases(client: Redis, clock: Clock) -> CaseStore:
    return CaseStore(client, Cipher({"k1": b"\x05" * 32}, "k1"), clock=clock)


def record(priority: str, *indicators: str, kind: str = "help_request") -> TriageRecord:
    return TriageRecord(language="es", priority=priority, kind=kind,  # type: ignore[arg-type]
                        indicators=list(indicators), reasons=[f"{priority} because {' '.join(indicators)}"])


async def test_a_calm_message_never_lowers_a_cases_priority(cases: CaseStore) -> None:
    case = await cases.open("sms:a", "sms", "es", record("P1", "immediate_danger"), [])
    later = await cases.note(case.id, record("P4"))
    assert later.priority == "P1"
    assert later.summary.indicators == ["immediate_danger"]
    raised = await cases.note((await cases.open("sms:b", "sms", "es", record("P3"), [])).id,
                              record("P2", "documents_retained"))
    assert raised.priority == "P2"
    assert raised.summary.reasons == ["P3 because ", "P2 because documents_retained"]


async def test_one_conversation_has_one_case(cases: CaseStore) -> None:
    first = await cases.open("web:x", "webchat", "en", record("P3"), [])
    again = await cases.open("web:x", "webchat", "en", record("P1"), [])
    assert again.id == first.id
    assert (await cases.of_conversation("web:x")).id == first.id  # type: ignore[union-attr]


async def test_the_queue_is_by_priority_then_waiting_time_and_ages(cases: CaseStore, clock: Clock) -> None:
    old_p3 = await cases.open("sms:1", "sms", "en", record("P3"), [])
    clock.now += 60
    p2 = await cases.open("sms:2", "sms", "en", record("P2", "debt_bondage"), [])
    clock.now += 60
    p1 = await cases.open("sms:3", "sms", "en", record("P1", "immediate_danger"), [])
    clock.now += 1
    new_p3 = await cases.open("sms:4", "sms", "en", record("P3"), [])
    assert [item.case_id for item in await cases.queue()] == [p1.id, p2.id, old_p3.id, new_p3.id]

    clock.now += WAIT_TARGETS["P3"]  # the first P3 and the P2 have waited past their targets
    items = await cases.queue()
    assert [(item.case_id, item.effective) for item in items] == [
        (p2.id, "P1"), (p1.id, "P1"), (old_p3.id, "P2"), (new_p3.id, "P3")]
    assert [item.overdue for item in items] == [True, True, True, False]
    assert [item.priority for item in items] == ["P2", "P1", "P3", "P3"]


def test_aging_rises_one_level_per_target_waited() -> None:
    assert aged("P3", WAIT_TARGETS["P3"] - 1) == "P3"
    assert aged("P3", WAIT_TARGETS["P3"] + 1) == "P2"
    assert aged("P3", WAIT_TARGETS["P3"] + WAIT_TARGETS["P2"] + 1) == "P1"
    assert aged("P1", 10 * 86400) == "P1"


async def test_a_change_to_a_case_read_before_a_responder_acted_keeps_what_they_did(cases: CaseStore) -> None:
    """A message's turn notes the case it read before the bot answered; a responder
    claimed it meanwhile. The note is made again on the claimed case, not over it."""
    case = await cases.open("sms:c", "sms", "es", record("P3"), [])
    read_before = await cases.get(case.id)
    await cases.claim(case.id, "amira")
    noted = await cases.note(case.id, record("P2", "documents_retained"), known=read_before,
                             said=[Entry(2.0, "person", "they took my passport")])
    assert (noted.status, noted.owner, noted.priority) == ("with_responder", "amira", "P2")
    assert await cases.get(case.id) == noted
    assert await cases.held() == [case.id] and await cases.queue() == []
    assert [e.text for e in await cases.transcript(case.id)] == ["they took my passport"]  # once


async def test_changes_made_at_once_are_all_kept(cases: CaseStore) -> None:
    case = await cases.open("tg:c", "telegram", "es", record("P4"), [])
    lines = [f"line {n}" for n in range(20)]
    await asyncio.gather(*(cases.note(case.id, record("P4", f"sign_{n}"), said=[Entry(n, "person", line)])
                           for n, line in enumerate(lines)))
    after = await cases.get(case.id)
    assert after is not None and after.version == 20
    assert sorted(after.summary.indicators) == sorted(f"sign_{n}" for n in range(20))
    assert sorted(e.text for e in await cases.transcript(case.id)) == sorted(lines)


async def test_a_case_that_is_gone_is_not_written_again(cases: CaseStore, client: Redis) -> None:
    case = await cases.open("web:g", "webchat", "es", record("P3"), [])
    await cases.erase(case)
    with pytest.raises(KeyError):
        await cases.note(case.id, record("P2"), known=case, said=[Entry(1.0, "person", "hello")])
    assert await client.keys("case:*") == []  # no half-written case, no orphan transcript


async def test_handoff_pauses_and_a_claimed_case_leaves_the_queue(cases: CaseStore) -> None:
    case = await cases.open("tg:1", "telegram", "ru", record("P3"), [])
    assert not case.paused
    assert (await cases.hand_off(case.id)).status == "waiting"
    assert (await cases.of_conversation("tg:1")).paused
    assert [item.case_id for item in await cases.queue()] == [case.id]
    claimed = await cases.claim(case.id, "staff-1")
    assert (claimed.status, claimed.owner) == ("with_responder", "staff-1")
    assert (await cases.of_conversation("tg:1")).paused
    assert await cases.queue() == []


async def test_content_is_sealed_and_events_carry_no_words(cases: CaseStore, client: Redis) -> None:
    secret = "they took my passport in Sevilla"
    case = await cases.open("sms:z", "sms", "es", record("P2", "documents_retained"),
                            [Entry(1.0, "person", secret)])
    await cases.note(case.id, record("P2"), answers={"documents": "Sevilla passport"})
    assert [e.text for e in await cases.transcript(case.id)] == [secret]
    dump = b"".join([await client.dump(key) or b"" for key in await client.keys("*")])
    for word in (b"Sevilla", b"passport", b"documents_retained", b"because"):
        assert word not in dump
    events = await client.xrange(EVENTS)
    assert [fields[b"type"] for _, fields in events] == [b"opened"]
    assert set(events[0][1]) == {b"type", b"case", b"priority", b"status"}


async def test_events_are_published_live_for_the_console(cases: CaseStore, client: Redis) -> None:
    pubsub = client.pubsub()
    await pubsub.subscribe(CHANNEL)
    await pubsub.get_message(timeout=1)  # the subscription itself
    case = await cases.open("web:p", "webchat", "en", record("P1", "immediate_danger"), [])
    await cases.hand_off(case.id)
    got = [json.loads((await pubsub.get_message(timeout=2))["data"]) for _ in range(2)]
    assert [(e["type"], e["case"], e["priority"]) for e in got] == [
        ("opened", case.id, "P1"), ("handoff", case.id, "P1")]
    await pubsub.close()


async def test_withdrawal_leaves_a_tombstone_and_no_content(cases: CaseStore) -> None:
    case = await cases.open("sms:w", "sms", "en", record("P2", "debt_bondage"), [Entry(1.0, "person", "x")])
    await cases.withdraw("sms:w")
    tomb = await cases.get(case.id)
    assert tomb is not None and tomb.withdrawn and tomb.status == "closed"
    assert tomb.summary.indicators == [] and await cases.transcript(case.id) == []
    assert await cases.of_conversation("sms:w") is None
    assert await cases.queue() == []


async def test_a_closed_case_reopens_only_for_a_new_sign(cases: CaseStore, clock: Clock) -> None:
    case = await cases.open("sms:c", "sms", "en", record("P3"), [])
    await cases.claim(case.id, "s")
    assert not (await cases.close(case.id)).paused
    assert (await cases.note(case.id, record("P4"))).status == "closed"  # "thank you": the bot goes on
    clock.now += 100
    reopened = await cases.note(case.id, record("P3"))
    assert reopened.status == "new" and not reopened.paused and reopened.waiting_since == clock.now
    assert [item.case_id for item in await cases.queue()] == [case.id]
