"""Fill in the snapshot of each hand-written StructureDefinition of profiles/ from its differential.

The differential is the source of truth; the snapshot is derived from it and the base definition
of FHIR R4 (the CC0 package ``hl7.fhir.r4.examples@4.0.1``, which holds the core definitions)::

    python profiles/tools/snapshot.py /tmp/r4/ex/package

Rules: every base element is copied; a differential element with the same id is merged into it
(``constraint`` lists are added to, other keys replaced); a slice copies the sliced element and its
descendants under ``path:sliceName``; a child of a data type (``Observation.value[x].system``)
brings in the elements of that data type. Run it after editing a differential and commit both.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "snapshot"]

_PROFILES = Path(__file__).resolve().parents[1]
_BASE_KEYS = ("id", "path", "sliceName")


def _load(package: Path, type_name: str) -> list[dict[str, Any]]:
    sd = json.loads((package / f"StructureDefinition-{type_name}.json").read_text("utf-8"))
    return list(sd["snapshot"]["element"])


def _unsliced(element_id: str) -> str:
    return ".".join(part.split(":")[0] for part in element_id.split("."))


def _subtree(elements: list[dict[str, Any]], element_id: str) -> list[int]:
    return [
        i
        for i, e in enumerate(elements)
        if e["id"] == element_id or e["id"].startswith(element_id + ".")
    ]


def _merge(target: dict[str, Any], diff: dict[str, Any]) -> None:
    for key, value in diff.items():
        if key == "constraint":
            target.setdefault("constraint", []).extend(copy.deepcopy(value))
        elif key not in ("id",):
            target[key] = copy.deepcopy(value)


def _add_slice(elements: list[dict[str, Any]], diff: dict[str, Any]) -> None:
    sliced = diff["id"].rsplit(":", 1)[0]
    indexes = _subtree(elements, sliced)
    slices_end = max(
        i for i, e in enumerate(elements) if e["id"] == sliced or e["id"].startswith(sliced)
    )
    copies = []
    for i in indexes:
        element = copy.deepcopy(elements[i])
        if ":" in element["id"][len(sliced) :]:
            continue
        element["id"] = diff["id"] + element["id"][len(sliced) :]
        element.pop("slicing", None)
        copies.append(element)
    copies[0]["sliceName"] = diff["sliceName"]
    elements[slices_end + 1 : slices_end + 1] = copies


def _add_type_children(elements: list[dict[str, Any]], parent_id: str, package: Path) -> None:
    parent = next(e for e in elements if e["id"] == parent_id)
    type_name = parent["type"][0]["code"]
    children = _load(package, type_name)[1:]
    at = max(_subtree(elements, parent_id)) + 1
    for child in children:
        element = copy.deepcopy(child)
        element["id"] = parent_id + element["id"][len(type_name) :]
        element["path"] = parent["path"] + element["path"][len(type_name) :]
        elements.insert(at, element)
        at += 1


def snapshot(sd: dict[str, Any], package: Path) -> list[dict[str, Any]]:
    elements = copy.deepcopy(_load(package, sd["type"]))
    for element in elements:
        element.setdefault("id", element["path"])
    for diff in sd["differential"]["element"]:
        ids = {e["id"] for e in elements}
        if diff["id"] not in ids:
            if diff.get("sliceName") and diff["id"].endswith(":" + diff["sliceName"]):
                _add_slice(elements, diff)
            else:
                _add_type_children(elements, diff["id"].rsplit(".", 1)[0], package)
        target = next(e for e in elements if e["id"] == diff["id"])
        _merge(target, diff)
    return elements


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    package = Path(argv[0])
    for path in sorted(_PROFILES.glob("StructureDefinition-*.json")):
        sd = json.loads(path.read_text("utf-8"))
        sd["snapshot"] = {"element": snapshot(sd, package)}
        path.write_text(json.dumps(sd, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"{path.name}: {len(sd['snapshot']['element'])} elements")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
