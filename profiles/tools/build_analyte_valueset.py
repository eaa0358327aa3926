"""Write profiles/ValueSet-analyte.json from mappings/analytes.toml (run after editing the TOML).

    python profiles/tools/build_analyte_valueset.py

The ValueSet lists every accepted code of every analyte, grouped by code system, in the order
of the TOML file. A test checks that the committed file equals what this script produces.
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import Any

__all__ = ["build", "main", "render"]

_ROOT = Path(__file__).resolve().parents[2]
_BASE = "https://fhir-adapter.org/fhir"


def build(catalogue: dict[str, Any]) -> dict[str, Any]:
    include: dict[str, list[dict[str, str]]] = {}
    for analyte in catalogue["analyte"].values():
        for code in analyte["codes"]:
            concept = {"code": code["code"]}
            if code.get("display"):
                concept["display"] = code["display"]
            include.setdefault(code["system"], []).append(concept)
    return {
        "resourceType": "ValueSet",
        "id": "analyte",
        "url": f"{_BASE}/ValueSet/analyte",
        "version": "0.1.0",
        "name": "Analyte",
        "title": "Trial analytes",
        "status": "active",
        "publisher": "fhir-adapter",
        "description": "Every code the adapter accepts for an analyte of NCT02382874 "
        "(generated from mappings/analytes.toml).",
        "compose": {
            "include": [
                {"system": system, "concept": concepts} for system, concepts in include.items()
            ]
        },
    }


def render(toml_path: Path) -> str:
    with toml_path.open("rb") as fh:
        return json.dumps(build(tomllib.load(fh)), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    toml_path = Path(argv[0]) if argv else _ROOT / "mappings" / "analytes.toml"
    out = _ROOT / "profiles" / "ValueSet-analyte.json"
    out.write_text(render(toml_path), encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
