"""Accounts, login throttling and the audit chain, in a real Redis."""

from __future__ import annotations

import pyotp
import pytest
from redis.asyncio import Redis

from bot.crypto import Cipher
from console.accounts import AccountError, Accounts
from console.audit import HEAD, STREAM, AuditLog
from console.sessions import LOCK_SECONDS, MAX_FAILURES, Sessions, Throttle
from tests.conftest import FAST_ARGON2


@pytest.fixture
def client(empty_redis: Redis) -> Redis:
    return empty_redis


@pytest.fixture
def accounts(client: Redis) -> Accounts:
    return Accounts(client, Cipher({"k1": b"\x09" * 32}, "k1"), FAST_ARGON2)


def secret_of(uri: str) -> str:
    return pyotp.parse_uri(uri).secret


async def test_a_login_needs_the_password_and_a_fresh_code(accounts: Accounts, client: Redis) -> None:
    uri = await accounts.add("amira", "responder", "a long enough password")
    totp = pyotp.TOTP(secret_of(uri))
    assert await accounts.check("amira", "wrong password here", totp.now()) is None
    wrong_code = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
    assert await accounts.check("amira", "a long enough password", wrong_code) is None
    member = await accounts.check("amira", "a long enough password", totp.now())
    assert member is not None and member.role == "responder"
    assert await accounts.check("amira", "a long enough password", totp.now()) is None  # used once
    stored = b"".join([await client.dump(k) or b"" for k in await client.keys("*")])
    assert b"a long enough password" not in stored and secret_of(uri).encode() not in stored


async def test_accounts_refuse_bad_names_roles_passwords_and_twins(accounts: Accounts) -> None:
    for name, role, password in [("Bad Name", "responder", "x" * 12), ("ok", "boss", "x" * 12),
                                 ("ok", "responder", "short")]:
        with pytest.raises(AccountError):
            await accounts.add(name, role, password)
    await accounts.add("lena", "admin", "x" * 12)
    with pytest.raises(AccountError, match="already exists"):
        await accounts.add("lena", "responder", "y" * 12)


async def test_a_disabled_account_cannot_log_in(accounts: Accounts) -> None:
    totp = pyotp.TOTP(secret_of(await accounts.add("omar", "supervisor", "x" * 12)))
    await accounts.disable("omar")
    assert await accounts.check("omar", "x" * 12, totp.now()) is None
    assert [(m.name, m.disabled) for m in await accounts.list()] == [("omar", True)]


async def test_failures_back_off_then_lock_the_name(client: Redis) -> None:
    throttle = Throttle(client)
    assert await throttle.wait_seconds("sam") == 0
    await throttle.failed("sam")
    assert await throttle.wait_seconds("sam") >= 1  # the next try waits
    for _ in range(MAX_FAILURES - 1):
        await throttle.failed("sam")
    assert await throttle.wait_seconds("sam") > LOCK_SECONDS - 5  # locked
    assert await throttle.wait_seconds("someone-else") == 0  # per name, not for everyone
    await throttle.succeeded("sam")
    assert await throttle.wait_seconds("sam") == 0


async def test_the_setup_link_works_once(client: Redis) -> None:
    sessions = Sessions(client)
    token = await sessions.new_setup_token()
    assert not await sessions.use_setup_token("guess")
    assert await sessions.use_setup_token(token)
    assert not await sessions.use_setup_token(token)


async def test_the_audit_chain_finds_edits_deletions_and_a_cut_tail(client: Redis) -> None:
    audit = AuditLog(client, b"\x0a" * 32)
    for n in range(5):
        await audit.record("amira", "view", f"case-{n}")
    assert (await audit.verify()).ok
    assert [e.target for e in await audit.entries()] == [f"case-{n}" for n in range(4, -1, -1)]
    ids = [entry_id for entry_id, _ in await client.xrange(STREAM)]

    await client.xadd(STREAM, {"at": "1", "actor": "x", "action": "x", "target": "", "detail": "",
                               "prev": "0" * 64, "seal": "f" * 64}, id="9999999999999-0")
    assert not (await audit.verify()).ok  # a forged entry without the key
    await client.xdel(STREAM, "9999999999999-0")
    assert (await audit.verify()).ok

    await client.xdel(STREAM, ids[2])
    result = await audit.verify()
    assert not result.ok and "does not follow" in result.problem  # a deleted entry

    await client.delete(STREAM, HEAD)
    for n in range(3):
        await audit.record("amira", "view", f"case-{n}")
    last = (await client.xrange(STREAM))[-1][0]
    await client.xdel(STREAM, last)
    assert "ends early" in (await audit.verify()).problem  # the tail cut off


async def test_an_edited_entry_is_found(client: Redis) -> None:
    audit = AuditLog(client, b"\x0b" * 32)
    await audit.record("amira", "reveal", "case-1", "a reason")
    await audit.record("amira", "view", "case-1")
    entries = await client.xrange(STREAM)
    await client.delete(STREAM)  # rewritten in place, the first reason changed
    for n, (entry_id, fields) in enumerate(entries):
        await client.xadd(STREAM, {**fields, b"detail": b"another reason"} if n == 0 else fields, id=entry_id)
    assert (await audit.verify()).problem == "entry 1 was changed"
