"""Local stand-ins for Twilio's REST API and Telegram's Bot API.

They are the outside world we cannot reach from here: small aiohttp servers on
loopback, in a thread with their own event loop, that the real ``twilio`` and
``python-telegram-bot`` clients talk to. They answer in the providers' formats,
record what they were sent, and can be told to fail.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Call:
    method: str  # Twilio: "Messages"; Telegram: the Bot API method, e.g. "sendMessage"
    params: dict[str, Any]


@dataclass
class FakeProvider:
    """A recording HTTP server; ``fail_next`` answers that many requests with 500, and
    ``fail_for(seconds)`` every request for that long (an outage)."""

    calls: list[Call] = field(default_factory=list)
    fail_next: int = 0
    fail_until: float = 0.0  # time.monotonic() at which an outage ends
    # Told of each recorded call, in the server's thread (the benchmark counts with it).
    listeners: list[Callable[[Call], None]] = field(default_factory=list)
    failures_served: int = 0
    url: str = ""
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        raise NotImplementedError

    def start(self) -> FakeProvider:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._runner = web.AppRunner(self.app())
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            port = self._runner.addresses[0][1]
            self.url = f"http://127.0.0.1:{port}"
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def record(self, call: Call) -> None:
        with self._changed:
            self.calls.append(call)
            self._changed.notify_all()
        for listener in self.listeners:
            listener(call)

    def fail_for(self, seconds: float) -> None:
        with self._changed:
            self.fail_until = time.monotonic() + seconds

    def take_failure(self) -> bool:
        with self._changed:
            if self.fail_next > 0 or time.monotonic() < self.fail_until:
                self.fail_next = max(0, self.fail_next - 1)
                self.failures_served += 1
                return True
            return False

    def wait_for(self, predicate: Callable[[list[Call]], bool], timeout: float = 30) -> list[Call]:
        """Block until the recorded calls satisfy ``predicate`` (or fail the test)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.calls):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out; calls so far: {[c.method for c in self.calls]}")
                self._changed.wait(remaining)
            return list(self.calls)

    def of(self, method: str) -> list[Call]:
        with self._changed:
            return [c for c in self.calls if c.method == method]

    def reset(self) -> None:
        with self._changed:
            self.calls.clear()
            self.fail_next = 0
            self.fail_until = 0.0


class FakeTwilio(FakeProvider):
    """``POST /2010-04-01/Accounts/{sid}/Messages.json`` as Twilio answers it."""

    blocked: set[str]

    def app(self) -> web.Application:
        self.blocked = set()
        sids = itertools.count(1)

        async def create(request: web.Request) -> web.Response:
            form = dict(await request.post())
            if self.take_failure():
                return web.json_response({"code": 20500, "message": "Internal Server Error",
                                          "more_info": "", "status": 500}, status=500)
            if form.get("To") in self.blocked:  # the person texted STOP to the carrier
                return web.json_response({"code": 21610, "message": "Attempt to send to unsubscribed "
                                          "recipient", "more_info": "", "status": 400}, status=400)
            self.record(Call("Messages", {**form, "account": request.match_info["sid"],
                                          "auth": request.headers.get("Authorization", "")}))
            sid = f"SM{next(sids):032x}"
            return web.json_response({
                "sid": sid, "account_sid": request.match_info["sid"], "to": form.get("To"),
                "from": form.get("From"), "messaging_service_sid": form.get("MessagingServiceSid"),
                "body": form.get("Body"), "status": "queued", "num_segments": "1", "direction":
                "outbound-api", "api_version": "2010-04-01", "price": None, "error_code": None,
                "uri": f"/2010-04-01/Accounts/{request.match_info['sid']}/Messages/{sid}.json",
            }, status=201)

        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", create)
        return app


class FakeTelegram(FakeProvider):
    """``POST /bot{token}/{method}`` as the Bot API answers it."""

    blocked: set[int]
    updates: list[dict[str, Any]]

    def app(self) -> web.Application:
        self.blocked = set()
        self.updates = []
        message_ids = itertools.count(1000)

        async def call(request: web.Request) -> web.Response:
            method = request.match_info["method"]
            if request.content_type == "application/json":
                params = await request.json()
            else:
                params = {k: _maybe_json(v) for k, v in (await request.post()).items()}
            if method == "getUpdates":
                self.record(Call(method, params))
                updates = self._pop_updates()
                if not updates:
                    await asyncio.sleep(0.2)  # a short long-poll
                return _ok(updates)
            if self.take_failure():
                return web.json_response({"ok": False, "error_code": 500,
                                          "description": "Internal Server Error"}, status=500)
            chat_id = params.get("chat_id")
            if method == "sendMessage" and int(chat_id) in self.blocked:
                return web.json_response({"ok": False, "error_code": 403, "description":
                                          "Forbidden: bot was blocked by the user"}, status=403)
            message_id = next(message_ids)
            self.record(Call(method, {**params, "_sent_id": message_id}))
            if method == "getMe":
                return _ok({"id": 4242, "is_bot": True, "first_name": "Hotline", "username": "hotline_bot"})
            if method == "sendMessage":
                return _ok({"message_id": message_id, "date": int(time.time()),
                            "chat": {"id": int(chat_id), "type": "private"}, "text": params.get("text"),
                            "from": {"id": 4242, "is_bot": True, "first_name": "Hotline"}})
            return _ok(True)

        app = web.Application()
        app.router.add_post("/bot{token}/{method}", call)
        return app

    def _pop_updates(self) -> list[dict[str, Any]]:
        with self._changed:
            updates, self.updates = self.updates, []
            return updates


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
