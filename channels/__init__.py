"""The channels people write through, registered from one explicit list."""

from __future__ import annotations

from channels.base import Channel
from channels.sms import Sms
from channels.telegram import Telegram
from channels.webchat import WebChat

__all__ = ["CHANNELS", "Channel", "Sms", "Telegram", "WebChat"]

CHANNELS: tuple[type[Channel], ...] = (WebChat, Sms, Telegram)
