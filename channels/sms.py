"""SMS over Twilio: the webhook at ``POST /webhooks/twilio`` and the REST API.

Threat (docs/threat-model.md, "flooding, probing or impersonating"): anyone can
post to a public webhook. Every request must carry Twilio's ``X-Twilio-Signature``
(HMAC-SHA1 of the public URL and the form under our auth token); a missing or bad
one gets a bare 403, checked in constant time before any field is read, and nothing
of the body is logged. Twilio signs the URL it called, so it is rebuilt from
``HOTLINE_PUBLIC_URL``, not from the URL this process sees behind a proxy.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from typing import ClassVar
from urllib.parse import urlparse

import phonenumbers
from aiohttp import web
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator, add_port, remove_port
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

from bot.messages import Command, DeliveryError, Inbound, OnMessage, Outbound
from bot.settings import Secret, Settings
from channels.sms_text import render

__all__ = ["KEYWORDS", "Sms"]

log = logging.getLogger(__name__)

# The carrier keywords (CTIA and Twilio's opt-out handling). DELETE, on every
# channel, is the core's (bot/conversation.py).
KEYWORDS: dict[str, Command] = {
    **dict.fromkeys(("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT"), "opt_out"),
    **dict.fromkeys(("START", "UNSTOP", "OPTIN"), "opt_in"),
    **dict.fromkeys(("HELP", "INFO"), "help"),
}
# Twilio error codes after which retrying cannot succeed.
PERMANENT_CODES = frozenset({21211, 21408, 21610, 21612, 21614, 30004, 30005, 30006})
# One REST message may be long (Twilio concatenates up to 1600 characters); cutting
# it into several API calls would risk a duplicate part when a retry follows a
# partial failure.
REST_MAX_SEGMENTS = 10


class Sms:
    name: ClassVar[str] = "sms"
    replies_inline: ClassVar[bool] = True

    def __init__(self, account_sid: str, auth_token: Secret, sender: str, public_url: str,
                 api_base: str | None = None) -> None:
        self._account_sid = account_sid
        self._token = auth_token
        self._sender = sender
        self._webhook_url = public_url.rstrip("/") + "/webhooks/twilio"
        self._validator = RequestValidator(auth_token.reveal())
        self._api_base = api_base
        self._client: Client | None = None
        self._http: AsyncTwilioHttpClient | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Sms | None:
        if not (settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from):
            return None
        if not settings.public_url:
            log.warning("sms off: HOTLINE_PUBLIC_URL is needed to check Twilio's signatures")
            return None
        return cls(settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_from,
                   settings.public_url, settings.twilio_api_base)

    def routes(self, on_message: OnMessage) -> list[web.RouteDef]:
        async def webhook(request: web.Request) -> web.Response:
            return await self._webhook(request, on_message)

        return [web.post("/webhooks/twilio", webhook)]

    def signature_ok(self, path_qs: str, form: dict[str, list[str]], signature: str) -> bool:
        """Twilio signs the URL with or without the default port, depending on the
        route the request took: both forms are tried, as twilio's own validator does."""
        url = urlparse(self._webhook_url + path_qs.removeprefix("/webhooks/twilio"))
        matches = [
            hmac.compare_digest(self._validator.compute_signature(candidate, _MultiForm(form)).encode(),
                                signature.encode())
            for candidate in (remove_port(url), add_port(url))
        ]
        return any(matches)

    async def _webhook(self, request: web.Request, on_message: OnMessage) -> web.Response:
        signature = request.headers.get("X-Twilio-Signature", "")
        if request.content_type != "application/x-www-form-urlencoded" or not signature:
            raise web.HTTPForbidden()
        post = await request.post()
        form: dict[str, list[str]] = {}
        for key, value in post.items():
            form.setdefault(key, []).append(value if isinstance(value, str) else "")
        if not self.signature_ok(request.path_qs, form, signature):
            raise web.HTTPForbidden()

        sender, sid = _field(form, "From"), _field(form, "MessageSid")
        if not sender or not sid:
            raise web.HTTPBadRequest(text="MessageSid and From are required")
        body = _field(form, "Body").strip()
        media = _field(form, "NumMedia") not in ("", "0")
        hints = {"country": country} if (country := _country(sender)) else {}
        if media:
            hints["media"] = "1"  # MediaUrl* are never read: we do not fetch or keep media
        inbound = Inbound(self.name, sender, body, hints, command=KEYWORDS.get(body.upper()),
                          delivery_id=sid)
        replies = await on_message(inbound)
        twiml = MessagingResponse()
        for reply in replies:
            for part in render(reply):
                twiml.message(part)
        return web.Response(text=str(twiml), content_type="text/xml")

    async def send(self, address: str, message: Outbound) -> str | None:
        client = self._rest()
        target = {"messaging_service_sid": self._sender} if self._sender.startswith("MG") else {
            "from_": self._sender}
        for part in render(message, max_segments=REST_MAX_SEGMENTS):
            try:
                await client.messages.create_async(to=address, body=part, **target)
            except TwilioRestException as exc:
                permanent = exc.code in PERMANENT_CODES
                raise DeliveryError(f"twilio_{exc.code or exc.status}", permanent=permanent) from None
            except (OSError, TimeoutError) as exc:
                raise DeliveryError(type(exc).__name__, permanent=False) from None
        return None

    async def unsend(self, address: str, refs: Sequence[str]) -> None:
        """An SMS cannot be taken back from a phone."""

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    def _rest(self) -> Client:
        """The REST client, made on first use inside the running loop (aiohttp needs one)."""
        if self._client is None:
            self._http = AsyncTwilioHttpClient(timeout=15)
            self._client = Client(self._account_sid, self._token.reveal(), http_client=self._http)
            if self._api_base:
                self._client.api.base_url = self._api_base.rstrip("/")
        return self._client


class _MultiForm(dict[str, list[str]]):
    """Gives twilio's validator every value of a repeated field."""

    def getall(self, name: str) -> list[str]:
        return self[name]


def _field(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name)
    return values[0] if values else ""


def _country(number: str) -> str | None:
    """The region of a phone number, a language hint; never stored beside the number."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(number)) or None
    except phonenumbers.NumberParseException:
        return None
