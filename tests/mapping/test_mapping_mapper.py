"""The Mapper on hand-made resources: analytes, units, times, ULN, infusions, subjects."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from fhir_adapter.errors import InvalidResource, UnitError
from fhir_adapter.mapping import Mapper, Unmapped
from fhir_adapter.paths import mappings_dir
from fhir_adapter.pipeline.handlers import HANDLERS
from fhir_adapter.pipeline.handlers.enrollment import research_subject
from fhir_adapter.terminology import SiteCodeMaps
from fhir_adapter.trial.definitions import AnalyteCatalogue, StudyDefinition
from fhir_adapter.trial.model import Measurement

UCUM = "http://unitsofmeasure.org"
TEHRAN = ZoneInfo("Asia/Tehran")
MAPPER = Mapper(
    AnalyteCatalogue.from_file(mappings_dir() / "analytes.toml"),
    StudyDefinition.from_file(mappings_dir() / "study.toml"),
    SiteCodeMaps.load(mappings_dir()),
)


def _obs(system: str, code: str, quantity: dict | None, **more: object) -> dict:
    resource: dict = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": system, "code": code}]},
        "effectiveDateTime": "2024-03-24T08:30:00+03:30",
    }
    if quantity is not None:
        resource["valueQuantity"] = quantity
    resource.update(more)
    return resource


def _measure(resource: dict, **kw: object) -> Measurement:
    got = MAPPER.observation(resource, source="Observation/a1", **kw)  # type: ignore[arg-type]
    assert isinstance(got, Measurement), got
    return got


def test_site_code_in_umol_per_litre() -> None:
    resource = _obs(
        "https://intranet.aumc.nl/labtestcodes",
        "20005",
        {"value": 88.4, "unit": "umol/L", "system": UCUM, "code": "umol/L"},
        referenceRange=[
            {"low": {"value": 44.2}, "high": {"value": 106.08, "system": UCUM, "code": "umol/L"}}
        ],
    )
    got = _measure(resource)
    assert (got.analyte, got.value, got.unit, got.code) == (
        "creatinine",
        Decimal(1),
        "mg/dL",
        "14682-9",
    )
    assert got.uln == Decimal("1.2")  # 106.08 / 88.4
    assert got.source == "Observation/a1"
    assert got.at == datetime(2024, 3, 24, 5, 0, tzinfo=UTC)
    assert not got.day_precision and got.counts


def test_comparator_status_and_unit_string() -> None:
    quantity = {"value": 0.2, "comparator": "<", "unit": "mg/dL"}
    got = _measure(_obs("http://loinc.org", "2160-0", quantity, status="preliminary"))
    assert got.comparator == "<" and got.censored
    assert got.status == "preliminary" and not got.counts
    assert got.value == Decimal("0.2")


def test_uln_without_unit_is_in_the_value_unit() -> None:
    resource = _obs(
        "http://loinc.org",
        "1742-6",
        {"value": 1, "system": UCUM, "code": "ukat/L"},
        referenceRange=[{"high": {"value": 0.7}}],
    )
    got = _measure(resource)
    assert (got.value, got.uln) == (Decimal(60), Decimal("42.0"))


def test_uln_in_a_unit_that_cannot_be_converted() -> None:
    resource = _obs(
        "http://loinc.org",
        "1742-6",
        {"value": 30, "system": UCUM, "code": "U/L"},
        referenceRange=[{"high": {"value": 40, "system": UCUM, "code": "mg/dL"}}],
    )
    with pytest.raises(UnitError) as caught:
        MAPPER.observation(resource, source="Observation/a1")
    assert caught.value.where.element == "Observation.referenceRange[0].high.code"


def test_unconvertible_value_unit() -> None:
    resource = _obs("http://loinc.org", "14682-9", {"value": 1, "system": UCUM, "code": "mg/dL"})
    with pytest.raises(UnitError, match="'mg/dL'") as caught:
        MAPPER.observation(resource, source="Observation/a1")
    assert caught.value.where.element == "Observation.valueQuantity.code"


def test_time_preference_specimen_then_effective() -> None:
    quantity = {"value": 0.5, "system": UCUM, "code": "mg/dL"}
    collected = datetime(2024, 3, 23, 22, 0, tzinfo=timezone(timedelta(hours=3, minutes=30)))
    assert (
        _measure(_obs("http://loinc.org", "2160-0", quantity), specimen_time=collected).at
        == collected
    )
    by_day = _measure(_obs("http://loinc.org", "2160-0", quantity), specimen_time=date(2024, 3, 23))
    assert by_day.at == datetime(2024, 3, 23, tzinfo=TEHRAN) and by_day.day_precision
    period = _obs(
        "http://loinc.org", "2160-0", quantity, effectivePeriod={"start": "2024-03-20T10:00:00Z"}
    )
    del period["effectiveDateTime"]
    assert _measure(period).at == datetime(2024, 3, 20, 10, 0, tzinfo=UTC)


def test_a_date_alone_is_midnight_in_the_study_zone() -> None:
    resource = _obs(
        "http://loinc.org",
        "2160-0",
        {"value": 0.5, "unit": "mg/dL"},
        effectiveDateTime="2024-03-24",
    )
    got = _measure(resource)
    assert got.day_precision
    assert got.at == datetime(2024, 3, 23, 20, 30, tzinfo=UTC)  # 00:00 in Tehran (+03:30)


@pytest.mark.parametrize("text", ["2024", "2024-03"])
def test_a_year_or_month_cannot_be_placed(text: str) -> None:
    resource = _obs(
        "http://loinc.org", "2160-0", {"value": 0.5, "unit": "mg/dL"}, effectiveDateTime=text
    )
    with pytest.raises(InvalidResource, match="full date") as caught:
        MAPPER.observation(resource, source="Observation/a1")
    assert caught.value.where.element == "Observation.effectiveDateTime"


def test_no_value_quantity_is_reported() -> None:
    with pytest.raises(InvalidResource, match="valueQuantity") as caught:
        MAPPER.observation(
            _obs("http://loinc.org", "2160-0", None, valueString="0.5 mg/dL"), source="x"
        )
    assert caught.value.where.element == "Observation.valueString"
    absent = MAPPER.observation(
        _obs("http://loinc.org", "2160-0", None, dataAbsentReason={"text": "haemolysed"}),
        source="x",
    )
    assert isinstance(absent, Unmapped) and absent.analyte == "creatinine"
    withdrawn = MAPPER.observation(
        _obs("http://loinc.org", "2160-0", None, status="entered-in-error"), source="x"
    )
    assert isinstance(withdrawn, Unmapped) and "entered-in-error" in withdrawn.reason


def test_unknown_and_computed_codes_are_unmapped() -> None:
    glucose = MAPPER.observation(
        _obs("http://loinc.org", "2345-7", {"value": 90, "unit": "mg/dL"}), source="x"
    )
    assert glucose == Unmapped(("http://loinc.org|2345-7",))
    computed = MAPPER.observation(
        _obs("https://fhir-adapter.org/fhir/CodeSystem/analyte", "egfr-computed", {"value": 90}),
        source="x",
    )
    assert isinstance(computed, Unmapped) and "computed" in computed.reason


def test_codings_of_two_analytes_are_refused() -> None:
    resource = _obs("http://loinc.org", "2160-0", {"value": 1, "unit": "mg/dL"})
    resource["code"]["coding"].append({"system": "http://loinc.org", "code": "3091-6"})
    with pytest.raises(InvalidResource, match="two analytes"):
        MAPPER.observation(resource, source="x")


def _administration(**more: object) -> dict:
    resource: dict = {
        "resourceType": "MedicationAdministration",
        "status": "completed",
        "medicationCodeableConcept": {
            "coding": [
                {"system": "https://fhir-adapter.org/fhir/CodeSystem/product", "code": "ad-msc"}
            ]
        },
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-04-01T09:00:00+03:30",
        "dosage": {
            "dose": {"value": 1.0, "unit": "10^6 cells/kg", "system": UCUM, "code": "10*6/kg"}
        },
    }
    resource.update(more)
    return resource


def test_administration_of_the_product() -> None:
    got = MAPPER.administration(_administration(), source="MedicationAdministration/m1")
    assert got is not None
    assert got.at == datetime(2024, 4, 1, 5, 30, tzinfo=UTC)
    assert (got.status, got.dose, got.dose_unit, got.day_precision) == (
        "completed",
        Decimal("1.0"),
        "10*6/kg",
        False,
    )
    period = _administration(
        effectivePeriod={"start": "2024-04-01"},
        dosage={"rateQuantity": {"value": 2, "unit": "10*6/kg"}},
    )
    del period["effectiveDateTime"]
    got = MAPPER.administration(period, source="MedicationAdministration/m2")
    assert got is not None and got.day_precision and got.dose == 2
    other = _administration(
        medicationCodeableConcept={
            "coding": [{"system": "http://snomed.info/sct", "code": "387362001"}]
        }
    )
    assert MAPPER.administration(other, source="x") is None


def test_specimen_time() -> None:
    assert MAPPER.specimen_time({"resourceType": "Specimen"}) is None
    full = {
        "resourceType": "Specimen",
        "collection": {"collectedDateTime": "2024-03-24T07:00:00+03:30"},
    }
    assert MAPPER.specimen_time(full) == datetime(2024, 3, 24, 3, 30, tzinfo=UTC)
    period = {
        "resourceType": "Specimen",
        "collection": {"collectedPeriod": {"start": "2024-03-24"}},
    }
    day = MAPPER.specimen_time(period)
    assert day == date(2024, 3, 24) and not isinstance(day, datetime)


def test_patient() -> None:
    facts = MAPPER.patient(
        {
            "resourceType": "Patient",
            "identifier": [{"system": "https://h.example/mrn", "value": "42"}, {"use": "old"}],
            "gender": "female",
            "birthDate": "2015-06-01",
        }
    )
    assert facts.identifiers == (("https://h.example/mrn", "42"),)
    assert (facts.sex, facts.birth_date) == ("female", date(2015, 6, 1))
    assert MAPPER.patient({"resourceType": "Patient", "birthDate": "2015"}).birth_date is None


@pytest.mark.parametrize(
    ("study", "is_study"),
    [
        ({"reference": "ResearchStudy/NCT02382874"}, True),
        ({"reference": "https://server.example/fhir/ResearchStudy/NCT02382874"}, True),
        ({"identifier": {"system": "https://clinicaltrials.gov", "value": "NCT02382874"}}, True),
        ({"reference": "ResearchStudy?identifier=https://clinicaltrials.gov|NCT02382874"}, True),
        ({"reference": "ResearchStudy?identifier=https://clinicaltrials.gov|NCT00000001"}, False),
        ({"reference": "ResearchStudy/example"}, False),
        ({"identifier": {"system": "https://other.example", "value": "NCT02382874"}}, False),
    ],
)
def test_research_subject_study(study: dict, is_study: bool) -> None:
    resource = {
        "resourceType": "ResearchSubject",
        "status": "on-study",
        "study": study,
        "individual": {"reference": "Patient?identifier=https://h.example/mrn|42"},
        "identifier": [{"system": "https://royan.example/subjects", "value": "S-01"}],
    }
    facts = MAPPER.research_subject(resource)
    assert facts.is_study is is_study
    assert (facts.status, facts.subject_code) == ("on-study", "S-01")
    assert facts.individual == "Patient?identifier=https://h.example/mrn|42"


def test_research_subject_without_identifier_and_registry() -> None:
    resource = {
        "resourceType": "ResearchSubject",
        "status": "withdrawn",
        "study": {"reference": "ResearchStudy/NCT02382874"},
        "individual": {"reference": "Patient/p1"},
    }
    facts = MAPPER.research_subject(resource)
    assert facts.subject_code is None and facts.status == "withdrawn"
    # the one registry by resource type is the pipeline's: a type it lacks is not kept
    assert HANDLERS["ResearchSubject"] is research_subject
    assert "Encounter" not in HANDLERS
    assert MAPPER.is_this_study(
        {
            "resourceType": "ResearchStudy",
            "identifier": [{"system": "https://clinicaltrials.gov", "value": "NCT02382874"}],
        }
    )
