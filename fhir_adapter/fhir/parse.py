"""Parse a resource dict into a fhir.resources (R4B) model; every structural problem as an Issue."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

from fhir_adapter.errors import Issue, StructureError, Where

__all__ = ["fhirpath_of", "model_class", "parse_resource", "structure_issues"]

_CLASSES: dict[str, type[Resource] | None] = {}
_ABSTRACT = frozenset({"Resource", "DomainResource"})
_SPEC_REGEX = re.compile(r"(\w+) value string does not match spec regex")
_TYPE_WORDS = {
    "string_type": "a string",
    "bool_type": "true or false",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "json_invalid": "an object",
    "json_type": "an object",
    "decimal_type": "a number",
    "float_type": "a number",
}


def model_class(resource_type: str) -> type[Resource] | None:
    """The R4B model class of a resource type, or None when FHIR has no such type (cached)."""
    try:
        return _CLASSES[resource_type]
    except KeyError:
        pass
    cls: type[Resource] | None = None
    try:
        found = get_fhir_model_class(resource_type)
    except (ValueError, KeyError, ImportError):
        found = None
    if found is not None and issubclass(found, Resource) and resource_type not in _ABSTRACT:
        cls = found  # a datatype name such as "Quantity" is not a resourceType
    _CLASSES[resource_type] = cls
    return cls


def parse_resource(
    resource: dict[str, Any], *, base: str | None = None, where: Where | None = None
) -> Resource:
    """Validate ``resource`` against base FHIR (R4 content, read with the R4B models).

    ``base`` is the FHIRPath of the resource itself (default its type, e.g. ``Observation``;
    inside a Bundle ``Bundle.entry[3].resource``). Raises StructureError listing every problem.
    """
    where = where or Where()
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise StructureError(
            "not a FHIR resource (no resourceType)",
            where=where,
            issues=[Issue("error", "structure", base, "the resource has no resourceType")],
        )
    cls = model_class(resource_type)
    if cls is None:
        message = f"unknown resource type {resource_type!r}"
        expression = f"{base}.resourceType" if base else None
        raise StructureError(
            message, where=where, issues=[Issue("error", "not-supported", expression, message)]
        )
    try:
        return cls.model_validate(resource)
    except ValidationError as exc:
        issues = structure_issues(exc, base or resource_type)
        issues += _missing_primitives(cls, resource, base or resource_type, issues)
        first = issues[0]
        more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        located = where if where.element else replace(where, element=first.expression)
        raise StructureError(f"{first.diagnostics}{more}", where=located, issues=issues) from None


def structure_issues(exc: ValidationError, base: str) -> list[Issue]:
    """One Issue per pydantic error, with a FHIRPath expression under ``base``."""
    issues = []
    for error in exc.errors(include_url=False):
        expression = fhirpath_of(base, error.get("loc", ()))
        choice = _CHOICE.search(str(error.get("msg", "")))
        if choice:  # several values of one choice element: the path is the choice, name[x]
            names = _NAMES.findall(choice.group(1))
            stem = os.path.commonprefix(names)
            given = [n for n in names if isinstance(error.get("input"), dict)
                     and n in error["input"]]
            issues.append(Issue(
                "error", "structure", f"{expression}.{stem}[x]",
                f"{stem}[x] takes one value, got {len(given) or 'several'}"
                f"{': ' + ', '.join(given) if given else ''}"))
            continue
        issues.append(Issue("error", "structure", expression, _sentence(error)))
    return issues or [Issue("error", "structure", base, str(exc))]


def _missing_primitives(
    cls: type[Resource], resource: dict[str, Any], base: str, found: list[Issue]
) -> list[Issue]:
    """Required primitive elements of the resource itself that are absent.

    The models check these only once every other element is valid, so a resource with other
    errors would not hear of them.
    """
    known = {i.expression for i in found}
    try:
        required = cls.get_required_fields(None)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - a model without the list checks nothing more
        return []
    return [
        Issue("error", "structure", f"{base}.{name}", f"the required element {name!r} is missing")
        for name, _ in required
        if name not in resource and f"_{name}" not in resource and f"{base}.{name}" not in known
    ]


def fhirpath_of(base: str, loc: tuple[int | str, ...] | list[int | str]) -> str:
    """``('component', 0, 'value')`` under ``Observation`` -> ``Observation.component[0].value``."""
    path = base
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.isidentifier():
            path += "." + part.removesuffix("__ext").lstrip("_")
        # other parts name pydantic's internal validators, not elements: skipped
    return path


_CHOICE = re.compile(r"Any of one field value is expected from this list \[([^\]]*)\]")
_NAMES = re.compile(r"'([A-Za-z0-9_]+)'")


def _sentence(error: Any) -> str:
    kind = error.get("type", "")
    given = error.get("input")
    loc = error.get("loc") or ()
    name = next((p for p in reversed(loc) if isinstance(p, str) and p.isidentifier()), None)
    if kind == "extra_forbidden":
        return f"unknown element {name!r}: base FHIR R4 has no such element here"
    if kind in ("missing", "model_field_validation.missing"):
        return f"the required element {name!r} is missing"
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    spec = _SPEC_REGEX.search(message)
    if spec:
        return f"{_show(given)} is not a valid FHIR {spec.group(1)[:1].lower()}{spec.group(1)[1:]}"
    if kind in _TYPE_WORDS:
        return f"expected {_TYPE_WORDS[kind]}, got {_show(given)}"
    if given is not None and not isinstance(given, dict | list):
        return f"{message} (got {_show(given)})"
    return message


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
