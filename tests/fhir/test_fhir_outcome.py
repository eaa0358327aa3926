"""Issues and errors rendered as OperationOutcome (checked against the R4 model too)."""

from __future__ import annotations

from fhir_adapter.errors import Issue, UnitError, Where
from fhir_adapter.fhir.outcome import error_outcome, informational, operation_outcome
from fhir_adapter.fhir.parse import parse_resource


def test_issues_become_an_operation_outcome() -> None:
    outcome = operation_outcome(
        [
            Issue(
                "error", "structure", "Observation.valueQuantity.value", "'abc' is not a decimal"
            ),
            Issue("warning", "invalid", None, "something else"),
        ]
    )
    parse_resource(outcome)  # valid R4
    assert outcome["issue"][0] == {
        "severity": "error",
        "code": "structure",
        "diagnostics": "'abc' is not a decimal",
        "expression": ["Observation.valueQuantity.value"],
    }
    assert "expression" not in outcome["issue"][1]


def test_an_error_outcome_carries_its_element() -> None:
    error = UnitError(
        "the unit 'mg' cannot be converted", where=Where(element="Observation.valueQuantity.code")
    )
    outcome = error_outcome(error)
    parse_resource(outcome)
    (issue,) = outcome["issue"]
    assert issue["severity"] == "error" and issue["code"] == "value"
    assert issue["expression"] == ["Observation.valueQuantity.code"]
    assert "'mg'" in issue["diagnostics"]


def test_informational() -> None:
    outcome = informational("not kept: the patient is not enrolled")
    parse_resource(outcome)
    assert outcome["issue"] == [
        {
            "severity": "information",
            "code": "informational",
            "diagnostics": "not kept: the patient is not enrolled",
        }
    ]
    assert operation_outcome([])["issue"][0]["severity"] == "information"
