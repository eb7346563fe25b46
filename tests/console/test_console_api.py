"""The console's API on the real server: every route and role, CSRF, claims, reveal, audit."""

from __future__ import annotations

import itertools
import re
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from console.web import ROUTES
from tests.conftest import (
    HOTLINE,
    PROJECT_ROOT,
    RunningServer,
    StaffAccount,
    add_staff,
    server_environ,
)
from tests.fakes import FakeTwilio
from tests.integration.test_sms import Phone

ROLES = ("responder", "supervisor", "admin")
_names = itertools.count(1)


class Staff:
    """A logged-in console, as the page uses it: session cookie plus CSRF header."""

    def __init__(self, server: RunningServer, session: aiohttp.ClientSession) -> None:
        self.url = server.url
        self.session = session
        self.csrf = ""
        self.name = ""

    async def login(self, account: StaffAccount, steps_ahead: int = 0) -> aiohttp.ClientResponse:
        response = await self.session.post(self.url + "/console/api/login", json={
            "name": account.name, "password": account.password, "code": account.code(steps_ahead)})
        await response.read()
        if response.status == 200:
            self.csrf = (await response.json())["csrf"]
        return response

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None,
                   csrf: bool = True) -> aiohttp.ClientResponse:
        headers = {"X-CSRF-Token": self.csrf} if csrf and method != "GET" else {}
        response = await self.session.request(method, self.url + path, json=body if method != "GET" else None,
                                              headers=headers)
        await response.read()
        return response


@pytest.fixture
async def consoles(server: RunningServer, staff: dict[str, StaffAccount]) -> AsyncIterator[dict[str, Staff]]:
    """One logged-in console per role, and one that never logged in."""
    sessions = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in range(4)]
    consoles = {}
    for role, session in zip((*ROLES, "anonymous"), sessions, strict=True):
        consoles[role] = Staff(server, session)
        if role != "anonymous":
            assert (await consoles[role].login(staff[role])).status == 200
    yield consoles
    for session in sessions:
        await session.close()


@pytest.fixture
async def supervisor(server: RunningServer) -> AsyncIterator[Staff]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        console = Staff(server, session)
        console.name = f"supervisor-{next(_names)}"
        assert (await console.login(add_staff(server, console.name, "supervisor"))).status == 200
        yield console


def _concrete(path: str) -> str:
    return path.replace("{id}", "0000000000000000").replace("{lang}", "es")


async def test_every_route_enforces_its_role(consoles: dict[str, Staff]) -> None:
    """Every API route for every role, and anonymous: 401 without a session, 403 below
    the route's role, served otherwise (logging out last)."""
    for route in sorted(ROUTES, key=lambda r: r.path.endswith("/logout")):
        for who, console in consoles.items():
            response = await console.call(route.method, _concrete(route.path), {})
            if who == "anonymous":
                expected = {401}
            elif ROLES.index(who) < ROLES.index(route.role):
                expected = {403}
            else:
                expected = set(range(200, 600)) - {401, 403}
            assert response.status in expected, (route.method, route.path, who, response.status)


async def test_a_state_change_without_the_csrf_token_is_refused(supervisor: Staff) -> None:
    response = await supervisor.call("POST", "/console/api/next", {}, csrf=False)
    assert response.status == 403 and (await response.json())["error"] == "csrf"


async def test_the_session_cookie_is_httponly_and_strict(server: RunningServer,
                                                         staff: dict[str, StaffAccount]) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        response = await Staff(server, session).login(staff["responder"], steps_ahead=1)
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
        # A code already used (the fixture's login) is refused: a watched screen is not a factor.
        replay = await Staff(server, session).login(staff["responder"], steps_ahead=1)
        assert replay.status in (401, 429)


