"""The responders' console under ``/console/``: one static page, a JSON API and a
live WebSocket, in the same aiohttp process as everything else.

Every API route is declared once in :data:`ROUTES` with the least role that may
use it; one middleware enforces the session, the role and (on every POST) the CSRF
token, so no handler can forget. Every access that shows or changes a case is
written to the audit log (:mod:`console.audit`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import statistics
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

from aiohttp import WSMsgType, web

from bot.addresses import AddressBook
from bot.background import resilient, running
from bot.keys import DESK, LANGUAGES, OUTBOX, REDIS, SERVER_KEYS, SETTINGS, TRACKERS
from bot.messages import Outbound
from console.accounts import AccountError, Accounts, Role, at_least
from console.audit import AuditLog
from console.directory import Directory
from console.ledger import CONSENTS, Ledger
from console.sessions import IDLE_SECONDS, Session, Sessions, Throttle
from triage.cases import CHANNEL, QUEUED, WAIT_TARGETS, Case, Taken

__all__ = ["CONSOLE", "ROUTES", "Console", "console_ctx", "console_hosts", "console_routes"]

log = logging.getLogger(__name__)

COOKIE = "hotline_console"
MAX_TEXT = 2000
MIN_REASON = 10
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
            "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_STATIC = {"index.html": "text/html", "console.js": "text/javascript", "console.css": "text/css"}
_BEAT_SECONDS = 30

Handler = Callable[[web.Request, Session], Awaitable[web.StreamResponse]]


@dataclass
class Console:
    accounts: Accounts
    sessions: Sessions
    throttle: Throttle
    audit: AuditLog
    ledger: Ledger
    directory: Directory
    addresses: AddressBook
    sockets: dict[web.WebSocketResponse, str]  # open consoles → their staff member


CONSOLE: web.AppKey[Console] = web.AppKey("console")


class ApiError(web.HTTPException):
    """A clear JSON error: ``{"error": code, "message": ...}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status_code = status
        super().__init__(text=json.dumps({"error": code, "message": message}),
                         content_type="application/json")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    role: Role


# ------------------------------------------------------------------ handlers --

async def _me(request: web.Request, session: Session) -> web.Response:
    return web.json_response({"name": session.name, "role": session.role, "csrf": session.csrf,
                              "idle_seconds": IDLE_SECONDS})


async def _logout(request: web.Request, session: Session) -> web.Response:
    console = request.app[CONSOLE]
    await console.sessions.end(request.cookies.get(COOKIE, ""))
    await console.audit.record(session.name, "logout")
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE, path="/console")
    return response


async def _queue(request: web.Request, session: Session) -> web.Response:
    desk = request.app[DESK]
    items = []
    for item in await desk.cases.queue():
        case = await desk.cases.get(item.case_id)
        if case is not None:
            items.append({**_case_brief(case), "effective": item.effective,
                          "waiting_seconds": round(item.waiting_seconds), "overdue": item.overdue})
    held = []  # the cases this responder holds; a supervisor sees everyone's
    for case_id in await desk.cases.held():
        case = await desk.cases.get(case_id)
        if case is not None and (case.owner == session.name or at_least(session.role, "supervisor")):
            held.append(_case_brief(case))
    return web.json_response({"queue": items, "held": held,
                              "online": await desk.presence.anyone_online()})


async def _next(request: web.Request, session: Session) -> web.Response:
    """Take the next most urgent case."""
    desk = request.app[DESK]
    for item in await desk.cases.queue():
        try:
            case = await desk.cases.claim(item.case_id, session.name)
        except (Taken, KeyError):
            continue  # someone was quicker; the next one
        await request.app[CONSOLE].audit.record(session.name, "claim", case.id, "next most urgent")
        return web.json_response({"case": case.id})
    raise ApiError(404, "queue_empty", "Nobody is waiting.")


