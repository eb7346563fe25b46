"""Prometheus metrics. Labels carry channels and codes, never a person's data."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

__all__ = ["Metrics"]


class Metrics:
    """One registry per application (no process-global state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter(
            "hotline_messages", "Messages received from people", ["channel"], registry=self.registry
        )
        self.turn_seconds = Histogram(
            "hotline_turn_seconds", "Time from a message to the bot's answer", ["channel"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=self.registry,
        )
        self.outbox = Counter(
            "hotline_outbox", "Outbox deliveries by result (sent, retry, failed, suppressed)",
            ["channel", "status"], registry=self.registry,
        )
        self.duplicates = Counter(
            "hotline_duplicates", "Provider re-deliveries answered only once", ["channel"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "hotline_rate_limited", "Messages over a rate limit (not given to the bot)", ["channel"],
            registry=self.registry,
        )
        self.erasures = Counter(
            "hotline_erasures", "Conversations erased at the person's request", ["channel"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
