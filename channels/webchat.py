"""Web chat: a self-contained page at ``/chat`` and its WebSocket at ``/chat/ws``.

Leave no trace on the device (docs/threat-model.md, "trafficker holding the
phone"): the page sets no cookie, uses no storage, is never cached, has a neutral
title and a quick exit. The conversation lives only as long as the page: the
address is a random token made per connection and forgotten with it.

With several server processes (``hotline run --workers``) a page's socket is open in
one of them, and a responder's message may be sent from another: each process says
in Redis which of its sockets it holds (a hash of the address, not the address) and
takes messages for them on its own pub/sub channel, sealed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Sequence
from importlib import resources
from typing import Any, ClassVar

from aiohttp import WSMsgType, web
from redis.asyncio import Redis

from bot.crypto import Cipher
from bot.messages import DeliveryError, Inbound, OnMessage, Outbound
from bot.outbox import dump_messages, load_messages
from bot.settings import Settings

__all__ = ["MAX_FRAME_BYTES", "PAGE_CSP", "WebChat"]

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 4096
# aiohttp closes the socket (1009) above this; below it, oversized frames get an
# error frame and the conversation goes on.
_TRANSPORT_LIMIT = 64 * 1024
_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_NO_TRACE = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": PAGE_CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
_HELD = "webchat:at:"  # + hash of an address → the process whose socket it is
_RELAY = "webchat:to:"  # + process → sealed messages for its sockets
_HELD_SECONDS = 86400
_STATIC_TYPES = {"chat.js": "text/javascript", "chat.css": "text/css", "chat.html": "text/html",
                 "ui.json": "application/json"}


class _FrameBudget:
    """The pace a socket's frames are read at: a burst, then a few a second. Frames
    beyond it wait, unread, so TCP pushes back on the sender; none is refused, so a
    cry for help or a "delete" typed fast after a burst is late, never lost. Cheap
    frames (bad JSON, hellos) count the same as messages, so a socket cannot spin the
    server; messages also count against the conversation's limits in Redis."""

    RATE, BURST = 5.0, 20.0

    def __init__(self) -> None:
        self._tokens = self.BURST
        self._at = time.monotonic()

    async def take(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.BURST, self._tokens + (now - self._at) * self.RATE)
        self._at = now
        if self._tokens < 1:
            await asyncio.sleep((1 - self._tokens) / self.RATE)
            self._tokens, self._at = 1.0, time.monotonic()
        self._tokens -= 1


def _hashed(address: str) -> str:
    return hashlib.sha256(address.encode()).hexdigest()


def _error(code: str, message: str) -> dict[str, str]:
    return {"type": "error", "code": code, "message": message}


def _frame(reply: Outbound) -> dict[str, Any]:
    return {
        "type": "message",
        "from": reply.sender,
        "text": reply.text,
        "buttons": [{"title": b.title, "payload": b.payload} for b in reply.buttons],
        "lang": reply.lang,
        "dir": reply.direction,
    }


