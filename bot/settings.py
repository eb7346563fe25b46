"""Settings, loaded once from the environment and checked as a whole.

Nothing else in Hotline reads ``os.environ``: the CLI calls :func:`load_settings`
and hands the result to :func:`bot.app.create_app`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["Secret", "Settings", "SettingsError", "cache_dir", "load_settings"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(Exception):
    """One or more settings are missing or invalid; the message lists them all."""


class Secret:
    """A string that never shows itself in a repr, a log line or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    var_dir: Path = PROJECT_ROOT / "var"
    model_dir: Path = PROJECT_ROOT / "models"
    cache_dir: Path = Path.home() / ".cache" / "hotline"
    redis_url: str | None = None
    public_url: str | None = None
    log_level: str = "INFO"
    # Trackers of conversations with no case are kept this long after their last
    # message (docs/threat-model.md, "stolen Redis dump"): what is gone cannot leak.
    tracker_ttl_seconds: int = 24 * 3600
    max_message_chars: int = 4096
    # Messages a second, all channels together, that get the bot before a flood is
    # slowed (bot/conversation.py): at most what the processes serve, so a flood
    # cannot queue a cry for help behind it. Raise it with the processes you add.
    messages_per_second: int = 100
    # What the after-hours message promises: someone reads and replies within this.
    follow_up_hours: int = 12
    # Retention (triage/retention.py): closed cases, closed P4 cases, and the grace
    # period after the last activity within which nothing is erased.
    retain_closed_days: int = 90
    retain_closed_p4_days: int = 7
    retain_grace_hours: int = 24
    # Host headers the console answers to (host or host:port); empty: the public URL's.
    console_hosts: tuple[str, ...] = ()
    twilio_account_sid: str | None = None
    twilio_auth_token: Secret | None = None
    twilio_from: str | None = None
    twilio_api_base: str | None = None
    telegram_bot_token: Secret | None = None
    telegram_webhook_secret: Secret | None = None
    telegram_api_base: str | None = None
    telegram_polling: bool = False  # set by ``hotline run --telegram-polling``
    pseudonym_key: Secret | None = None
    encryption_keys: tuple[tuple[str, Secret], ...] = field(default=())

    @property
    def base_url(self) -> str:
        """Where a person on this machine reaches the server."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def behind_tls(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def allowed_console_hosts(self) -> frozenset[str]:
        return frozenset(self.console_hosts or (urlsplit(self.base_url).netloc,))


_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR"}


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where trained models and tokenizer dictionaries are cached, outside the work tree."""
    raw = (os.environ if environ is None else environ).get("HOTLINE_CACHE_DIR", "").strip()
    return Path(raw or Path.home() / ".cache" / "hotline").resolve()


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every ``HOTLINE_*`` and provider variable; report all problems at once."""
    env = os.environ if environ is None else environ
    errors: list[str] = []

    def text(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    def integer(name: str, default: int, low: int, high: int) -> int:
        raw = text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            errors.append(f"{name} must be a whole number, got {raw!r}")
            return default
        if not low <= value <= high:
            errors.append(f"{name} must be between {low} and {high}, got {value}")
        return value

    def secret(name: str) -> Secret | None:
        raw = text(name)
        return Secret(raw) if raw else None

    redis_url = text("REDIS_URL")
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        errors.append("REDIS_URL must start with redis://, rediss:// or unix://")
    public_url = text("HOTLINE_PUBLIC_URL")
    if public_url and not public_url.startswith(("http://", "https://")):
        errors.append("HOTLINE_PUBLIC_URL must start with http:// or https://")
    log_level = (text("HOTLINE_LOG_LEVEL") or "INFO").upper()
    if log_level not in _LOG_LEVELS:
        errors.append(f"HOTLINE_LOG_LEVEL must be one of {', '.join(sorted(_LOG_LEVELS))}")
    encryption_keys = _parse_keys(text("HOTLINE_ENCRYPTION_KEYS"), errors)

    settings = Settings(
        host=text("HOTLINE_HOST") or "127.0.0.1",
        port=integer("HOTLINE_PORT", 8080, 1, 65535),
        var_dir=Path(text("HOTLINE_VAR_DIR") or PROJECT_ROOT / "var").resolve(),
        model_dir=Path(text("HOTLINE_MODEL_DIR") or PROJECT_ROOT / "models").resolve(),
        cache_dir=cache_dir(env),
        redis_url=redis_url,
        public_url=public_url,
        log_level=log_level,
        tracker_ttl_seconds=integer("HOTLINE_TRACKER_TTL", 24 * 3600, 60, 365 * 86400),
        follow_up_hours=integer("HOTLINE_FOLLOW_UP_HOURS", 12, 1, 168),
        messages_per_second=integer("HOTLINE_MESSAGES_PER_SECOND", 100, 2, 100_000),
        retain_closed_days=integer("HOTLINE_RETAIN_CLOSED_DAYS", 90, 1, 3650),
        retain_closed_p4_days=integer("HOTLINE_RETAIN_CLOSED_P4_DAYS", 7, 1, 3650),
        retain_grace_hours=integer("HOTLINE_RETAIN_GRACE_HOURS", 24, 0, 24 * 365),
        console_hosts=tuple(h.strip().lower() for h in (text("HOTLINE_CONSOLE_HOSTS") or "").split(",")
                            if h.strip()),
        twilio_account_sid=text("TWILIO_ACCOUNT_SID"),
        twilio_auth_token=secret("TWILIO_AUTH_TOKEN"),
        twilio_from=text("TWILIO_FROM"),
        twilio_api_base=text("TWILIO_API_BASE"),
        telegram_bot_token=secret("TELEGRAM_BOT_TOKEN"),
        telegram_webhook_secret=secret("TELEGRAM_WEBHOOK_SECRET"),
        telegram_api_base=text("TELEGRAM_API_BASE"),
        pseudonym_key=secret("HOTLINE_PSEUDONYM_KEY"),
        encryption_keys=encryption_keys,
    )
    if errors:
        raise SettingsError("; ".join(errors))
    return settings


def _parse_keys(raw: str | None, errors: list[str]) -> tuple[tuple[str, Secret], ...]:
    """``HOTLINE_ENCRYPTION_KEYS=kid:base64key,kid2:base64key``; the first one encrypts."""
    if raw is None:
        return ()
    keys: list[tuple[str, Secret]] = []
    for item in raw.split(","):
        kid, sep, value = item.strip().partition(":")
        if not sep or not kid or not value:
            errors.append("HOTLINE_ENCRYPTION_KEYS must look like 'kid:base64key,kid2:base64key'")
            return ()
        keys.append((kid, Secret(value)))
    return tuple(keys)
