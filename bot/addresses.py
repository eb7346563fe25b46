"""The real channel addresses, kept only encrypted and only for replying, and the
references of messages on the person's device that can still be deleted.

Threat (docs/threat-model.md, "stolen Redis dump", "curious insider"): a phone number
or Telegram chat id is needed to send a later message (a responder's reply, a retry),
but must never sit in Redis readable. It is sealed under the conversation's key,
expires with the conversation and is erased with it.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from bot.crypto import Cipher

__all__ = ["AddressBook"]

PREFIX = "address:"
REFS = "refs:"
# Telegram lets a bot delete messages in a private chat for 48 hours.
REF_TTL_SECONDS = 48 * 3600


class AddressBook:
    def __init__(self, client: Redis, cipher: Cipher, ttl_seconds: int) -> None:
        self._redis = client
        self._cipher = cipher
        self._ttl = ttl_seconds

    def remember_in(self, pipe: Pipeline, conversation: str, address: str) -> None:
        """Keep the address for another lifetime, in the transaction that commits the
        message it came with (a message that leaves no trace leaves no address)."""
        key = self.key(conversation)
        pipe.set(key, self._cipher.encrypt(address.encode(), key.encode()), ex=self._ttl)

    async def lookup(self, conversation: str) -> str | None:
        return self.unseal(conversation, await self._redis.get(self.key(conversation)))

    @staticmethod
    def key(conversation: str) -> str:
        return PREFIX + conversation

    def unseal(self, conversation: str, sealed: bytes | None) -> str | None:
        """The address from what is stored at :meth:`key` (read along with other keys)."""
        if sealed is None:
            return None
        return self._cipher.decrypt(sealed, self.key(conversation).encode()).decode()

    @staticmethod
    def add_ref_in(pipe: Pipeline, conversation: str, ref: str) -> None:
        """Remember a message on the person's device, so that it can be deleted, in
        the transaction that records it (received, or sent)."""
        pipe.rpush(REFS + conversation, ref)
        pipe.expire(REFS + conversation, REF_TTL_SECONDS)

    async def refs(self, conversation: str) -> list[str]:
        return [ref.decode() for ref in await self._redis.lrange(REFS + conversation, 0, -1)]

    async def forget(self, conversation: str) -> None:
        await self._redis.delete(self.key(conversation), REFS + conversation)
