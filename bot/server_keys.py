"""The server's secrets: the pseudonym key and the encryption key ring.

Taken from the environment when given there, otherwise generated once into
``HOTLINE_VAR_DIR/secrets.json`` with mode 0600 and reused on every start.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import secrets as stdlib_secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bot.crypto import KEY_BYTES, Cipher
from bot.settings import Secret, Settings

__all__ = ["ServerKeyError", "ServerKeys", "add_key", "load_server_keys", "remove_key", "secrets_file"]

SECRETS_FILE = "secrets.json"


class ServerKeyError(Exception):
    """The configured or stored secrets are unusable; the server must not start."""


@dataclass(frozen=True)
class ServerKeys:
    pseudonym_key: bytes
    encryption_keys: dict[str, bytes]
    active_key_id: str
    settings: Settings | None = None  # where to read the ring again after a rotation
    _cipher: list[Cipher] = field(default_factory=list, repr=False, compare=False)

    def cipher(self) -> Cipher:
        """The one cipher of this process: a rotation replaces its ring for every user."""
        if not self._cipher:
            self._cipher.append(Cipher(self.encryption_keys, self.active_key_id,
                                       reload=self.ring if self.settings is not None else None))
        return self._cipher[0]

    def ring(self) -> tuple[dict[str, bytes], str]:
        """The key ring as it is now on disk or in the environment."""
        assert self.settings is not None
        keys = load_server_keys(self.settings)
        return keys.encryption_keys, keys.active_key_id

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
    """Read the generated secrets, creating them on first run. Processes that start
    together (``--workers`` on a new install) race to create them: the first one's
    are put in place, and every process reads those."""
    path = var_dir / SECRETS_FILE
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write(path, {"pseudonym_key": _new_key(), "encryption_keys": [["k1", _new_key()]]}, replace=False)
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
    return ServerKeys(pseudonym_key=pseudonym, encryption_keys=keys, active_key_id=pairs[0][0],
                      settings=settings)


def secrets_file(settings: Settings) -> Path | None:
    """The generated key file, when the keys come from it (not the environment)."""
    return None if settings.encryption_keys else settings.var_dir / SECRETS_FILE


def add_key(settings: Settings) -> str:
    """Rotation: a new encryption key, first (active) in the generated ring; the old
    ones stay to decrypt. Written whole, then renamed: a reader never sees half."""
    path, stored, pairs = _ring_file(settings, "put a new key first there")
    numbers = [int(kid[1:]) for kid, _ in pairs if kid[1:].isdigit()]
    kid = f"k{1 + max(numbers, default=0)}"
    _write(path, {**stored, "encryption_keys": [[kid, _new_key()], *pairs]})
    return kid


def remove_key(settings: Settings, kid: str) -> None:
    path, stored, pairs = _ring_file(settings, f"remove {kid} there")
    if kid not in [pair[0] for pair in pairs]:
        raise ServerKeyError(f"there is no key {kid}; the ring holds {', '.join(p[0] for p in pairs)}")
    if pairs[0][0] == kid:
        raise ServerKeyError(f"{kid} is the active key; rotate first")
    _write(path, {**stored, "encryption_keys": [pair for pair in pairs if pair[0] != kid]})


def _ring_file(settings: Settings, instead: str) -> tuple[Path, dict[str, object], list[list[str]]]:
    path = secrets_file(settings)
    if path is None:
        raise ServerKeyError(f"the keys come from HOTLINE_ENCRYPTION_KEYS: {instead}")
    stored = _stored(settings.var_dir)
    raw = stored.get("encryption_keys")
    pairs = [[str(kid), str(value)] for kid, value in raw] if isinstance(raw, list) else []
    if not pairs:
        raise ServerKeyError("secrets.json holds no encryption keys")
    return path, stored, pairs


def _write(path: Path, data: dict[str, object], *, replace: bool = True) -> None:
    """Write ``data`` whole (0600) beside ``path``, then put it in place: over what is
    there, or with ``replace=False`` only if nothing is. A reader never sees half."""
    fd, written = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600, its own name
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(written, path)
        else:
            with contextlib.suppress(FileExistsError):  # another process was first
                os.link(written, path)
    finally:
        with contextlib.suppress(FileNotFoundError):  # gone once replaced
            os.unlink(written)
