"""The decision table of saves that cannot land (``wopibridge.wopi.saves.decide``): complete,
and never refusing a final save into nothing."""

from __future__ import annotations

from pathlib import Path

from wopibridge.wopi.saves import decide
from wopibridge.wopi.saves.decide import FINAL, LIVE, Answer, Case

DOCS = Path(__file__).resolve().parents[2] / "docs" / "editors.md"


def test_every_case_has_a_verdict_for_live_and_final_saves() -> None:
    assert set(LIVE) == set(FINAL) == set(Case)
    assert decide.decide(None, final=True).write and decide.decide(None, final=False).write


def test_a_final_save_is_kept_before_any_refusal() -> None:
    for case, verdict in FINAL.items():
        if case is Case.LOST_LOCK_CURRENT:
            assert verdict.write and verdict.relock
        elif case is Case.NO_LOCK_GIVEN:  # it never held the file: nothing of it at stake
            assert not verdict.keep and verdict.answer is Answer.LOCK_MISMATCH
        else:
            assert verdict.keep, case
            assert verdict.answer is Answer.KEPT and verdict.unkept is Answer.TOO_LARGE, case


def test_only_a_live_timestamp_mismatch_goes_unkept_with_its_1010() -> None:
    unkept = {case for case, verdict in LIVE.items() if not verdict.keep and not verdict.write}
    assert unkept == {Case.TIMESTAMP_MISMATCH, Case.NO_LOCK_GIVEN}
    assert LIVE[Case.TIMESTAMP_MISMATCH].answer is Answer.DOCUMENT_CHANGED
    assert LIVE[Case.FULL].answer is Answer.TOO_LARGE


def test_the_docs_table_names_every_case() -> None:
    text = DOCS.read_text().lower()
    for case in Case:
        assert case.value.split(",")[0] in text, case
