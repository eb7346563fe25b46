"""Pseudonymous conversation ids.

Threat (docs/threat-model.md, "stolen Redis dump", "curious insider"): a raw phone
number or Telegram id must never become a key, a log field or a console label.
The conversation id is an HMAC-SHA256 of channel and address under a server key
that is never stored beside the data, so ids cannot be reversed by enumerating
phone numbers without that key.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["conversation_id"]


def conversation_id(pseudonym_key: bytes, channel: str, address: str) -> str:
    """``<channel>:<40 hex>``: stable for one address on one channel, opaque otherwise."""
    mac = hmac.new(pseudonym_key, f"{channel}\x00{address}".encode(), hashlib.sha256)
    return f"{channel}:{mac.hexdigest()[:40]}"
