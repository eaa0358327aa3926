"""Distil the facts the validator needs from the CC0 FHIR R4 packages into one compact JSON.

Usage (the only step that needs the packages; the validator itself never touches a network)::

    mkdir /tmp/r4 && cd /tmp/r4
    npm pack hl7.fhir.r4.examples@4.0.1 hl7.fhir.r4.expansions@4.0.1
    mkdir ex exp && tar xzf hl7.fhir.r4.examples-4.0.1.tgz -C ex \
        && tar xzf hl7.fhir.r4.expansions-4.0.1.tgz -C exp
    python profiles/tools/build_core_facts.py /tmp/r4/ex/package /tmp/r4/exp/package

It writes ``fhir_adapter/validation/r4_core.json``:

- ``types``: for each resource, complex data type and backbone element (keyed by its path),
  ``{element name: [type key, min, max (-1 = *), required value set or null, choice base or null]}``
  with choice elements expanded (``valueQuantity``...);
- ``constraints``: the invariants of each type key, ``[key, severity, human, expression]``
  (``ele-1`` and best-practice ones left out);
- ``valuesets``: the expansion of every value set a required binding names, ``[[system, code]]``;
- ``resources``: the resource type names.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["build", "main"]

_OUT = Path(__file__).resolve().parents[2] / "fhir_adapter" / "validation" / "r4_core.json"
_BEST_PRACTICE = "http://hl7.org/fhir/StructureDefinition/elementdefinition-bestpractice"
_SKIP_CONSTRAINTS = {"ele-1"}


def _choice_name(base: str, code: str) -> str:
    return base + code[0].upper() + code[1:]


def _type_key(element: dict[str, Any], code: str) -> str:
    if code in ("BackboneElement", "Element") and "." in element["path"]:
        return str(element["path"])
    if code.startswith("http://hl7.org/fhirpath/System."):
        return "System." + code.rsplit(".", 1)[1]
    return code


def _constraints(element: dict[str, Any]) -> list[list[str]]:
    out = []
    for c in element.get("constraint", []):
        best = any(x.get("url") == _BEST_PRACTICE for x in c.get("extension", []))
        if c["key"] in _SKIP_CONSTRAINTS or best or "expression" not in c:
            continue
        out.append([c["key"], c["severity"], c["human"], c["expression"]])
    return out


def _add_element(
    types: dict[str, dict[str, list[Any]]], element: dict[str, Any], name: str
) -> None:
    parent, last = element["path"].rsplit(".", 1)
    node = types.setdefault(name if False else parent, {})
    vs = None
    binding = element.get("binding") or {}
    if binding.get("strength") == "required" and binding.get("valueSet"):
        vs = binding["valueSet"].split("|")[0]
    mx = -1 if element["max"] == "*" else int(element["max"])
    if "contentReference" in element:
        node[last] = [element["contentReference"][1:], element["min"], mx, vs, None]
        return
    codes = [t["code"] for t in element.get("type", [])]
    if last.endswith("[x]"):
        base = last[:-3]
        for code in codes:
            node[_choice_name(base, code)] = [
                _type_key(element, code),
                element["min"],
                mx,
                vs,
                base,
            ]
    elif codes:
        node[last] = [_type_key(element, codes[0]), element["min"], mx, vs, None]


def build(examples: Path, expansions: Path) -> dict[str, Any]:
    types: dict[str, dict[str, list[Any]]] = {}
    constraints: dict[str, list[list[str]]] = {}
    resources = []
    for path in sorted(examples.glob("StructureDefinition-*.json")):
        sd = json.loads(path.read_text(encoding="utf-8"))
        if sd.get("derivation") != "specialization" or sd.get("kind") not in (
            "resource",
            "complex-type",
        ):
            continue
        if sd["kind"] == "resource" and not sd.get("abstract"):
            resources.append(sd["type"])
        for element in sd["snapshot"]["element"]:
            if "." not in element["path"]:
                types.setdefault(element["path"], {})
            else:
                _add_element(types, element, element["path"])
            found = _constraints(element)
            if found:
                constraints[element["path"]] = found
    wanted = {e[3] for node in types.values() for e in node.values() if e[3]}
    valuesets = {}
    for url in sorted(wanted):
        name = url.rsplit("/", 1)[1]
        file = expansions / f"ValueSet-{name}.json"
        if not file.exists():
            continue
        vs = json.loads(file.read_text(encoding="utf-8"))
        contains = _flatten(vs.get("expansion", {}).get("contains", []))
        if contains:
            valuesets[url] = contains
    return {
        "fhirVersion": "4.0.1",
        "resources": sorted(resources),
        "types": types,
        "constraints": constraints,
        "valuesets": valuesets,
    }


def _flatten(contains: list[dict[str, Any]]) -> list[list[str]]:
    out = []
    for c in contains:
        if "code" in c and not c.get("abstract"):
            out.append([c.get("system", ""), c["code"]])
        out.extend(_flatten(c.get("contains", [])))
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    facts = build(Path(argv[0]), Path(argv[1]))
    _OUT.write_text(
        json.dumps(facts, separators=(",", ":"), sort_keys=True) + "\n", encoding="utf-8"
    )
    print(f"wrote {_OUT} ({len(facts['types'])} types, {len(facts['valuesets'])} value sets)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
