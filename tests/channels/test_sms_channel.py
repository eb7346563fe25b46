"""Twilio's signature, as the SMS channel checks it (no server needed)."""

from __future__ import annotations

from twilio.request_validator import RequestValidator

from bot.settings import Secret
from channels.sms import Sms

TOKEN = "twilio-test-auth-token"
FORM = {"From": "+14155550100", "Body": "hello", "MessageSid": "SM1"}


def sms(public_url: str) -> Sms:
    return Sms("AC1", Secret(TOKEN), "+15005550006", public_url)


def signed(url: str) -> str:
    return RequestValidator(TOKEN).compute_signature(url, FORM)


def as_form() -> dict[str, list[str]]:
    return {k: [v] for k, v in FORM.items()}


def test_the_signature_is_checked_against_the_public_url_with_or_without_its_port() -> None:
    channel = sms("https://hotline.example.org")
    for url in ("https://hotline.example.org/webhooks/twilio", "https://hotline.example.org:443/webhooks/twilio"):
        assert channel.signature_ok("/webhooks/twilio", as_form(), signed(url))


def test_a_query_string_is_part_of_what_is_signed() -> None:
    channel = sms("https://hotline.example.org/")
    good = signed("https://hotline.example.org/webhooks/twilio?src=pool")
    assert channel.signature_ok("/webhooks/twilio?src=pool", as_form(), good)
    assert not channel.signature_ok("/webhooks/twilio?src=other", as_form(), good)


def test_the_url_this_process_sees_is_not_what_counts() -> None:
    channel = sms("https://hotline.example.org")
    assert not channel.signature_ok("/webhooks/twilio", as_form(), signed("http://127.0.0.1:8080/webhooks/twilio"))


def test_a_channel_without_a_public_url_is_off() -> None:
    from bot.settings import load_settings

    settings = load_settings({"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_FROM": "+1"})
    assert Sms.from_settings(settings) is None
