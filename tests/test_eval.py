"""`hotline eval`'s bar, and docs/eval.md true to the model the code trains."""

from __future__ import annotations

import asyncio

import pytest

from bot.evaluation import F1_BAR, REPORT, LanguageReport, evaluate, render_markdown
from bot.settings import Settings
from bot.training import model_path


@pytest.fixture(scope="module")
def reports(model_settings: Settings) -> list[LanguageReport]:
    found, _ = asyncio.run(evaluate(model_path(model_settings)))
    return found


def test_every_language_is_understood_and_every_flow_passes(reports: list[LanguageReport]) -> None:
    below = {r.code: round(r.macro_f1, 3) for r in reports if not r.passes and r.macro_f1 < F1_BAR}
    failed = {r.code: r.failed_stories for r in reports if r.failed_stories}
    assert below == {} and failed == {}
    assert len(reports) == 13  # twelve languages and the off-topic set


def test_docs_eval_md_is_what_hotline_eval_writes(reports: list[LanguageReport],
                                                        model_settings: Settings) -> None:
    def table(markdown: str) -> list[str]:
        return [line for line in markdown.splitlines() if line.startswith("| ")]

    written = render_markdown(reports, 0, model_path(model_settings))
    assert table(REPORT.read_text(encoding="utf-8")) == table(written), "run make eval, commit docs/eval.md"
