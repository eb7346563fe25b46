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

__all__ = ["conversation_id", "keyed_id"]


def keyed_id(pseudonym_key: bytes, namespace: str, value: str) -> str:
    """``<namespace>:<40 hex>``: stable for one value, opaque without the key."""
    mac = hmac.new(pseudonym_key, f"{namespace}\x00{value}".encode(), hashlib.sha256)
    return f"{namespace}:{mac.hexdigest()[:40]}"


def conversation_id(pseudonym_key: bytes, channel: str, address: str) -> str:
    """Stable for one address on one channel, opaque otherwise."""
    return keyed_id(pseudonym_key, channel, address)