async def _case(request: web.Request, session: Session) -> web.Response:
    case = await _visible_case(request, session)
    console, desk = request.app[CONSOLE], request.app[DESK]
    await console.audit.record(session.name, "view", case.id)
    transcript = [asdict(e) for e in await desk.cases.transcript(case.id)]
    ledger = [asdict(e) for e in await console.ledger.entries(case.id)]
    return web.json_response({
        "case": _case_brief(case), "summary": asdict(case.summary), "transcript": transcript,
        "ledger": ledger, "address": "hidden", "direction": request.app[LANGUAGES].direction(case.language),
    })


async def _claim(request: web.Request, session: Session) -> web.Response:
    case = await _visible_case(request, session)
    try:
        case = await request.app[DESK].cases.claim(case.id, session.name)
    except Taken as exc:
        raise ApiError(409, "taken", f"{exc.owner} holds this case.") from None
    await request.app[CONSOLE].audit.record(session.name, "claim", case.id)
    return web.json_response({"case": _case_brief(case)})


async def _assign(request: web.Request, session: Session) -> web.Response:
    case = await _visible_case(request, session)
    body = await _json(request)
    staff = _text(body, "staff", 64)
    member = await request.app[CONSOLE].accounts.get(staff)
    if member is None or member.disabled:
        raise ApiError(400, "no_such_staff", f"No active account named {staff}.")
    case = await request.app[DESK].cases.claim(case.id, staff, reassign=True)
    await request.app[CONSOLE].audit.record(session.name, "assign", case.id, staff)
    return web.json_response({"case": _case_brief(case)})


async def _message(request: web.Request, session: Session) -> web.Response:
    """A responder's message, to the person over their own channel."""
    case = await _held_case(request, session)
    text = _text(await _json(request), "text", MAX_TEXT)
    await _send_staff(request, case, session.name, text)
    await request.app[CONSOLE].audit.record(session.name, "message", case.id)
    return web.json_response({"ok": True, "delivery": "queued" if case.conversation else "kept"})


async def _note(request: web.Request, session: Session) -> web.Response:
    case = await _visible_case(request, session)
    text = _text(await _json(request), "text", MAX_TEXT)
    entry = await request.app[CONSOLE].ledger.add(case.id, session.name, "note", text)
    await request.app[CONSOLE].audit.record(session.name, "note", case.id)
    return web.json_response(asdict(entry))


async def _consent(request: web.Request, session: Session) -> web.Response:
    case = await _held_case(request, session)
    body = await _json(request)
    what = _text(body, "what", 32)
    if what not in CONSENTS:
        raise ApiError(400, "bad_consent", f"Consent is one of: {', '.join(CONSENTS)}.")
    partner = str(body.get("partner") or "")
    if what == "referral" and partner not in request.app[CONSOLE].directory.partners:
        raise ApiError(400, "no_such_partner", "A referral consent names a partner of the directory.")
    subject = f"{what}:{partner}" if partner else what
    entry = await request.app[CONSOLE].ledger.add(case.id, session.name, "consent", subject)
    await request.app[CONSOLE].audit.record(session.name, "consent", case.id, subject)
    return web.json_response(asdict(entry))


async def _revoke(request: web.Request, session: Session) -> web.Response:
    case = await _held_case(request, session)
    consent_id = _text(await _json(request), "consent", 32)
    ledger = request.app[CONSOLE].ledger
    if consent_id not in {e.id for e in await ledger.active_consents(case.id)}:
        raise ApiError(404, "no_such_consent", "No active consent with that id.")
    entry = await ledger.add(case.id, session.name, "revocation", ref=consent_id)
    await request.app[CONSOLE].audit.record(session.name, "revoke", case.id, consent_id)
    return web.json_response(asdict(entry))


