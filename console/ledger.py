"""What staff record on a case: notes, consents and their revocation, referrals,
escalations. One encrypted list per case, append-only: a consent is revoked by a
later entry, never edited away, so the ledger shows who recorded what, when.

Nothing goes to a partner or the police without a consent here (DESIGN.md,
principle 1); the ledger is the record of that consent.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Literal

from redis.asyncio import Redis

from bot.crypto import Cipher
from triage.cases import CASE

__all__ = ["CONSENTS", "Ledger", "LedgerEntry"]

Kind = Literal["note", "consent", "revocation", "referral", "escalation"]
# What a person can agree to; a referral consent names the partner.
CONSENTS = {
    "referral": "referral to a named service",
    "contact_back": "being contacted back",
    "police": "sharing with the police",
}


@dataclass(frozen=True)
class LedgerEntry:
    id: str
    at: float
    by: str
    kind: Kind
    what: str = ""  # a consent's subject, a referral's partner, a note's text
    ref: str = ""  # a revocation's consent id


class Ledger:
    def __init__(self, client: Redis, cipher: Cipher) -> None:
        self._redis = client
        self._cipher = cipher

    async def add(self, case_id: str, by: str, kind: Kind, what: str = "", ref: str = "") -> LedgerEntry:
        entry = LedgerEntry(secrets.token_hex(6), time.time(), by, kind, what, ref)
        key = CASE + case_id + ":ledger"
        await self._redis.rpush(key, self._cipher.encrypt(json.dumps(asdict(entry)).encode(), key.encode()))
        return entry

    async def entries(self, case_id: str) -> list[LedgerEntry]:
        key = CASE + case_id + ":ledger"
        return [LedgerEntry(**json.loads(self._cipher.decrypt(blob, key.encode())))
                for blob in await self._redis.lrange(key, 0, -1)]

    async def active_consents(self, case_id: str) -> list[LedgerEntry]:
        entries = await self.entries(case_id)
        revoked = {e.ref for e in entries if e.kind == "revocation"}
        return [e for e in entries if e.kind == "consent" and e.id not in revoked]

