"""Retention, enforced by the system: closed cases are erased after a set time.

What a case holds is kept only while someone may still need it: a closed P4 case
(no case really: information, greetings) for days, other closed cases for months,
never while open and never under a legal hold; and never within a grace period
after the last activity, so a person who writes again finds their case. A
conversation that never became a case lives only as long as its tracker
(``HOTLINE_TRACKER_TTL``). What survives erasure are the dashboard's anonymous
counts. The purge runs in every server once an hour and as ``hotline purge``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.settings import Settings
from triage.cases import Case, CaseStore

__all__ = ["Retention", "purge", "purging"]

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 3600
_BATCH = 10_000


@dataclass(frozen=True)
class Retention:
    closed_days: int = 90
    closed_p4_days: int = 7
    grace_hours: int = 24

    @classmethod
    def from_settings(cls, settings: Settings) -> Retention:
        return cls(settings.retain_closed_days, settings.retain_closed_p4_days, settings.retain_grace_hours)

    def due(self, case: Case, now: float) -> bool:
        if case.legal_hold or case.status != "closed":
            return False
        days = self.closed_p4_days if case.priority == "P4" else self.closed_days
        return now - case.updated_at > max(days * 86400, self.grace_hours * 3600)


async def purge(cases: CaseStore, retention: Retention, *, dry_run: bool,
                clock: Callable[[], float] = time.time) -> list[Case]:
    """The cases past their retention (erased unless ``dry_run``)."""
    now = clock()
    due = [case for case in await cases.recent(_BATCH) if retention.due(case, now)]
    if not dry_run:
        for case in due:
            await cases.erase(case)
        if due:
            log.info("retention purge", extra={"erased": len(due)})
    return due


async def purging(cases: CaseStore, retention: Retention) -> None:
    """The purge, once an hour, for as long as the server runs (every process may run
    it: erasing an erased case does nothing)."""
    while True:
        await purge(cases, retention, dry_run=False)
        await asyncio.sleep(INTERVAL_SECONDS)