async def _refer(request: web.Request, session: Session) -> web.Response:
    """A referral needs the person's recorded, unrevoked consent to that partner."""
    case = await _held_case(request, session)
    partner = _text(await _json(request), "partner", 64)
    console = request.app[CONSOLE]
    if partner not in console.directory.partners:
        raise ApiError(400, "no_such_partner", "Not a partner of the directory.")
    consents = {e.what for e in await console.ledger.active_consents(case.id)}
    if f"referral:{partner}" not in consents:
        raise ApiError(409, "no_consent", "Record the person's consent to this referral first.")
    entry = await console.ledger.add(case.id, session.name, "referral", partner)
    await console.audit.record(session.name, "refer", case.id, partner)
    return web.json_response(asdict(entry))


async def _escalate(request: web.Request, session: Session) -> web.Response:
    case = await _held_case(request, session)
    reason = _text(await _json(request), "reason", MAX_TEXT)
    await request.app[CONSOLE].ledger.add(case.id, session.name, "escalation", reason)
    case = await request.app[DESK].cases.escalate(case.id)
    await request.app[CONSOLE].audit.record(session.name, "escalate", case.id)
    return web.json_response({"case": _case_brief(case)})


async def _close(request: web.Request, session: Session) -> web.Response:
    """Say goodbye in the person's language and give the conversation back to the
    bot, which starts afresh (a new session, the notice again)."""
    case = await _held_case(request, session)
    desk = request.app[DESK]
    await _send_staff(request, case, session.name, request.app[CONSOLE].directory.closing(case.language))
    case = await desk.cases.close(case.id)
    if case.conversation:
        await request.app[TRACKERS].delete(case.conversation)
    await request.app[CONSOLE].audit.record(session.name, "close", case.id)
    return web.json_response({"case": _case_brief(case)})


async def _hold(request: web.Request, session: Session) -> web.Response:
    """Put a case under legal hold (retention keeps it) or lift the hold; with a reason."""
    case = await _visible_case(request, session)
    body = await _json(request)
    reason = _reason(body)
    held = bool(body.get("hold"))
    case = await request.app[DESK].cases.hold(case.id, held)
    await request.app[CONSOLE].audit.record(session.name, "legal_hold" if held else "legal_hold_lifted",
                                            case.id, reason)
    return web.json_response({"case": _case_brief(case)})


async def _export(request: web.Request, session: Session) -> web.Response:
    """The whole case as one JSON file, for a referral partner the person agreed to."""
    case = await _visible_case(request, session)
    console, desk = request.app[CONSOLE], request.app[DESK]
    await console.audit.record(session.name, "export", case.id)
    body = {"case": _case_brief(case), "summary": asdict(case.summary),
            "transcript": [asdict(e) for e in await desk.cases.transcript(case.id)],
            "ledger": [asdict(e) for e in await console.ledger.entries(case.id)]}
    return web.json_response(body, headers={
        "Content-Disposition": f'attachment; filename="case-{case.id}.json"', "Cache-Control": "no-store"})


async def _reveal(request: web.Request, session: Session) -> web.Response:
    case = await _visible_case(request, session)
    reason = _reason(await _json(request))
    address = await request.app[CONSOLE].addresses.lookup(case.conversation) if case.conversation else None
    await request.app[CONSOLE].audit.record(session.name, "reveal", case.id, reason)
    if address is None:
        raise ApiError(404, "no_address", "The address is gone (erased or expired).")
    return web.json_response({"address": address, "channel": case.channel})


async def _canned(request: web.Request, session: Session) -> web.Response:
    directory = request.app[CONSOLE].directory
    language = request.match_info["lang"]
    responses = directory.canned.get(language) or directory.canned["en"]
    return web.json_response([asdict(c) for c in responses])


async def _partners(request: web.Request, session: Session) -> web.Response:
    return web.json_response([asdict(p) for p in request.app[CONSOLE].directory.partners.values()])


async def _audit(request: web.Request, session: Session) -> web.Response:
    audit = request.app[CONSOLE].audit
    await audit.record(session.name, "view_audit")
    verification = await audit.verify()
    return web.json_response({"verified": asdict(verification),
                              "entries": [asdict(e) for e in await audit.entries()]})


