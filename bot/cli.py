"""The ``hotline`` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import socket
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from bot.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from console.accounts import Accounts
    from console.audit import AuditLog

__all__ = ["main"]


def _fail(message: str, code: int = 1) -> int:
    print(f"hotline: {message}", file=sys.stderr)
    return code


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError("a whole number, 1 or more")
    return int(value)


def _bind(settings: Settings) -> socket.socket:
    """Take the port before the slow start, so a second server fails at once."""
    return socket.create_server((settings.host, settings.port), reuse_port=False, backlog=256)


def _run(settings: Settings, workers: int) -> int:
    from bot.agent import StartupError
    from bot.redis_conn import RedisUnavailable
    from bot.serve import run_workers, serve
    from bot.server_keys import ServerKeyError

    try:
        sock = _bind(settings)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return _fail(f"port {settings.port} on {settings.host} is in use; is Hotline already "
                         "running? Stop it or set HOTLINE_PORT.")
        return _fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}")
    try:
        if workers > 1:
            return run_workers(settings, sock, workers)
        asyncio.run(serve(settings, sock))
    except (StartupError, RedisUnavailable, ServerKeyError) as exc:
        return _fail(f"cannot start: {exc}")
    finally:
        sock.close()
    return 0


def _train(settings: Settings) -> int:
    from bot.training import train

    path, how = train(settings)
    print(f"model {how}: {path}")
    return 0


def _eval(settings: Settings) -> int:
    """Train if needed, evaluate every language, write docs/eval.md; exit 1 below the bar."""
    from bot.evaluation import F1_BAR, REPORT, run
    from bot.training import train

    path, _ = train(settings)
    evaluation = run(path)
    for r in evaluation.languages:
        print(f"{r.code:>13}  macro-F1 {r.macro_f1:.3f}  accuracy {r.accuracy:.3f}  "
              f"stories {r.stories_passed}/{r.stories}")
    for t in evaluation.triage:
        print(f"{'triage ' + t.code:>13}  P1 recall {t.p1_recall:.2f}  false P1 {t.false_p1:.2f}  "
              f"language {t.language:.2f}  kind {t.kind:.2f}")
    print(f"written: {REPORT.relative_to(REPORT.parent.parent)}")
    failing = evaluation.failing
    return _fail(f"below the bar (macro-F1 {F1_BAR}, all stories, triage targets): "
                 f"{', '.join(failing)}") if failing else 0


def _triage(settings: Settings) -> int:
    """JSON Lines on stdin → one triage record per line on stdout (DESIGN.md)."""
    from rasa.core.agent import Agent

    from bot.agent import StartupError, current_model
    from bot.languages import Languages
    from triage.assess import Triage
    from triage.jsonl import triage_lines
    from triage.lexicon import Lexicon

    try:
        model = current_model(settings)
    except StartupError as exc:
        return _fail(str(exc))
    agent = Agent.load(str(model))
    triage = Triage(Lexicon.load(), Languages.load())

    async def run() -> None:
        async for line in triage_lines(sys.stdin, triage, agent.parse_message):
            print(line, flush=True)

    asyncio.run(run())
    return 0


def _set_webhook(settings: Settings) -> int:
    """Register the webhook: done by an admin, never at start-up (no network then)."""
    from telegram.error import TelegramError

    from channels.telegram import Telegram

    telegram = Telegram.from_settings(settings)
    if telegram is None or settings.telegram_webhook_secret is None or not settings.public_url:
        return _fail("set TELEGRAM_BOT_TOKEN, TELEGRAM_WEBHOOK_SECRET and HOTLINE_PUBLIC_URL first", 2)

    async def register() -> None:
        try:
            await telegram.set_webhook(settings.public_url or "")
        finally:
            await telegram.close()

    try:
        asyncio.run(register())
    except TelegramError as exc:
        return _fail(f"Telegram refused the webhook: {exc}")
    print(f"webhook set: {settings.public_url}/webhooks/telegram")
    return 0


def _staff(settings: Settings, args: argparse.Namespace) -> int:
    """Staff accounts, administered on the server (each change is audited)."""
    import getpass

    from console.accounts import AccountError

    password = ""
    if args.action == "add":
        if sys.stdin.isatty():
            password = getpass.getpass("Password: ")
            if getpass.getpass("Again: ") != password:
                return _fail("the passwords differ")
        else:
            password = sys.stdin.readline().rstrip("\n")

    async def run() -> int:
        async with _console_parts(settings) as (accounts, audit):
            if args.action == "add":
                uri = await accounts.add(args.name, args.role, password)
                await audit.record("cli", "staff_add", args.name, args.role)
                print(f"{args.name} ({args.role}) added. Add this to their authenticator app; "
                      f"it is shown only now:\n{uri}")
            elif args.action == "disable":
                await accounts.disable(args.name)
                await audit.record("cli", "staff_disable", args.name)
                print(f"{args.name} disabled")
            else:
                for member in await accounts.list():
                    print(f"{member.name}\t{member.role}\t{'disabled' if member.disabled else 'active'}")
        return 0

    try:
        return asyncio.run(run())
    except AccountError as exc:
        return _fail(str(exc), 2)


def _purge(settings: Settings, now: bool) -> int:
    """Erase the cases past their retention (or, with --dry-run, list them)."""
    from bot.redis_conn import connect
    from bot.server_keys import load_server_keys
    from triage.cases import CaseStore
    from triage.retention import Retention, purge

    async def run() -> None:
        connection = await connect(settings)
        try:
            cases = CaseStore(connection.client, load_server_keys(settings).cipher())
            due = await purge(cases, Retention.from_settings(settings), dry_run=not now)
        finally:
            await connection.close()
        for case in due:
            closed = time.strftime("%Y-%m-%d", time.gmtime(case.updated_at))
            print(f"{case.id}\t{case.priority}\tclosed {closed}")
        print(f"{len(due)} case(s) {'erased' if now else 'past their retention (nothing erased: --dry-run)'}")

    asyncio.run(run())
    return 0


def _keys(settings: Settings, args: argparse.Namespace) -> int:
    """Rotate the encryption key (re-encrypting everything, servers running) or retire one."""
    from bot.redis_conn import connect
    from bot.rotation import FOLLOW_SECONDS, count_by_key, reencrypt
    from bot.server_keys import ServerKeyError, add_key, load_server_keys, remove_key, secrets_file

    async def run() -> int:
        connection = await connect(settings)
        try:
            if args.action == "rotate":
                if secrets_file(settings) is not None:
                    kid = add_key(settings)
                    print(f"new active key {kid}; waiting {FOLLOW_SECONDS + 2:.0f} s for running servers "
                          "to adopt it")
                    await asyncio.sleep(FOLLOW_SECONDS + 2)
                counts = await reencrypt(connection.client, load_server_keys(settings).cipher())
                print("re-encrypted: " + ", ".join(f"{n} {what}" for what, n in sorted(counts.items())))
                return 0
            left = (await count_by_key(connection.client)).get(args.kid, 0)
            if left:
                return _fail(f"{left} value(s) are still sealed with {args.kid}; run hotline keys rotate "
                             "again (queued messages go within minutes)")
            remove_key(settings, args.kid)
            print(f"{args.kid} retired")
            return 0
        finally:
            await connection.close()

    try:
        return asyncio.run(run())
    except ServerKeyError as exc:
        return _fail(str(exc), 2)


def _audit_verify(settings: Settings) -> int:
    async def run() -> int:
        async with _console_parts(settings) as (_, audit):
            result = await audit.verify()
        if result.ok:
            print(f"audit log verified: {result.entries} entries, none changed or missing")
            return 0
        return _fail(f"the audit log is broken: {result.problem}")

    return asyncio.run(run())


@contextlib.asynccontextmanager
async def _console_parts(settings: Settings) -> AsyncIterator[tuple[Accounts, AuditLog]]:
    """Redis (the running server's embedded one, or REDIS_URL) and the server keys."""
    from bot.redis_conn import connect
    from bot.server_keys import load_server_keys
    from console.accounts import Accounts
    from console.audit import AuditLog

    keys = load_server_keys(settings)
    connection = await connect(settings)
    try:
        yield Accounts(connection.client, keys.cipher()), AuditLog(connection.client, keys.pseudonym_key)
    finally:
        await connection.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hotline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="serve the web chat, webhooks and console")
    run.add_argument("--telegram-polling", action="store_true",
                     help="fetch Telegram updates by long polling (development, no public address)")
    run.add_argument("--workers", type=_positive, default=1, metavar="N",
                     help="serve with N processes on one port and one Redis (docs/operations.md)")
    commands.add_parser("train", help="train the model if its data or config changed")
    commands.add_parser("eval", help="evaluate every language on held-out data; write docs/eval.md")
    commands.add_parser("triage", help="read JSON Lines on stdin, write a triage record per line")
    staff = commands.add_parser("staff", help="console accounts").add_subparsers(dest="action", required=True)
    add = staff.add_parser("add", help="add an account (password from stdin when not a terminal)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["responder", "supervisor", "admin"])
    staff.add_parser("list", help="list accounts")
    staff.add_parser("disable", help="disable an account").add_argument("name")
    keys = commands.add_parser("keys", help="encryption keys").add_subparsers(dest="action", required=True)
    keys.add_parser("rotate", help="a new active key; re-encrypt everything (servers keep running)")
    keys.add_parser("retire", help="remove an old key once nothing is sealed with it").add_argument("kid")
    purge = commands.add_parser("purge", help="erase the cases past their retention")
    when = purge.add_mutually_exclusive_group(required=True)
    when.add_argument("--dry-run", action="store_true", help="list them, erase nothing")
    when.add_argument("--now", action="store_true", help="erase them now")
    audit = commands.add_parser("audit", help="the audit log").add_subparsers(dest="action", required=True)
    audit.add_parser("verify", help="check the audit log's chain")
    telegram = commands.add_parser("telegram", help="Telegram bot administration")
    telegram.add_subparsers(dest="action", required=True).add_parser(
        "set-webhook", help="register HOTLINE_PUBLIC_URL/webhooks/telegram with the secret")
    args = parser.parse_args(argv)
    # Rasa's pinned libraries print deprecation notices on import (and reset the
    # warning filters as they load); they are for developers, whose tests turn
    # warnings into errors, not for an operator's terminal or the JSON log.
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.ERROR)
    try:
        settings = load_settings()
    except SettingsError as exc:
        return _fail(f"bad configuration: {exc}", 2)
    if args.command == "train":
        return _train(settings)
    if args.command == "eval":
        return _eval(settings)
    if args.command == "triage":
        return _triage(settings)
    if args.command == "telegram":
        return _set_webhook(settings)
    if args.command == "staff":
        return _staff(settings, args)
    if args.command == "audit":
        return _audit_verify(settings)
    if args.command == "purge":
        return _purge(settings, now=args.now)
    if args.command == "keys":
        return _keys(settings, args)
    return _run(replace(settings, telegram_polling=args.telegram_polling), args.workers)


if __name__ == "__main__":
    sys.exit(main())
