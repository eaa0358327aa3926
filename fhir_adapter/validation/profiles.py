"""The project's published definitions (profiles/*.json), with each profile compiled into rules.

A profile is read from its snapshot, at the elements its differential states (the rest of the
snapshot is base R4, checked on its own). Each such element gives what the profile adds to the
base: a higher ``min``, a lower ``max``, fewer types or reference targets, a fixed or pattern
value, a binding to one of the project's value sets, new invariants, slices. Elements with nothing
to check, and no descendant that has, are dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fhir_adapter.errors import ConfigError
from fhir_adapter.validation.core import CoreModel
from fhir_adapter.validation.invariants import Invariant

__all__ = ["Definitions", "Rule", "Slicing"]

_CORE_SD = "http://hl7.org/fhir/StructureDefinition/"


@dataclass
class Slicing:
    discriminators: list[tuple[str, str]]  # (type, path)
    closed: bool


#: Type profiles R4 puts on elements (Dosage.dose is a SimpleQuantity): the base facts type
#: such elements by their base type (Quantity), so the type profile's own constraints are
#: checked with the profile that states the element.
_TYPE_PROFILES = ("http://hl7.org/fhir/StructureDefinition/SimpleQuantity",)


@dataclass
class Rule:
    """What a profile says about one element (by its name under the parent)."""

    name: str  # JSON name, or the choice base with "[x]"
    path: str
    type_key: str  # the base type key of the element (for choice: its only allowed type, if one)
    min: int | None = None
    max: int | None = None
    types: frozenset[str] | None = None
    targets: frozenset[str] | None = None
    fixed: Any = None
    pattern: Any = None
    binding: tuple[str, str] | None = None  # (strength, value set url)
    invariants: list[Invariant] = field(default_factory=list)
    extension_profile: str | None = None
    children: dict[str, Rule] = field(default_factory=dict)
    slicing: Slicing | None = None
    slices: list[Rule] = field(default_factory=list)
    slice_name: str | None = None

    def empty(self) -> bool:
        return (
            self.min is None
            and self.max is None
            and self.types is None
            and self.targets is None
            and self.fixed is None
            and self.pattern is None
            and self.binding is None
            and not self.invariants
            and self.extension_profile is None
            and not self.children
            and self.slicing is None
            and not self.slices
        )


@dataclass
class Definitions:
    """StructureDefinitions, ValueSets (expanded) and CodeSystems of profiles/."""

    structures: dict[str, dict[str, Any]]
    value_sets: dict[str, frozenset[tuple[str, str]]]
    code_systems: dict[str, dict[str, Any]]
    compiled: dict[str, Rule] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path, core: CoreModel) -> Definitions:
        kinds: dict[str, dict[str, dict[str, Any]]] = {
            "StructureDefinition": {},
            "ValueSet": {},
            "CodeSystem": {},
        }
        for path in sorted(folder.glob("*.json")):
            try:
                resource = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"{path}: cannot read definition ({exc})") from exc
            if resource.get("resourceType") in kinds:
                kinds[resource["resourceType"]][resource["url"]] = resource
        code_systems = kinds["CodeSystem"]
        value_sets = {url: _expand(vs, code_systems, core) for url, vs in kinds["ValueSet"].items()}
        value_sets.update({u: v for u, v in core.value_sets.items() if u not in value_sets})
        defs = cls(kinds["StructureDefinition"], value_sets, code_systems)
        for url, sd in defs.structures.items():
            defs.compiled[url] = _Compiler(sd, core).compile()
        return defs

    def resource_profiles(self) -> dict[str, str]:
        """Profile url -> the resource type it constrains."""
        return {u: sd["type"] for u, sd in self.structures.items() if sd["kind"] == "resource"}


def _expand(
    vs: dict[str, Any], code_systems: dict[str, dict[str, Any]], core: CoreModel
) -> frozenset[tuple[str, str]]:
    codes: set[tuple[str, str]] = set()
    for include in vs.get("compose", {}).get("include", []):
        system = include.get("system", "")
        if include.get("concept"):
            codes.update((system, c["code"]) for c in include["concept"])
        elif system in code_systems:
            codes.update((system, c["code"]) for c in _concepts(code_systems[system]["concept"]))
        for url in include.get("valueSet", []):
            codes.update(core.value_sets.get(url, frozenset()))
    return frozenset(codes)


def _concepts(concepts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for c in concepts:
        out.append(c)
        out.extend(_concepts(c.get("concept", [])))
    return out


class _Compiler:
    """Turns one snapshot into a tree of Rules, keeping only what differs from base R4."""

    def __init__(self, sd: dict[str, Any], core: CoreModel) -> None:
        self.sd, self.core = sd, core
        self.elements = sd["snapshot"]["element"]
        self.stated = {e["id"] for e in sd.get("differential", {}).get("element", [])}

    def compile(self) -> Rule:
        root_element = self.elements[0]
        root = Rule(root_element["path"], root_element["path"], self.sd["type"])
        root.invariants = self._invariants(root_element, self.sd["type"])
        rules: dict[str, Rule] = {root_element["id"]: root}
        for element in self.elements[1:]:
            parent_id, _, last = element["id"].rpartition(".")
            parent = rules.get(parent_id)
            if parent is None:
                continue
            name, _, slice_name = last.partition(":")
            rule = self._rule(element, parent, name)
            rules[element["id"]] = rule
            if slice_name:
                rule.slice_name = slice_name
                parent.children.setdefault(name, Rule(name, element["path"], rule.type_key))
                parent.children[name].slices.append(rule)
            else:
                parent.children[name] = rule
        _prune(root)
        return root

    def _rule(self, element: dict[str, Any], parent: Rule, name: str) -> Rule:
        base = self._base(parent.type_key, name)
        types = [t["code"] for t in element.get("type", [])]
        type_key = base[0].type if base else (types[0] if types else "Element")
        if name.endswith("[x]") and len(types) == 1:
            type_key = types[0]
        rule = Rule(name, element["path"], type_key)
        if element["id"] not in self.stated:
            return rule
        base_min = min((b.min for b in base), default=0)
        base_max = max((b.max if b.max >= 0 else 1 << 30 for b in base), default=1 << 30)
        emax = 1 << 30 if element.get("max", "*") == "*" else int(element["max"])
        if element.get("min", 0) > base_min or element.get("sliceName"):
            rule.min = element.get("min", 0)
        if emax < base_max or element.get("sliceName"):
            rule.max = emax
        if name.endswith("[x]"):
            allowed = frozenset(types)
            base_types = {b.name[len(name) - 3 :] for b in base}
            if allowed and {t[0].upper() + t[1:] for t in allowed} != base_types:
                rule.types = allowed
        targets = {p for t in element.get("type", []) for p in t.get("targetProfile", [])}
        if targets and all(p.startswith(_CORE_SD) for p in targets):
            narrowed = frozenset(p.removeprefix(_CORE_SD) for p in targets)
            if "Resource" not in narrowed:
                rule.targets = narrowed
        profiles = [p for t in element.get("type", []) for p in t.get("profile", [])]
        if type_key == "Extension" and profiles:
            rule.extension_profile = profiles[0]
        for key, value in element.items():
            if key.startswith("fixed"):
                rule.fixed = value
            elif key.startswith("pattern"):
                rule.pattern = value
        binding = element.get("binding") or {}
        vs = (binding.get("valueSet") or "").split("|")[0]
        base_vs = base[0].value_set if base else None
        if vs and binding.get("strength") in ("required", "extensible") and vs != base_vs:
            rule.binding = (binding["strength"], vs)
        rule.invariants = self._invariants(element, type_key)
        if "slicing" in element:
            slicing = element["slicing"]
            rule.slicing = Slicing(
                [(d["type"], d["path"]) for d in slicing.get("discriminator", [])],
                slicing.get("rules") == "closed",
            )
        return rule

    def _base(self, type_key: str, name: str) -> list[Any]:
        body = self.core.types.get(type_key, {})
        if name.endswith("[x]"):
            return [e for e in body.values() if e.choice == name[:-3]]
        return [body[name]] if name in body else []

    def _invariants(self, element: dict[str, Any], type_key: str) -> list[Invariant]:
        known = {i.key for i in self.core.invariants.get(type_key, [])}
        return [
            Invariant(c["key"], c["severity"], c["human"], c["expression"])
            for c in element.get("constraint", [])
            if c["key"] not in known
            and c["key"] != "ele-1"
            and "expression" in c
            and c.get("source", self.sd["url"]) in (self.sd["url"], *_TYPE_PROFILES)
            and not c["key"].startswith(("dom-", "ext-", "obs-", "mad-", "pat-", "qty-", "ref-"))
        ]


def _prune(rule: Rule) -> None:
    for piece in rule.slices:
        _prune(piece)
    for name in list(rule.children):
        child = rule.children[name]
        _prune(child)
        if child.empty():
            del rule.children[name]
