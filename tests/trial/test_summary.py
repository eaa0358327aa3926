"""summarize(): counts per participant-level code and value, medians of change (TRIAL.md 6.7)."""

from __future__ import annotations

import tomllib
from decimal import Decimal

import pytest

from fhir_adapter.errors import ConfigError
from fhir_adapter.paths import mappings_dir
from fhir_adapter.trial.definitions import StudyDefinition
from fhir_adapter.trial.endpoints import compute, summarize
from fhir_adapter.trial.endpoints.participant import check_rules
from fhir_adapter.trial.model import ParticipantEndpoints, ParticipantResult, VisitResult
from tests.trial.trial_builders import DAY0, at, meas, record

D = Decimal


def _renal(subject: str, analyte: str, visit: str, change: str | None) -> VisitResult:
    return VisitResult(
        subject, "renal-function", analyte, visit, D(1), "mg/dL", DAY0,
        change=D(change) if change is not None else None,
    )  # fmt: skip


def _p(subject: str, code: str, value: bool | int | str) -> ParticipantResult:
    return ParticipantResult(subject, code, value, 9)


def test_counts_and_medians(study):
    a = ParticipantEndpoints(
        "S1",
        [_renal("S1", "creatinine", "W2", "-0.1"), _renal("S1", "egfr-computed", "W2", "10.5")],
        [_p("S1", "creatinine-category-w2", "D"), _p("S1", "liver-enzyme-increase-w2", False),
         _p("S1", "proteinuria-best-response", "complete"), _p("S1", "max-ctcae-grade-alt", 1)],
    )  # fmt: skip
    b = ParticipantEndpoints(
        "S2",
        [_renal("S2", "creatinine", "W2", "0.3"), _renal("S2", "creatinine", "M12", "0.2"),
         _renal("S2", "egfr-computed", "W2", None)],
        [_p("S2", "creatinine-category-w2", "U"), _p("S2", "liver-enzyme-increase-w2", True),
         _p("S2", "proteinuria-best-response", "complete"), _p("S2", "max-ctcae-grade-alt", 3)],
    )  # fmt: skip
    c = ParticipantEndpoints(
        "S3",
        [_renal("S3", "creatinine", "W2", "0.2")],
        [_p("S3", "creatinine-category-w2", "D"), _p("S3", "proteinuria-best-response", "partial")],
    )
    d = ParticipantEndpoints("S4", [], [ParticipantResult("S4", "no-infusion", True)])
    s = summarize([a, b, c, d], study.median_changes)
    assert s.population == {
        "creatinine-category-w2": 3,
        "liver-enzyme-increase-w2": 2,
        "proteinuria-best-response": 3,
        "max-ctcae-grade-alt": 2,
        "no-infusion": 1,
    }
    assert s.counts["creatinine-category-w2"] == {"D": 2, "N": 0, "U": 1}
    assert s.counts["liver-enzyme-increase-w2"] == {"true": 1, "false": 1}
    assert s.counts["proteinuria-best-response"] == {"complete": 2, "partial": 1, "none": 0}
    assert s.counts["max-ctcae-grade-alt"] == {"1": 1, "3": 1}
    assert s.counts["no-infusion"] == {"true": 1, "false": 0}
    assert s.participants_with_value == {"renal-function": 3}
    # creatinine W2 changes -0.1, 0.3, 0.2 -> 0.2 ; M12 only 0.2 ; eGFR W2 only 10.5 (S2 has none)
    assert s.medians == {
        "creatinine.W2": D("0.2"),
        "creatinine.M12": D("0.2"),
        "egfr-computed.W2": D("10.5"),
        "egfr-computed.M12": None,
    }


def test_summary_of_computed_participants(study, catalogue):
    # S1: creatinine 1.0 -> 0.9 (-10 %, D); S2: 1.0 -> 1.2 (+20 %, U); S3: no infusion
    s1 = record([meas("creatinine", "1.0", at(days=-1)), meas("creatinine", "0.9", at(days=14))],
                subject="S1")  # fmt: skip
    s2 = record([meas("creatinine", "1.0", at(days=-1)), meas("creatinine", "1.2", at(days=14))],
                subject="S2")  # fmt: skip
    s3 = record([meas("creatinine", "1.0", at(days=14))], subject="S3", day0=None)
    s = summarize([compute(r, study, catalogue) for r in (s1, s2, s3)], study.median_changes)
    assert s.counts["creatinine-category-w2"] == {"D": 1, "N": 0, "U": 1}
    assert s.participants_with_value == {"serum-creatinine": 2, "renal-function": 2}
    assert s.medians["creatinine.W2"] == D("0.05")  # (-0.1 + 0.2) / 2
    assert s.population["no-infusion"] == 1
    assert summarize([], study.median_changes).medians["creatinine.W2"] is None


def test_the_medians_come_from_the_study_file_and_are_checked_at_load():
    data = tomllib.loads((mappings_dir() / "study.toml").read_text(encoding="utf-8"))
    assert StudyDefinition.from_dict(data).median_changes == (
        ("renal-function", "creatinine", "W2"), ("renal-function", "creatinine", "M12"),
        ("renal-function", "egfr-computed", "W2"), ("renal-function", "egfr-computed", "M12"),
    )
    data["summary"]["median_changes"][0]["visit"] = "W3"  # no visit of renal-function
    with pytest.raises(ConfigError, match="renal-function/creatinine/W3"):
        StudyDefinition.from_dict(data)


def test_an_endpoint_renamed_in_the_study_file_fails_at_load(catalogue):
    data = tomllib.loads((mappings_dir() / "study.toml").read_text(encoding="utf-8"))
    check_rules(StudyDefinition.from_dict(data), catalogue)
    data["endpoints"]["liver"] = data["endpoints"].pop("liver-function")
    with pytest.raises(ConfigError, match="liver-function"):
        check_rules(StudyDefinition.from_dict(data), catalogue)
