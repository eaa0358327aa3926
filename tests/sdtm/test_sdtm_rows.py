"""The domain rows of hand-made participants: no infusion, a not-done administration, a value
known only to the day, a lot number, a refused XPT value."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from fhir_adapter.errors import UnusableInput
from fhir_adapter.paths import mappings_dir
from fhir_adapter.sdtm import SdtmTerms, SubjectData, export
from fhir_adapter.trial.definitions import AnalyteCatalogue, StudyDefinition
from fhir_adapter.trial.endpoints import compute
from fhir_adapter.trial.model import Infusion, Measurement, Participant, ParticipantRecord

STUDY = StudyDefinition.from_file(mappings_dir() / "study.toml")
CATALOGUE = AnalyteCatalogue.from_file(mappings_dir() / "analytes.toml")
TERMS = SdtmTerms.from_file(mappings_dir() / "sdtm.toml")
KEY = b"a pseudonym key of 32 bytes....."
#: 2024-03-20 09:30 in Tehran
DAY0 = datetime(2024, 3, 20, 6, 0, tzinfo=UTC)


def _data(record: ParticipantRecord, documents: dict | None = None) -> SubjectData:
    return SubjectData(record, compute(record, STUDY, CATALOGUE), documents or {})


def _rows(folder: Path, name: str) -> list[dict]:
    document = json.loads((folder / f"{name}.json").read_text())
    names = [c["name"] for c in document["columns"]]
    return [dict(zip(names, row, strict=True)) for row in document["rows"]]


def _creatinine(key: str, at: datetime, value: str, *, day: bool = False) -> Measurement:
    return Measurement(f"Observation/{key}", "creatinine", Decimal(value), "mg/dL", at,
                       code="2160-0", day_precision=day)


def test_no_infusion_not_done_and_a_day_only_value(tmp_path: Path) -> None:
    untreated = ParticipantRecord(
        Participant("P-1", "male", date(2015, 1, 2)),
        [Infusion("MedicationAdministration/a1", DAY0, "not-done")],
        [_creatinine("o1", DAY0, "0.5")])
    treated = ParticipantRecord(
        Participant("P-2", "female", date(2016, 3, 20)),
        [Infusion("MedicationAdministration/a2", DAY0, "completed", dose=Decimal("1.0"),
                  dose_unit="10*6/kg")],
        [_creatinine("o2", datetime(2024, 3, 12, 5, 0, tzinfo=UTC), "0.6"),
         # known only to the day: Day 0's own date, never baseline, study day 1
         _creatinine("o3", datetime(2024, 3, 20, tzinfo=STUDY.timezone), "0.7", day=True)])
    documents = {"MedicationAdministration/a2": {
        "effectivePeriod": {"start": "2024-03-20T09:30:00+03:30",
                            "end": "2024-03-20T10:15:00+03:30"},
        "contained": [{"resourceType": "Medication", "id": "m",
                       "batch": {"lotNumber": "LOT-7"}}]}}
    export([_data(untreated), _data(treated, documents)], tmp_path, "dataset-json",
           study=STUDY, catalogue=CATALOGUE, terms=TERMS, secret=KEY,
           created=datetime(2025, 1, 1, tzinfo=UTC))
    dm = {r["SUBJID"]: r for r in _rows(tmp_path, "dm")}
    assert (dm["P-1"]["ARMCD"], dm["P-1"]["ACTARMCD"], dm["P-1"]["ARMNRS"]) == \
        ("ADMSC", None, "ASSIGNED, NOT TREATED")
    assert (dm["P-1"]["RFSTDTC"], dm["P-1"]["AGE"]) == (None, None)
    assert (dm["P-2"]["RFSTDTC"], dm["P-2"]["AGE"], dm["P-2"]["ACTARMCD"]) == \
        ("2024-03-20T09:30:00", 8, "ADMSC")  # the birthday is Day 0 itself: 8, not 7
    ex = _rows(tmp_path, "ex")
    assert [(r["USUBJID"], r["EXLOT"], r["EXENDTC"], r["EXDOSE"]) for r in ex] == [
        ("NCT02382874-P-2", "LOT-7", "2024-03-20T10:15:00", "1")]  # not-done: not in EX
    lb = {(r["USUBJID"], r["LBDTC"]): r for r in _rows(tmp_path, "lb")}
    untreated_row = lb[("NCT02382874-P-1", "2024-03-20T09:30:00")]
    assert (untreated_row["VISITNUM"], untreated_row["LBDY"], untreated_row["LBBLFL"]) == \
        (None, None, None)
    base = lb[("NCT02382874-P-2", "2024-03-12T08:30:00")]
    assert (base["LBBLFL"], base["LBLOBXFL"], base["VISITNUM"], base["LBDY"]) == \
        ("Y", "Y", "1", -8)
    day_only = lb[("NCT02382874-P-2", "2024-03-20")]
    assert (day_only["LBBLFL"], day_only["LBDY"], day_only["VISIT"], day_only["VISITNUM"]) == \
        (None, 1, "UNSCHEDULED", "1.01")  # no window holds Day 0's date


def test_xpt_refuses_a_value_it_cannot_hold(tmp_path: Path) -> None:
    record = ParticipantRecord(Participant("Pé-3", "female", date(2015, 1, 2)), [], [])
    with pytest.raises(UnusableInput, match="ASCII"):
        export([_data(record)], tmp_path, "xpt", study=STUDY, catalogue=CATALOGUE,
               terms=TERMS, secret=KEY, created=datetime(2025, 1, 1, tzinfo=UTC))
