"""The audit log: every login, view, claim, message, reveal, export and change.

Append-only and chained: each entry carries an HMAC (under a key derived from the
server's pseudonym key, which is never in Redis) of the previous entry's seal and
its own fields, and ``audit:head`` holds the last seal and the count. Editing,
deleting or reordering an entry, or cutting the tail, breaks the chain, and
someone with only Redis access cannot forge a new one (docs/threat-model.md,
"curious or corrupt insider"). Entries name staff, actions and case ids, never
what a person wrote.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import asdict, dataclass

from redis.asyncio import Redis
from redis.exceptions import WatchError

__all__ = ["AuditEntry", "AuditLog", "Verification"]

STREAM = "audit"
HEAD = "audit:head"
_GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    at: float
    actor: str
    action: str
    target: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    problem: str = ""


class AuditLog:
    def __init__(self, client: Redis, pseudonym_key: bytes) -> None:
        self._redis = client
        self._key = hmac.new(pseudonym_key, b"hotline audit chain", hashlib.sha256).digest()

    async def record(self, actor: str, action: str, target: str = "", detail: str = "") -> None:
        entry = AuditEntry(time.time(), actor, action, target, detail)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(HEAD)
                    head = await pipe.hmget(HEAD, "seal", "count")
                    previous = head[0].decode() if head[0] else _GENESIS
                    count = int(head[1] or 0) + 1
                    seal = self._seal(previous, entry)
                    pipe.multi()
                    pipe.xadd(STREAM, {**_fields(entry), "prev": previous, "seal": seal})
                    pipe.hset(HEAD, mapping={"seal": seal, "count": count})
                    await pipe.execute()
                    return
                except WatchError:
                    continue

    async def entries(self, last: int = 200) -> list[AuditEntry]:
        """The latest entries, newest first."""
        return [_entry(fields) for _, fields in await self._redis.xrevrange(STREAM, count=last)]

    async def verify(self) -> Verification:
        previous, count = _GENESIS, 0
        cursor = "-"
        while True:
            batch = await self._redis.xrange(STREAM, min=cursor, count=1000)
            if cursor != "-":
                batch = batch[1:]
            for _, fields in batch:
                count += 1
                if fields.get(b"prev", b"").decode() != previous:
                    return Verification(False, count, f"entry {count} does not follow entry {count - 1}")
                seal = self._seal(previous, _entry(fields))
                if not hmac.compare_digest(seal, fields.get(b"seal", b"").decode()):
                    return Verification(False, count, f"entry {count} was changed")
                previous = seal
            if not batch:
                break
            cursor = batch[-1][0].decode()
        head = await self._redis.hmget(HEAD, "seal", "count")
        if int(head[1] or 0) != count or (head[0] or _GENESIS.encode()).decode() != previous:
            return Verification(False, count, f"the log ends early: {int(head[1] or 0)} entries were written")
        return Verification(True, count)

    def _seal(self, previous: str, entry: AuditEntry) -> str:
        body = json.dumps([previous, asdict(entry)], sort_keys=True, ensure_ascii=False).encode()
        return hmac.new(self._key, body, hashlib.sha256).hexdigest()


def _fields(entry: AuditEntry) -> dict[str, str]:
    return {"at": repr(entry.at), "actor": entry.actor, "action": entry.action, "target": entry.target,
            "detail": entry.detail}


def _entry(fields: dict[bytes, bytes]) -> AuditEntry:
    def text(name: str) -> str:
        return fields.get(name.encode(), b"").decode()

    return AuditEntry(float(text("at") or 0), text("actor"), text("action"), text("target"), text("detail"))
