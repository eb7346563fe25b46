from __future__ import annotations

import pytest

from bot.crypto import Cipher, DecryptionError

OLD, NEW = b"\x01" * 32, b"\x02" * 32


def test_round_trip_names_the_key_and_hides_the_text() -> None:
    cipher = Cipher({"k1": OLD}, "k1")
    blob = cipher.encrypt(b"my boss took my passport", b"tracker:a")
    assert b"passport" not in blob
    assert Cipher.key_id_of(blob) == "k1"
    assert cipher.decrypt(blob, b"tracker:a") == b"my boss took my passport"


def test_same_text_twice_gives_different_ciphertexts() -> None:
    cipher = Cipher({"k1": OLD}, "k1")
    assert cipher.encrypt(b"help", b"c") != cipher.encrypt(b"help", b"c")


def test_a_value_moved_to_another_key_does_not_decrypt() -> None:
    cipher = Cipher({"k1": OLD}, "k1")
    blob = cipher.encrypt(b"secret", b"tracker:a")
    with pytest.raises(DecryptionError):
        cipher.decrypt(blob, b"tracker:b")


def test_tampering_is_detected() -> None:
    cipher = Cipher({"k1": OLD}, "k1")
    blob = bytearray(cipher.encrypt(b"secret", b"c"))
    blob[-1] ^= 1
    with pytest.raises(DecryptionError):
        cipher.decrypt(bytes(blob), b"c")


def test_rotation_reads_old_ciphertexts_and_writes_with_the_new_key() -> None:
    old_blob = Cipher({"k1": OLD}, "k1").encrypt(b"before", b"c")
    ring = Cipher({"k2": NEW, "k1": OLD}, "k2")
    assert ring.decrypt(old_blob, b"c") == b"before"
    assert Cipher.key_id_of(ring.encrypt(b"after", b"c")) == "k2"


def test_an_unknown_key_or_format_is_a_named_error() -> None:
    blob = Cipher({"k9": NEW}, "k9").encrypt(b"x", b"c")
    with pytest.raises(DecryptionError, match="not loaded"):
        Cipher({"k1": OLD}, "k1").decrypt(blob, b"c")
    with pytest.raises(DecryptionError, match="format"):
        Cipher({"k1": OLD}, "k1").decrypt(b"plain text", b"c")


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError):
        Cipher({"k1": b"short"}, "k1")


def test_a_ring_rotated_elsewhere_is_reloaded_on_first_sight_of_its_key() -> None:
    rotated = Cipher({"k2": NEW, "k1": OLD}, "k2")
    blob = rotated.encrypt(b"sealed by another process", b"tracker:a")
    reloads: list[int] = []

    def reload() -> tuple[dict[str, bytes], str]:
        reloads.append(1)
        return {"k2": NEW, "k1": OLD}, "k2"

    here = Cipher({"k1": OLD}, "k1", reload=reload)
    assert here.decrypt(blob, b"tracker:a") == b"sealed by another process"
    assert here.active_key_id == "k2" and reloads == [1]  # and it now seals with the new key
    here.decrypt(blob, b"tracker:a")
    assert reloads == [1]
