"""The five sample participants through the pipeline: every published endpoint value equals a
value worked out here from sample_bundles/plan.json with the rules of TRIAL.md written again
(windows, baseline, change, CTCAE grade, remission with BSA, bedside Schwartz, fold change)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fhir_adapter.pipeline import Pipeline
from fhir_adapter.settings import Settings

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sample_bundles"
PLAN = json.loads((SAMPLES / "plan.json").read_text())
SUBJECTS = [p["subject"] for p in PLAN["participants"]]
# the same variables as the shared fixtures (tests/conftest.py)
POSTGRES_URL = os.environ.get(
    "FHIR_ADAPTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("FHIR_ADAPTER_REQUIRE_POSTGRES") == "1"

# -- the rules of TRIAL.md, written again -------------------------------------------------
D, H = timedelta(days=1), timedelta(hours=1)
#: visit -> (nominal offset, window low, window high), inclusive (TRIAL.md section 3)
WINDOWS: dict[str, tuple[timedelta, timedelta, timedelta]] = {
    "H12": (12 * H, 6 * H, 18 * H),
    "W1": (7 * D, 5 * D, 9 * D),
    "W2": (14 * D, 11 * D, 17 * D),
    "W4": (28 * D, 24 * D, 32 * D),
    **{f"M{m}": (30 * m * D, (30 * m - 7) * D, (30 * m + 7) * D) for m in range(2, 12)},
    "M12": (365 * D, 351 * D, 379 * D),
}
MONTHLY = ["W4", *[f"M{m}" for m in range(2, 13)]]
RENAL_VISITS = ["H12", "W1", "W2", *MONTHLY]
CYTOKINE_VISITS = ["H12", *MONTHLY]
TREG_VISITS = ["H12", "W1", "M3", "M6", "M12"]
PROTEIN_VISITS = list(WINDOWS)
COUNTING = {"final", "amended", "corrected"}
DEFAULT_ULN = {"alt": Decimal(40), "ast": Decimal(40)}  # study defaults, U/L
COMPLETE_BELOW = Decimal(300)  # mg/d
NEPHROTIC_RATE = Decimal(40)  # mg/(m2.h)
NEPHROTIC_DAILY = Decimal(3500)  # mg/d
TO_CANONICAL = {  # (analyte, UCUM code as sent) -> factor into the canonical unit
    ("creatinine", "umol/L"): Decimal(1) / Decimal("88.4"),
    ("urine-protein-24h", "g/(24.h)"): Decimal(1000),
}
BUN_TO_UREA = Decimal("2.14")  # 3094-0 in mg/dL
RANK = {"none": 0, "partial": 1, "complete": 2}


@dataclass(frozen=True)
class Value:
    analyte: str
    value: Decimal
    at: datetime
    comparator: str | None
    uln: Decimal | None


def values_of(plan: dict[str, Any]) -> list[Value]:
    """The participant's values as they stand after every file (corrections applied), in the
    canonical unit, at the specimen time when there is one; only those that count."""
    out = []
    for v in plan["values"]:
        status, raw = v["status"], v["value"]
        if v["correction"]:
            status = v["correction"]["status"]
            raw = v["correction"]["value"] or raw
        if status not in COUNTING:
            continue
        factor = TO_CANONICAL.get((v["analyte"], v["unit"]), Decimal(1))
        if v["code"] == "3094-0":
            factor = BUN_TO_UREA
        at = datetime.fromisoformat(v["specimen_time"] or v["time"])
        high = v["reference_high"]
        out.append(Value(v["analyte"], Decimal(raw) * factor, at, v["comparator"],
                         Decimal(high) if high is not None else None))
    return out


class Expected:
    """One participant's endpoints, worked out from plan.json alone."""

    def __init__(self, plan: dict[str, Any]) -> None:
        self.plan = plan
        self.day0 = datetime.fromisoformat(plan["day0"])
        self.values = values_of(plan)

    def of(self, analyte: str) -> list[Value]:
        return [v for v in self.values if v.analyte == analyte]

    def baseline(self, analyte: str) -> Value | None:
        before = [v for v in self.of(analyte) if -30 * D <= v.at - self.day0 < timedelta(0)]
        return max(before, key=lambda v: v.at) if before else None

    def at_visit(self, analyte: str, visit: str) -> Value | None:
        nominal, low, high = WINDOWS[visit]
        inside = [v for v in self.of(analyte) if low <= v.at - self.day0 <= high]
        if not inside:
            return None
        # nearest to the nominal offset; on a tie the later one
        return min(inside, key=lambda v: (abs(v.at - self.day0 - nominal), -v.at.timestamp()))

    def latest(self, analyte: str, at: datetime) -> Decimal | None:
        """The latest value in the 90 days up to and including ``at`` (height, weight)."""
        found = [v for v in self.of(analyte) if at - 90 * D <= v.at <= at]
        return max(found, key=lambda v: v.at).value if found else None

    def schwartz(self, creatinine: Value) -> Decimal | None:
        height = self.latest("height", creatinine.at)
        return None if height is None else Decimal("0.413") * height / creatinine.value

    def bsa(self, at: datetime) -> Decimal | None:
        height, weight = self.latest("height", at), self.latest("weight", at)
        if height is None or weight is None:
            return None
        return (height * weight / Decimal(3600)).sqrt()

    def remission(self, protein: Value) -> str:
        if protein.value < COMPLETE_BELOW:
            return "complete"
        base = self.baseline("urine-protein-24h")
        if base is None or protein.value > base.value / 2:
            return "none"
        bsa = self.bsa(protein.at)
        nephrotic = (protein.value / bsa / 24 >= NEPHROTIC_RATE if bsa is not None
                     else protein.value >= NEPHROTIC_DAILY)
        return "none" if nephrotic else "partial"

    def grade(self, analyte: str, value: Value) -> int:
        """CTCAE v5.0 against the baseline (TRIAL.md 6.1)."""
        base = self.baseline(analyte)
        uln = value.uln or DEFAULT_ULN[analyte]
        if base is not None and base.value > (base.uln or DEFAULT_ULN[analyte]):
            ratio, grade1 = value.value / base.value, Decimal("1.5")
            if ratio < grade1:
                return 0
        else:
            ratio = value.value / uln
            if ratio <= 1:
                return 0
        for grade, above in ((4, 20), (3, 5), (2, 3)):
            if ratio > above:
                return grade
        return 1

    def age_at_day0(self) -> int:
        born = date.fromisoformat(self.plan["birth_date"])
        day = self.day0.date()
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


