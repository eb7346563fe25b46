"""Authenticated encryption of everything personal that Hotline writes to Redis.

Threat (docs/threat-model.md, "stolen Redis dump or backup"): whoever reads Redis,
its RDB/AOF files or a backup must learn nothing of what people wrote. AES-256-GCM
gives confidentiality and integrity; every ciphertext names the key that made it so
keys can be rotated without downtime, and is bound to its Redis key (associated
data) so that a value moved to another key fails to decrypt instead of being read
as someone else's conversation.

This is the only module that imports ``cryptography``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["KEY_BYTES", "Cipher", "DecryptionError"]

KEY_BYTES = 32
_VERSION = 1
_NONCE_BYTES = 12


class DecryptionError(Exception):
    """A ciphertext is malformed, was tampered with, or its key is not loaded."""


class Cipher:
    """AES-GCM over a key ring: encrypts with the active key, decrypts with any.

    ``reload`` (key rotation, docs/threat-model.md): called when a ciphertext names a
    key this ring lacks — another process rotated — it returns the current ring,
    which replaces this one in place for everyone holding this cipher."""

    def __init__(self, keys: Mapping[str, bytes], active: str,
                 reload: Callable[[], tuple[Mapping[str, bytes], str]] | None = None) -> None:
        self._reload = reload
        self.replace(keys, active)

    def replace(self, keys: Mapping[str, bytes], active: str) -> None:
        if active not in keys:
            raise ValueError("the active key id is not in the key ring")
        for kid, key in keys.items():
            if len(key) != KEY_BYTES or not 0 < len(kid.encode()) < 256:
                raise ValueError(f"key {kid!r} must be {KEY_BYTES} bytes with a short id")
        self._aeads = {kid: AESGCM(key) for kid, key in keys.items()}
        self._active = active

    @property
    def active_key_id(self) -> str:
        return self._active

    def encrypt(self, plaintext: bytes, context: bytes) -> bytes:
        """Return ``version | kid length | kid | nonce | ciphertext+tag``."""
        kid = self._active.encode()
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aeads[self._active].encrypt(nonce, plaintext, context)
        return bytes([_VERSION, len(kid)]) + kid + nonce + sealed

    def decrypt(self, blob: bytes, context: bytes) -> bytes:
        if len(blob) < 2 or blob[0] != _VERSION:
            raise DecryptionError("unknown ciphertext format")
        end = 2 + blob[1]
        kid = blob[2:end].decode(errors="replace")
        if kid not in self._aeads and self._reload is not None:
            self.replace(*self._reload())
        aead = self._aeads.get(kid)
        if aead is None:
            raise DecryptionError(f"key {kid!r} is not loaded")
        nonce, sealed = blob[end : end + _NONCE_BYTES], blob[end + _NONCE_BYTES :]
        try:
            return aead.decrypt(nonce, sealed, context)
        except InvalidTag as exc:
            raise DecryptionError("ciphertext failed authentication") from exc

    @staticmethod
    def key_id_of(blob: bytes) -> str:
        """The id of the key that sealed ``blob`` (for rotation)."""
        if len(blob) < 2 or blob[0] != _VERSION:
            raise DecryptionError("unknown ciphertext format")
        return blob[2 : 2 + blob[1]].decode(errors="replace")
