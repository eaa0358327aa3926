"""Issues and errors as FHIR OperationOutcome dicts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fhir_adapter.errors import AdapterError, Issue

__all__ = ["error_outcome", "informational", "operation_outcome"]


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
        else Issue(issue.severity, issue.code, error.where.element, issue.diagnostics)
        for issue in error.issues
    ]
    return operation_outcome(issues)


def informational(text: str, *, expression: str | None = None) -> dict[str, Any]:
    """An OperationOutcome that only informs (for example: "not kept: patient not enrolled")."""
    return operation_outcome([Issue("information", "informational", expression, text)])


def _issue(issue: Issue) -> dict[str, Any]:
    out: dict[str, Any] = {"severity": issue.severity, "code": issue.code}
    if issue.diagnostics:
        out["diagnostics"] = issue.diagnostics
    if issue.expression:
        out["expression"] = [issue.expression]
    return out
