"""The schedule rules of TRIAL.md written again over sample_bundles/plan.json (not the adapter's
code): where each value falls, which scheduled visits were missed, ALT/AST grades."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

PLAN = json.loads((Path(__file__).resolve().parents[2] / "sample_bundles" / "plan.json")
                  .read_text())
D, H = timedelta(days=1), timedelta(hours=1)
WINDOWS: dict[str, tuple[timedelta, timedelta, timedelta]] = {
    "H12": (12 * H, 6 * H, 18 * H),
    "W1": (7 * D, 5 * D, 9 * D),
    "W2": (14 * D, 11 * D, 17 * D),
    "W4": (28 * D, 24 * D, 32 * D),
    **{f"M{m}": (30 * m * D, (30 * m - 7) * D, (30 * m + 7) * D) for m in range(2, 12)},
    "M12": (365 * D, 351 * D, 379 * D),
}
MONTHLY = ["W4", *[f"M{m}" for m in range(2, 13)]]
#: analyte -> the visits an endpoint uses it at (TRIAL.md section 6 table)
SCHEDULED = {
    "creatinine": ["H12", "W1", "W2", *MONTHLY],
    "urea": ["H12", "W1", "W2", *MONTHLY],
    "urine-protein-24h": list(WINDOWS),
    "alt": ["W2"], "ast": ["W2"],
    "il2": ["H12", *MONTHLY], "il10": ["H12", *MONTHLY],
    "treg-pct-cd4": ["H12", "W1", "M3", "M6", "M12"],
    "treg-abs": ["H12", "W1", "M3", "M6", "M12"],
}
COUNTING = {"final", "amended", "corrected"}


def when(value: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(value["specimen_time"] or value["time"])


def status(value: dict[str, Any]) -> str:
    return (value["correction"] or {}).get("status") or value["status"]


def window(offset: timedelta) -> str | None:
    for code, (_, low, high) in WINDOWS.items():
        if low <= offset <= high:
            return code
    return None


def counting_values(participant: dict[str, Any]) -> list[tuple[dict[str, Any], timedelta]]:
    day0 = datetime.fromisoformat(participant["day0"])
    return [(v, when(v) - day0) for v in participant["values"] if status(v) in COUNTING]


def missed(participant: dict[str, Any]) -> dict[str, set[str]]:
    """visit -> the scheduled analytes without a value, for windows that closed before the
    participant's last value."""
    values = counting_values(participant)
    reached = max(offset for _, offset in values)
    out: dict[str, set[str]] = {}
    for analyte, visits in SCHEDULED.items():
        have = {window(o) for v, o in values if v["analyte"] == analyte}
        for visit in visits:
            if visit not in have and WINDOWS[visit][2] < reached:
                out.setdefault(visit, set()).add(analyte)
    return out


def outside(participant: dict[str, Any]) -> list[dict[str, Any]]:
    """Counting values after Day 0 in no window."""
    return [v for v, o in counting_values(participant) if o >= timedelta(0) and window(o) is None]


def value_of(v: dict[str, Any]) -> Decimal:
    return Decimal((v["correction"] or {}).get("value") or v["value"])


def ctcae(value: Decimal, uln: Decimal, base: Decimal | None, base_uln: Decimal | None) -> int:
    """CTCAE v5.0 ALT/AST increase (TRIAL.md 6.1)."""
    if base is None or base_uln is None or base <= base_uln:
        bounds = [(Decimal(20), 4), (Decimal(5), 3), (Decimal(3), 2), (Decimal(1), 1)]
        return next((g for m, g in bounds if value > m * uln), 0)
    if value > 20 * base:
        return 4
    if value > 5 * base:
        return 3
    if value > 3 * base:
        return 2
    return 1 if value >= Decimal("1.5") * base else 0


def baseline(participant: dict[str, Any], analyte: str) -> dict[str, Any] | None:
    before = [(v, o) for v, o in counting_values(participant)
              if v["analyte"] == analyte and -30 * D <= o < timedelta(0)]
    return max(before, key=lambda item: item[1])[0] if before else None


def safety(participant: dict[str, Any]) -> list[tuple[str, str]]:
    """(analyte, time) of ALT/AST grade >= 2 and of creatinine rises >= 50 % after Day 0."""
    out = []
    for analyte in ("alt", "ast"):
        base = baseline(participant, analyte)
        b = value_of(base) if base else None
        b_uln = Decimal(base["reference_high"] or 40) if base else None
        for v, o in counting_values(participant):
            if v["analyte"] == analyte and o >= timedelta(0):
                uln = Decimal(v["reference_high"] or 40)
                if ctcae(value_of(v), uln, b, b_uln) >= 2:
                    out.append((analyte, v["time"]))
    base = baseline(participant, "creatinine")
    if base is not None:
        b = value_of(base)
        for v, o in counting_values(participant):
            if v["analyte"] == "creatinine" and o >= timedelta(0) and \
                    value_of(v) >= b * Decimal("1.5"):
                out.append(("creatinine", v["time"]))
    return out