async def test_the_console_page_runs_no_inline_script(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as session, session.get(server.url + "/console/") as response:
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "<script>" not in await response.text()


async def test_the_console_answers_only_to_its_own_host_name(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/console/", "/console/api/me"):
            async with session.get(server.url + path, headers={"Host": "hotline.evil.example"}) as response:
                assert response.status == 421
        async with session.get(server.url + "/chat", headers={"Host": "hotline.evil.example"}) as response:
            assert response.status == 200  # the web chat is for anyone, under any name


async def test_a_wrong_password_slows_the_next_try(server: RunningServer) -> None:
    account = add_staff(server, "slow-typist", "responder")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        console = Staff(server, session)
        wrong = StaffAccount(account.name, account.role, "not the password at all", account.secret)
        assert (await console.login(wrong)).status == 401
        retry = await console.login(account)
        assert retry.status == 429 and "Try again in" in (await retry.json())["message"]


async def test_revealing_an_address_needs_a_reason_and_is_audited(server: RunningServer,
                                                                 supervisor: Staff) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(server.ws_url) as chat:
        await chat.send_json({"type": "message", "text": "please help, he is hitting me right now"})
        await chat.receive_json(timeout=30)
        queue = await (await supervisor.call("GET", "/console/api/queue")).json()
        case_id = max(queue["queue"], key=lambda item: item["opened_at"])["id"]
        page = await (await supervisor.call("GET", f"/console/api/cases/{case_id}")).json()
        assert page["address"] == "hidden"
        short = await supervisor.call("POST", f"/console/api/cases/{case_id}/reveal", {"reason": "why"})
        assert short.status == 400
        shown = await supervisor.call("POST", f"/console/api/cases/{case_id}/reveal",
                                      {"reason": "police asked, person consented on the phone"})
        assert shown.status == 200 and (await shown.json())["channel"] == "webchat"
    audit = await (await supervisor.call("GET", "/console/api/audit")).json()
    assert audit["verified"]["ok"]
    reveal = next(e for e in audit["entries"] if e["action"] == "reveal")
    assert (reveal["actor"], reveal["target"]) == (supervisor.name, case_id)
    assert reveal["detail"] == "police asked, person consented on the phone"


async def test_a_disabled_account_is_logged_out_at_once(server: RunningServer) -> None:
    account = add_staff(server, "leaver", "responder")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        console = Staff(server, session)
        assert (await console.login(account)).status == 200
        assert (await console.call("GET", "/console/api/queue")).status == 200
        _cli(server, "staff", "disable", "leaver")
        assert (await console.call("GET", "/console/api/queue")).status == 401
    listed = _cli(server, "staff", "list")
    assert re.search(r"^leaver\tresponder\tdisabled$", listed, re.MULTILINE)
    assert "audit log verified" in _cli(server, "audit", "verify")


def _cli(server: RunningServer, *args: str) -> str:
    result = subprocess.run([str(HOTLINE), *args], capture_output=True, text=True, timeout=60, check=True,
                            env=server_environ(server.var_dir), cwd=PROJECT_ROOT)
    return result.stdout


async def test_a_failed_delivery_is_shown_to_the_responder(server: RunningServer, supervisor: Staff,
                                                           fake_twilio: FakeTwilio) -> None:
    phone = Phone(server)
    fake_twilio.blocked.add(phone.number)  # the person's carrier refuses our messages
    async with supervisor.session.ws_connect(server.url.replace("http", "ws") + "/console/ws") as live:
        await phone.text("help me now, he has a knife")
        case_id = await _next_event(live, "opened")
        assert (await supervisor.call("POST", f"/console/api/cases/{case_id}/claim", {})).status == 200
        sent = await supervisor.call("POST", f"/console/api/cases/{case_id}/messages", {"text": "Safe?"})
        assert sent.status == 200
        assert await _next_event(live, "delivery", case_id) == case_id
    page = await (await supervisor.call("GET", f"/console/api/cases/{case_id}")).json()
    assert page["case"]["delivery"].startswith("failed")


async def test_a_supervisor_reassigns_exports_and_sees_every_case_and_the_numbers(server: RunningServer,
                                                                       supervisor: Staff) -> None:
    async with supervisor.session.ws_connect(server.url.replace("http", "ws") + "/console/ws") as live:
        await Phone(server).text("they took my passport and I owe them money")
        case_id = await _next_event(live, "opened")
    moved = await supervisor.call("POST", f"/console/api/cases/{case_id}/assign", {"staff": "test-responder"})
    assert moved.status == 200 and (await moved.json())["case"]["owner"] == "test-responder"
    export = await supervisor.call("GET", f"/console/api/cases/{case_id}/export")
    assert export.headers["Content-Disposition"] == f'attachment; filename="case-{case_id}.json"'
    assert "passport" in (await export.json())["transcript"][1]["text"]
    audit = await (await supervisor.call("GET", "/console/api/audit")).json()
    actions = [(e["action"], e["target"]) for e in audit["entries"] if e["actor"] == supervisor.name]
    assert ("assign", case_id) in actions and ("export", case_id) in actions
    every = await (await supervisor.call("GET", "/console/api/cases")).json()
    assert every[0]["id"] == case_id and every[0]["owner"] == "test-responder"  # newest first
    dashboard = await (await supervisor.call("GET", "/console/api/dashboard")).json()
    today = list(dashboard["days"].values())[-1]
    assert today["priority:P2"] >= 1 and today["channel:sms"] >= 1 and today["category:debt_bondage"] >= 1
    assert dashboard["waits"]["P2"]["n"] >= 1 and dashboard["waits"]["P2"]["median"] is not None


async def _next_event(live: aiohttp.ClientWebSocketResponse, kind: str, case_id: str | None = None) -> str:
    """The case id of the next console event of this kind (for this case)."""
    while True:
        event = await live.receive_json(timeout=30)
        if event["type"] == kind and case_id in (None, event["case"]):
            return str(event["case"])
