"""Validation cost against fhir.resources' bare parse of the same Bundle, in the same run.

    python -m benchmarks.validation [N]      (or: python benchmarks/validation.py [N])

Builds a Bundle of N trial lab Observations (five participants, the analytes of the catalogue,
their units, reference ranges for ALT/AST) and times, best of several repeats:
``orjson.loads`` of its bytes, ``fhir.resources`` R4B parse of the Bundle, and full validation
(``Validator.check``, the one validation of every way in: structure, required bindings,
invariants, the profile, units, plausible ranges and times).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fhir.resources.R4B import get_fhir_model_class  # noqa: E402

from fhir_adapter.paths import mappings_dir  # noqa: E402
from fhir_adapter.trial.definitions import AnalyteCatalogue, StudyDefinition  # noqa: E402
from fhir_adapter.validation import LAB_OBSERVATION, Validator  # noqa: E402

__all__ = ["lab_bundle", "main", "run"]

_UCUM = "http://unitsofmeasure.org"
_VALUES = {
    "mg/dL": 0.62,
    "umol/L": 54.8,
    "mmol/L": 5.1,
    "mg/(24.h)": 820,
    "mg/mg": 1.9,
    "U/L": 31,
    "g/dL": 2.4,
    "pg/mL": 4.2,
    "%": 6.1,
    "/uL": 41,
    "cm": 128.5,
    "kg": 27.3,
}
#: where a unit's value above is not plausible for the analyte (urea in mg/dL is from 1)
_BY_ANALYTE = {"urea": 28.0}


def lab_bundle(n: int, catalogue: AnalyteCatalogue) -> dict[str, Any]:
    """A collection Bundle of ``n`` lab Observations about five Patients."""
    codes = [
        (analyte, code, next(iter(code.units)))
        for analyte in catalogue.analytes.values()
        if not analyte.computed
        for code in analyte.codes
    ]
    patients = [f"urn:uuid:0000000{p}-aaaa-4bbb-8ccc-000000000000" for p in range(1, 6)]
    start = datetime(2015, 3, 1, 8, 30, tzinfo=UTC)
    entries = []
    for i in range(n):
        analyte, code, unit = codes[i % len(codes)]
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "meta": {"profile": [LAB_OBSERVATION]},
            "identifier": [{"system": "https://lab.hospital.example/result", "value": f"R{i:06d}"}],
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "laboratory",
                        }
                    ]
                }
            ],
            "code": {
                "coding": [{"system": code.system, "code": code.code, "display": code.display}]
            },
            "subject": {"reference": patients[i % 5]},
            "effectiveDateTime": (start + timedelta(hours=7 * i)).isoformat(),
            "issued": (start + timedelta(hours=7 * i + 3)).isoformat(),
            "valueQuantity": {
                "value": _BY_ANALYTE.get(analyte.key, _VALUES.get(unit, 1.5)) + i % 7 / 10,
                "unit": unit,
                "system": _UCUM,
                "code": unit,
            },
        }
        if analyte.key in ("alt", "ast"):
            resource["referenceRange"] = [
                {"high": {"value": 40, "unit": unit, "system": _UCUM, "code": unit}}
            ]
        entries.append(
            {"fullUrl": f"urn:uuid:{i:08x}-0000-4000-8000-000000000000", "resource": resource}
        )
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _best(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run(n: int = 1000, repeats: int = 5) -> dict[str, Any]:
    """Time loads, bare parse and full validation of one Bundle of ``n`` lab Observations."""
    catalogue = AnalyteCatalogue.from_file(mappings_dir() / "analytes.toml")
    study = StudyDefinition.from_file(mappings_dir() / "study.toml")
    validator = Validator(catalogue, study)
    raw = orjson.dumps(lab_bundle(n, catalogue))
    bundle_class = get_fhir_model_class("Bundle")
    bundle = orjson.loads(raw)
    problems = validator.check(bundle)
    loads = _best(lambda: orjson.loads(raw), repeats)
    parse = _best(lambda: bundle_class.model_validate(orjson.loads(raw)), repeats)
    validate = _best(lambda: validator.check(orjson.loads(raw)), repeats)
    return {
        "observations": n,
        "bytes": len(raw),
        "problems": len(problems),
        "orjson_loads_s": loads,
        "bare_parse_s": parse,
        "full_validation_s": validate,
        "validation_over_parse": validate / parse,
        "parse_over_loads": parse / loads,
    }


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else 1000
    for key, value in run(n).items():
        print(f"{key:24} {value:.4f}" if isinstance(value, float) else f"{key:24} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
