"""``from fhir_adapter import validate``: the validation of every way in, for a script.

    >>> from fhir_adapter import validate
    >>> outcome = validate({"resourceType": "Patient", "gender": "F"})
    >>> outcome.valid, [i.expression for i in outcome.errors]
    (False, ['Patient.gender'])
    >>> outcome["resourceType"]
    'OperationOutcome'

Offline: no database is opened, nothing goes over the network. The rules are those of
``fhir-adapter validate`` (base R4, the project's profiles, the analyte catalogue's units and
plausible ranges), read from the definition files the settings name (``FHIR_ADAPTER_*``), once
per choice of files.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import orjson

from fhir_adapter.errors import Issue, UnusableInput
from fhir_adapter.settings import Settings
from fhir_adapter.terminology import Terminology
from fhir_adapter.validation.report import file_outcome, validate_file
from fhir_adapter.validation.validator import Implausible, Validator, to_operation_outcome

__all__ = ["ValidationResult", "validate"]

_ERRORS = ("error", "fatal")


class ValidationResult(dict[str, Any]):
    """The OperationOutcome (a dict, FHIR JSON), with the issues it was made of: ``valid``
    (no error), ``errors`` and ``warnings`` (each an Issue: severity, code, expression, the
    sentence in ``diagnostics``, the rule and the StructureDefinition it comes from)."""

    def __init__(self, outcome: dict[str, Any], issues: list[Issue]) -> None:
        super().__init__(outcome)
        self.issues = issues

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity in _ERRORS]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]


def validate(
    document: dict[str, Any] | bytes | str | Path,
    profile: str | None = None,
    *,
    settings: Settings | None = None,
) -> ValidationResult:
    """Validate a resource or a Bundle (entry by entry): a dict, its JSON bytes, or the path of
    a JSON or NDJSON file (``str`` or ``Path``; NDJSON issues say their line).

    ``profile``: a project profile's URL, or ``http://hl7.org/fhir/StructureDefinition/[type]``
    for base R4 only; an unknown one raises UnusableInput. Input that is not FHIR at all (not
    JSON, no ``resourceType``, an unreadable file) is a result with one ``fatal`` issue."""
    validator = _validator(settings or Settings())
    validator.profile_for({}, profile=profile)  # an unknown profile raises
    if isinstance(document, str | Path):
        checked = validate_file(Path(document), validator, profile)
        issues = [i for _, i in checked.problems]
        if checked.unusable:
            issues = [Issue("fatal", "structure", None, checked.unusable)]
        return ValidationResult(file_outcome(checked), issues)
    try:
        if isinstance(document, bytes | bytearray | memoryview):
            document = orjson.loads(document)
        if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
            raise UnusableInput("not FHIR: a JSON object with a resourceType was expected")
    except orjson.JSONDecodeError as exc:
        return _unusable(f"not JSON ({exc})")
    except UnusableInput as exc:
        return _unusable(exc.message)
    issues = [i for _, i in validator.check(document, profile=profile)]
    return ValidationResult(to_operation_outcome(issues), issues)


def _unusable(message: str) -> ValidationResult:
    issue = Issue("fatal", "structure", None, message)
    return ValidationResult(to_operation_outcome([issue]), [issue])


def _validator(settings: Settings) -> Validator:
    return _validator_of(settings.mappings_dir, settings.study_file, settings.implausible_values)


@cache
def _validator_of(mappings: Path | None, study: Path | None,
                  implausible: Implausible) -> Validator:
    settings = Settings(mappings_dir=mappings, study_file=study, implausible_values=implausible)
    return Validator.over(Terminology.from_settings(settings), settings)
