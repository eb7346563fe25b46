"""Key rotation without downtime: re-encrypt every sealed value under the active key.

``hotline keys rotate`` puts a new key first in the ring (``bot.server_keys.add_key``);
running servers adopt it within :data:`FOLLOW_SECONDS` (:func:`following_rotations`)
and read values sealed under it at once (:class:`bot.crypto.Cipher` reloads its ring
when it meets an unknown key). Then :func:`reencrypt` rewrites, one value at a time,
everything still sealed under an older key. Each write is a compare-and-set in Redis:
a value that a server changed meanwhile is left as the server wrote it (under the new
key already). Outbox entries are not rewritten: they are sent within minutes and go.
``hotline keys retire KID`` then refuses while :func:`count_by_key` finds any value
sealed under KID.

Where sealed values live is :data:`SEALED`; their associated data is always the
Redis key name (outbox entries, bound to their conversation, are only counted).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis

from bot.crypto import Cipher, DecryptionError
from bot.server_keys import ServerKeys, secrets_file

__all__ = ["FOLLOW_SECONDS", "count_by_key", "following_rotations", "reencrypt"]

FOLLOW_SECONDS = 5.0


@dataclass(frozen=True)
class Sealed:
    pattern: str
    kind: Literal["string", "hash", "list"]
    field: str = ""


SEALED = (
    Sealed("tracker:*", "string"),
    Sealed("address:*", "string"),
    Sealed("attached:*", "string"),
    Sealed("case:*", "hash", "sealed"),
    Sealed("case:*:transcript", "list"),
    Sealed("case:*:ledger", "list"),
    Sealed("staff:*", "hash", "totp"),
    Sealed("receipt:*", "hash", "case"),
)
_CAS = {
    "string": "if redis.call('GET', KEYS[1]) == ARGV[1] then "
              "return redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL') and 1 end return 0",
    "hash": "if redis.call('HGET', KEYS[1], ARGV[3]) == ARGV[1] then "
            "redis.call('HSET', KEYS[1], ARGV[3], ARGV[2]) return 1 end return 0",
    "list": "if redis.call('LINDEX', KEYS[1], ARGV[3]) == ARGV[1] then "
            "redis.call('LSET', KEYS[1], ARGV[3], ARGV[2]) return 1 end return 0",
}


async def _values(client: Redis, spec: Sealed) -> AsyncIterator[tuple[str, str, bytes]]:
    """(key, field or list index, sealed blob) for every value of this kind."""
    async for raw in client.scan_iter(match=spec.pattern, count=1000):
        key = raw.decode()
        kind = (await client.type(key)).decode()
        if kind != spec.kind:
            continue  # "case:*" also matches the transcript and ledger lists
        if spec.kind == "string":
            blob = await client.get(key)
            if blob is not None:
                yield key, "", blob
        elif spec.kind == "hash":
            blob = await client.hget(key, spec.field)
            if blob:
                yield key, spec.field, blob
        else:
            for index, blob in enumerate(await client.lrange(key, 0, -1)):
                yield key, str(index), blob


async def reencrypt(client: Redis, cipher: Cipher) -> Counter[str]:
    """Rewrite every value not sealed under the active key; counts by outcome."""
    scripts = {kind: client.register_script(source) for kind, source in _CAS.items()}
    counts: Counter[str] = Counter()
    for spec in SEALED:
        async for key, where, blob in _values(client, spec):
            if Cipher.key_id_of(blob) == cipher.active_key_id:
                counts["current"] += 1
                continue
            try:
                fresh = cipher.encrypt(cipher.decrypt(blob, key.encode()), key.encode())
            except DecryptionError:
                counts["unreadable"] += 1
                continue
            changed = await scripts[spec.kind](keys=[key], args=[blob, fresh, where])
            counts["rewritten" if changed else "changed meanwhile"] += 1
    return counts


async def count_by_key(client: Redis) -> Counter[str]:
    """How many values each key id still seals, outbox entries included."""
    counts: Counter[str] = Counter()
    for spec in SEALED:
        async for _, _, blob in _values(client, spec):
            counts[Cipher.key_id_of(blob)] += 1
    async for raw in client.scan_iter(match="outbox:*", count=1000):
        if (await client.type(raw)) == b"stream":
            for _, fields in await client.xrange(raw):
                if b"m" in fields:
                    counts[Cipher.key_id_of(fields[b"m"])] += 1
    return counts


async def following_rotations(keys: ServerKeys) -> None:
    """Adopt a rotated ring (a new active key) soon after ``hotline keys rotate``."""
    if keys.settings is None or (path := secrets_file(keys.settings)) is None:
        return  # keys from the environment change with a restart
    seen = path.stat().st_mtime_ns
    while True:
        await asyncio.sleep(FOLLOW_SECONDS)
        with contextlib.suppress(FileNotFoundError):
            now = path.stat().st_mtime_ns
            if now != seen:
                seen = now
                keys.cipher().replace(*keys.ring())
