"""The types every channel shares: what arrives, what goes out, and the callback."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["RTL_LANGUAGES", "Button", "Command", "Inbound", "OnMessage", "Outbound"]

RTL_LANGUAGES = frozenset({"ar", "fa", "he", "ur"})

Command = Literal["delete"]


@dataclass(frozen=True)
class Button:
    title: str
    payload: str


@dataclass(frozen=True)
class Inbound:
    """One message from a person. ``address`` is the raw channel address: it is
    pseudonymised before anything else touches it and never logged."""

    channel: str
    address: str
    text: str
    hints: Mapping[str, str] = field(default_factory=dict)
    command: Command | None = None

    def __repr__(self) -> str:
        # Never let the text or the address reach a log through a repr.
        return f"Inbound(channel={self.channel!r}, command={self.command!r}, chars={len(self.text)})"


@dataclass(frozen=True)
class Outbound:
    text: str
    buttons: tuple[Button, ...] = ()
    lang: str = "en"
    sender: Literal["bot", "staff"] = "bot"

    @property
    def direction(self) -> Literal["ltr", "rtl"]:
        return "rtl" if self.lang in RTL_LANGUAGES else "ltr"

    @classmethod
    def from_rasa(cls, message: Mapping[str, Any], lang: str) -> Outbound:
        """From one entry of Rasa's ``CollectingOutputChannel.messages``."""
        buttons = tuple(
            Button(title=str(b.get("title", "")), payload=str(b.get("payload", "")))
            for b in message.get("buttons") or ()
        )
        return cls(text=str(message.get("text") or ""), buttons=buttons, lang=lang)

    def __repr__(self) -> str:
        return f"Outbound(sender={self.sender!r}, chars={len(self.text)}, buttons={len(self.buttons)})"


OnMessage = Callable[[Inbound], Awaitable[list[Outbound]]]
