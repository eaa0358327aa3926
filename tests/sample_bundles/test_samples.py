"""The sample Bundles: reproducible from their seed, valid R4, and carrying every wrinkle."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_bundles"
SCRIPT = SAMPLES / "generate.py"
BUNDLE_FILES = sorted(p.name for p in SAMPLES.glob("*.json") if p.name != "plan.json")
TEHRAN = timezone(timedelta(hours=3, minutes=30))
Json = dict[str, Any]


def _load(name: str) -> Json:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def _resources(kind: str | None = None) -> Iterator[tuple[str, Json]]:
    for name in BUNDLE_FILES:
        for entry in _load(name)["entry"]:
            if kind is None or entry["resource"]["resourceType"] == kind:
                yield name, entry["resource"]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sample_generate", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["sample_generate"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def windows() -> list[tuple[str, timedelta, timedelta]]:
    study = tomllib.loads((ROOT / "mappings" / "study.toml").read_text(encoding="utf-8"))
    out = []
    for visit in study["visits"]:
        unit = "hours" if visit["unit"] == "h" else "days"
        out.append((visit["code"], timedelta(**{unit: visit["start"]}),
                    timedelta(**{unit: visit["end"]})))
    return out


@pytest.fixture(scope="module")
def timeline() -> dict[str, tuple[datetime, list[tuple[Json, datetime]]]]:
    """Per Patient fullUrl: Day 0 and every Observation with its measurement time."""
    out: dict[str, tuple[datetime, list[tuple[Json, datetime]]]] = {}
    for name in BUNDLE_FILES:
        entries = _load(name)["entry"]
        by_url = {e["fullUrl"]: e["resource"] for e in entries}
        for entry in entries:
            resource = entry["resource"]
            if resource["resourceType"] == "MedicationAdministration":
                out[resource["subject"]["reference"]] = (
                    _at(resource["effectivePeriod"]["start"]), [])
        for resource in by_url.values():
            if resource["resourceType"] != "Observation" or resource["subject"][
                    "reference"] not in out:
                continue
            when = _at(resource["effectiveDateTime"])
            if "specimen" in resource:
                specimen = by_url[resource["specimen"]["reference"]]
                when = _at(specimen["collection"]["collectedDateTime"])
            out[resource["subject"]["reference"]][1].append((resource, when))
    return out


def test_committed_files_are_the_generator_output(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)],
                         capture_output=True, text=True, check=False, timeout=300)
    assert run.returncode == 0, run.stderr
    made = sorted(p.name for p in tmp_path.iterdir())
    assert made == sorted(p.name for p in SAMPLES.glob("*.json"))
    for name in made:
        assert (tmp_path / name).read_bytes() == (SAMPLES / name).read_bytes(), name


def test_another_seed_gives_other_data(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path), "--seed", "7"],
                   capture_output=True, check=True, timeout=300)
    assert (tmp_path / "p1-FSGS-01.json").read_bytes() != (SAMPLES / "p1-FSGS-01.json").read_bytes()


def test_files_are_named_in_ingestion_order() -> None:
    expected = [f"p{i}-FSGS-0{i}.json" for i in range(1, 6)] + ["zz-corrections.json"]
    assert expected == BUNDLE_FILES
    assert _load("plan.json")["files"] == BUNDLE_FILES


@pytest.mark.parametrize("name", BUNDLE_FILES)
def test_every_entry_parses_as_r4(name: str) -> None:
    bundle = _load(name)
    for index, entry in enumerate(bundle["entry"]):
        resource = entry["resource"]
        try:
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        except ValueError as error:  # pydantic's ValidationError is a ValueError
            pytest.fail(f"{name} entry {index}: {error}")
    get_fhir_model_class("Bundle").model_validate(bundle)


@pytest.mark.parametrize("name", BUNDLE_FILES)
def test_transaction_with_urn_uuid_references(name: str) -> None:
    bundle = _load(name)
    assert bundle["type"] == "transaction"
    urls = {entry["fullUrl"] for entry in bundle["entry"]}
    assert all(url.startswith("urn:uuid:") for url in urls)
    for entry in bundle["entry"]:
        request, resource = entry["request"], entry["resource"]
        assert request["method"] in {"POST", "PUT"}
        if request["method"] == "PUT":
            assert request["url"].startswith(f"{resource['resourceType']}?identifier=")
        for field in ("subject", "individual", "specimen"):
            reference = resource.get(field, {}).get("reference")
            if reference is not None:
                assert reference in urls or "?identifier=" in reference, (name, reference)


def test_codes_and_units_are_those_of_the_catalogue() -> None:
    catalogue = tomllib.loads((ROOT / "mappings" / "analytes.toml").read_text(encoding="utf-8"))
    accepted = {(c["system"], c["code"]): set(c["units"])
                for analyte in catalogue["analyte"].values() for c in analyte["codes"]}
    for name, obs in _resources("Observation"):
        coding = obs["code"]["coding"][0]
        quantity = obs["valueQuantity"]
        assert quantity["system"] == "http://unitsofmeasure.org"
        assert quantity["code"] in accepted[coding["system"], coding["code"]], (name, coding)


def test_every_observation_is_complete() -> None:
    for _, obs in _resources("Observation"):
        assert obs["identifier"][0]["system"] and obs["identifier"][0]["value"]
        category = obs["category"][0]["coding"][0]["code"]
        vital = obs["code"]["coding"][0]["code"] in {"8302-2", "29463-7"}
        assert category == ("vital-signs" if vital else "laboratory")
        assert _at(obs["effectiveDateTime"]).tzinfo is not None
        assert _at(obs["issued"]) >= _at(obs["effectiveDateTime"])
    times = [obs["effectiveDateTime"] for _, obs in _resources("Observation")]
    in_tehran = sum(t.endswith("+03:30") for t in times)
    in_utc = sum(t.endswith("Z") for t in times)
    assert in_tehran + in_utc == len(times)
    assert 0 < in_utc < in_tehran


def test_umol_creatinine_and_gram_protein_and_bun() -> None:
    pairs = {(o["code"]["coding"][0]["code"], o["valueQuantity"]["code"])
             for _, o in _resources("Observation")}
    assert ("14682-9", "umol/L") in pairs
    assert ("2889-4", "g/(24.h)") in pairs
    assert ("3094-0", "mg/dL") in pairs


def _first_versions() -> dict[tuple[str, str], Json]:
    return {(o["identifier"][0]["system"], o["identifier"][0]["value"]): o
            for name, o in _resources("Observation") if name != "zz-corrections.json"}


def test_corrections_amend_and_withdraw_earlier_results() -> None:
    earlier = _first_versions()
    later = _load("zz-corrections.json")["entry"]
    statuses = set()
    for entry in later:
        obs = entry["resource"]
        key = (obs["identifier"][0]["system"], obs["identifier"][0]["value"])
        assert entry["request"]["url"] == f"Observation?identifier={key[0]}|{key[1]}"
        before = earlier[key]
        assert before["status"] == "final" and before["code"] == obs["code"]
        assert _at(obs["issued"]) > _at(before["issued"])
        statuses.add(obs["status"])
        if obs["status"] == "amended":
            assert obs["valueQuantity"]["value"] != before["valueQuantity"]["value"]
    assert statuses == {"amended", "entered-in-error"}


def test_a_censored_il2() -> None:
    censored = [o for _, o in _resources("Observation") if "comparator" in o["valueQuantity"]]
    assert [(o["code"]["coding"][0]["code"], o["valueQuantity"]["comparator"])
            for o in censored] == [("33939-0", "<")]


def test_a_missed_visit_and_a_value_out_of_window(windows, timeline) -> None:
    missed, outside = [], []
    for day0, observations in timeline.values():
        offsets = [when - day0 for _, when in observations]
        for code, start, end in windows:
            if not any(start <= offset <= end for offset in offsets):
                missed.append(code)
        outside += [o for o in offsets
                    if o >= timedelta(0) and not any(s <= o <= e for _, s, e in windows)]
    assert missed, "every participant has a value in every window"
    assert outside, "no value falls outside every window"


def test_a_specimen_time_moves_a_value_into_its_window(windows, timeline) -> None:
    moved = []
    for day0, observations in timeline.values():
        for obs, when in observations:
            effective = _at(obs["effectiveDateTime"]) - day0
            inside = [c for c, s, e in windows if s <= when - day0 <= e]
            if when != _at(obs["effectiveDateTime"]) and inside and not any(
                    s <= effective <= e for _, s, e in windows):
                moved.append(inside)
    assert moved == [["H12"]]


def _baseline(observations: list[tuple[Json, datetime]], day0: datetime, code: str) -> Json:
    before = [(w, o) for o, w in observations if o["code"]["coding"][0]["code"] == code
              and timedelta(days=-30) <= w - day0 < timedelta(0)]
    return max(before, key=lambda pair: pair[0])[1]


def test_abnormal_baseline_and_alt_rise_at_w2(timeline) -> None:
    abnormal, graded = 0, 0
    for day0, observations in timeline.values():
        base = _baseline(observations, day0, "1742-6")
        default = [{"high": {"value": 40}}]
        uln = Decimal(str(base.get("referenceRange", default)[0]["high"]["value"]))
        base_value = Decimal(str(base["valueQuantity"]["value"]))
        abnormal += base_value > uln
        for obs, when in observations:
            value = Decimal(str(obs["valueQuantity"]["value"]))
            if (obs["code"]["coding"][0]["code"] == "1742-6" and base_value <= uln
                    and timedelta(days=11) <= when - day0 <= timedelta(days=17)):
                graded += value > uln and value > base_value
    assert abnormal == 1
    assert graded == 1


def test_ages_between_2_and_14_at_day0_and_both_sexes(timeline) -> None:
    sexes = set()
    patients = [(e["fullUrl"], e["resource"]) for name in BUNDLE_FILES
                for e in _load(name)["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert len(patients) == 5
    for url, patient in patients:
        day0 = timeline[url][0].astimezone(TEHRAN).date()
        born = date.fromisoformat(patient["birthDate"])
        age = day0.year - born.year - ((day0.month, day0.day) < (born.month, born.day))
        assert 2 <= age <= 14, (url, age)
        assert patient["identifier"][0]["type"]["coding"][0]["code"] == "MR"
        assert patient["name"] and patient["address"]
        sexes.add(patient["gender"])
    assert sexes == {"female", "male"}


Series = list[tuple[datetime, Decimal, str]]


def _series(observations: list[tuple[Json, datetime]], code: str) -> Series:
    return [(w, Decimal(str(o["valueQuantity"]["value"])), o["valueQuantity"]["code"])
            for o, w in observations
            if o["code"]["coding"][0]["code"] == code and o["status"] == "final"]


def _latest(series: Series, at: datetime) -> Decimal | None:
    """The latest value in the 90 days up to and including ``at``."""
    seen = [(w, v) for w, v, _ in series if at - timedelta(days=90) <= w <= at]
    return max(seen)[1] if seen else None


def test_remission_complete_partial_and_none_are_all_reached(timeline) -> None:
    """Best category after Day 0, from the rules of TRIAL.md 6.3 written again here."""
    best = []
    for day0, observations in timeline.values():
        heights, weights = _series(observations, "8302-2"), _series(observations, "29463-7")
        protein = [(w, v * 1000 if unit == "g/(24.h)" else v)
                   for w, v, unit in _series(observations, "2889-4")]
        base = max((w, v) for w, v in protein if timedelta(-30) <= w - day0 < timedelta(0))[1]
        reached = set()
        for when, mg in protein:
            if when < day0:
                continue
            height, weight = _latest(heights, when), _latest(weights, when)
            limit = (40 * 24 * (height * weight / 3600).sqrt() if height and weight
                     else Decimal(3500))
            reached.add("complete" if mg < 300 else
                        "partial" if mg <= base / 2 and mg < limit else "none")
        best.append(next(c for c in ("complete", "partial", "none") if c in reached))
    assert {"complete", "partial", "none"} <= set(best)


def test_plan_lists_every_observation_as_sent() -> None:
    plan = _load("plan.json")
    sent = {(o["identifier"][0]["value"], n): o for n, o in _resources("Observation")}
    planned = 0
    for participant in plan["participants"]:
        for value in participant["values"]:
            obs = sent[value["identifier"]["value"], participant["file"]]
            quantity = obs["valueQuantity"]
            assert Decimal(value["value"]) == Decimal(str(quantity["value"]))
            assert (value["unit"], value["code"], value["time"], value["status"]) == (
                quantity["code"], obs["code"]["coding"][0]["code"], obs["effectiveDateTime"],
                obs["status"])
            assert value["comparator"] == quantity.get("comparator")
            planned += 1
            correction = value["correction"]
            if correction:
                fixed = sent[value["identifier"]["value"], correction["file"]]
                assert fixed["status"] == correction["status"]
                if correction["value"] is not None:
                    assert Decimal(correction["value"]) == Decimal(
                        str(fixed["valueQuantity"]["value"]))
    assert planned == sum(1 for n, _ in _resources("Observation") if n != "zz-corrections.json")


def test_make_bundles_scales_and_is_deterministic() -> None:
    generator = _generator()
    bundles = list(generator.make_bundles(7, seed=11))
    assert len(bundles) == 7
    subjects = {e["resource"]["identifier"][0]["value"] for b in bundles for e in b["entry"]
                if e["resource"]["resourceType"] == "ResearchSubject"}
    assert len(subjects) == 7
    assert bundles == list(generator.make_bundles(7, seed=11))
    big = next(generator.make_bundles(1, seed=11, visits_per_year=72))
    observations = [e for e in big["entry"] if e["resource"]["resourceType"] == "Observation"]
    assert len(observations) >= 1000
    identifiers = {o["resource"]["identifier"][0]["value"] for o in observations}
    assert len(identifiers) == len(observations)
    get_fhir_model_class("Bundle").model_validate(big)
