"""DM, EX, SV and TV rows: the participant, the infusion, the visits attended, the schedule."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from fhir_adapter.fhir.primitives import parse_datetime
from fhir_adapter.results.vocab import decimal_text
from fhir_adapter.sdtm.subject import Context, Row, SubjectData
from fhir_adapter.sdtm.timing import UNSCHEDULED, dtc, study_day
from fhir_adapter.trial.endpoints.common import age_in_years
from fhir_adapter.trial.model import DAY0_STATUSES, Infusion
from fhir_adapter.trial.visits import BASELINE, study_date

__all__ = ["dm_row", "ex_rows", "sv_rows", "tv_rows"]

#: FHIR administrative gender -> CDISC Sex (CT C66731).
SEX = {"male": "M", "female": "F", "other": "U", "unknown": "U"}
PRODUCT = "the start of the first AD-MSC infusion"


def dm_row(ctx: Context, data: SubjectData, lb: list[Row]) -> Row:
    record, terms = data.record, ctx.terms
    given = _given(record.infusions)
    day0 = record.day0
    last = given[-1] if given else None
    born = record.participant.birth_date
    age = age_in_years(born, study_date(day0.at, ctx.study)) if day0 and born else None
    ends = [r["_at"] for r in lb]
    return {
        "STUDYID": ctx.studyid, "DOMAIN": "DM", "USUBJID": ctx.usubjid(data.subject),
        "SUBJID": data.subject,
        "RFSTDTC": dtc(day0.at, day0.day_precision, ctx.study) if day0 else None,
        "RFENDTC": dtc(max(ends), False, ctx.study) if ends else None,
        "RFXSTDTC": dtc(day0.at, day0.day_precision, ctx.study) if day0 else None,
        "RFXENDTC": _end_text(ctx, data, last) if last else None,
        "SITEID": terms.siteid,
        "AGE": age, "AGEU": terms.ageu if age is not None else None,
        "SEX": SEX.get(record.participant.sex or "unknown", "U"),
        "ARMCD": terms.armcd, "ARM": terms.arm,
        "ACTARMCD": terms.armcd if day0 else None, "ACTARM": terms.arm if day0 else None,
        "ARMNRS": None if day0 else terms.not_treated,
        "COUNTRY": terms.country,
    }


def _given(infusions: list[Infusion]) -> list[Infusion]:
    """The administrations that took place (the statuses that start Day 0), by start. A
    not-done administration is no exposure: SDTMIG 3.4 EX has no status variable (EC has), so
    it is not in EX."""
    return sorted((i for i in infusions if i.status in DAY0_STATUSES), key=lambda i: i.at)


def _end(ctx: Context, data: SubjectData, infusion: Infusion) -> tuple[datetime, bool] | None:
    """``effectivePeriod.end`` of the administration as stored, None when it has none."""
    period = data.documents.get(infusion.source, {}).get("effectivePeriod")
    end = period.get("end") if isinstance(period, dict) else None
    if not isinstance(end, str):
        return None
    try:
        parsed = parse_datetime(end)
    except ValueError:
        return None
    value = parsed.value
    if isinstance(value, datetime):
        return (value, False) if value.tzinfo is not None else None
    if isinstance(value, date) and parsed.precision == "day":
        return datetime.combine(value, time(), tzinfo=ctx.study.timezone), True
    return None


def _end_text(ctx: Context, data: SubjectData, infusion: Infusion) -> str:
    end = _end(ctx, data, infusion)
    if end is None:
        return dtc(infusion.at, infusion.day_precision, ctx.study)
    return dtc(end[0], end[1], ctx.study)


def _lot(data: SubjectData, infusion: Infusion) -> str | None:
    for contained in data.documents.get(infusion.source, {}).get("contained") or []:
        if not isinstance(contained, dict) or contained.get("resourceType") != "Medication":
            continue
        batch = contained.get("batch")
        if isinstance(batch, dict):
            lot = batch.get("lotNumber")
            if isinstance(lot, str) and lot:
                return lot
    return None


def ex_rows(ctx: Context, data: SubjectData) -> list[Row]:
    day0 = data.record.day0
    day0_date = study_date(day0.at, ctx.study) if day0 else None
    rows = []
    for seq, infusion in enumerate(_given(data.record.infusions), start=1):
        end = _end(ctx, data, infusion)
        rows.append({
            "STUDYID": ctx.studyid, "DOMAIN": "EX", "USUBJID": ctx.usubjid(data.subject),
            "EXSEQ": seq, "EXTRT": ctx.terms.extrt,
            "EXDOSE": decimal_text(infusion.dose) if infusion.dose is not None else None,
            "EXDOSU": ctx.terms.unit(infusion.dose_unit) or None,
            "EXDOSFRM": ctx.terms.dosfrm, "EXROUTE": ctx.terms.route,
            "EXLOT": _lot(data, infusion),
            "EXSTDTC": dtc(infusion.at, infusion.day_precision, ctx.study),
            "EXENDTC": dtc(end[0], end[1], ctx.study) if end else None,
            "EXSTDY": study_day(infusion.at, day0_date, ctx.study),
            "EXENDY": study_day(end[0], day0_date, ctx.study) if end else None,
        })
    return rows


def sv_rows(ctx: Context, data: SubjectData, lb: list[Row]) -> list[Row]:
    """One row per visit with values (scheduled or unscheduled), from and to its LB times."""
    visits: dict[Any, list[Row]] = {}
    for row in lb:
        if row["VISITNUM"] is not None:
            visits.setdefault(row["VISITNUM"], []).append(row)
    out = []
    for number in sorted(visits):
        rows = visits[number]
        first = min(rows, key=lambda r: r["_at"])
        last = max(rows, key=lambda r: r["_at"])
        scheduled = rows[0]["VISIT"] != UNSCHEDULED
        out.append({
            "STUDYID": ctx.studyid, "DOMAIN": "SV", "USUBJID": ctx.usubjid(data.subject),
            "VISITNUM": number, "VISIT": rows[0]["VISIT"],
            "SVPRESP": "Y" if scheduled else None, "SVOCCUR": "Y",
            "VISITDY": rows[0]["VISITDY"],
            "SVSTDTC": first["LBDTC"], "SVENDTC": last["LBDTC"],
            "SVUPDES": None if scheduled else
            "values outside every protocol window, or not the one chosen in their window",
        })
    return out


def tv_rows(ctx: Context) -> list[Row]:
    """The planned visits of the single arm with their windows (mappings/study.toml)."""
    study, schedule, terms = ctx.study, ctx.schedule, ctx.terms
    rows = []
    for code in schedule.codes:
        if code == BASELINE:
            start = f"{-study.baseline_start.days} days before {PRODUCT}"
            end = f"before {PRODUCT}"
        else:
            visit = study.visit(code)
            unit = "hours" if visit.hour_based else "days"
            scale = 3600 if visit.hour_based else 86400
            start = f"{int(visit.start.total_seconds() // scale)} {unit} after {PRODUCT}"
            end = f"{int(visit.end.total_seconds() // scale)} {unit} after {PRODUCT}"
        slot = schedule.slot(code)
        rows.append({
            "STUDYID": ctx.studyid, "DOMAIN": "TV", "VISITNUM": slot.visitnum,
            "VISIT": slot.visit, "VISITDY": slot.visitdy, "ARMCD": terms.armcd, "ARM": terms.arm,
            "TVSTRL": f"From {start}", "TVENRL": f"To {end}",
        })
    return rows
