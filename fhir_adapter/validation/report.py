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

__all__ = ["FileResult", "validate_file", "validate_files"]

EXIT_VALID, EXIT_INVALID, EXIT_UNUSABLE = 0, 1, 2


@dataclass
class FileResult:
    """The problems of one file: (entry or line index or None, Issue); ``unusable`` when unread."""

    path: str
    problems: list[tuple[int | None, Issue]] = field(default_factory=list)
    unusable: str | None = None

    @property
    def invalid(self) -> bool:
        return any(i.severity in ("error", "fatal") for _, i in self.problems)


def validate_file(path: Path, validator: Validator, profile: str | None = None) -> FileResult:
    """Validate one JSON resource, Bundle, or NDJSON file (one resource a line)."""
    result = FileResult(str(path))
    try:
        data = path.read_bytes()
    except OSError as exc:
        result.unusable = f"cannot read the file ({exc.strerror or exc})"
        return result
    try:
        if path.suffix.lower() == ".ndjson":
            for line_no, line in enumerate(data.splitlines()):
                if line.strip():
                    resource = _resource(orjson.loads(line))
                    result.problems.extend(
                        (line_no, i) for i in validator.validate(resource, profile=profile)
                    )
            return result
        resource = _resource(orjson.loads(data))
        if resource["resourceType"] == "Bundle":
            result.problems = validator.validate_bundle(resource, profile=profile)
        else:
            result.problems = [(None, i) for i in validator.validate(resource, profile=profile)]
    except orjson.JSONDecodeError as exc:
        result.unusable = f"not JSON ({exc})"
    except UnusableInput as exc:
        result.unusable = exc.message
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
    text = _json(results) if fmt == "json" else _text(results)
    return code, text


def _text(results: list[FileResult]) -> str:
    lines = []
    for result in results:
        if result.unusable:
            lines.append(f"{result.path}: unusable: {result.unusable}")
            continue
        for index, issue in result.problems:
            where = f"entry {index}: " if index is not None else ""
            lines.append(
                f"{result.path}: {where}{issue.expression or '-'}: {issue.severity}: "
                f"{issue.diagnostics}"
            )
        errors = sum(1 for _, i in result.problems if i.severity in ("error", "fatal"))
        warnings = len(result.problems) - errors
        state = "invalid" if errors else "valid"
        lines.append(f"{result.path}: {state} ({errors} errors, {warnings} warnings)")
    return "\n".join(lines)


def _outcome(result: FileResult) -> dict[str, Any]:
    if result.unusable:
        return {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "fatal", "code": "structure", "diagnostics": result.unusable}],
        }
    return to_operation_outcome([i for _, i in result.problems])


def _json(results: list[FileResult]) -> str:
    if len(results) == 1:
        return json.dumps(_outcome(results[0]), indent=2, ensure_ascii=False)
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": Path(r.path).resolve().as_uri(), "resource": _outcome(r)} for r in results
        ],
    }
    return json.dumps(bundle, indent=2, ensure_ascii=False)
