"""The one small interface every channel implements."""

from __future__ import annotations

from typing import ClassVar, Protocol

from aiohttp import web

from bot.messages import OnMessage
from bot.settings import Settings

__all__ = ["Channel"]


class Channel(Protocol):
    """A medium people write through: it checks, parses and answers its own routes.

    A channel knows nothing of triage, cases or the console: it turns what arrives
    into :class:`bot.messages.Inbound`, awaits ``on_message`` and delivers the
    :class:`bot.messages.Outbound` replies in its own format.
    """

    name: ClassVar[str]

    @classmethod
    def from_settings(cls, settings: Settings) -> Channel | None:
        """The configured channel, or ``None`` when its credentials are absent."""
        ...

    def routes(self, on_message: OnMessage) -> list[web.RouteDef]:
        ...
