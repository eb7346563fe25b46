"""The types every channel shares: what arrives, what goes out, and the callback."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = ["Button", "Command", "DeliveryError", "InProgress", "Inbound", "OnMessage", "Outbound", "Sender"]


# What a person can ask of the service itself rather than of the bot: erase the
# conversation, stop or resume messages (SMS STOP/START), or hear how it works.
Command = Literal["delete", "opt_out", "opt_in", "help"]


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
    # The provider's id of this delivery (Twilio MessageSid, Telegram update_id):
    # a retried delivery carries the same id and is answered only once.
    delivery_id: str | None = None
    # The provider's id of the person's message where it can later be deleted
    # from their device (Telegram message_id).
    message_ref: str | None = None

    def __repr__(self) -> str:
        # Never let the text or the address reach a log through a repr.
        return f"Inbound(channel={self.channel!r}, command={self.command!r}, chars={len(self.text)})"


@dataclass(frozen=True)
class Outbound:
    text: str
    buttons: tuple[Button, ...] = ()
    lang: str = "en"
    direction: Literal["ltr", "rtl"] = "ltr"
    sender: Literal["bot", "staff"] = "bot"

    @classmethod
    def from_rasa(cls, message: Mapping[str, Any], lang: str,
                  direction: Literal["ltr", "rtl"] = "ltr") -> Outbound:
        """From one entry of Rasa's ``CollectingOutputChannel.messages``."""
        buttons = tuple(
            Button(title=str(b.get("title", "")), payload=str(b.get("payload", "")))
            for b in message.get("buttons") or ()
        )
        return cls(text=str(message.get("text") or ""), buttons=buttons, lang=lang, direction=direction)

    def __repr__(self) -> str:
        return f"Outbound(sender={self.sender!r}, chars={len(self.text)}, buttons={len(self.buttons)})"


class DeliveryError(Exception):
    """A provider did not take a message. ``permanent``: retrying cannot help
    (blocked bot, unsubscribed or invalid number); otherwise it is retried."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class InProgress(Exception):
    """This delivery is being answered right now (a provider's early retry, or the
    first attempt died in a process that crashed): the provider must retry later.
    Answered 503 with Retry-After, never 200, so the message cannot be lost."""


OnMessage = Callable[[Inbound], Awaitable[list[Outbound]]]


class Sender(Protocol):
    """What the core needs of a channel to reach a person after their request."""

    async def send(self, address: str, message: Outbound) -> str | None:
        """Deliver, returning the provider's message reference (if it can be
        deleted later); raise :class:`DeliveryError` when the provider refuses."""
        ...

    async def unsend(self, address: str, refs: Sequence[str]) -> None:
        """Remove these messages from the person's device where the medium allows."""
        ...
