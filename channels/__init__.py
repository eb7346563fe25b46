"""The channels people write through, registered from one explicit list."""

from __future__ import annotations

from channels.base import Channel
from channels.webchat import WebChat

__all__ = ["CHANNELS", "Channel"]

CHANNELS: tuple[type[Channel], ...] = (WebChat,)
