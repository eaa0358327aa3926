"""The one exception root of the adapter and its tree.

::

    AdapterError                 anything the adapter refuses, with where it happened
    ├── UnusableInput            not JSON, not FHIR, unreadable file        exit 2 / HTTP 400
    ├── InvalidResource          valid JSON, breaks base R4 or a profile    exit 1 / HTTP 400 or 422
    │   ├── StructureError       not valid base R4 (unknown element, type) exit 1 / HTTP 400
    │   ├── ProfileError         valid R4, breaks one of our profiles       exit 1 / HTTP 422
    │   └── UnitError            a unit the analyte cannot convert          exit 1 / HTTP 422
    ├── ReferenceError_          a reference that resolves to nothing       exit 1 / HTTP 400
    ├── ConflictError            version or identity conflict               exit 1 / HTTP 409
    ├── PreconditionFailed       conditional match ambiguous                exit 1 / HTTP 412
    ├── NotFound                 unknown type or id                         exit 1 / HTTP 404
    ├── PayloadTooLarge          body over the size or depth limit          exit 2 / HTTP 413
    ├── AuthError                no or bad token                            HTTP 401
    │   └── Forbidden            token lacks the scope                      HTTP 403
    ├── DeliveryError            a research server refused or failed        exit 1
    └── ConfigError              settings or definition files are wrong     exit 2

Each error carries an ``Issue`` list (severity, code, FHIRPath expression, sentence) and a
``Where`` (file, entry index, element) so that every entry point can translate it in one place:
to an OperationOutcome and HTTP status (api), or to one line and an exit code (cli).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = [
    "AdapterError",
    "AuthError",
    "ConfigError",
    "ConflictError",
    "DeliveryError",
    "EntryFault",
    "Forbidden",
    "InvalidResource",
    "Issue",
    "NotFound",
    "NotFhir",
    "PayloadTooLarge",
    "PreconditionFailed",
    "ProfileError",
    "ReferenceError_",
    "StructureError",
    "UnitError",
    "UnusableInput",
    "Where",
]


@dataclass(frozen=True, slots=True)
class Where:
    """Where a problem is: the file (or request), the Bundle entry index, the element."""

    file: str | None = None
    entry: int | None = None
    element: str | None = None
    line: int | None = None

    def describe(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file)
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.entry is not None:
            parts.append(f"entry {self.entry}")
        if self.element:
            parts.append(self.element)
        return ": ".join(parts) if parts else "input"


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem, in the shape of an OperationOutcome.issue."""

    severity: str  # fatal | error | warning | information
    code: str  # FHIR issue-type code: invalid, structure, required, value, code-invalid, ...
    expression: str | None
    diagnostics: str
    #: the StructureDefinition whose rule this is (a project profile, or base R4's type)
    source: str | None = None
    #: the rule of ``source``: a constraint key (``tlo-1``) or an element rule (``min``, ...)
    rule: str | None = None

    def described(self) -> str:
        """The sentence with the rule and profile it comes from, as the HL7 validator says it."""
        if self.source is None:
            return self.diagnostics
        if self.rule:
            return f"{self.diagnostics} (rule {self.rule} of {self.source})"
        return f"{self.diagnostics} (from {self.source})"


class AdapterError(Exception):
    """Root of every error the adapter raises on purpose."""

    http_status = 400
    exit_code = 1
    issue_code = "processing"

    def __init__(
        self,
        message: str,
        *,
        where: Where | None = None,
        issues: list[Issue] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.where = where or Where()
        self.issues = issues or [
            Issue("error", self.issue_code, self.where.element, message)
        ]

    def located(self, **changes: object) -> AdapterError:
        """Return the same error with more location filled in (file, entry, element)."""
        where = replace(self.where, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]
        self.where = where
        return self

    def line(self) -> str:
        """One clear line: where, then what."""
        return f"{self.where.describe()}: {self.message}"


class UnusableInput(AdapterError):
    http_status = 400
    exit_code = 2
    issue_code = "structure"


class NotFhir(UnusableInput):
    """JSON that is not a FHIR resource at all (not an object, or no ``resourceType``)."""


class InvalidResource(AdapterError):
    http_status = 422
    issue_code = "invalid"


class StructureError(InvalidResource):
    http_status = 400
    issue_code = "structure"


class ProfileError(InvalidResource):
    http_status = 422
    issue_code = "invalid"


class UnitError(InvalidResource):
    http_status = 422
    issue_code = "value"


class ReferenceError_(AdapterError):  # noqa: N801 - avoids shadowing the builtin ReferenceError
    http_status = 400
    issue_code = "not-found"


class ConflictError(AdapterError):
    http_status = 409
    issue_code = "conflict"


class PreconditionFailed(AdapterError):
    http_status = 412
    issue_code = "multiple-matches"


class NotFound(AdapterError):
    http_status = 404
    issue_code = "not-found"


class PayloadTooLarge(AdapterError):
    http_status = 413
    exit_code = 2
    issue_code = "too-costly"


class AuthError(AdapterError):
    http_status = 401
    issue_code = "login"


class Forbidden(AuthError):
    http_status = 403
    issue_code = "forbidden"


class DeliveryError(AdapterError):
    http_status = 502
    issue_code = "transient"


class EntryFault(AdapterError):
    """An entry of a batch that failed on a fault of the adapter (logged with its traceback):
    that entry is answered 500, the others stand on their own."""

    http_status = 500
    issue_code = "exception"


class ConfigError(AdapterError):
    exit_code = 2
    issue_code = "invalid"


