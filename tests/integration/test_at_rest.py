"""Encryption at rest, proven on the real server: after conversations on all three
channels, a case, a responder's reply, a note and a consent, no key or value in Redis
(nor its RDB file) holds a word the people wrote, a phone number or a Telegram id;
nor does the server's log (at DEBUG)."""

from __future__ import annotations

import aiohttp
from redis.asyncio import Redis

from console.ledger import Ledger
from tests.conftest import RunningServer
from tests.fakes import FakeTelegram
from tests.integration.test_sms import Phone
from tests.integration.test_telegram import TelegramUser
from triage.cases import CaseStore

WORDS = ["Xiomara", "Kaliningrad", "greenhouse", "Bukhara", "Quezaltenango"]


async def test_no_word_number_or_id_is_readable_in_redis(server: RunningServer,
                                                          fake_telegram: FakeTelegram) -> None:
    phone = Phone(server)
    await phone.text(f"my name is {WORDS[0]}, they took my passport at the {WORDS[2]}")
    telegram = TelegramUser(server, fake_telegram)
    await telegram.say(f"I was brought from {WORDS[1]} and I owe them money", 3)
    async with aiohttp.ClientSession() as session, session.ws_connect(server.ws_url) as ws:
        await ws.send_json({"type": "message", "text": f"please help me now, he is hitting me in {WORDS[3]}"})
        await ws.receive_json(timeout=30)

    # A responder replies on SMS and records a note and a consent on the same case.
    client = Redis(unix_socket_path=str(server.redis_socket))
    cases = CaseStore(client, server.cipher())
    case = await cases.of_conversation(server.conversation("sms", phone.number))
    assert case is not None
    await cases.claim(case.id, "responder-at-rest")
    await cases.reply(case.id, "responder-at-rest", f"We know a shelter near {WORDS[4]}")
    ledger = Ledger(client, server.cipher())
    await ledger.add(case.id, "responder-at-rest", "note", f"she mentioned {WORDS[0]}'s cousin")
    await ledger.add(case.id, "responder-at-rest", "consent", "referral:safe-harbour")
    await client.close(close_connection_pool=True)

    _, dumped = server.stored()
    logs = server.logs().lower()
    for secret in [*WORDS, phone.number, phone.number[1:], str(telegram.chat_id), "passport"]:
        assert secret.lower().encode() not in dumped.lower(), secret
        assert secret.lower() not in logs, f"{secret} is in the logs"
