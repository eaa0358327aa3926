"""Base R4 facts (generated into r4_core.json): required elements, required bindings, invariants."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from fhir_adapter.errors import Issue
from fhir_adapter.validation.invariants import ENGINE_GAPS, Invariant, unchecked

__all__ = ["BASE_SD", "CoreModel", "Element", "base_source", "core_model", "json_type_problem"]

_FACTS = Path(__file__).with_name("r4_core.json")
_CODED = ("Coding", "CodeableConcept")
BASE_SD = "http://hl7.org/fhir/StructureDefinition/"
#: R4 JSON representation (json.html, "Primitive Types"): these are JSON numbers and
#: booleans, never strings; a lax parser would take "0.6" for 0.6 and let it through.
_NUMBERS = frozenset({"decimal", "integer", "positiveInt", "unsignedInt", "integer64"})
_INTEGERS = _NUMBERS - {"decimal"}
_STRINGS = frozenset({
    "string", "code", "uri", "url", "canonical", "id", "oid", "uuid", "markdown", "base64Binary",
    "instant", "date", "dateTime", "time", "xhtml", "System.String",
})


def base_source(type_key: str) -> str:
    """The base R4 StructureDefinition that states the rules of ``type_key`` (or its parent)."""
    return BASE_SD + type_key.split(".")[0]


#: R4 id (datatypes.html#id): 1 to 64 of these characters.
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
#: A urn:uuid: names a UUID (RFC 4122 section 3; R4 datatypes.html#uuid), in either case.
_UUID_URN = re.compile(r"urn:uuid:[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_URIS = frozenset({"uri", "url", "canonical", "uuid"})
#: R4 strings SHALL NOT exceed 1 MB (datatypes.html#string); base64Binary and xhtml excepted.
STRING_MAX_BYTES = 1024 * 1024
_UNBOUNDED = frozenset({"base64Binary", "xhtml"})


def json_type_problem(type_key: str, value: Any) -> str | None:
    """Why ``value`` is not the JSON a primitive of ``type_key`` must be, or None."""
    if type_key in _STRINGS and isinstance(value, str):
        return _string_problem(type_key, value)
    if type_key in _NUMBERS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{type_key} must be a JSON number, got {_show(value)}"
        if type_key in _INTEGERS and isinstance(value, float) and not value.is_integer():
            return f"{type_key} must be a whole number, got {_show(value)}"
    elif type_key == "boolean":
        if not isinstance(value, bool):
            return f"boolean must be JSON true or false, got {_show(value)}"
    elif type_key in _STRINGS and not isinstance(value, str):
        return f"{type_key} must be a JSON string, got {_show(value)}"
    return None


def _string_problem(type_key: str, value: str) -> str | None:
    # R4 strings SHOULD hold no character below U+0020 but tab, CR and LF; a NUL is refused,
    # as neither database would keep it alike (PostgreSQL holds none in text or jsonb)
    if "\x00" in value:
        return f"{type_key} holds the character U+0000 (NUL), which FHIR strings may not"
    if type_key not in _UNBOUNDED and len(value) > STRING_MAX_BYTES // 4 and \
            len(value.encode("utf-8")) > STRING_MAX_BYTES:
        return f"{type_key} of {len(value.encode('utf-8'))} bytes: FHIR strings hold 1 MB at most"
    if type_key == "id" and not _ID.fullmatch(value):
        return f"id {_show(value)} is not 1 to 64 of A-Z, a-z, 0-9, '-' and '.'"
    if type_key in _URIS and value[:9].lower() == "urn:uuid:" and not _UUID_URN.fullmatch(value):
        return f"{_show(value)} is not a UUID (urn:uuid: must be followed by one, RFC 4122)"
    return None


@dataclass(frozen=True, slots=True)
class Element:
    """One element of a type: its type key, cardinality, required value set, choice base name."""

    name: str
    type: str
    min: int
    max: int  # -1: unbounded
    value_set: str | None
    choice: str | None


@dataclass
class CoreModel:
    """Every type of R4 with what the base specification requires of its instances."""

    types: dict[str, dict[str, Element]]
    required: dict[str, list[tuple[str, tuple[str, ...]]]]
    invariants: dict[str, list[Invariant]]
    value_sets: dict[str, frozenset[tuple[str, str]]]
    resources: frozenset[str]
    codes: dict[str, frozenset[str]] = field(default_factory=dict)
    _nested: bool = True

    @classmethod
    def load(cls, path: Path = _FACTS) -> CoreModel:
        facts = json.loads(path.read_text(encoding="utf-8"))
        types: dict[str, dict[str, Element]] = {}
        required: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        for key, body in facts["types"].items():
            types[key] = {n: Element(n, *spec) for n, spec in body.items()}
            groups: dict[str, list[str]] = {}
            for element in types[key].values():
                if element.min >= 1:
                    groups.setdefault(element.choice or element.name, []).append(element.name)
            required[key] = [(name, tuple(names)) for name, names in groups.items()]
        invariants = {
            key: [Invariant(*c) for c in body if c[0] not in ENGINE_GAPS]
            for key, body in facts["constraints"].items()
            if key in types
        }
        value_sets = {
            url: frozenset((s, c) for s, c in body) for url, body in facts["valuesets"].items()
        }
        model = cls(types, required, invariants, value_sets, frozenset(facts["resources"]))
        model.codes = {url: frozenset(c for _, c in pairs) for url, pairs in value_sets.items()}
        return model

    def element(self, type_key: str, name: str) -> Element | None:
        body = self.types.get(type_key)
        return body.get(name) if body else None

    def check(
        self,
        node: Any,
        type_key: str,
        path: str,
        resource: dict[str, Any],
        *,
        nested: bool = True,
    ) -> list[Issue]:
        """Every base problem under ``node``: missing required elements, codes, invariants.

        ``nested=False`` leaves out resources inside it (Bundle entries checked on their own).
        """
        issues: list[Issue] = []
        self._nested = nested
        self._walk(node, type_key, path, resource, issues)
        return issues

    def _walk(
        self, node: Any, key: str, path: str, resource: dict[str, Any], out: list[Issue]
    ) -> None:
        if not isinstance(node, dict):
            return
        if key == "Resource":
            if not self._nested:
                return
            kind = node.get("resourceType")
            if not isinstance(kind, str) or kind not in self.types:
                return
            key = kind
        body = self.types.get(key)
        if body is None:
            return
        for name, names in self.required.get(key, ()):
            if not any(n in node or f"_{n}" in node for n in names):
                out.append(
                    Issue(
                        "error",
                        "required",
                        f"{path}.{name}",
                        f"{name} is required (min 1) in {key}",
                        source=base_source(key),
                        rule="min",
                    )
                )
        for name, value in node.items():
            element = body.get(name)
            if element is None:
                continue
            items = value if isinstance(value, list) else [value]
            many = isinstance(value, list)
            for i, item in enumerate(items):
                where = f"{path}.{name}[{i}]" if many else f"{path}.{name}"
                # a resource's own id is an R4 id, though its definition says System.String
                kind = "id" if name == "id" and key in self.resources else element.type
                problem = json_type_problem(kind, item) if item is not None else None
                if problem is not None:
                    out.append(Issue("error", "structure", where, problem,
                                     source=base_source(key), rule="type"))
                    continue
                if element.value_set is not None:
                    self._binding(item, element, where, out, key)
                if element.type in self.types:
                    self._walk(item, element.type, where, resource, out)
        for invariant in self.invariants.get(key, ()):
            verdict = invariant.holds(node, resource)
            if verdict is False:
                out.append(_broken(invariant, path, key))
            elif verdict is None:
                out.append(unchecked(invariant, path))

    def _binding(
        self, item: Any, element: Element, where: str, out: list[Issue], key: str
    ) -> None:
        url = element.value_set
        assert url is not None
        if url not in self.value_sets:
            return  # a value set FHIR publishes no expansion for (mime types, languages)
        if element.type in _CODED:
            codings = item.get("coding", []) if element.type == "CodeableConcept" else [item]
            pairs = self.value_sets[url]
            if isinstance(codings, list) and any(
                isinstance(c, dict) and (c.get("system"), c.get("code")) in pairs for c in codings
            ):
                return
            shown = where
        elif isinstance(item, str):
            if item in self.codes[url]:
                return
            shown = where
        else:
            return
        out.append(
            Issue(
                "error",
                "code-invalid",
                shown,
                f"{_show(item)} is not in the required value set {url}",
                source=base_source(key),
                rule="binding",
            )
        )


def _broken(invariant: Invariant, path: str, key: str) -> Issue:
    severity = "error" if invariant.severity == "error" else "warning"
    return Issue(
        severity, "invariant", path, f"{invariant.key}: {invariant.human} ({invariant.expression})",
        source=base_source(key), rule=invariant.key,
    )


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@cache
def core_model() -> CoreModel:
    """The base model, loaded once per process."""
    return CoreModel.load()
