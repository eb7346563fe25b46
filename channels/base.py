"""The one small interface every channel implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol

from aiohttp import web

from bot.messages import OnMessage, Outbound
from bot.settings import Settings

__all__ = ["Channel"]


class Channel(Protocol):
    """A medium people write through: it checks, parses and answers its own routes.

    A channel knows nothing of triage, cases or the console: it turns what arrives
    into :class:`bot.messages.Inbound`, awaits ``on_message`` and delivers the
    :class:`bot.messages.Outbound` replies in its own format. ``replies_inline``
    says whether it can answer within the request (web chat, SMS TwiML); if not
    (Telegram), the core queues its replies and sends them later with :meth:`send`.
    """

    name: ClassVar[str]
    replies_inline: ClassVar[bool]

    @classmethod
    def from_settings(cls, settings: Settings) -> Channel | None:
        """The configured channel, or ``None`` when its credentials are absent."""
        ...

    def routes(self, on_message: OnMessage) -> list[web.RouteDef]:
        ...

    async def send(self, address: str, message: Outbound) -> str | None:
        """Send a message outside a request; see :class:`bot.messages.Sender`."""
        ...

    async def unsend(self, address: str, refs: Sequence[str]) -> None:
        ...

    async def close(self) -> None:
        """Release the channel's HTTP clients."""
        ...
