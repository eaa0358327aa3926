"""What `fhir-adapter validate FILE... [--profile URL] [--format text|json]` prints, returns."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from fhir_adapter.errors import Issue, UnusableInput
from fhir_adapter.validation.validator import Validator, to_operation_outcome

__all__ = [
    "FileResult",
    "file_outcome",
    "report_json",
    "report_lines",
    "validate_file",
    "validate_files",
]

EXIT_VALID, EXIT_INVALID, EXIT_UNUSABLE = 0, 1, 2
_NDJSON = (".ndjson", ".jsonl")


@dataclass
class FileResult:
    """The problems of one file: (entry index, or line number from 1, or None; Issue);
    ``unusable`` when the file cannot be read as FHIR at all."""

    path: str
    problems: list[tuple[int | None, Issue]] = field(default_factory=list)
    unusable: str | None = None
    #: the numbers of ``problems`` are NDJSON lines (counted from 1, as ``ingest`` counts)
    by_line: bool = False

    @property
    def invalid(self) -> bool:
        return any(i.severity in ("error", "fatal") for _, i in self.problems)

    def label(self, number: int | None) -> str:
        if number is None:
            return ""
        return f"line {number}: " if self.by_line else f"entry {number}: "


def validate_file(path: Path, validator: Validator, profile: str | None = None) -> FileResult:
    """Validate one JSON resource, Bundle, or NDJSON file (one resource a line)."""
    result = FileResult(str(path), by_line=path.suffix.lower() in _NDJSON)
    try:
        data = path.read_bytes()
    except OSError as exc:
        result.unusable = f"cannot read the file ({exc.strerror or exc})"
        return result
    line_no = 0
    try:
        if result.by_line:
            for line_no, line in enumerate(data.splitlines(), start=1):
                if line.strip():
                    resource = _resource(orjson.loads(line))
                    result.problems.extend(
                        (line_no, i) for _, i in validator.check(resource, profile=profile)
                    )
            return result
        result.problems = validator.check(_resource(orjson.loads(data)), profile=profile)
    except orjson.JSONDecodeError as exc:
        where = f"line {line_no}: " if result.by_line else ""
        result.unusable = f"{where}not JSON ({exc})"
    except UnusableInput as exc:
        where = f"line {line_no}: " if result.by_line else ""
        result.unusable = f"{where}{exc.message}"
    return result


def _resource(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        raise UnusableInput("not FHIR: a JSON object with a resourceType was expected")
    return value


def validate_files(
    paths: Iterable[Path | str], validator: Validator, profile: str | None = None, fmt: str = "text"
) -> tuple[int, str]:
    """Validate every file; (exit code 0 valid / 1 invalid / 2 unusable, text to print)."""
    try:
        validator.profile_for({}, profile=profile)
    except UnusableInput as exc:
        return EXIT_UNUSABLE, exc.message
    results = [validate_file(Path(p), validator, profile) for p in paths]
    if any(r.unusable for r in results):
        code = EXIT_UNUSABLE
    elif any(r.invalid for r in results):
        code = EXIT_INVALID
    else:
        code = EXIT_VALID
    if fmt == "json":
        return code, json.dumps(report_json(results), indent=2, ensure_ascii=False)
    return code, "\n".join(report_lines(results, unusable=True))


def report_lines(results: list[FileResult], *, unusable: bool = False) -> list[str]:
    """One line per issue (file, entry or line, element, severity, rule and profile), then
    one verdict line per file; an unusable file only when ``unusable`` (else it goes to stderr)."""
    lines = []
    for result in results:
        if result.unusable:
            if unusable:
                lines.append(f"{result.path}: unusable: {result.unusable}")
            continue
        for number, issue in result.problems:
            lines.append(
                f"{result.path}: {result.label(number)}{issue.expression or '-'}: "
                f"{issue.severity}: {issue.described()}"
            )
        errors = sum(1 for _, i in result.problems if i.severity in ("error", "fatal"))
        warnings = len(result.problems) - errors
        state = "invalid" if errors else "valid"
        lines.append(f"{result.path}: {state} ({errors} errors, {warnings} warnings)")
    return lines


def file_outcome(result: FileResult) -> dict[str, Any]:
    """The OperationOutcome of one file (a fatal issue when it is unusable)."""
    if result.unusable:
        return {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "fatal", "code": "structure", "diagnostics": result.unusable}],
        }
    outcome = to_operation_outcome([i for _, i in result.problems])
    if result.by_line:  # the line is not in the FHIRPath of a resource read alone
        for (number, _), item in zip(result.problems, outcome["issue"], strict=False):
            item["diagnostics"] = f"line {number}: {item['diagnostics']}"
    return outcome


def report_json(results: list[FileResult]) -> dict[str, Any]:
    """One OperationOutcome, or a collection Bundle of one per file."""
    if len(results) == 1:
        return file_outcome(results[0])
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": Path(r.path).resolve().as_uri(), "resource": file_outcome(r)}
            for r in results
        ],
    }