EXPECTED = {p["subject"]: Expected(p) for p in PLAN["participants"]}


# -- the published results ------------------------------------------------------------------
def _pg_database() -> Iterator[str]:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES_URL)
    try:
        admin = psycopg.connect(host=url.host, port=url.port or 5432, user=url.username,
                                password=url.password, dbname=url.database, autocommit=True,
                                connect_timeout=3)
    except psycopg.OperationalError as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is not reachable ({exc})")
        pytest.skip(f"PostgreSQL at {url.host}:{url.port} is not reachable ({exc})")
    name = f"fa_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def published(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    """identifier value -> published Observation, after ingesting every sample file in order."""
    if request.param == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{tmp_path_factory.mktemp('s') / 'store.db'}"])
    else:
        urls = _pg_database()
    url = next(urls)
    pipeline = Pipeline.from_settings(Settings(database_url=url))
    try:
        summary = pipeline.ingest_paths([SAMPLES / name for name in PLAN["files"]])
        assert summary.errors == []
        bundle = pipeline.result_bundle()
    finally:
        pipeline.store.close()
    yield {ident["value"]: e["resource"] for e in bundle["entry"]
           for ident in e["resource"].get("identifier", [])[:1]
           if e["resource"]["resourceType"] == "Observation"}
    for _ in urls:  # drop the PostgreSQL database
        pass


def component(resource: dict[str, Any], code: str) -> Any:
    for c in resource.get("component", []):
        if c["code"]["coding"][0]["code"] == code:
            for key in ("valueQuantity", "valueInteger", "valueCodeableConcept"):
                if key in c:
                    value = c[key]
                    if key == "valueQuantity":
                        return Decimal(str(value["value"]))
                    if key == "valueCodeableConcept":
                        return value["coding"][0]["code"]
                    return value
    return None


def close(actual: Any, expected: Decimal, places: int) -> bool:
    """Equal once rounded to ``places`` decimals (whatever the rounding rule)."""
    return actual is not None and abs(Decimal(str(actual)) - expected) <= \
        Decimal(5) * Decimal(10) ** -(places + 1) + Decimal("1e-9")


def visit_results(published: dict[str, Any], subject: str, endpoint: str, analyte: str,
                  *, live: bool = True) -> dict[str, dict[str, Any]]:
    prefix = f"{subject}.{endpoint}.{analyte}."
    return {k[len(prefix):]: r for k, r in published.items() if k.startswith(prefix)
            and (not live or r["status"] != "entered-in-error")}


def value_of(resource: dict[str, Any]) -> Decimal:
    return Decimal(str(resource["valueQuantity"]["value"]))


# -- the tests -----------------------------------------------------------------------------
@pytest.mark.parametrize("subject", SUBJECTS)
def test_serum_creatinine_at_w2_change_and_category(published, subject) -> None:
    e = EXPECTED[subject]
    w2, base = e.at_visit("creatinine", "W2"), e.baseline("creatinine")
    assert w2 is not None and base is not None
    result = published[f"{subject}.serum-creatinine.creatinine.W2"]
    percent = 100 * (w2.value - base.value) / base.value
    category = "D" if percent <= -10 else "U" if percent >= 10 else "N"
    assert close(value_of(result), w2.value, 6)
    assert close(component(result, "baseline"), base.value, 6)
    assert close(component(result, "change"), w2.value - base.value, 6)
    assert close(component(result, "percent-change"), percent, 2)
    assert datetime.fromisoformat(result["effectiveDateTime"]) == w2.at
    interpretation = [c["code"] for i in result.get("interpretation", []) for c in i["coding"]]
    assert interpretation == ([] if category == "N" else [category])
    level = published[f"{subject}.creatinine-category-w2"]
    assert level["valueCodeableConcept"]["coding"][0]["code"] == category


def test_the_sample_creatinine_quirks() -> None:
    """The inputs really are what the W2 test relies on (so it cannot pass by accident)."""
    first, second = EXPECTED["FSGS-01"], EXPECTED["FSGS-02"]
    assert first.at_visit("creatinine", "W2").value == Decimal("0.47")  # amended from 0.54
    base, w2 = second.baseline("creatinine").value, second.at_visit("creatinine", "W2").value
    assert 100 * (w2 - base) / base == Decimal(-10)  # exactly -10 %: decreased


def test_amended_and_exact_bound_categories(published) -> None:
    amended = published["FSGS-01.serum-creatinine.creatinine.W2"]
    assert amended["status"] == "amended" and value_of(amended) == Decimal("0.47")
    assert published["FSGS-01.creatinine-category-w2"]["status"] == "amended"
    exact = published["FSGS-02.serum-creatinine.creatinine.W2"]
    assert component(exact, "percent-change") == Decimal(-10)
    assert exact["interpretation"][0]["coding"][0]["code"] == "D"


@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("analyte", ["alt", "ast"])
def test_liver_enzyme_grade_at_w2(published, subject, analyte) -> None:
    e = EXPECTED[subject]
    w2, base = e.at_visit(analyte, "W2"), e.baseline(analyte)
    result = published[f"{subject}.liver-function.{analyte}.W2"]
    uln = w2.uln or DEFAULT_ULN[analyte]
    assert value_of(result) == w2.value and component(result, "baseline") == base.value
    assert component(result, "uln") == uln
    assert close(component(result, "fold-uln"), w2.value / uln, 2)
    assert component(result, "ctcae-grade") == e.grade(analyte, w2)


def test_reference_range_and_default_uln_both_exercised(published) -> None:
    assert component(published["FSGS-01.liver-function.alt.W2"], "uln") == Decimal(35)
    assert component(published["FSGS-01.liver-function.ast.W2"], "uln") == Decimal(45)
    assert component(published["FSGS-02.liver-function.alt.W2"], "uln") == Decimal(40)
    assert component(published["FSGS-03.liver-function.alt.W2"], "ctcae-grade") == 1


@pytest.mark.parametrize("subject", SUBJECTS)
def test_liver_participant_level(published, subject) -> None:
    e = EXPECTED[subject]
    increase = False
    for analyte in ("alt", "ast"):
        base = e.baseline(analyte)
        after = [v for v in e.of(analyte) if v.at >= e.day0]
        highest = max(e.grade(analyte, v) for v in after)
        level = published[f"{subject}.max-ctcae-grade-{analyte}"]
        assert level["valueInteger"] == highest
        w2 = e.at_visit(analyte, "W2")
        increase |= w2.value > base.value and e.grade(analyte, w2) >= 1
        assert component(level, "age-at-day0") == e.age_at_day0()
    assert published[f"{subject}.liver-enzyme-increase-w2"]["valueBoolean"] is increase


def test_baseline_abnormal_grades(published) -> None:
    """FSGS-04: ALT 68 U/L at baseline (ULN 35): W2 80 U/L is grade 0 (< 1.5 x baseline),
    M3 110 U/L grade 1, the highest after Day 0."""
    e = EXPECTED["FSGS-04"]
    base = e.baseline("alt")
    assert base.value > base.uln
    w2 = published["FSGS-04.liver-function.alt.W2"]
    assert value_of(w2) == Decimal(80) and component(w2, "ctcae-grade") == 0
    m3 = e.at_visit("alt", "M3")
    assert m3.value == Decimal(110) and e.grade("alt", m3) == 1
    assert published["FSGS-04.max-ctcae-grade-alt"]["valueInteger"] == 1


@pytest.mark.parametrize("subject", SUBJECTS)
def test_remission_at_every_visit(published, subject) -> None:
    e = EXPECTED[subject]
    base = e.baseline("urine-protein-24h")
    results = visit_results(published, subject, "proteinuria", "urine-protein-24h")
    expected = {v: e.at_visit("urine-protein-24h", v) for v in PROTEIN_VISITS}
    expected = {v: x for v, x in expected.items() if x is not None}
    assert sorted(results) == sorted(expected)
    for visit, protein in expected.items():
        result = results[visit]
        assert value_of(result) == protein.value, visit
        assert component(result, "baseline") == base.value
        assert close(component(result, "percent-change"),
                     100 * (protein.value - base.value) / base.value, 2)
        assert component(result, "remission") == e.remission(protein), visit
        bsa = e.bsa(protein.at)
        rate = component(result, "protein-rate-bsa")
        if bsa is None:
            assert rate is None, visit
        else:
            assert close(rate, protein.value / bsa / 24, 2), visit
    categories = [e.remission(p) for p in expected.values()]
    best = max(categories, key=RANK.__getitem__)
    level = published[f"{subject}.proteinuria-best-response"]
    assert level["valueCodeableConcept"]["coding"][0]["code"] == best
    m12 = published.get(f"{subject}.proteinuria-response-m12")
    if "M12" in expected:
        assert m12["status"] != "entered-in-error"
        assert m12["valueCodeableConcept"]["coding"][0]["code"] == e.remission(expected["M12"])
    else:
        assert m12 is None or m12["status"] == "entered-in-error"


def test_bsa_rule_keeps_fsgs_02_out_of_partial(published) -> None:
    """W4 and M2 are >= 50 % below baseline but above 40 mg/(m2.h): none (partial without BSA)."""
    e = EXPECTED["FSGS-02"]
    for visit in ("W4", "M2"):
        protein = e.at_visit("urine-protein-24h", visit)
        assert protein.value <= e.baseline("urine-protein-24h").value / 2
        assert protein.value / e.bsa(protein.at) / 24 >= NEPHROTIC_RATE
        result = published[f"FSGS-02.proteinuria.urine-protein-24h.{visit}"]
        assert component(result, "remission") == "none"


def test_withdrawn_m12_protein_is_entered_in_error(published) -> None:
    withdrawn = published["FSGS-02.proteinuria.urine-protein-24h.M12"]
    assert withdrawn["status"] == "entered-in-error"
    assert published["FSGS-02.proteinuria-response-m12"]["status"] == "entered-in-error"
    assert EXPECTED["FSGS-02"].at_visit("urine-protein-24h", "M12") is None


@pytest.mark.parametrize("subject", SUBJECTS)
def test_bedside_schwartz_egfr(published, subject) -> None:
    e = EXPECTED[subject]
    base = e.schwartz(e.baseline("creatinine"))
    results = visit_results(published, subject, "renal-function", "egfr-computed")
    expected = {}
    for visit in RENAL_VISITS:
        creatinine = e.at_visit("creatinine", visit)
        egfr = e.schwartz(creatinine) if creatinine else None
        if egfr is not None:
            expected[visit] = egfr
    assert sorted(results) == sorted(expected)
    for visit, egfr in expected.items():
        result = results[visit]
        assert close(value_of(result), egfr, 1), visit
        assert close(component(result, "baseline"), base, 1)
        assert abs(component(result, "change") - (egfr - base)) <= Decimal("0.1")
        assert component(result, "egfr-method") == "bedside-schwartz"


def test_schwartz_needs_a_height_in_the_90_days() -> None:
    """FSGS-03 is measured only at BL and M12: no height in the 90 days before M4 ... M11."""
    e = EXPECTED["FSGS-03"]
    assert e.schwartz(e.at_visit("creatinine", "M6")) is None
    assert e.schwartz(e.at_visit("creatinine", "W2")) is not None


SIMPLE = [
    ("renal-function", "creatinine", RENAL_VISITS, False),
    ("renal-function", "urea", RENAL_VISITS, False),
    ("anti-inflammatory", "il2", CYTOKINE_VISITS, True),
    ("anti-inflammatory", "il10", CYTOKINE_VISITS, True),
    ("treg", "treg-pct-cd4", TREG_VISITS, True),
    ("treg", "treg-abs", TREG_VISITS, True),
]


@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize(("endpoint", "analyte", "visits", "fold"), SIMPLE,
                         ids=[f"{a}" for _, a, _, _ in SIMPLE])
def test_value_change_and_fold_at_every_visit(published, subject, endpoint, analyte, visits,
                                              fold) -> None:
    e = EXPECTED[subject]
    base = e.baseline(analyte)
    results = visit_results(published, subject, endpoint, analyte)
    expected = {v: e.at_visit(analyte, v) for v in visits}
    expected = {v: x for v, x in expected.items() if x is not None}
    assert sorted(results) == sorted(expected)
    for visit, value in expected.items():
        result = results[visit]
        assert close(value_of(result), value.value, 6), visit
        assert result["valueQuantity"].get("comparator") == value.comparator
        assert close(component(result, "baseline"), base.value, 6)
        if value.comparator:  # censored: no change of any kind
            assert [component(result, c) for c in ("change", "percent-change", "fold-change")] \
                == [None, None, None]
            continue
        assert close(component(result, "change"), value.value - base.value, 6), visit
        assert close(component(result, "percent-change"),
                     100 * (value.value - base.value) / base.value, 2), visit
        if fold:
            assert close(component(result, "fold-change"), value.value / base.value, 3), visit


def test_il10_fold_change_and_censored_il2(published) -> None:
    e = EXPECTED["FSGS-01"]
    il10 = published["FSGS-01.anti-inflammatory.il10.W4"]
    expected = e.at_visit("il10", "W4").value / e.baseline("il10").value
    assert close(component(il10, "fold-change"), expected, 3)
    censored = published["FSGS-01.anti-inflammatory.il2.M2"]
    assert censored["valueQuantity"]["comparator"] == "<"
    assert value_of(censored) == Decimal("0.8")
    assert component(censored, "change") is None and component(censored, "fold-change") is None


def test_out_of_window_and_missed_visits_have_no_result(published) -> None:
    assert "FSGS-05.renal-function.creatinine.M5" not in published  # drawn on day 160
    assert "FSGS-04.renal-function.creatinine.M7" not in published  # missed
    # H12 only by the Specimen's collection time (+17.5 h), not effectiveDateTime (+18.75 h)
    assert "FSGS-05.renal-function.creatinine.H12" in published


def test_every_published_result_is_one_checked_here(published) -> None:
    """Each visit-level result is of an (endpoint, analyte) pair the tests above work out."""
    checked = {("serum-creatinine", "creatinine"), ("liver-function", "alt"),
               ("liver-function", "ast"), ("proteinuria", "urine-protein-24h"),
               ("renal-function", "egfr-computed")}
    checked |= {(endpoint, analyte) for endpoint, analyte, _, _ in SIMPLE}
    visit_level = [k.split(".") for k, r in published.items()
                   if r.get("meta", {}).get("profile", [""])[0].endswith("/endpoint-result")]
    assert len(visit_level) > 400
    assert {(parts[1], parts[2]) for parts in visit_level} == checked
    assert {parts[0] for parts in visit_level} == set(SUBJECTS)
