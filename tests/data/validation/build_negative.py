"""Write the negative corpus: one file per rule, each a valid instance broken in one place.

    python tests/data/validation/build_negative.py

Every rule the published profiles state (profiles/StructureDefinition-*.json, differential) is
broken by a mutation of the valid instance of its profile (valid/*.json), chosen by the kind of
rule: ``min`` removes the element, ``max`` repeats it, ``type`` swaps the choice type, ``target``
points the reference at a Device, ``fixed``/``pattern``/``binding`` change the code, invariants
have their own mutation below. Base R4 and trial rules have hand-made cases too. The expected
FHIRPath expressions are worked out here from where the mutation was made, and written with each
case into cases.json, which the tests read.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROFILES = HERE.parents[2] / "profiles"
B = "https://fhir-adapter.org/fhir"
SELECT = {  # slice name -> how an item of the slice is recognised
    "visit": lambda v: v.get("url") == f"{B}/StructureDefinition/trial-visit",
    "endpointResult": lambda v: v["coding"][0]["code"] == "endpoint-result",
    "endpoint": lambda v: v.get("system") == f"{B}/CodeSystem/trial-endpoint",
}
#: Root cardinality of an extension is stated by the slice that uses it.
COVERED_BY = {
    "trial-visit:Extension:max": "endpoint-result:Observation.extension:visit:max",
}


def _select(name: str) -> Any:
    return SELECT.get(name, lambda v: v["code"]["coding"][0]["code"] == name)


def locate(resource: dict[str, Any], element_id: str) -> list[tuple[Any, str, int | None, str]]:
    """(parent, key, index, fhirpath) of every instance value of ``element_id``."""
    steps = element_id.split(".")
    here: list[tuple[Any, str, int | None, str]] = [(None, "", None, steps[0])]
    nodes: list[tuple[Any, str]] = [(resource, steps[0])]
    for step in steps[1:]:
        name, _, slice_name = step.partition(":")
        found = []
        for node, path in nodes:
            if not isinstance(node, dict):
                continue
            if name.endswith("[x]"):
                keys = [k for k in node if k.startswith(name[:-3]) and k[len(name) - 3].isupper()]
            else:
                keys = [name] if name in node else []
            for key in keys:
                value = node[key]
                items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
                for index, item in items:
                    if slice_name and not _select(slice_name)(item):
                        continue
                    where = f"{path}.{key}" + (f"[{index}]" if index is not None else "")
                    found.append((node, key, index, where, item))
        here = [(n, k, i, w) for n, k, i, w, _ in found]
        nodes = [(item, w) for *_, w, item in found]
    return here


def parent_path(where: str) -> str:
    return where.rsplit(".", 1)[0]


def shown(element_id: str, where_parent: str) -> str:
    return f"{where_parent}.{element_id.rsplit('.', 1)[1].split(':')[0].removesuffix('[x]')}"


def mutate(resource: dict[str, Any], element: dict[str, Any], kind: str) -> list[str]:
    """Break ``resource`` for the rule; return the expected expressions."""
    element_id = element["id"]
    places = locate(resource, element_id)
    node, key, index, where = places[0]
    parent = parent_path(where.rsplit("[", 1)[0] if index is not None else where)
    if kind == "min":
        for node, key, index, _ in reversed(places):
            if index is None:
                del node[key]
            else:
                del node[key][index]
                if not node[key]:
                    del node[key]
        return [shown(element_id, parent)]
    if kind == "max":
        value = node[key]
        if isinstance(value, list):
            value.append(copy.deepcopy(value[index or 0]))
        else:
            node[key] = [value, copy.deepcopy(value)]
            return [f"{parent}.{key}"]
        return [shown(element_id, parent)]
    if kind == "type":
        base = element_id.rsplit(".", 1)[1].removesuffix("[x]")
        value = node.pop(key)
        other = {
            "effective": ("Timing", {"event": ["2015-03-14"]}),
            "medication": ("Reference", {"reference": "Medication/m1"}),
        }
        suffix, new = other.get(base, ("String", "text instead"))
        if suffix == "String" and key == f"{base}String":
            suffix, new = "Boolean", True
        node[f"{base}{suffix}"] = new
        del value
        return [f"{parent}.{base}{suffix}"]
    if kind == "target":
        node[key] = {"reference": "Device/d1"} if index is None else node[key]
        if index is not None:
            node[key][index] = {"reference": "Device/d1"}
        return [where]
    if kind.startswith("fixed"):
        node[key] = "http://example.org/other" if kind == "fixedUri" else "other"
        return [where]
    if kind.startswith("pattern"):
        (node[key] if index is None else node[key][index])["coding"][0]["code"] = "other"
        if "component" in element_id:
            return [where.rsplit(".", 1)[0]]  # the component matches no slice (closed)
        if ":" in element_id.rsplit(".", 1)[1]:
            return [shown(element_id, parent)]  # the slice it was in now has no member
        return [where]
    if kind == "binding":
        value = node[key] if index is None else node[key][index]
        if isinstance(value, str):
            node[key] = "not-a-code"
        elif "coding" in value:
            value["coding"] = [{"system": value["coding"][0]["system"], "code": "not-a-code"}]
        else:
            value["code"] = "not-a-code"
        return [where]
    raise ValueError(kind)


INVARIANTS: dict[str, Any] = {
    "tlo-1": lambda r: (r.pop("valueQuantity"), r.pop("referenceRange"), ["Observation"])[-1],
    "tlo-2": lambda r: (
        r["valueQuantity"].pop("code"),
        r["valueQuantity"].pop("unit"),
        r["valueQuantity"].pop("system"),
        ["Observation.valueQuantity"],
    )[-1],
    # R4 types Dosage.dose as SimpleQuantity: no comparator
    "sqty-1": lambda r: (
        r["dosage"]["dose"].update(comparator="<"),
        ["MedicationAdministration.dosage.dose"],
    )[-1],
    "msc-1": lambda r: (
        r["dosage"]["dose"].update(value=-1),
        ["MedicationAdministration.dosage.dose"],
    )[-1],
    "er-1": lambda r: (r["code"]["coding"].pop(1), ["Observation"])[-1],
    "pe-1": lambda r: (
        r["code"]["coding"][0].update(code="liver-enzyme-increase-w2"),
        ["Observation"],
    )[-1],
    "pe-2": lambda r: (r.update(valueInteger=5), ["Observation"])[-1],
    "pe-3": lambda r: (
        r["code"]["coding"][0].update(code="creatinine-category-w2"),
        ["Observation"],
    )[-1],
    "pe-4": lambda r: (
        r["code"]["coding"][0].update(code="proteinuria-best-response"),
        ["Observation"],
    )[-1],
    "pe-5": lambda r: (
        r["code"]["coding"][0].update(code="no-infusion"),
        r.pop("valueInteger"),
        r.update(valueBoolean=False),
        ["Observation"],
    )[-1],
}
#: Cases whose one mutation breaks two rules at once, by the nature of the rules.
ALSO = {
    # pe-2: max-ctcae-grade-alt (the valid instance's code) wants an integer value
    "participant-endpoint:Observation.value[x]:type": ["Observation"],
    "participant-endpoint:Observation.value[x]:min": ["Observation"],
    # er-1 wants the analyte coding; the extensible binding wants a coding
    "endpoint-result:Observation.code.coding:min": ["Observation"],
    "trial-lab-observation:Observation.code.coding:min": ["Observation.code"],
    # mad-1: a dosage has a dose or a rate
    "msc-administration:MedicationAdministration.dosage.dose:min": [
        "MedicationAdministration.dosage"
    ],
    # ext-1: an extension has a value or extensions
    "trial-visit:Extension.value[x]:min": ["Observation.extension[0]"],
    # the required binding to trial-visit is on system and code together
    "trial-visit:Extension.value[x].system:min": ["Observation.extension[0].valueCoding"],
    "trial-visit:Extension.value[x].code:min": ["Observation.extension[0].valueCoding"],
}


DISCRIMINATORS = {"Observation.code.coding:endpoint": "system", "Extension": "url"}


def consequences(rule: str, element_id: str, kind: str, expected: list[str]) -> list[str]:
    """What else the same mutation breaks by necessity, worked out from the rules themselves."""
    more = list(ALSO.get(rule, []))
    owner, _, leaf = element_id.rpartition(".")
    if DISCRIMINATORS.get(owner) == leaf:
        # the item no longer belongs to its slice: the slice is reported empty, at the list
        sliced = owner.rsplit(":", 1)[0].rsplit(".", 1)[1] if ":" in owner else "extension"
        where = expected[0]
        list_path = where[: where.rindex(f".{sliced}") + len(sliced) + 1]
        return [list_path]
    if kind == "min" and leaf == "system" and owner.endswith("value[x]"):
        more.append(expected[0].rsplit(".", 1)[0])  # qty-3: a code without its system
    if kind == "min" and leaf == "system" and owner.endswith("dose"):
        more.append(expected[0].rsplit(".", 1)[0])  # qty-3 as well
    return expected + more


def rules() -> list[tuple[str, dict[str, Any], str]]:
    """Every (profile id, differential element, rule kind) the published profiles state."""
    out = []
    for path in sorted(PROFILES.glob("StructureDefinition-*.json")):
        sd = json.loads(path.read_text("utf-8"))
        for element in sd["differential"]["element"]:
            kinds = []
            if element.get("min", 0) > 0:
                kinds.append("min")
            if element.get("max", "*") != "*":
                kinds.append("max")
            if element["path"].endswith("[x]") and element.get("type"):
                kinds.append("type")
            if any(t.get("targetProfile") for t in element.get("type", [])):
                kinds.append("target")
            kinds += [k for k in element if k.startswith(("fixed", "pattern"))]
            if "binding" in element:
                kinds.append("binding")
            kinds += [c["key"] for c in element.get("constraint", [])]
            out.extend((sd["id"], element, kind) for kind in kinds)
    return out


def _base(profile: str) -> dict[str, Any]:
    return json.loads((HERE / "valid" / f"{profile}.json").read_text("utf-8"))


def _visit_extension_case(kind: str, element: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    resource = _base("endpoint-result")
    extension = resource["extension"][0]
    if element["id"] == "Extension.extension":
        extension["extension"] = [{"url": "https://example.org/x", "valueString": "y"}]
        return resource, ["Observation.extension[0].extension", "Observation.extension[0]"]
    local = {"id": element["id"].replace("Extension", "Observation.extension:visit", 1)}
    return resource, mutate(resource, {**element, **local}, kind)


def _bundle(resource: dict[str, Any], **changes: Any) -> dict[str, Any]:
    entry = {
        "fullUrl": "urn:uuid:5f6b8c6e-9a55-4b8e-8d55-2a1c3f0e7d11",
        "resource": resource,
        "request": {
            "method": "PUT",
            "url": "Observation?identifier=https://lab.hospital.example/result|R000123",
        },
    }
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
    for key, value in changes.items():
        if key == "method":
            entry["request"]["method"] = value
        else:
            bundle[key] = value
    return bundle


def extra_cases() -> dict[str, tuple[dict[str, Any], list[str]]]:
    """Base R4 and trial rules: (resource, expected expressions)."""
    lab = _base("trial-lab-observation")
    out: dict[str, tuple[dict[str, Any], list[str]]] = {}

    def case(rule: str, profile: str, change: Any, expected: list[str]) -> None:
        resource = _base(profile)
        change(resource)
        out[rule] = (resource, expected)

    case(
        "base:Observation.status:binding",
        "trial-lab-observation",
        lambda r: r.update(status="done"),
        ["Observation.status"],
    )
    case(
        "base:Patient.gender:binding",
        "trial-patient",
        lambda r: r.update(gender="F"),
        ["Patient.gender"],
    )
    case(
        "base:MedicationAdministration.status:binding",
        "msc-administration",
        lambda r: r.update(status="given"),
        ["MedicationAdministration.status"],
    )
    case(
        "base:Observation.code:min",
        "trial-lab-observation",
        lambda r: r.pop("code"),
        ["Observation.code"],
    )
    case(
        "base:Observation:obs-6",
        "trial-lab-observation",
        lambda r: r.update(dataAbsentReason={"text": "haemolysed"}),
        ["Observation"],
    )
    case(
        "base:Observation:obs-7",
        "trial-lab-observation",
        lambda r: r.update(component=[{"code": r["code"], "valueString": "x"}]),
        ["Observation"],
    )
    case(
        "base:structure:unknown-element",
        "trial-lab-observation",
        lambda r: r.update(valueUnit="mg"),
        ["Observation.valueUnit"],
    )
    case(
        "base:structure:bad-dateTime",
        "trial-lab-observation",
        lambda r: r.update(effectiveDateTime="2015-13-45"),
        ["Observation.effectiveDateTime"],
    )
    case(
        "base:structure:wrong-type",
        "trial-lab-observation",
        lambda r: r["valueQuantity"].update(value="54,8"),
        ["Observation.valueQuantity.value"],
    )
    case(
        "trial:trial-lab-observation:unit-code",
        "trial-lab-observation",
        lambda r: r["valueQuantity"].update(code="mg/dL", unit="mg/dL"),
        ["Observation.valueQuantity.code"],
    )
    case(
        "trial:trial-lab-observation:unit-text",
        "trial-lab-observation",
        lambda r: (r["valueQuantity"].pop("code"), r["valueQuantity"].update(unit="mg/L")),
        ["Observation.valueQuantity.unit"],
    )
    # bdl-3 too: entry.request is allowed only in batch, transaction and history Bundles
    out["base:Bundle.type:binding"] = (
        _bundle(copy.deepcopy(lab), type="transactions"),
        ["Bundle.entry[0].request", "Bundle.type"],
    )
    out["base:Bundle.entry.request.method:binding"] = (
        _bundle(copy.deepcopy(lab), method="UPSERT"),
        ["Bundle.entry[0].request.method"],
    )
    bad_unit = copy.deepcopy(lab)
    bad_unit["valueQuantity"].update(code="g/L", unit="g/L")
    out["trial:bundle-entry:unit-code"] = (
        _bundle(bad_unit),
        ["Bundle.entry[0].resource.valueQuantity.code"],
    )
    out.update(bundle_cases(lab))
    case(
        "base:structure:string-for-decimal",
        "trial-lab-observation",
        lambda r: r["valueQuantity"].update(value="0.6"),
        ["Observation.valueQuantity.value"],
    )
    case(
        "base:structure:string-for-boolean",
        "trial-patient",
        lambda r: r.update(active="true"),
        ["Patient.active"],
    )
    case(
        "base:Observation:effective-twice",
        "trial-lab-observation",
        lambda r: r.update(effectivePeriod={"start": r["effectiveDateTime"]}),
        ["Observation.effective[x]"],
    )
    out.update(plausibility_cases())
    return out


def plausibility_cases() -> dict[str, tuple[dict[str, Any], list[str]]]:
    """Values that cannot be (below the analyte's minimum), values outside the plausible range
    of mappings/analytes.toml, and times that cannot be (in the future, before birth)."""
    out: dict[str, tuple[dict[str, Any], list[str]]] = {}

    def lab(code: str, value: float, unit: str) -> dict[str, Any]:
        resource = _base("trial-lab-observation")
        resource.pop("referenceRange")
        resource["code"]["coding"] = [{"system": "http://loinc.org", "code": code}]
        resource["valueQuantity"] = {"value": value, "unit": unit,
                                     "system": "http://unitsofmeasure.org", "code": unit}
        return resource

    value = ["Observation.valueQuantity.value"]
    out["trial:trial-lab-observation:physical-minimum"] = (lab("2160-0", -0.6, "mg/dL"), value)
    out["trial:trial-lab-observation:physical-minimum-rate"] = (
        lab("2889-4", -1.2, "g/(24.h)"), value)
    # 60 umol/L written as mg/dL: 60 mg/dL is 3 times the bound of 20 mg/dL
    out["trial:trial-lab-observation:plausible-range"] = (lab("2160-0", 60, "mg/dL"), value)
    future = _base("trial-lab-observation")
    future["effectiveDateTime"] = "2999-03-14T08:30:00+03:30"  # stays in the future
    out["trial:trial-lab-observation:future-time"] = (future, ["Observation.effectiveDateTime"])
    # a Patient born on 2012-05-14 and a value of the day before, in one transaction
    patient = {"resourceType": "Patient", "birthDate": "2012-05-14", "gender": "female",
               "identifier": [{"system": "https://hospital.example.org/fhir/sid/mrn",
                               "value": "40001234"}]}
    before = _base("trial-lab-observation")
    before["subject"] = {"reference": "urn:uuid:7d3c0a4e-1b2f-4c5d-8e9f-0a1b2c3d4e5f"}
    before["effectiveDateTime"] = "2012-05-13T08:30:00+04:30"  # Tehran kept summer time then
    bundle = _bundle(before)
    bundle["entry"].insert(0, {
        "fullUrl": "urn:uuid:7d3c0a4e-1b2f-4c5d-8e9f-0a1b2c3d4e5f", "resource": patient,
        "request": {"method": "POST", "url": "Patient"}})
    out["trial:bundle:before-birth"] = (bundle, ["Bundle.entry[1].resource.effectiveDateTime"])
    return out


def bundle_cases(lab: dict[str, Any]) -> dict[str, tuple[dict[str, Any], list[str]]]:
    """Rules of a transaction as a whole, each reported at the entry that breaks it."""
    out: dict[str, tuple[dict[str, Any], list[str]]] = {}
    no_request = _bundle(copy.deepcopy(lab))
    no_request["entry"][0].pop("request")
    out["base:Bundle:bdl-3"] = (no_request, ["Bundle.entry[0]"])
    twice = _bundle(copy.deepcopy(lab))
    second = copy.deepcopy(twice["entry"][0])
    second["resource"]["identifier"][0]["value"] = "R000124"
    second["request"]["url"] = "Observation?identifier=https://lab.hospital.example/result|R000124"
    twice["entry"].append(second)
    out["base:Bundle:bdl-7"] = (twice, ["Bundle.entry[1].fullUrl"])
    dangling = copy.deepcopy(lab)
    dangling["subject"] = {"reference": "urn:uuid:0b7d3f2e-8c1a-4e5f-9a6b-3d2c1e0f9a8b"}
    out["base:Bundle:local-reference"] = (
        _bundle(dangling),
        ["Bundle.entry[0].resource.subject.reference"],
    )
    return out


def main() -> int:
    folder = HERE / "negative"
    for old in folder.glob("*.json"):
        old.unlink()
    cases: dict[str, dict[str, Any]] = {}
    for profile, element, kind in rules():
        rule = f"{profile}:{element['id']}:{kind}"
        if rule in COVERED_BY:
            continue
        if profile == "trial-visit":
            resource, expected = _visit_extension_case(kind, element)
        else:
            resource = _base(profile)
            if kind in INVARIANTS:
                expected = INVARIANTS[kind](resource)
            else:
                expected = mutate(resource, element, kind)
        expected = sorted(set(consequences(rule, element["id"], kind, expected)))
        name = rule.replace(":", "__").replace("[x]", "-x").replace("/", "_") + ".json"
        (folder / name).write_text(json.dumps(resource, indent=2) + "\n", encoding="utf-8")
        cases[rule] = {"file": name, "expected": expected}
    for rule, (resource, expected) in extra_cases().items():
        name = rule.replace(":", "__").replace(".", "-") + ".json"
        (folder / name).write_text(json.dumps(resource, indent=2) + "\n", encoding="utf-8")
        cases[rule] = {"file": name, "expected": sorted(expected)}
    (HERE / "cases.json").write_text(json.dumps(cases, indent=2) + "\n", encoding="utf-8")
    print(f"{len(cases)} cases")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
