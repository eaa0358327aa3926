"""The sample bundles as a Bulk Data export writes them: NDJSON, server ids, ``Type/id`` references.

Made here from the sample Bundles (not by the code under test): every resource gets an id of its
own (``Patient/x000`` for the first participant), each ``urn:uuid`` reference becomes the
``Type/id`` of the entry it named, and ``zz-corrections.json``'s conditional updates replace the
Observations they correct (an export holds the latest version of each resource).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).resolve().parents[1] / "sample_bundles"
PARTICIPANT_FILES = sorted(SAMPLES.glob("p*-FSGS-0*.json"))
CORRECTIONS = SAMPLES / "zz-corrections.json"
_PREFIX = {"Patient": "x", "ResearchSubject": "rs", "Observation": "o",
           "MedicationAdministration": "ma", "Specimen": "sp"}


def _rewrite(node: Any, names: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: (names.get(v, v) if k == "reference" and isinstance(v, str)
                    else _rewrite(v, names)) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite(v, names) for v in node]
    return node


def _identifier(resource: dict[str, Any]) -> tuple[str, str] | None:
    for ident in resource.get("identifier") or []:
        return str(ident.get("system")), str(ident.get("value"))
    return None


def export_resources(files: list[Path] | None = None, *,
                     corrected: bool = True) -> list[dict[str, Any]]:
    """The resources of the sample participants as one export holds them, in Bundle order."""
    counters: dict[str, int] = {}
    names: dict[str, str] = {}
    resources: list[dict[str, Any]] = []
    for path in files if files is not None else PARTICIPANT_FILES:
        bundle = json.loads(path.read_text(encoding="utf-8"))
        for entry in bundle["entry"]:
            rtype = entry["resource"]["resourceType"]
            n = counters.get(rtype, 0)
            counters[rtype] = n + 1
            rid = f"{_PREFIX.get(rtype, 'r')}{n:03d}"
            names[entry["fullUrl"]] = f"{rtype}/{rid}"
            resources.append({"resourceType": rtype, "id": rid,
                              **{k: v for k, v in entry["resource"].items()
                                 if k != "resourceType"}})
    for patient in (r for r in resources if r["resourceType"] == "Patient"):
        system, value = _identifier(patient) or ("", "")
        names[f"Patient?identifier={system}|{value}"] = f"Patient/{patient['id']}"
    resources = [_rewrite(r, names) for r in resources]
    if corrected:
        by_identifier = {(r["resourceType"], _identifier(r)): n for n, r in enumerate(resources)}
        for entry in json.loads(CORRECTIONS.read_text(encoding="utf-8"))["entry"]:
            fixed = _rewrite(entry["resource"], names)
            n = by_identifier[(fixed["resourceType"], _identifier(fixed))]
            resources[n] = {"resourceType": fixed["resourceType"], "id": resources[n]["id"],
                            **{k: v for k, v in fixed.items() if k != "resourceType"}}
    return resources


def write_ndjson(path: Path, resources: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in resources), encoding="utf-8")
    return path


def write_per_type(folder: Path, resources: list[dict[str, Any]]) -> list[Path]:
    """One file per type, named by type as Bulk servers name them (sorted: Observation before
    Patient, ResearchSubject last)."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    return [write_ndjson(folder / f"{rtype}.ndjson", items)
            for rtype, items in sorted(by_type.items())]
