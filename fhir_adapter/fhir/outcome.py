"""Issues and errors as FHIR OperationOutcome dicts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from fhir_adapter.errors import AdapterError, Issue

__all__ = ["ISSUE_SOURCE", "MESSAGE_ID", "error_outcome", "informational", "operation_outcome"]


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    """An OperationOutcome with one ``issue`` per Issue (an ``informational`` one when empty)."""
    rendered = [_issue(i) for i in issues]
    if not rendered:
        rendered = [_issue(Issue("information", "informational", None, "no issues"))]
    return {"resourceType": "OperationOutcome", "issue": rendered}


def error_outcome(error: AdapterError) -> dict[str, Any]:
    """The OperationOutcome of an error; an issue without expression gets the error's element."""
    issues = [
        issue
        if issue.expression or not error.where.element
        else replace(issue, expression=error.where.element)
        for issue in error.issues
    ]
    return operation_outcome(issues)


def informational(text: str, *, expression: str | None = None) -> dict[str, Any]:
    """An OperationOutcome that only informs (for example: "not kept: patient not enrolled")."""
    return operation_outcome([Issue("information", "informational", expression, text)])


#: R4 core extension: the source of an issue (here the StructureDefinition whose rule it is)
ISSUE_SOURCE = "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-source"
#: FHIR extension pack: the id of the message (here the constraint key or element rule)
MESSAGE_ID = "http://hl7.org/fhir/StructureDefinition/operationoutcome-message-id"


def _issue(issue: Issue) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if issue.source:
        out["extension"] = [{"url": ISSUE_SOURCE, "valueString": issue.source}]
        if issue.rule:
            out["extension"].append({"url": MESSAGE_ID, "valueString": issue.rule})
    out.update(severity=issue.severity, code=issue.code)
    if issue.diagnostics:
        out["diagnostics"] = issue.described()
    if issue.expression:
        out["expression"] = [issue.expression]
    return out
