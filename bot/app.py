"""The application factory: the one place where Hotline is wired together."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import redis
from aiohttp import web
from rasa.core.lock_store import LockError

from bot.agent import agent_ctx
from bot.background import resilient, running
from bot.conversation import conversations_ctx
from bot.keys import AGENT, CONVERSATIONS, METRICS, REDIS, SENDERS, SERVER_KEYS, SETTINGS
from bot.messages import Inbound, InProgress, OnMessage, Outbound
from bot.metrics import Metrics
from bot.redis_conn import redis_ctx
from bot.rotation import following_rotations
from bot.server_keys import load_server_keys
from bot.settings import Settings
from channels import CHANNELS, Channel, Telegram, WebChat
from console.web import console_ctx, console_hosts, console_routes

__all__ = ["MAX_BODY_BYTES", "create_app", "read_timeout", "retry_later"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
# A request body must arrive within this (a slow sender holds a connection open);
# headers are the reverse proxy's to time out (docs/threat-model.md).
READ_TIMEOUT_SECONDS = 10.0
RETRY_AFTER_SECONDS = 5
# Every response, whatever route: nothing may frame, sniff or refer from us.
_BASE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


async def _harden(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in _BASE_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.app[SETTINGS].behind_tls:
        response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    response.headers["Server"] = "hotline"  # no version banner


async def _healthz(request: web.Request) -> web.Response:
    await request.app[REDIS].ping()
    ready = request.app[AGENT].is_ready()
    return web.json_response({"status": "ok" if ready else "loading"}, status=200 if ready else 503)


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})


def read_timeout(seconds: float) -> Any:
    """Middleware: read a request's body within ``seconds`` or answer 408."""
    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
        if request.body_exists:
            try:
                await asyncio.wait_for(request.read(), seconds)
            except asyncio.TimeoutError:
                raise web.HTTPRequestTimeout(text="The request body came too slowly.") from None
        return await handler(request)

    return middleware


@web.middleware
async def retry_later(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                      ) -> web.StreamResponse:
    """Middleware: what cannot be answered now is answered 503 with Retry-After, so
    that Twilio and Telegram deliver it again: a delivery still being answered
    elsewhere, or Redis unreachable (restarting, failing over)."""
    try:
        return await handler(request)
    except InProgress:
        reason, text = "in_progress", "This delivery is being answered; retry later."
    except (redis.RedisError, LockError) as exc:
        log.warning("store unavailable", extra={"path": request.path, "error": type(exc).__name__})
        reason, text = "unavailable", "Temporarily unavailable; retry later."
    return web.json_response({"error": reason, "message": text}, status=503,
                             headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def _channels_ctx(channels: list[Channel]) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for channel in channels:
                if isinstance(channel, WebChat):  # its sockets, reachable from other processes
                    relay = functools.partial(channel.relay, app[REDIS], app[SERVER_KEYS].cipher())
                    await stack.enter_async_context(running(resilient("web chat relay", relay)))
            yield
        for channel in channels:
            await channel.close()

    return ctx


async def _rotation_ctx(app: web.Application) -> AsyncIterator[None]:
    async with running(following_rotations(app[SERVER_KEYS])):
        yield


def _polling_ctx(telegram: Telegram, on_message: OnMessage
                 ) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with running(telegram.poll(on_message)):
            yield

    return ctx


def create_app(settings: Settings) -> web.Application:
    """Build the app; Redis, the model and the outbox start when it starts."""
    app = web.Application(client_max_size=MAX_BODY_BYTES,
                          middlewares=[read_timeout(READ_TIMEOUT_SECONDS), retry_later, console_hosts])
    app[SETTINGS] = settings
    app[SERVER_KEYS] = load_server_keys(settings)
    app[METRICS] = Metrics()
    app.on_response_prepare.append(_harden)  # type: ignore[arg-type]  # aiohttp 3.9 mistypes it

    channels: list[Channel] = []
    for channel_type in CHANNELS:
        channel = channel_type.from_settings(settings)
        if channel is None:
            log.info("channel off: not configured", extra={"channel": channel_type.name})
        else:
            channels.append(channel)
    app[SENDERS] = {channel.name: channel for channel in channels}

    app.cleanup_ctx.extend([redis_ctx, _rotation_ctx, agent_ctx, conversations_ctx, console_ctx,
                            _channels_ctx(channels)])
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)
    app.router.add_routes(console_routes())
    for channel in channels:
        on_message = _handler(app, channel.replies_inline)
        app.router.add_routes(channel.routes(on_message))
        if settings.telegram_polling and isinstance(channel, Telegram):
            app.cleanup_ctx.append(_polling_ctx(channel, on_message))
    return app


def _handler(app: web.Application, inline: bool) -> OnMessage:
    async def on_message(inbound: Inbound) -> list[Outbound]:
        return await app[CONVERSATIONS].handle(inbound, inline=inline)

    return on_message
