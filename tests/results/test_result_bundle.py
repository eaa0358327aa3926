"""The result Bundle holds every element RESULTS.md lists, parses as R4, and resolves inside."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from fhir_adapter.errors import ReferenceError_
from fhir_adapter.results import ResultBuilder
from tests.results.bundle_walk import (
    by_identifier,
    coding,
    component,
    component_codes,
    observation,
    participant_observation,
    references,
    resolve,
    resources,
)
from tests.results.result_fixtures import (
    ALT_W2,
    ALT_W2_RESULT,
    BASE,
    BEST,
    CATEGORY_W2,
    CR_BL,
    CR_W2,
    CREATININE_W2,
    EGFR_W2,
    HEIGHT,
    IL2_CENSORED,
    LIVER_W2,
    LOINC,
    MAX_ALT,
    NO_INFUSION,
    NO_INFUSION_SUBJECT,
    NOW,
    PROTEIN_M3,
    SUBJECT,
    TREG_W1_RESULT,
    UCUM,
    V3,
    participants,
)

ENDPOINT_CS = f"{BASE}/CodeSystem/trial-endpoint"
ENDPOINT_RESULT = f"{BASE}/StructureDefinition/endpoint-result"
PARTICIPANT_ENDPOINT = f"{BASE}/StructureDefinition/participant-endpoint"
DECREASED = {"system": V3, "code": "D", "display": "Significant change down"}
COMPLETE = {"system": f"{BASE}/CodeSystem/remission", "code": "complete"}


@pytest.fixture()
def bundle(builder: ResultBuilder, endpoints, sources, summary) -> dict[str, Any]:
    results = [r for e in endpoints for r in builder.endpoint_resources(e)]
    return builder.bundle(results, participants=participants(), sources=sources, summary=summary)


def q(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def test_the_bundle_and_every_entry_parse_as_r4(bundle):
    assert bundle["type"] == "collection"
    Bundle.model_validate(bundle)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_every_reference_resolves_inside_the_bundle(bundle):
    checked = 0
    for entry in bundle["entry"]:
        resource = entry["resource"]
        contained = {f"#{c['id']}" for c in resource.get("contained", [])}
        for path, reference in references(resource):
            if reference.startswith("#"):
                assert reference in contained, (resource["resourceType"], path)
            else:
                resolve(bundle, reference)
            checked += 1
    assert checked > 40


def test_research_study_and_its_schedule(bundle):
    study = by_identifier(bundle, "https://clinicaltrials.gov", "NCT02382874")
    assert study["resourceType"] == "ResearchStudy"
    assert study["title"].startswith("Allogeneic adipose-derived mesenchymal stromal cells")
    assert study["status"] in {"active", "completed"}
    phase = coding(study["phase"], "http://terminology.hl7.org/CodeSystem/research-study-phase")
    assert phase["code"] == "phase-1"
    contained = {c["id"]: c for c in study["contained"]}
    assert contained[study["sponsor"]["reference"][1:]]["name"] == "Royan Institute"
    group = contained[study["enrollment"][0]["reference"][1:]]
    assert (group["resourceType"], group["quantity"]) == ("Group", 5)
    plan = resolve(bundle, study["protocol"][0]["reference"])
    assert plan["resourceType"] == "PlanDefinition"
    actions = {a["id"]: a for a in plan["action"]}
    # TRIAL.md section 3, written again: visit -> (low, high, unit) of the inclusive window
    windows = {"H12": (6, 18, "h"), "W1": (5, 9, "d"), "W2": (11, 17, "d"), "W4": (24, 32, "d")}
    windows |= {f"M{m}": (30 * m - 7, 30 * m + 7, "d") for m in range(2, 12)}
    windows["M12"] = (351, 379, "d")
    assert set(actions) == {"D0", "BL", *windows}
    for visit, (low, high, unit) in windows.items():
        related = actions[visit]["relatedAction"][0]
        assert (related["actionId"], related["relationship"]) == ("D0", "after-start")
        assert related["offsetRange"] == {"low": q(low, unit), "high": q(high, unit)}
        assert coding(actions[visit]["code"][0], f"{BASE}/CodeSystem/trial-visit")["code"] == visit
    baseline = actions["BL"]["relatedAction"][0]
    assert baseline["relationship"] == "before-start"
    assert baseline["offsetRange"]["high"] == q(30, "d")


def test_pseudonymous_patient_and_research_subject(bundle):
    patients = [p for p in resources(bundle, "Patient") if p["identifier"][0]["value"] == SUBJECT]
    assert len(patients) == 1
    patient = patients[0]
    assert patient["identifier"] == [{"system": f"{BASE}/subject", "value": SUBJECT}]
    assert patient["gender"] == "female"
    assert set(patient) <= {"resourceType", "id", "meta", "identifier", "gender"}
    subjects = [
        s for s in resources(bundle, "ResearchSubject") if s["identifier"][0]["value"] == SUBJECT
    ]
    assert len(subjects) == 1
    subject = subjects[0]
    assert subject["identifier"] == patient["identifier"]
    assert subject["status"] == "on-study"
    assert resolve(bundle, subject["individual"]["reference"]) is patient
    assert resolve(bundle, subject["study"]["reference"])["resourceType"] == "ResearchStudy"


def _common(bundle: dict[str, Any], resource: dict[str, Any], visit: str) -> None:
    assert resource["meta"]["profile"] == [ENDPOINT_RESULT]
    assert resource["status"] == "final"
    assert resource["category"] == [
        {"coding": [{"system": ENDPOINT_CS, "code": "endpoint-result"}]}
    ]
    assert resource["extension"] == [
        {
            "url": f"{BASE}/StructureDefinition/trial-visit",
            "valueCoding": {"system": f"{BASE}/CodeSystem/trial-visit", "code": visit},
        }
    ]
    patient = resolve(bundle, resource["subject"]["reference"])
    assert patient["resourceType"] == "Patient"
    focus = resolve(bundle, resource["focus"][0]["reference"])
    assert focus["resourceType"] == "ResearchSubject"
    assert focus["individual"]["reference"] == resource["subject"]["reference"]


def _source_values(bundle: dict[str, Any], resource: dict[str, Any]) -> list[Any]:
    return [
        resolve(bundle, d["reference"])["valueQuantity"]["value"] for d in resource["derivedFrom"]
    ]


def test_serum_creatinine_at_w2(bundle):
    obs = observation(bundle, f"{SUBJECT}.serum-creatinine.creatinine.W2")
    _common(bundle, obs, "W2")
    assert obs["code"]["coding"][0] == {"system": ENDPOINT_CS, "code": "serum-creatinine"}
    assert {k: obs["code"]["coding"][1][k] for k in ("system", "code")} == {
        "system": LOINC,
        "code": "2160-0",
    }
    assert obs["effectiveDateTime"] == "2024-04-03T09:00:00+03:30"
    assert obs["valueQuantity"] == q(0.9, "mg/dL")
    assert component(obs, "baseline")["valueQuantity"] == q(1, "mg/dL")
    assert component(obs, "change")["valueQuantity"] == q(-0.1, "mg/dL")
    assert component(obs, "percent-change")["valueQuantity"] == q(-10, "%")
    assert "fold-change" not in component_codes(obs)
    assert coding(obs["interpretation"][0], V3)["code"] == "D"
    # the W2 value then the baseline, as received (the baseline came in umol/L)
    assert _source_values(bundle, obs) == [0.9, 88.4]


def test_alt_at_w2_carries_uln_fold_and_grade(bundle):
    obs = observation(bundle, ALT_W2_RESULT.key)
    _common(bundle, obs, "W2")
    assert [c["code"] for c in obs["code"]["coding"]] == ["liver-function", "1742-6"]
    assert obs["valueQuantity"] == q(95, "U/L")
    assert component(obs, "uln")["valueQuantity"] == q(40, "U/L")
    assert component(obs, "fold-uln")["valueQuantity"] == q(2.38, "1")
    assert component(obs, "ctcae-grade") == {
        "code": {
            "coding": [{"system": f"{BASE}/CodeSystem/endpoint-component", "code": "ctcae-grade"}]
        },
        "valueInteger": 1,
    }
    assert "interpretation" not in obs
    source = resolve(bundle, obs["derivedFrom"][0]["reference"])
    assert source["referenceRange"][0]["high"] == q(40, "U/L")


def test_proteinuria_carries_remission_rate_and_upcr(bundle):
    obs = observation(bundle, PROTEIN_M3.key)
    _common(bundle, obs, "M3")
    assert obs["valueQuantity"] == q(250, "mg/(24.h)")
    remission = component(obs, "remission")["valueCodeableConcept"]
    assert remission == {"coding": [{"system": f"{BASE}/CodeSystem/remission", "code": "complete"}]}
    assert component(obs, "protein-rate-bsa")["valueQuantity"] == q(5.45, "mg/(m2.h)")
    assert component(obs, "upcr")["valueQuantity"] == q(0.31, "mg/mg")
    assert component(obs, "percent-change")["valueQuantity"] == q(-93.75, "%")
    assert len(obs["derivedFrom"]) == 4


def test_computed_egfr_states_its_method_and_derives_from_the_height(bundle, builder):
    obs = observation(bundle, EGFR_W2.key)
    assert obs["code"]["coding"][1]["system"] == f"{BASE}/CodeSystem/analyte"
    assert obs["code"]["coding"][1]["code"] == "egfr-computed"
    assert obs["valueQuantity"] == q(59.7, "mL/min/{1.73_m2}")
    method = component(obs, "egfr-method")["valueCodeableConcept"]
    assert method == {
        "coding": [{"system": f"{BASE}/CodeSystem/egfr-method", "code": "bedside-schwartz"}]
    }
    derived = [d["reference"] for d in obs["derivedFrom"]]
    assert f"Observation/{builder.source_id(HEIGHT)}" in derived
    assert resolve(bundle, derived[-1])["code"]["coding"][0]["code"] == "8302-2"


def test_censored_value_has_its_comparator_and_no_change(bundle):
    obs = observation(bundle, IL2_CENSORED.key)
    assert obs["valueQuantity"] == {
        "value": 5,
        "comparator": "<",
        "unit": "pg/mL",
        "system": UCUM,
        "code": "pg/mL",
    }
    assert component(obs, "baseline")["valueQuantity"] == q(10, "pg/mL")
    assert component_codes(obs) == ["baseline"]


def test_treg_fold_change_is_dimensionless(bundle):
    obs = observation(bundle, TREG_W1_RESULT.key)
    assert obs["code"]["coding"][1] == {
        "system": f"{BASE}/CodeSystem/analyte",
        "code": "treg-pct-cd4",
        "display": "Regulatory T cells (CD4+CD25+FOXP3+) / CD4+ T cells",
    }
    assert component(obs, "fold-change")["valueQuantity"] == q(1.512, "1")
    assert obs["valueQuantity"] == q(6.2, "%")


@pytest.mark.parametrize(
    ("result", "element", "expected"),
    [
        (CATEGORY_W2, "valueCodeableConcept", {"coding": [DECREASED]}),
        (LIVER_W2, "valueBoolean", True),
        (MAX_ALT, "valueInteger", 1),
        (BEST, "valueCodeableConcept", {"coding": [COMPLETE]}),
    ],
)  # fmt: skip
def test_participant_level_results(bundle, result, element, expected):
    obs = participant_observation(bundle, f"{SUBJECT}.{result.code}")
    assert obs["meta"]["profile"] == [PARTICIPANT_ENDPOINT]
    assert obs["status"] == "final"
    assert obs["code"]["coding"] == [{"system": ENDPOINT_CS, "code": result.code}]
    assert obs[element] == expected
    assert [k for k in obs if k.startswith("value")] == [element]
    assert component(obs, "age-at-day0")["valueQuantity"] == q(9, "a")
    assert resolve(bundle, obs["subject"]["reference"])["identifier"][0]["value"] == SUBJECT
    derived = [resolve(bundle, d["reference"]) for d in obs["derivedFrom"]]
    keys = [d["identifier"][0]["value"] for d in derived]
    assert keys == list(result.sources)


def test_no_infusion_participant(bundle):
    obs = participant_observation(bundle, f"{NO_INFUSION_SUBJECT}.no-infusion")
    assert obs["valueBoolean"] is True
    assert "component" not in obs and "derivedFrom" not in obs
    patient = resolve(bundle, obs["subject"]["reference"])
    assert (patient["identifier"][0]["value"], patient["gender"]) == (NO_INFUSION_SUBJECT, "male")
    assert NO_INFUSION.key == f"{NO_INFUSION_SUBJECT}.no-infusion"


def test_measure_report_counts_per_code_and_value(bundle):
    (report,) = resources(bundle, "MeasureReport")
    assert (report["type"], report["status"]) == ("summary", "complete")
    groups = {}
    for group in report["group"]:
        codes = group["code"].get("coding")
        groups[codes[0]["code"] if codes else group["code"]["text"]] = group
    category = groups["creatinine-category-w2"]
    assert category["population"][0]["count"] == 1
    strata = {
        s["value"]["coding"][0]["code"]: s["population"][0]["count"]
        for s in category["stratifier"][0]["stratum"]
    }
    assert strata == {"D": 1, "N": 0, "U": 0}
    liver = groups["liver-enzyme-increase-w2"]["stratifier"][0]["stratum"]
    assert {s["value"]["text"]: s["population"][0]["count"] for s in liver} == {
        "true": 1,
        "false": 0,
    }
    assert groups["serum-creatinine"]["population"][0]["count"] == 1
    assert groups["median creatinine.W2"]["measureScore"] == q(-0.1, "mg/dL")
    assert "measureScore" not in groups["median creatinine.M12"]
    assert report["period"]["start"] == "2024-03-20T21:30:00+03:30"  # the earliest result


def _sources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        o
        for o in resources(bundle, "Observation")
        if o["identifier"][0]["system"] == f"{BASE}/source-observation"
    ]


def test_provenance_names_the_adapter_targets_and_sources(bundle):
    (provenance,) = resources(bundle, "Provenance")
    assert provenance["recorded"] == NOW.isoformat()
    device = provenance["contained"][0]
    assert device["resourceType"] == "Device"
    assert provenance["agent"][0]["who"]["reference"] == f"#{device['id']}"
    targets = [resolve(bundle, t["reference"]) for t in provenance["target"]]
    assert {t["meta"]["profile"][0] for t in targets} == {ENDPOINT_RESULT, PARTICIPANT_ENDPOINT}
    assert len(targets) == 6 + 5
    entities = [resolve(bundle, e["what"]["reference"]) for e in provenance["entity"]]
    sources = _sources(bundle)
    assert sorted(e["id"] for e in entities) == sorted(s["id"] for s in sources)
    assert all(e["role"] == "source" for e in provenance["entity"])


def test_only_referenced_sources_are_published(bundle, builder):
    sources = _sources(bundle)
    # 12 distinct sources referenced; the lab-reported eGFR is referenced by no result
    assert len(sources) == 12
    assert {builder.source_id(CR_W2), builder.source_id(CR_BL), builder.source_id(ALT_W2)} <= {
        s["id"] for s in sources
    }


def test_a_source_missing_from_the_store_is_a_clear_error(builder, endpoints, sources):
    del sources[CR_BL]
    results = builder.endpoint_resources(endpoints[0])
    with pytest.raises(ReferenceError_) as caught:
        builder.bundle(results, participants=participants(), sources=sources)
    assert CREATININE_W2.key in caught.value.message
    assert caught.value.where.element == "Observation.derivedFrom[1]"
