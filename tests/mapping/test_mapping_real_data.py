"""The Mapper on real data: the Synthea Bundles and the official R4 examples."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from fhir_adapter.errors import UnitError
from fhir_adapter.mapping import Mapper, Unmapped
from fhir_adapter.paths import mappings_dir
from fhir_adapter.terminology import SiteCodeMaps
from fhir_adapter.trial.definitions import AnalyteCatalogue, StudyDefinition
from fhir_adapter.trial.model import Measurement

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
DATA = ROOT.parent / "shared" / "data"
MAPPER = Mapper(
    AnalyteCatalogue.from_file(mappings_dir() / "analytes.toml"),
    StudyDefinition.from_file(mappings_dir() / "study.toml"),
    SiteCodeMaps.load(mappings_dir()),
)
# Written here from TRIAL.md section 5, not read from the catalogue: LOINC code -> (analyte, unit)
# and the units written in these files that give the canonical value unchanged.
AS_IS = {"33914-3": {"mL/min/{1.73_m2}", "mL/min"}}  # the lab's eGFR is shown as reported
EXPECTED = {
    "38483-4": ("creatinine", "mg/dL"),
    "1742-6": ("alt", "U/L"),
    "1920-8": ("ast", "U/L"),
    "8302-2": ("height", "cm"),
    "29463-7": ("weight", "kg"),
    "1751-7": ("albumin", "g/dL"),
    "33914-3": ("egfr-reported", "mL/min/{1.73_m2}"),
    # urea nitrogen (BUN), in blood: read as BUN in serum is, urea = BUN x 2.14 (TRIAL.md, 3094-0)
    "6299-2": ("urea", "mg/dL"),
}
FACTOR = {"6299-2": Decimal("2.14")}


def _synthea() -> list[Path]:
    files = sorted((DATA / "synthea").glob("*.json")) if (DATA / "synthea").is_dir() else []
    if not files:
        pytest.skip(f"the Synthea Bundles are not at {DATA / 'synthea'}")
    return files


def test_synthea_observations_map_with_the_canonical_unit() -> None:
    total: Counter[str] = Counter()
    for path in _synthea():
        entries = json.loads(path.read_text(encoding="utf-8"))["entry"]
        observations = [
            e["resource"] for e in entries if e["resource"]["resourceType"] == "Observation"
        ]
        # the independent scan: first LOINC code and unit as written in the file
        expected: Counter[str] = Counter()
        refused: Counter[str] = Counter()
        for obs in observations:
            code = obs["code"]["coding"][0]["code"]
            if code in EXPECTED:
                unit = obs["valueQuantity"]["code"]
                accepted = AS_IS.get(code, {EXPECTED[code][1]})
                (expected if unit in accepted else refused)[EXPECTED[code][0]] += 1
        got: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        for obs in observations:
            try:
                result = MAPPER.observation(obs, source=f"Observation/{obs['id']}")
            except UnitError as exc:
                assert exc.where.element == "Observation.valueQuantity.code"
                assert repr(obs["valueQuantity"]["code"]) in exc.message
                errors[MAPPER.terminology.analyte_of(obs["code"])[0].key] += 1  # type: ignore[index]
                continue
            if isinstance(result, Unmapped):
                assert obs["code"]["coding"][0]["code"] not in EXPECTED
                continue
            assert result.unit == EXPECTED[result.code][1]
            code = obs["code"]["coding"][0]["code"]
            written = Decimal(str(obs["valueQuantity"]["value"]))
            assert result.value == written * FACTOR.get(code, Decimal(1))
            assert result.at.tzinfo is not None
            got[result.analyte] += 1
        assert got == expected
        assert errors == refused
        total += got
    for key in ("creatinine", "urea", "alt", "ast", "height", "weight"):
        assert total[key] > 0, key


def test_official_height_and_weight_examples() -> None:
    folder = DATA / "hl7-r4-examples"
    if not folder.is_dir():
        pytest.skip(f"the HL7 R4 examples are not at {folder}")
    height = json.loads((folder / "Observation-body-height.json").read_text(encoding="utf-8"))
    got = MAPPER.observation(height, source="Observation/h")
    assert isinstance(got, Measurement) and got.analyte == "height" and got.day_precision
    # 66.899999999999991 [in_i] x 2.54 = 169.926 cm (to 3 places)
    assert got.value.quantize(Decimal("0.001")) == Decimal("169.926")
    weight = json.loads((folder / "Observation-example.json").read_text(encoding="utf-8"))
    got = MAPPER.observation(weight, source="Observation/w")
    assert isinstance(got, Measurement)
    assert (got.analyte, got.value) == ("weight", Decimal("185") * Decimal("0.45359237"))


def test_official_specimens_and_administrations() -> None:
    folder = DATA / "hl7-r4-examples"
    if not folder.is_dir():
        pytest.skip(f"the HL7 R4 examples are not at {folder}")
    for path in sorted(folder.glob("Specimen-*.json")):
        resource = json.loads(path.read_text(encoding="utf-8"))
        written = resource["collection"]["collectedDateTime"]
        got = MAPPER.specimen_time(resource)
        assert got is not None and got.isoformat().startswith(written[:10])
    for path in sorted(folder.glob("MedicationAdministration-*.json")):
        resource = json.loads(path.read_text(encoding="utf-8"))
        assert MAPPER.administration(resource, source="x") is None  # not the study's product
