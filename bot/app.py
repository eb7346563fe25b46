"""The application factory: the one place where Hotline is wired together."""

from __future__ import annotations

import logging

from aiohttp import web

from bot.agent import agent_ctx
from bot.keys import AGENT, CONVERSATIONS, METRICS, REDIS, SERVER_KEYS, SETTINGS
from bot.messages import Inbound, Outbound
from bot.metrics import Metrics
from bot.redis_conn import redis_ctx
from bot.server_keys import load_server_keys
from bot.settings import Settings
from channels import CHANNELS

__all__ = ["MAX_BODY_BYTES", "create_app"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
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
    response.headers["Server"] = "hotline"  # no version banner


async def _healthz(request: web.Request) -> web.Response:
    await request.app[REDIS].ping()
    ready = request.app[AGENT].is_ready()
    return web.json_response({"status": "ok" if ready else "loading"}, status=200 if ready else 503)


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})


def create_app(settings: Settings) -> web.Application:
    """Build the app; Redis and the model are opened when it starts."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app[SERVER_KEYS] = load_server_keys(settings)
    app[METRICS] = Metrics()
    app.cleanup_ctx.extend([redis_ctx, agent_ctx])
    # aiohttp 3.9 types this signal's callbacks wrongly (fixed in 3.10).
    app.on_response_prepare.append(_harden)  # type: ignore[arg-type]

    async def on_message(inbound: Inbound) -> list[Outbound]:
        return await app[CONVERSATIONS].handle(inbound)

    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)
    for channel_type in CHANNELS:
        channel = channel_type.from_settings(settings)
        if channel is None:
            log.info("channel off: no credentials", extra={"channel": channel_type.name})
            continue
        app.router.add_routes(channel.routes(on_message))
    return app
