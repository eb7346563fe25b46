from __future__ import annotations

from bot.identity import conversation_id

KEY = b"\x05" * 32


def test_the_id_is_stable_per_channel_and_address_and_hides_the_address() -> None:
    first = conversation_id(KEY, "sms", "+15551234567")
    assert first == conversation_id(KEY, "sms", "+15551234567")
    assert first.startswith("sms:") and "5551234567" not in first
    assert first != conversation_id(KEY, "telegram", "+15551234567")
    assert first != conversation_id(KEY, "sms", "+15551234568")


def test_without_the_key_the_id_cannot_be_recomputed() -> None:
    assert conversation_id(KEY, "sms", "+15551234567") != conversation_id(b"\x06" * 32, "sms", "+15551234567")
