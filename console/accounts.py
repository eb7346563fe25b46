"""Staff accounts: a role, an argon2id password and a TOTP secret (kept encrypted).

Threat (docs/threat-model.md, "curious or corrupt insider"): a console account
reads what people in danger wrote. A password alone is not enough (TOTP, RFC 6238,
each code accepted once), a stolen Redis dump yields neither (argon2id hashes, the
TOTP secret sealed under the server key), and a guessed name says nothing: an
unknown name costs the same argon2id check as a known one.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Literal

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from redis.asyncio import Redis

from bot.crypto import Cipher

__all__ = ["ROLES", "AccountError", "Accounts", "Role", "StaffMember", "at_least"]

Role = Literal["responder", "supervisor", "admin"]
ROLES: tuple[Role, ...] = ("responder", "supervisor", "admin")  # each may do what the ones before may
STAFF = "staff:"
NAMES = "staff-names"
ISSUER = "Hotline"
MIN_PASSWORD = 12
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")


class AccountError(Exception):
    """An account cannot be made or changed as asked; the message says why."""


def at_least(role: str, needed: Role) -> bool:
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


@dataclass(frozen=True)
class StaffMember:
    name: str
    role: Role
    disabled: bool
    created_at: float


class Accounts:
    def __init__(self, client: Redis, cipher: Cipher, hasher: PasswordHasher | None = None) -> None:
        self._redis = client
        self._cipher = cipher
        self._hasher = hasher or PasswordHasher()
        self._dummy = ""  # hashed at the first unknown name, not at start-up

    async def add(self, name: str, role: str, password: str) -> str:
        """Create the account; returns the TOTP enrolment URI, to be shown once."""
        self.validate(name, role, password)
        secret = pyotp.random_base32()
        key = STAFF + name
        digest = await asyncio.to_thread(self._hasher.hash, password)
        fields = {"role": role, "password": digest, "created_at": repr(time.time()), "disabled": "",
                  "totp": self._cipher.encrypt(secret.encode(), key.encode()), "totp_last": "0"}
        if not await self._redis.hsetnx(key, "role", role):
            raise AccountError(f"{name} already exists")
        await self._redis.hset(key, mapping=fields)  # type: ignore[arg-type]
        await self._redis.sadd(NAMES, name)
        return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)

    @staticmethod
    def validate(name: str, role: str, password: str) -> None:
        if not _NAME.match(name):
            raise AccountError("a name is 2-32 lowercase letters, digits, '.', '_' or '-'")
        if role not in ROLES:
            raise AccountError(f"the role must be one of {', '.join(ROLES)}")
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")

    async def get(self, name: str) -> StaffMember | None:
        fields = await self._redis.hmget(STAFF + name, "role", "disabled", "created_at")
        if fields[0] is None:
            return None
        return StaffMember(name, fields[0].decode(), bool(fields[1]), float(fields[2] or 0))

    async def list(self) -> list[StaffMember]:
        names = sorted(n.decode() for n in await self._redis.smembers(NAMES))
        return [member for name in names if (member := await self.get(name)) is not None]

    async def any(self) -> bool:
        return bool(await self._redis.scard(NAMES))

    async def disable(self, name: str) -> None:
        if await self.get(name) is None:
            raise AccountError(f"no account named {name}")
        await self._redis.hset(STAFF + name, "disabled", "1")

    async def check(self, name: str, password: str, code: str) -> StaffMember | None:
        """The member, if the password and a fresh TOTP code are right and the
        account is enabled; None otherwise, without saying which part was wrong."""
        key = STAFF + name
        digest, sealed, last = await self._redis.hmget(key, "password", "totp", "totp_last")
        if not digest and not self._dummy:
            self._dummy = await asyncio.to_thread(self._hasher.hash, "not a password of anyone")
        valid = await asyncio.to_thread(self._verifies, digest.decode() if digest else self._dummy, password)
        if not (valid and digest and sealed):
            return None
        totp = pyotp.TOTP(self._cipher.decrypt(sealed, key.encode()).decode())
        now = time.time()
        # The current 30 s step or either neighbour (clock drift), each code only once.
        step = next((s for s in (0, -1, 1)
                     if totp.verify(code.strip(), int(now) + s * totp.interval)), None)  # type: ignore[arg-type]
        counter = int(now // totp.interval) + (step or 0)
        if step is None or counter <= int(last or 0):
            return None  # wrong, or a code already used: a watched screen is not a second factor
        await self._redis.hset(key, "totp_last", str(counter))
        member = await self.get(name)
        return member if member is not None and not member.disabled else None

    def _verifies(self, digest: str, password: str) -> bool:
        try:
            return self._hasher.verify(digest, password)
        except VerificationError:
            return False
