"""`hotline eval`'s bar, and docs/eval.md true to the model the code trains."""

from __future__ import annotations

import asyncio

import pytest

from bot.evaluation import F1_BAR, REPORT, Evaluation, evaluate, render_markdown
from bot.settings import Settings
from bot.training import model_path


@pytest.fixture(scope="module")
def evaluation(model_settings: Settings) -> Evaluation:
    return asyncio.run(evaluate(model_path(model_settings)))


def test_every_language_is_understood_and_every_flow_passes(evaluation: Evaluation) -> None:
    reports = evaluation.languages
    below = {r.code: round(r.macro_f1, 3) for r in reports if not r.passes and r.macro_f1 < F1_BAR}
    failed = {r.code: r.failed_stories for r in reports if r.failed_stories}
    assert below == {} and failed == {}
    assert len(reports) == 13  # twelve languages and the off-topic set


def test_triage_meets_its_targets_in_every_language(evaluation: Evaluation) -> None:
    assert len(evaluation.triage) == 12
    assert {r.code: (r.p1_recall, r.false_p1, r.language, r.kind) for r in evaluation.triage
            if not r.passes} == {}


def test_docs_eval_md_is_what_hotline_eval_writes(evaluation: Evaluation, model_settings: Settings) -> None:
    def table(markdown: str) -> list[str]:
        return [line for line in markdown.splitlines() if line.startswith("| ")]

    written = render_markdown(evaluation, model_path(model_settings))
    assert table(REPORT.read_text(encoding="utf-8")) == table(written), "run make eval, commit docs/eval.md"
