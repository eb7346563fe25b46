"""How well triage does on ``tests/data/triage_dev.jsonl``, per language.

Each line is a ``hotline triage`` input plus ``expect`` (priority, kind, language).
Measured per language: P1 recall (expected P1 read as P1), false P1 (expected P3 or
P4 read as P1), language accuracy and kind accuracy; the targets are those of the
triage issue: P1 recall ≥ 0.98, false P1 ≤ 0.05, language ≥ 0.97, kind ≥ 0.85.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.settings import PROJECT_ROOT
from triage.assess import Triage

__all__ = ["DEV_SET", "TARGETS", "TriageReport", "evaluate_triage"]

DEV_SET = PROJECT_ROOT / "tests" / "data" / "triage_dev.jsonl"
TARGETS = {"p1_recall": 0.98, "false_p1": 0.05, "language": 0.97, "kind": 0.85}


@dataclass
class TriageReport:
    code: str
    lines: int = 0
    p1: int = 0
    p1_found: int = 0
    calm: int = 0  # expected P3 or P4
    calm_as_p1: int = 0
    language_right: int = 0
    kind_right: int = 0
    missed: list[str] = field(default_factory=list)  # expected P1, read lower

    @property
    def p1_recall(self) -> float:
        return self.p1_found / self.p1 if self.p1 else 1.0

    @property
    def false_p1(self) -> float:
        return self.calm_as_p1 / self.calm if self.calm else 0.0

    @property
    def language(self) -> float:
        return self.language_right / self.lines if self.lines else 0.0

    @property
    def kind(self) -> float:
        return self.kind_right / self.lines if self.lines else 0.0

    @property
    def passes(self) -> bool:
        return (self.p1_recall >= TARGETS["p1_recall"] and self.false_p1 <= TARGETS["false_p1"]
                and self.language >= TARGETS["language"] and self.kind >= TARGETS["kind"])


async def evaluate_triage(triage: Triage, parse: Callable[[str], Awaitable[dict[str, Any]]],
                          path: Path = DEV_SET) -> list[TriageReport]:
    reports: dict[str, TriageReport] = defaultdict(lambda: TriageReport(""))
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        expect = item["expect"]
        record = triage.assess(item["text"], lang=item.get("lang"), parse=await parse(item["text"]))
        report = reports[expect["language"]]
        report.code = expect["language"]
        report.lines += 1
        report.language_right += record.language == expect["language"]
        report.kind_right += record.kind == expect["kind"]
        if expect["priority"] == "P1":
            report.p1 += 1
            if record.priority == "P1":
                report.p1_found += 1
            else:
                report.missed.append(item["text"])
        elif expect["priority"] in ("P3", "P4"):
            report.calm += 1
            report.calm_as_p1 += record.priority == "P1"
    return sorted(reports.values(), key=lambda r: r.code)