class WebChat:
    name: ClassVar[str] = "webchat"
    replies_inline: ClassVar[bool] = True

    def __init__(self) -> None:
        folder = resources.files("channels") / "static"
        self._files = {name: (folder / name).read_bytes() for name in _STATIC_TYPES}
        # The open sockets of this process by address: a later message (a
        # responder's) can reach a person only while their page is open.
        self._sockets: dict[str, web.WebSocketResponse] = {}
        self._process = secrets.token_hex(8)  # this process, to the others
        self._relay: tuple[Redis, Cipher] | None = None  # set while :meth:`relay` runs

    @classmethod
    def from_settings(cls, settings: Settings) -> WebChat:
        return cls()  # needs no credentials: always on

    def routes(self, on_message: OnMessage) -> list[web.RouteDef]:
        async def page(request: web.Request) -> web.Response:
            return self._static("chat.html")

        async def static(request: web.Request) -> web.Response:
            name = request.match_info["name"]
            if name not in _STATIC_TYPES or name == "chat.html":
                raise web.HTTPNotFound()
            return self._static(name)

        async def socket(request: web.Request) -> web.WebSocketResponse:
            return await self._converse(request, on_message)

        return [
            web.get("/chat", page),
            web.get("/chat/static/{name}", static),
            web.get("/chat/ws", socket),
        ]

    async def send(self, address: str, message: Outbound) -> str | None:
        ws = self._sockets.get(address)
        if ws is not None and not ws.closed:
            await ws.send_json(_frame(message))
            return None
        if self._relay is not None:
            client, cipher = self._relay
            holder = await client.get(_HELD + _hashed(address))
            if holder is not None:
                sealed = cipher.encrypt(address.encode() + b"\n" + dump_messages([message]), _RELAY.encode())
                if await client.publish(_RELAY + holder.decode(), sealed):
                    return None
        raise DeliveryError("page_closed", permanent=True)

    async def relay(self, client: Redis, cipher: Cipher) -> None:
        """Take, until cancelled, the messages other processes send to this one's sockets."""
        pubsub = client.pubsub()
        await pubsub.subscribe(_RELAY + self._process)
        self._relay = (client, cipher)
        try:
            while True:
                item = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if item is None:
                    continue
                address, _, body = cipher.decrypt(item["data"], _RELAY.encode()).partition(b"\n")
                ws = self._sockets.get(address.decode())
                if ws is not None and not ws.closed:
                    for message in load_messages(body):
                        await ws.send_json(_frame(message))
        finally:
            self._relay = None
            await pubsub.reset()

    async def unsend(self, address: str, refs: Sequence[str]) -> None:
        """The page shows nothing once it is closed; the open page clears itself."""

    async def close(self) -> None:
        for ws in list(self._sockets.values()):
            await ws.close()

    def _static(self, name: str) -> web.Response:
        return web.Response(body=self._files[name], content_type=_STATIC_TYPES[name],
                            charset="utf-8", headers=_NO_TRACE)

    async def _converse(self, request: web.Request, on_message: OnMessage) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=_TRANSPORT_LIMIT)
        await ws.prepare(request)
        address = await self._hold(secrets.token_urlsafe(24), ws)
        hints: dict[str, str] = {}
        try:
            await self._receive(ws, address, hints, on_message)
        finally:
            for held in [a for a, s in self._sockets.items() if s is ws]:
                await self._let_go(held)
        return ws

    async def _hold(self, address: str, ws: web.WebSocketResponse) -> str:
        self._sockets[address] = ws
        if self._relay is not None:
            await self._relay[0].set(_HELD + _hashed(address), self._process, ex=_HELD_SECONDS)
        return address

    async def _let_go(self, address: str) -> None:
        del self._sockets[address]
        if self._relay is not None:
            await self._relay[0].delete(_HELD + _hashed(address))

    async def _receive(self, ws: web.WebSocketResponse, address: str, hints: dict[str, str],
                       on_message: OnMessage) -> None:
        frames = _FrameBudget()
        async for msg in ws:
            await frames.take()
            if msg.type != WSMsgType.TEXT:
                if msg.type == WSMsgType.BINARY:
                    await ws.send_json(_error("bad_frame", "Send JSON text frames only."))
                continue
            frame, problem = self._parse(msg.data)
            if problem is not None:
                await ws.send_json(problem)
                continue
            kind = frame["type"]
            if kind == "hello":
                lang = frame.get("lang")
                if isinstance(lang, str) and _LANG.match(lang):
                    hints["browser_lang"] = lang.lower()
                continue
            if kind == "delete":
                inbound = Inbound(self.name, address, "", dict(hints), command="delete")
                await self._let_go(address)
                address = await self._hold(secrets.token_urlsafe(24), ws)  # what follows starts afresh
            else:
                inbound = Inbound(self.name, address, frame["text"], dict(hints))
            try:
                replies = await on_message(inbound)
            except Exception as exc:  # one failed turn must not end the conversation
                log.error("turn failed", extra={"channel": self.name, "error": type(exc).__name__})
                await ws.send_json(_error("unavailable", "Something went wrong. Please try again."))
                continue
            for reply in replies:
                await ws.send_json(_frame(reply))

    @staticmethod
    def _parse(data: str) -> tuple[dict[str, Any], dict[str, str] | None]:
        """The frame, or the error frame that answers it."""
        if len(data.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES:
            return {}, _error("too_large", "A message can be at most 4 KB. Please send it in parts.")
        try:
            frame = json.loads(data)
        except ValueError:
            return {}, _error("bad_json", "That was not valid JSON.")
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            return {}, _error("bad_frame", 'A frame is a JSON object with a "type".')
        kind = frame["type"]
        if kind not in ("message", "hello", "delete"):
            return {}, _error("unknown_type", 'The type must be "message", "hello" or "delete".')
        if kind == "message":
            text = frame.get("text")
            if not isinstance(text, str) or not text.strip():
                return {}, _error("empty", "A message needs some text.")
            if "\x00" in text:
                return {}, _error("bad_text", "The message contains characters that are not allowed.")
        return frame, None