async def _dashboard(request: web.Request, session: Session) -> web.Response:
    per_day, waits = await request.app[DESK].cases.stats(days=14)
    await request.app[CONSOLE].audit.record(session.name, "view_dashboard")

    def quantile(values: list[float], q: float) -> float | None:
        if not values:
            return None
        return round(statistics.quantiles(values, n=10, method="inclusive")[int(q * 10) - 1]
                     if len(values) > 1 else values[0], 1)

    return web.json_response({
        "days": per_day,
        "waits": {p: {"median": round(statistics.median(w), 1) if w else None, "p90": quantile(w, 0.9),
                      "n": len(w), "target": WAIT_TARGETS[p]}  # type: ignore[index]
                  for p, w in waits.items()},
    })


async def _all_cases(request: web.Request, session: Session) -> web.Response:
    """Every recent case, whatever its status: a supervisor sees all."""
    return web.json_response([_case_brief(c) for c in await request.app[DESK].cases.recent(200)])


async def _staff(request: web.Request, session: Session) -> web.Response:
    return web.json_response([asdict(m) for m in await request.app[CONSOLE].accounts.list()])


ROUTES: tuple[Route, ...] = (
    Route("GET", "/console/api/me", _me, "responder"),
    Route("POST", "/console/api/logout", _logout, "responder"),
    Route("GET", "/console/api/queue", _queue, "responder"),
    Route("POST", "/console/api/next", _next, "responder"),
    Route("GET", "/console/api/cases/{id}", _case, "responder"),
    Route("POST", "/console/api/cases/{id}/claim", _claim, "responder"),
    Route("POST", "/console/api/cases/{id}/messages", _message, "responder"),
    Route("POST", "/console/api/cases/{id}/notes", _note, "responder"),
    Route("POST", "/console/api/cases/{id}/consents", _consent, "responder"),
    Route("POST", "/console/api/cases/{id}/revocations", _revoke, "responder"),
    Route("POST", "/console/api/cases/{id}/referrals", _refer, "responder"),
    Route("POST", "/console/api/cases/{id}/escalate", _escalate, "responder"),
    Route("POST", "/console/api/cases/{id}/close", _close, "responder"),
    Route("GET", "/console/api/canned/{lang}", _canned, "responder"),
    Route("GET", "/console/api/partners", _partners, "responder"),
    Route("POST", "/console/api/cases/{id}/assign", _assign, "supervisor"),
    Route("POST", "/console/api/cases/{id}/reveal", _reveal, "supervisor"),
    Route("GET", "/console/api/cases/{id}/export", _export, "supervisor"),
    Route("POST", "/console/api/cases/{id}/hold", _hold, "supervisor"),
    Route("GET", "/console/api/cases", _all_cases, "supervisor"),
    Route("GET", "/console/api/audit", _audit, "supervisor"),
    Route("GET", "/console/api/dashboard", _dashboard, "supervisor"),
    Route("GET", "/console/api/staff", _staff, "admin"),
)


# ----------------------------------------------------------- without a session --

