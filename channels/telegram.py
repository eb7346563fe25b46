"""Telegram over python-telegram-bot: the webhook at ``POST /webhooks/telegram``,
long polling for development, and the Bot API for sending and deleting.

Threat (docs/threat-model.md, "flooding, probing or impersonating"): the webhook
address is public; Telegram sends the secret we registered in
``X-Telegram-Bot-Api-Secret-Token``, compared in constant time before the body is
read. Only private chats are served: in a group, other members would see what a
person writes, so the bot says one line and leaves.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Sequence
from typing import Any, ClassVar

from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatType
from telegram.error import BadRequest, Forbidden, TelegramError

from bot.messages import DeliveryError, Inbound, OnMessage, Outbound
from bot.settings import Secret, Settings
from channels.telegram_request import AiohttpRequest

__all__ = ["ALLOWED_UPDATES", "GROUP_NOTICE", "Telegram"]

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
GROUP_NOTICE = "I only talk in private chats, to keep what you write private. Please message me directly."
# /start opens every chat with a bot; /delete and /help reach the core as typed.
COMMANDS = {"/start": "/greet"}
POLL_TIMEOUT_SECONDS = 25


class Telegram:
    name: ClassVar[str] = "telegram"
    replies_inline: ClassVar[bool] = False

    def __init__(self, token: Secret, webhook_secret: Secret | None, api_base: str | None = None) -> None:
        base = f"{api_base.rstrip('/')}/bot" if api_base else "https://api.telegram.org/bot"
        self._requests = (
            AiohttpRequest(connections=8, read_timeout=15, connect_timeout=10),
            AiohttpRequest(read_timeout=POLL_TIMEOUT_SECONDS + 10),
        )
        # Never ``bot.initialize()``: it calls getMe, and nothing may reach Telegram
        # at start-up; the Bot's methods work without it.
        self.bot = Bot(token.reveal(), base_url=base, request=self._requests[0],
                       get_updates_request=self._requests[1])
        self._secret = webhook_secret

    @classmethod
    def from_settings(cls, settings: Settings) -> Telegram | None:
        if settings.telegram_bot_token is None:
            return None
        if settings.telegram_webhook_secret is None:
            log.warning("telegram webhook refuses every update: TELEGRAM_WEBHOOK_SECRET is not set")
        return cls(settings.telegram_bot_token, settings.telegram_webhook_secret, settings.telegram_api_base)

    def routes(self, on_message: OnMessage) -> list[web.RouteDef]:
        async def webhook(request: web.Request) -> web.Response:
            return await self._webhook(request, on_message)

        return [web.post("/webhooks/telegram", webhook)]

    async def _webhook(self, request: web.Request, on_message: OnMessage) -> web.Response:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if self._secret is None or not hmac.compare_digest(given.encode(), self._secret.reveal().encode()):
            raise web.HTTPForbidden()
        try:
            data = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="the body is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            raise web.HTTPBadRequest(text="not a Telegram update")
        try:
            update = Update.de_json(data, self.bot)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            # From Telegram (the secret matched) but beyond this library: answering
            # anything but 200 would make Telegram resend it for hours.
            log.warning("telegram update not understood", extra={"error": type(exc).__name__})
            return web.json_response({})
        await self.dispatch(update, on_message)
        return web.json_response({})

    async def dispatch(self, update: Update, on_message: OnMessage) -> None:
        """Turn one update into at most one inbound message; ignore what is not for us."""
        if update.message is not None and update.message.chat.type != ChatType.PRIVATE:
            await self._leave_group(update.message.chat.id)
            return
        inbound = self._inbound(update)
        if update.callback_query is not None:
            await self._quietly(self.bot.answer_callback_query(update.callback_query.id))
        if inbound is None:
            return
        replies = await on_message(inbound)
        for reply in replies:  # only a deletion's confirmation comes back here
            await self._quietly(self.send(inbound.address, reply))

    def _inbound(self, update: Update) -> Inbound | None:
        delivery = str(update.update_id)
        query = update.callback_query
        if query is not None:
            message = query.message
            if message is None or message.chat.type != ChatType.PRIVATE or not query.data:
                return None
            return Inbound(self.name, str(message.chat.id), query.data, self._hints(query.from_user),
                           delivery_id=delivery)
        message = update.message
        if message is None:  # edits, channel posts and unknown kinds start no turn
            return None
        text = (message.text or message.caption or "").strip()
        hints = self._hints(message.from_user)
        if message.effective_attachment is not None:
            hints["media"] = "1"  # never downloaded, never kept
        if text.startswith("/"):  # "/delete@hotline_bot" in a chat with several bots
            text = text.split("@", 1)[0].lower()
            text = COMMANDS.get(text, text)
        return Inbound(self.name, str(message.chat.id), text, hints,
                       delivery_id=delivery, message_ref=str(message.message_id))

    @staticmethod
    def _hints(user: Any) -> dict[str, str]:
        code = getattr(user, "language_code", None)
        return {"language_code": code} if isinstance(code, str) and code else {}

    async def _leave_group(self, chat_id: int) -> None:
        """One polite line, then leave; nothing of the group is stored."""
        await self._quietly(self.bot.send_message(chat_id, GROUP_NOTICE))
        await self._quietly(self.bot.leave_chat(chat_id))

    async def send(self, address: str, message: Outbound) -> str | None:
        markup = InlineKeyboardMarkup(
            [[InlineKeyboardButton(b.title, callback_data=b.payload[:64])] for b in message.buttons]
        ) if message.buttons else None
        try:
            sent = await self.bot.send_message(int(address), message.text, reply_markup=markup)
        except (Forbidden, BadRequest) as exc:  # blocked by the person, or the chat is gone
            raise DeliveryError(f"telegram_{type(exc).__name__.lower()}", permanent=True) from None
        except TelegramError as exc:  # network trouble, flood control, Telegram's 5xx
            raise DeliveryError(f"telegram_{type(exc).__name__.lower()}", permanent=False) from None
        return str(sent.message_id)

    async def unsend(self, address: str, refs: Sequence[str]) -> None:
        """Delete the chat's messages, both sides, as far as the Bot API allows
        (private chats, messages younger than 48 hours)."""
        ids = [int(ref) for ref in refs]
        for start in range(0, len(ids), 100):
            await self._quietly(self.bot.delete_messages(int(address), ids[start:start + 100]))

    async def poll(self, on_message: OnMessage) -> None:
        """Long polling, for development without a public address (never with a webhook)."""
        offset = 0
        while True:
            try:
                updates = await self.bot.get_updates(offset=offset, timeout=POLL_TIMEOUT_SECONDS,
                                                     allowed_updates=ALLOWED_UPDATES)
            except TelegramError as exc:
                log.warning("telegram polling failed", extra={"error": type(exc).__name__})
                await asyncio.sleep(5)
                continue
            for update in updates:
                offset = update.update_id + 1
                try:
                    await self.dispatch(update, on_message)
                except Exception as exc:  # one bad turn must not stop polling
                    log.error("telegram update failed", extra={"error": type(exc).__name__})

    async def set_webhook(self, public_url: str) -> None:
        if self._secret is None:
            raise ValueError("TELEGRAM_WEBHOOK_SECRET is not set")
        await self.bot.set_webhook(public_url.rstrip("/") + "/webhooks/telegram",
                                   secret_token=self._secret.reveal(), allowed_updates=ALLOWED_UPDATES)

    async def close(self) -> None:
        # ``bot.shutdown()`` does nothing for a bot that was never initialised.
        for request in self._requests:
            await request.shutdown()

    @staticmethod
    async def _quietly(call: Any) -> None:
        """A best-effort call (acknowledging a button, deleting old messages)."""
        try:
            await call
        except TelegramError as exc:
            log.info("telegram call skipped", extra={"error": type(exc).__name__})
