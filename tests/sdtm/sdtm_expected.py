"""LB rows of the sample participants worked out from sample_bundles/plan.json alone, with the
rules of TRIAL.md and the export's documented decisions (README, "SDTM") written again."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sample_bundles"
PLAN = json.loads((SAMPLES / "plan.json").read_text())
TEHRAN = ZoneInfo(PLAN["timezone"])
STUDY = PLAN["study"]["value"]
COUNTING = {"final", "amended", "corrected"}
D, H = timedelta(days=1), timedelta(hours=1)
#: visit -> (nominal, low, high), inclusive (TRIAL.md section 3), in schedule order
WINDOWS: dict[str, tuple[timedelta, timedelta, timedelta]] = {
    "H12": (12 * H, 6 * H, 18 * H),
    "W1": (7 * D, 5 * D, 9 * D),
    "W2": (14 * D, 11 * D, 17 * D),
    "W4": (28 * D, 24 * D, 32 * D),
    **{f"M{m}": (30 * m * D, (30 * m - 7) * D, (30 * m + 7) * D) for m in range(2, 12)},
    "M12": (365 * D, 351 * D, 379 * D),
}
#: VISITNUM: BL 1, then the visits in order
NUMBER = {"BL": Decimal(1)} | {v: Decimal(i) for i, v in enumerate(WINDOWS, start=2)}
TESTCD = {"creatinine": "CREAT", "urea": "UREA", "egfr-reported": "GFRBSA",
          "urine-protein-24h": "PROT", "upcr": "PROTCRT", "alt": "ALT", "ast": "AST",
          "albumin": "ALB", "il2": "IL2", "il10": "IL10", "treg-pct-cd4": "TREGCD4",
          "treg-abs": "TREG"}
FACTOR = {("creatinine", "umol/L"): (Decimal(1), Decimal("88.4")),
          ("urine-protein-24h", "g/(24.h)"): (Decimal(1000), Decimal(1))}
BUN = "3094-0"
DEFAULT_ULN = Decimal(40)


def published(value: Decimal) -> str:
    """The text results publish: at most 6 decimal places, no exponent, no trailing zeros."""
    if value.as_tuple().exponent < -6:  # type: ignore[operator]
        value = value.quantize(Decimal("0.000001"))
    text = format(value.normalize(), "f")
    return "0" if text == "-0" else text


def local(at: datetime) -> str:
    return at.astimezone(TEHRAN).strftime("%Y-%m-%dT%H:%M:%S")


def grade(value: Decimal, uln: Decimal, base: Decimal | None, base_uln: Decimal) -> int:
    """CTCAE v5.0 ALT/AST increase (TRIAL.md 6.1)."""
    if base is not None and base > base_uln:
        ratio = value / base
        return 4 if ratio > 20 else 3 if ratio > 5 else 2 if ratio > 3 else \
            1 if ratio >= Decimal("1.5") else 0
    ratio = value / uln
    return 4 if ratio > 20 else 3 if ratio > 5 else 2 if ratio > 3 else 1 if ratio > 1 else 0


def values(participant: dict[str, Any]) -> list[dict[str, Any]]:
    """Counting lab values after every file, canonical value, collection time."""
    out = []
    for v in participant["values"]:
        status, raw = v["status"], v["value"]
        if v["correction"]:
            status = v["correction"]["status"]
            raw = v["correction"]["value"] or raw
        if status not in COUNTING or v["analyte"] not in TESTCD:
            continue
        mult, div = FACTOR.get((v["analyte"], v["unit"]), (Decimal(1), Decimal(1)))
        if v["code"] == BUN:
            mult = Decimal("2.14")
        out.append({**v, "raw": raw, "canonical": Decimal(raw) * mult / div,
                    "at": datetime.fromisoformat(v["specimen_time"] or v["time"])})
    return out


def expected_lb(participant: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(USUBJID, LBTESTCD, LBDTC) -> the expected cells of each measured LB row."""
    day0 = datetime.fromisoformat(participant["day0"])
    usubjid = f"{STUDY}-{participant['subject']}"
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    by_analyte: dict[str, list[dict[str, Any]]] = {}
    for v in values(participant):
        by_analyte.setdefault(v["analyte"], []).append(v)
    unscheduled: list[dict[str, Any]] = []
    for analyte, found in by_analyte.items():
        chosen: dict[str, dict[str, Any]] = {}
        before = [v for v in found if -30 * D <= v["at"] - day0 < timedelta(0)]
        if before:
            chosen["BL"] = max(before, key=lambda v: v["at"])
        for visit, (nominal, low, high) in WINDOWS.items():
            inside = [v for v in found if low <= v["at"] - day0 <= high]
            if inside:
                chosen[visit] = min(inside, key=lambda v: (abs(v["at"] - day0 - nominal),
                                                           -v["at"].timestamp()))
        base = chosen.get("BL")
        prior = [v for v in found if v["at"] < day0]
        last_before = max(prior, key=lambda v: v["at"]) if prior else None
        visit_of = {id(v): k for k, v in chosen.items()}
        for v in found:
            row = {
                "LBSTRESN": None if v["comparator"] else published(v["canonical"]),
                "LBSTRESC": (v["comparator"] or "") + published(v["canonical"]),
                "LBORRES": (v["comparator"] or "") + v["raw"],
                "VISIT": visit_of.get(id(v)),
                "LBBLFL": "Y" if visit_of.get(id(v)) == "BL" else None,
                "LBLOBXFL": "Y" if v is last_before else None,
                "LBTOXGR": None,
            }
            if analyte in ("alt", "ast") and v["at"] >= day0:
                uln = Decimal(v["reference_high"]) if v["reference_high"] else DEFAULT_ULN
                base_uln = Decimal(base["reference_high"]) if base and base["reference_high"] \
                    else DEFAULT_ULN
                row["LBTOXGR"] = str(grade(v["canonical"], uln,
                                           base["canonical"] if base else None, base_uln))
            rows[(usubjid, TESTCD[analyte], local(v["at"]))] = row
            if row["VISIT"] is None:
                unscheduled.append({"row": row, "at": v["at"]})
    for row in rows.values():
        if row["VISIT"] is not None:
            row["VISITNUM"] = NUMBER[row["VISIT"]]
    _number_unscheduled(unscheduled, day0)
    return rows


