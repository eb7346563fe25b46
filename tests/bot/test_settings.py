from __future__ import annotations

import pytest

from bot.settings import Secret, SettingsError, load_settings


def test_defaults() -> None:
    settings = load_settings({})
    assert (settings.host, settings.port, settings.redis_url) == ("127.0.0.1", 8080, None)
    assert settings.var_dir.name == "var"
    assert settings.messages_per_second == 100


def test_every_bad_value_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"HOTLINE_PORT": "eighty", "REDIS_URL": "http://x", "HOTLINE_LOG_LEVEL": "LOUD",
                       "HOTLINE_ENCRYPTION_KEYS": "nokey", "HOTLINE_MESSAGES_PER_SECOND": "0"})
    message = str(caught.value)
    for name in ("HOTLINE_PORT", "REDIS_URL", "HOTLINE_LOG_LEVEL", "HOTLINE_ENCRYPTION_KEYS",
                 "HOTLINE_MESSAGES_PER_SECOND"):
        assert name in message


def test_unix_socket_urls_are_accepted() -> None:
    assert load_settings({"REDIS_URL": "unix:///run/redis.sock"}).redis_url == "unix:///run/redis.sock"


def test_secrets_never_show_themselves() -> None:
    settings = load_settings({"TWILIO_AUTH_TOKEN": "tok-123456", "HOTLINE_ENCRYPTION_KEYS": "k1:c2VjcmV0"})
    shown = repr(settings) + str(settings.twilio_auth_token)
    assert "tok-123456" not in shown and "c2VjcmV0" not in shown
    assert settings.twilio_auth_token == Secret("tok-123456")
