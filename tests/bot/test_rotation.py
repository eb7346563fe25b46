"""Key rotation in a real Redis: every kind of sealed value is rewritten under the new
key, still reads the same, and nothing is left for the old key."""

from __future__ import annotations

from redis.asyncio import Redis

from bot.addresses import AddressBook
from bot.crypto import Cipher
from bot.rotation import count_by_key, reencrypt
from console.accounts import Accounts
from console.ledger import Ledger
from tests.conftest import FAST_ARGON2, remember
from tests.triage.test_cases import record
from triage.cases import CaseStore, Entry
from triage.receipts import ATTACHED, Receipts

OLD, NEW = b"\x03" * 32, b"\x04" * 32


async def test_everything_sealed_moves_to_the_new_key_and_reads_the_same(empty_redis: Redis) -> None:
    client = empty_redis
    before = Cipher({"k1": OLD}, "k1")
    await remember(AddressBook(client, before, 3600), client, "sms:a", "+14155550100")
    cases = CaseStore(client, before)
    case = await cases.open("sms:a", "sms", "en", record("P2", "debt_bondage"),
                            [Entry(1.0, "person", "words")])
    await Ledger(client, before).add(case.id, "amira", "note", "a note")
    await Accounts(client, before, FAST_ARGON2).add("amira", "responder", "x" * 12)
    receipts = Receipts(client, before, b"\x05" * 32, FAST_ARGON2)
    code, _ = await receipts.issue(case.id)
    await receipts.attach("web:b", case.id)
    assert set(await count_by_key(client)) == {"k1"}

    after = Cipher({"k2": NEW, "k1": OLD}, "k2")
    counts = await reencrypt(client, after)
    assert counts == {"rewritten": 7}  # address, case, transcript, ledger, staff, receipt, attached
    assert set(await count_by_key(client)) == {"k2"}
    assert (await reencrypt(client, after)) == {"current": 7}

    only_new = Cipher({"k2": NEW}, "k2")  # the old key is gone: everything still reads
    assert await AddressBook(client, only_new, 3600).lookup("sms:a") == "+14155550100"
    moved = CaseStore(client, only_new)
    assert (await moved.get(case.id)).summary.indicators == ["debt_bondage"]  # type: ignore[union-attr]
    assert [e.text for e in await moved.transcript(case.id)] == ["words"]
    assert [e.what for e in await Ledger(client, only_new).entries(case.id)] == ["a note"]
    again = Receipts(client, only_new, b"\x05" * 32, FAST_ARGON2)
    assert (await again.check("sms:z", code)).case_id == case.id
    assert again.unseal_attached("web:b", await client.get(ATTACHED + "web:b")) == case.id
