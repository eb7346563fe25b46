"""The ``hotline`` command."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import replace

from bot.settings import Settings, SettingsError, load_settings

__all__ = ["main"]


def _fail(message: str, code: int = 1) -> int:
    print(f"hotline: {message}", file=sys.stderr)
    return code


def _bind(settings: Settings) -> socket.socket:
    """Take the port before the slow start, so a second server fails at once."""
    return socket.create_server((settings.host, settings.port), reuse_port=False, backlog=256)


async def _serve(settings: Settings, sock: socket.socket) -> None:
    from aiohttp import web

    from bot.app import create_app
    from bot.logs import AccessLogger, setup_logging

    setup_logging(settings.log_level)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # before the banner: a stop is never lost
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(create_app(settings), access_log_class=AccessLogger,
                           handle_signals=False)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        print(f"Hotline is running.\n  Web chat: {settings.base_url}/chat\n"
              f"  Health:   {settings.base_url}/healthz", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def _run(settings: Settings) -> int:
    from bot.agent import StartupError
    from bot.redis_conn import RedisUnavailable
    from bot.server_keys import ServerKeyError

    try:
        sock = _bind(settings)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return _fail(f"port {settings.port} on {settings.host} is in use; is Hotline already "
                         "running? Stop it or set HOTLINE_PORT.")
        return _fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}")
    try:
        asyncio.run(_serve(settings, sock))
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hotline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="serve the web chat, webhooks and console")
    run.add_argument("--telegram-polling", action="store_true",
                     help="fetch Telegram updates by long polling (development, no public address)")
    commands.add_parser("train", help="train the model if its data or config changed")
    commands.add_parser("eval", help="evaluate every language on held-out data; write docs/eval.md")
    commands.add_parser("triage", help="read JSON Lines on stdin, write a triage record per line")
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
    return _run(replace(settings, telegram_polling=args.telegram_polling))


if __name__ == "__main__":
    sys.exit(main())