def _number_unscheduled(items: list[dict[str, Any]], day0: datetime) -> None:
    """0.01... before Day 0; else the last visit whose nominal time has passed + 0.01 per
    calendar day (Tehran), in date order."""
    days: dict[date, timedelta] = {}
    for item in items:
        day = item["at"].astimezone(TEHRAN).date()
        days[day] = min(days.get(day, item["at"] - day0), item["at"] - day0)
    count: dict[Decimal, int] = {}
    number: dict[date, Decimal] = {}
    for day in sorted(days):
        offset = days[day]
        anchor = Decimal(0) if offset < timedelta(0) else max(
            [NUMBER[v] for v, (nominal, _, _) in WINDOWS.items() if nominal <= offset],
            default=NUMBER["BL"])
        count[anchor] = count.get(anchor, 0) + 1
        number[day] = anchor + Decimal("0.01") * count[anchor]
    for item in items:
        item["row"]["VISIT"] = "UNSCHEDULED"
        item["row"]["VISITNUM"] = number[item["at"].astimezone(TEHRAN).date()]
        item["row"]["LBBLFL"] = None


def identifying() -> list[str]:
    """Every string of the inputs that identifies a person or a hospital record."""
    found = []
    for p in PLAN["participants"]:
        found += [*p["identifying"], p["mrn"]["value"], p["patient_full_url"],
                  p["infusion"]["identifier"]["value"]]
        for v in p["values"]:
            found += [v["identifier"]["value"], v["full_url"]]
    return [s for s in found if s]