async def _login(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    body = await _json(request)
    name = _text(body, "name", 64)
    wait = await console.throttle.wait_seconds(name)
    if wait:
        raise ApiError(429, "wait", f"Too many failed logins. Try again in {wait} seconds.")
    member = await console.accounts.check(name, str(body.get("password") or ""), str(body.get("code") or ""))
    if member is None:
        await console.throttle.failed(name)
        await console.audit.record(name, "login_failed")
        raise ApiError(401, "bad_login", "Wrong name, password or code.")
    await console.throttle.succeeded(name)
    token, session = await console.sessions.start(member.name, member.role)
    await console.audit.record(member.name, "login")
    response = web.json_response({"name": session.name, "role": session.role, "csrf": session.csrf})
    response.set_cookie(COOKIE, token, path="/console", httponly=True, samesite="Strict",
                        secure=request.app[SETTINGS].behind_tls, max_age=None)
    return response


async def _setup(request: web.Request) -> web.Response:
    """Create the first admin with the one-time link printed at start-up."""
    console = request.app[CONSOLE]
    body = await _json(request)
    name, password = _text(body, "name", 64), str(body.get("password") or "")
    try:
        Accounts.validate(name, "admin", password)
    except AccountError as exc:
        raise ApiError(400, "bad_account", str(exc)) from None
    if await console.accounts.any() or not await console.sessions.use_setup_token(_text(body, "token", 100)):
        raise ApiError(403, "setup_closed", "This setup link is not valid (used, expired or not needed).")
    uri = await console.accounts.add(name, "admin", password)
    await console.audit.record(name, "setup", detail="first admin")
    return web.json_response({"name": name, "totp_uri": uri})


@functools.cache
def _page_file(name: str) -> bytes:
    """Read once, like the web chat's files: the page never changes while we run."""
    return (resources.files("console") / "static" / name).read_bytes()


async def _static(request: web.Request) -> web.Response:
    name = request.match_info.get("name", "index.html")
    if name not in _STATIC:
        raise web.HTTPNotFound()
    return web.Response(body=_page_file(name), content_type=_STATIC[name],
                        headers={"Cache-Control": "no-store", "Content-Security-Policy": PAGE_CSP})


async def _socket(request: web.Request) -> web.WebSocketResponse:
    """Live events for the queue and the open case; while open, its responder is online."""
    session = await _session(request)
    if session is None:
        raise ApiError(401, "login", "Log in first.")
    console, presence = request.app[CONSOLE], request.app[DESK].presence
    ws = web.WebSocketResponse(heartbeat=_BEAT_SECONDS, max_msg_size=4096)
    await ws.prepare(request)
    console.sockets[ws] = session.name

    async def beat() -> None:
        while True:
            await presence.beat(session.name)
            await asyncio.sleep(_BEAT_SECONDS)

    try:
        async with running(resilient("presence", beat)):
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
    finally:
        del console.sockets[ws]
        if session.name not in console.sockets.values():
            await presence.leave(session.name)
    return ws


# ------------------------------------------------------------------- helpers --

async def _session(request: web.Request) -> Session | None:
    token = request.cookies.get(COOKIE)
    return await request.app[CONSOLE].sessions.get(token) if token else None


def _guarded(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        session = await _session(request)
        if session is None:
            raise ApiError(401, "login", "Log in first.")
        member = await request.app[CONSOLE].accounts.get(session.name)
        if member is None or member.disabled:
            await request.app[CONSOLE].sessions.end(request.cookies.get(COOKIE, ""))
            raise ApiError(401, "login", "This account is disabled.")
        if not at_least(session.role, route.role):
            raise ApiError(403, "forbidden", f"Only a {route.role} may do this.")
        if request.method != "GET" and request.headers.get("X-CSRF-Token") != session.csrf:
            raise ApiError(403, "csrf", "Missing or wrong CSRF token; reload the page.")
        return await route.handler(request, session)

    return handler


async def _json(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise ApiError(415, "json_only", "Send JSON.")
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "bad_json", "The body is not JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", "The body must be a JSON object.")
    return body


def _text(body: dict[str, Any], field: str, limit: int) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, "missing", f"'{field}' is required.")
    if len(value) > limit:
        raise ApiError(400, "too_long", f"'{field}' is longer than {limit} characters.")
    return value.strip()


def _reason(body: dict[str, Any]) -> str:
    """Why a supervisor does something that an audit must be able to question."""
    reason = _text(body, "reason", 500)
    if len(reason) < MIN_REASON:
        raise ApiError(400, "reason_required", f"Say why, in at least {MIN_REASON} characters.")
    return reason


async def _visible_case(request: web.Request, session: Session) -> Case:
    """A responder sees the waiting cases and their own; a supervisor sees all."""
    case = await request.app[DESK].cases.get(request.match_info["id"])
    if case is None:
        raise ApiError(404, "no_such_case", "No such case.")
    if at_least(session.role, "supervisor") or case.status in QUEUED or case.owner == session.name:
        return case
    raise ApiError(403, "not_yours", "Another responder holds this case.")


async def _held_case(request: web.Request, session: Session) -> Case:
    case = await _visible_case(request, session)
    if case.owner != session.name or case.status != "with_responder":
        raise ApiError(409, "claim_first", "Take the case first.")
    if case.withdrawn:
        raise ApiError(410, "withdrawn", "The person deleted their data and withdrew.")
    return case


async def _send_staff(request: web.Request, case: Case, staff: str, text: str) -> None:
    desk = request.app[DESK]
    await desk.cases.reply(case.id, staff, text)
    if case.conversation:
        direction = request.app[LANGUAGES].direction(case.language)
        await request.app[OUTBOX].enqueue(case.conversation, case.channel, [
            Outbound(text=text, lang=case.language, direction=direction, sender="staff")])


def _case_brief(case: Case) -> dict[str, Any]:
    return {
        "id": case.id, "priority": case.priority, "kind": case.kind, "status": case.status,
        "language": case.language, "channel": case.channel, "opened_at": case.opened_at,
        "waiting_since": case.waiting_since, "owner": case.owner, "withdrawn": case.withdrawn,
        "escalated": case.escalated, "delivery": case.delivery, "legal_hold": case.legal_hold,
        "categories": case.summary.categories, "reasons": case.summary.reasons[:3],
    }


# ----------------------------------------------------------------- wiring --

@web.middleware
async def console_hosts(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                        ) -> web.StreamResponse:
    """The console answers only to the hosts it is published under: a page served
    under a look-alike name (DNS rebinding, a stray proxy) gets nothing."""
    if request.path.startswith("/console") and (request.host or "").lower() not in \
            request.app[SETTINGS].allowed_console_hosts:
        raise ApiError(421, "wrong_host", "The console is not served under this name.")
    return await handler(request)


def console_routes() -> list[web.RouteDef]:
    return [
        *(web.route(r.method, r.path, _guarded(r)) for r in ROUTES),
        web.post("/console/api/login", _login),
        web.post("/console/api/setup", _setup),
        web.get("/console/ws", _socket),
        web.get("/console/", _static),
        web.get("/console/static/{name}", _static),
    ]


async def console_ctx(app: web.Application) -> AsyncIterator[None]:
    """The console's parts, the relay of case events to open consoles, and the
    one-time setup link when there is no staff yet."""
    client, keys = app[REDIS], app[SERVER_KEYS]
    cipher = keys.cipher()
    console = Console(
        accounts=Accounts(client, cipher), sessions=Sessions(client), throttle=Throttle(client),
        audit=AuditLog(client, keys.pseudonym_key), ledger=Ledger(client, cipher),
        directory=Directory.load(), addresses=AddressBook(client, cipher, app[SETTINGS].tracker_ttl_seconds),
        sockets={},
    )
    app[CONSOLE] = console
    if not await console.accounts.any():
        token = await console.sessions.new_setup_token()
        print(f"  No staff yet. Create the first admin (link valid 1 hour, once):\n"
              f"    {app[SETTINGS].base_url}/console/#setup={token}", flush=True)
    async with running(resilient("console events", lambda: _relay(app))):
        yield
    for ws in list(console.sockets):
        await ws.close()


async def _relay(app: web.Application) -> None:
    """Case events (ids and priorities only) from Redis to every open console."""
    pubsub = app[REDIS].pubsub()
    await pubsub.subscribe(CHANNEL)
    try:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is None:
                continue
            for ws in list(app[CONSOLE].sockets):
                if not ws.closed:
                    await ws.send_str(message["data"].decode())
    finally:
        await pubsub.close()
