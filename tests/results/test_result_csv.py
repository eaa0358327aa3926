"""The tidy CSV: one row per participant x analyte x visit, read cleanly by pandas."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from decimal import Decimal

import pandas as pd
import pytest

from fhir_adapter.results import COLUMNS
from tests.results.result_fixtures import (
    ALT_W2_RESULT,
    CR_BL,
    CR_W2,
    EGFR_LAB_W2,
    IL2_CENSORED,
    PROTEIN_M3,
    SUBJECT,
    records,
)

NUMERIC = ["value", "baseline", "change", "percent_change", "fold_change", "day_offset"]


@pytest.fixture()
def text(builder, endpoints) -> str:
    return builder.to_csv(endpoints, records=records())


@pytest.fixture()
def frame(text) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text))


def test_header_and_rfc4180_shape(text):
    lines = text.split("\r\n")
    assert lines[0].split(",") == list(COLUMNS)
    assert lines[-1] == ""  # every record ends with CRLF
    assert "\n" not in text.replace("\r\n", "")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert all(len(r) == len(COLUMNS) for r in rows)
    text.encode("utf-8")


def test_one_row_per_result_and_per_shown_value(frame):
    # 6 visit-level results of the first participant, none for the one without infusion,
    # and the lab-reported eGFR at W2 shown without an endpoint
    assert len(frame) == 7
    assert set(frame["subject"]) == {SUBJECT}
    shown = frame[frame["endpoint"].isna()]
    assert list(shown["analyte"]) == ["egfr-reported"]
    assert list(shown["visit"]) == ["W2"]
    assert shown["value"].iloc[0] == 61


def test_numbers_are_numeric_and_missing_cells_are_na(frame):
    for column in NUMERIC:
        assert pd.api.types.is_float_dtype(frame[column]), column
    for column in ("subject", "endpoint", "analyte", "visit", "unit", "effective", "source_ids"):
        assert frame[column].dtype == object, column
    censored = frame[(frame["analyte"] == "il2")].iloc[0]
    assert (censored["value"], censored["comparator"], censored["baseline"]) == (5, "<", 10)
    assert pd.isna(censored["change"]) and pd.isna(censored["percent_change"])


def _row(frame: pd.DataFrame, endpoint: str, analyte: str) -> pd.Series:
    rows = frame[(frame["endpoint"] == endpoint) & (frame["analyte"] == analyte)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_creatinine_row(frame, builder):
    row = _row(frame, "serum-creatinine", "creatinine")
    assert (row["visit"], row["value"], row["unit"]) == ("W2", 0.9, "mg/dL")
    assert (row["baseline"], row["change"], row["percent_change"]) == (1.0, -0.1, -10.0)
    assert row["category"] == "D"
    # Day 0 09:30 Tehran, sample 2024-04-03 09:00 Tehran: 14 days less half an hour
    assert row["day_offset"] == round(14 - 0.5 / 24, 4) == 13.9792
    assert row["effective"] == "2024-04-03T09:00:00+03:30"
    assert row["source_ids"].split(";") == [builder.source_id(CR_W2), builder.source_id(CR_BL)]


def test_categories_and_method(frame):
    assert _row(frame, "liver-function", "alt")["category"] == str(ALT_W2_RESULT.ctcae_grade)
    protein = _row(frame, "proteinuria", "urine-protein-24h")
    assert (protein["category"], protein["visit"]) == ("complete", PROTEIN_M3.visit)
    egfr = _row(frame, "renal-function", "egfr-computed")
    assert egfr["egfr_method"] == "bedside-schwartz"
    treg = _row(frame, "treg", "treg-pct-cd4")
    assert treg["fold_change"] == 1.512
    # IL-2 at H12, 21:30 Tehran on Day 0: 12 hours = 0.5 day
    assert _row(frame, "anti-inflammatory", IL2_CENSORED.analyte)["day_offset"] == 0.5


def test_shown_value_names_its_pseudonymous_source(frame, builder):
    shown = frame[frame["endpoint"].isna()].iloc[0]
    assert shown["source_ids"] == builder.source_id(EGFR_LAB_W2)
    assert EGFR_LAB_W2.split("/")[1] not in frame.to_csv()


def test_without_records_there_is_no_day_offset(builder, endpoints):
    frame = pd.read_csv(io.StringIO(builder.to_csv(endpoints)))
    assert len(frame) == 6
    assert frame["day_offset"].isna().all()


def test_unchanged_creatinine_is_categorised_n(builder, endpoints):
    results = endpoints[0].visit_results
    results[0] = replace(
        results[0], value=results[0].baseline, change=Decimal(0), percent_change=Decimal(0)
    )
    results[0] = replace(results[0], interpretation=None)
    frame = pd.read_csv(io.StringIO(builder.to_csv(endpoints)), dtype={"category": str})
    assert _row(frame, "serum-creatinine", "creatinine")["category"] == "N"
    assert pd.isna(_row(frame, "renal-function", "egfr-computed")["category"])
