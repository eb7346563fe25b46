"""The server's secrets: the pseudonym key and the encryption key ring.

Taken from the environment when given there, otherwise generated once into
``HOTLINE_VAR_DIR/secrets.json`` with mode 0600 and reused on every start.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets as stdlib_secrets
from dataclasses import dataclass
from pathlib import Path

from bot.crypto import KEY_BYTES, Cipher
from bot.settings import Secret, Settings

__all__ = ["ServerKeyError", "ServerKeys", "load_server_keys"]

SECRETS_FILE = "secrets.json"


class ServerKeyError(Exception):
    """The configured or stored secrets are unusable; the server must not start."""


@dataclass(frozen=True)
class ServerKeys:
    pseudonym_key: bytes
    encryption_keys: dict[str, bytes]
    active_key_id: str

    def cipher(self) -> Cipher:
        return Cipher(self.encryption_keys, self.active_key_id)

    def __repr__(self) -> str:
        return f"ServerKeys(active_key_id={self.active_key_id!r}, keys={sorted(self.encryption_keys)})"


def _decode(name: str, value: str) -> bytes:
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ServerKeyError(f"{name} is not valid base64") from exc
    if len(key) != KEY_BYTES:
        raise ServerKeyError(f"{name} must decode to {KEY_BYTES} bytes, got {len(key)}")
    return key


def _new_key() -> str:
    return base64.b64encode(stdlib_secrets.token_bytes(KEY_BYTES)).decode()


def _stored(var_dir: Path) -> dict[str, object]:
    """Read the generated secrets, creating them (0600) on first run."""
    path = var_dir / SECRETS_FILE
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        data: dict[str, object] = {"pseudonym_key": _new_key(), "encryption_keys": [["k1", _new_key()]]}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
        return data
    if path.stat().st_mode & 0o077:
        raise ServerKeyError(f"{path} is readable by other users; run: chmod 600 {path}")
    try:
        loaded = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ServerKeyError(f"{path} is unreadable or not JSON") from exc
    if not isinstance(loaded, dict):
        raise ServerKeyError(f"{path} does not hold a JSON object")
    return loaded


def load_server_keys(settings: Settings) -> ServerKeys:
    """Environment first, then the generated file; refuse a key used twice."""
    stored: dict[str, object] | None = None
    if settings.pseudonym_key is None or not settings.encryption_keys:
        stored = _stored(settings.var_dir)

    if settings.pseudonym_key is not None:
        pseudonym = _decode("HOTLINE_PSEUDONYM_KEY", settings.pseudonym_key.reveal())
    else:
        assert stored is not None
        pseudonym = _decode("pseudonym_key", str(stored.get("pseudonym_key", "")))

    pairs: list[tuple[str, Secret]] = list(settings.encryption_keys)
    if not pairs:
        assert stored is not None
        raw_pairs = stored.get("encryption_keys")
        if not isinstance(raw_pairs, list) or not raw_pairs:
            raise ServerKeyError("secrets.json holds no encryption keys")
        pairs = [(str(kid), Secret(str(value))) for kid, value in raw_pairs]
    keys = {kid: _decode(f"encryption key {kid!r}", value.reveal()) for kid, value in pairs}

    # A pseudonym that could be computed with an encryption key (or the reverse)
    # would tie the two protections together: one leaked key must not undo both.
    if pseudonym in keys.values():
        raise ServerKeyError("the pseudonym key must differ from every encryption key")
    return ServerKeys(pseudonym_key=pseudonym, encryption_keys=keys, active_key_id=pairs[0][0])
