"""The validator and the mapper answer the terminology questions alike (one home of the rules).

Each case is a resource on which the two used to disagree: an administration of the product
given by a contained Medication, a unit whose code is of another system, a Quantity without a
unit, codings of two analytes.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest

from fhir_adapter.errors import InvalidResource, UnitError
from fhir_adapter.mapping import Mapper
from fhir_adapter.paths import mappings_dir, sample_bundles_dir
from fhir_adapter.terminology import SiteCodeMaps, Terminology
from fhir_adapter.trial.definitions import AnalyteCatalogue, StudyDefinition
from fhir_adapter.validation import LAB_OBSERVATION, MSC_ADMINISTRATION, Validator

CATALOGUE = AnalyteCatalogue.from_file(mappings_dir() / "analytes.toml")
STUDY = StudyDefinition.from_file(mappings_dir() / "study.toml")
SITES = SiteCodeMaps.load(mappings_dir())
MAPPER = Mapper(CATALOGUE, STUDY, SITES)
VALIDATOR = Validator(CATALOGUE, STUDY, site_maps=SITES)


def _sample(resource_type: str) -> dict[str, Any]:
    """The first resource of a type in FSGS-01's Bundle, its subject a plain reference."""
    bundle = json.loads((sample_bundles_dir() / "p1-FSGS-01.json").read_text(encoding="utf-8"))
    found = next(e["resource"] for e in bundle["entry"]
                 if e["resource"]["resourceType"] == resource_type)
    found = copy.deepcopy(found)
    found["subject"] = {"reference": "Patient/p1"}
    return found


def _errors(resource: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(i.code, i.expression) for i in VALIDATOR.validate(resource)
            if i.severity in ("error", "fatal")]


def test_the_product_by_contained_medication_is_checked_against_msc_administration() -> None:
    given = _sample("MedicationAdministration")
    coding = given.pop("medicationCodeableConcept")
    given["contained"] = [{"resourceType": "Medication", "id": "cells", "code": coding}]
    given["medicationReference"] = {"reference": "#cells"}
    assert MAPPER.administration(given, source="MedicationAdministration/x") is not None
    assert VALIDATOR.profile_for(given) == MSC_ADMINISTRATION
    # the profile allows the product as a CodeableConcept only: refused, and told where
    assert ("structure", "MedicationAdministration.medicationReference") in _errors(given)


def test_another_medication_by_contained_reference_is_no_product() -> None:
    given = _sample("MedicationAdministration")
    given.pop("medicationCodeableConcept")
    given["contained"] = [{"resourceType": "Medication", "id": "m", "code": {
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "8640"}]}}]
    given["medicationReference"] = {"reference": "#m"}
    assert MAPPER.administration(given, source="MedicationAdministration/x") is None
    assert VALIDATOR.profile_for(given) is None


SYSTEM_FIXED = ("value", "Observation.valueQuantity.system")  # the profile fixes UCUM


def test_a_unit_code_of_another_system_is_read_from_its_unit_text_by_both() -> None:
    lab = _sample("Observation")  # creatinine 2160-0, mg/dL
    lab["valueQuantity"] = {"value": 0.7, "unit": "mg/dL", "system": "http://lab.example/units",
                            "code": "MGDL"}
    # the unit rule reads "mg/dL" from the text, as the mapper does: only the profile objects
    assert _errors(lab) == [SYSTEM_FIXED]
    assert MAPPER.observation(lab, source="Observation/x").value == Decimal("0.7")


def test_a_unit_code_of_another_system_is_no_ucum_code_for_either() -> None:
    lab = _sample("Observation")
    lab["valueQuantity"] = {"value": 0.7, "unit": "milligrams per decilitre",
                            "system": "http://lab.example/units", "code": "mg/dL"}
    assert _errors(lab) == [SYSTEM_FIXED, ("value", "Observation.valueQuantity.code")]
    with pytest.raises(UnitError, match="not a UCUM unit"):
        MAPPER.observation(lab, source="Observation/x")


def test_a_quantity_without_a_unit_is_refused_by_both() -> None:
    lab = _sample("Observation")
    lab["valueQuantity"] = {"value": 0.7}
    assert _errors(lab) == [("invariant", "Observation.valueQuantity")]  # tlo-2, said once
    with pytest.raises(UnitError, match="has no unit"):
        MAPPER.observation(lab, source="Observation/x")


def test_codings_of_two_analytes_are_refused_by_both() -> None:
    lab = _sample("Observation")
    lab["code"]["coding"].append({"system": "http://loinc.org", "code": "3091-6"})  # urea
    assert VALIDATOR.profile_for(lab) == LAB_OBSERVATION
    assert ("invalid", "Observation.code") in _errors(lab)
    with pytest.raises(InvalidResource, match="two analytes"):
        MAPPER.observation(lab, source="Observation/x")


def test_site_maps_naming_no_catalogue_code_fail_at_load() -> None:
    from fhir_adapter.errors import ConfigError
    from fhir_adapter.terminology import SiteMapping

    maps = SiteCodeMaps()
    maps.add(SiteMapping("http://lab.example/codes", "X1", "http://loinc.org", "0000-0", "x"))
    with pytest.raises(ConfigError, match="X1"):
        Terminology(CATALOGUE, STUDY, maps)
