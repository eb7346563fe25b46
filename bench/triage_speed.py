"""Triage speed: the lexicon stage on one core, and `hotline triage` over 1,000 lines.

Run by `make bench`; writes bench/results/triage-speed.md, which `hotline eval` copies
into docs/eval.md. The issue's bars: ≥ 2,000 messages/s for the lexicon stage, and
≤ 30 s for 1,000 lines through `hotline triage`, model load included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.languages import Languages  # noqa: E402
from triage.assess import Triage  # noqa: E402
from triage.lexicon import Lexicon  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "triage-speed.md"
DEV_SET = ROOT / "tests" / "data" / "triage_dev.jsonl"


def main() -> None:
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})  # the lexicon stage: one core
    texts = [json.loads(line)["text"] for line in DEV_SET.read_text(encoding="utf-8").splitlines() if line]
    lexicon = Lexicon.load()
    triage = Triage(lexicon, Languages.load())
    triage.assess(texts[0])  # warm the language detector
    rounds = max(1, 20_000 // len(texts))
    started = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            lexicon.match(text)
    lexicon_rate = rounds * len(texts) / (time.perf_counter() - started)
    started = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            triage.assess(text)
    rules_rate = rounds * len(texts) / (time.perf_counter() - started)

    os.sched_setaffinity(0, cores)  # the command as an operator runs it
    lines = "".join(json.dumps({"text": texts[i % len(texts)]}) + "\n" for i in range(1000))
    started = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).parent / "hotline"), "triage"], input=lines, text=True,
                          capture_output=True, check=True, cwd=ROOT)
    cli_seconds = time.perf_counter() - started
    assert len(done.stdout.splitlines()) == 1000

    table = "\n".join([
        "| what | measured | bar |",
        "| --- | ---: | ---: |",
        f"| lexicon stage, one core ({len(texts)} dev-set messages, {rounds} rounds) "
        f"| {lexicon_rate:,.0f} messages/s | ≥ 2,000 |",
        f"| lexicon + language + rules, no NLU, one core | {rules_rate:,.0f} messages/s | — |",
        f"| `hotline triage`, 1,000 lines, model load and NLU included ({len(cores)} cores) "
        f"| {cli_seconds:.1f} s | ≤ 30 s |",
    ])
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(table + "\n", encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()
