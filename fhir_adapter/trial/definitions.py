"""The study definition and the analyte catalogue, read from the TOML files of mappings/."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fhir_adapter.errors import ConfigError

__all__ = [
    "AcceptedCode",
    "Analyte",
    "AnalyteCatalogue",
    "EndpointDef",
    "StudyDefinition",
    "VisitDef",
]


@dataclass(frozen=True, slots=True)
class AcceptedCode:
    """A code accepted for an analyte, with the units it accepts: unit -> (multiplier, divisor)."""

    system: str
    code: str
    display: str
    units: dict[str, tuple[Decimal, Decimal]]


@dataclass(frozen=True, slots=True)
class Analyte:
    key: str
    name: str
    unit: str
    codes: tuple[AcceptedCode, ...]
    display_only: bool = False
    computed: bool = False
    #: below this (canonical unit) a value is impossible: a concentration is never negative
    minimum: Decimal | None = None
    #: (low, high), inclusive, canonical unit: outside it a value is implausible
    plausible: tuple[Decimal, Decimal] | None = None

    @property
    def canonical(self) -> AcceptedCode:
        return self.codes[0]


@dataclass(slots=True)
class AnalyteCatalogue:
    """Every analyte and the index of its codes: (system, code) -> (analyte, accepted code)."""

    analytes: dict[str, Analyte]
    local_system: str
    ucum_system: str
    by_code: dict[tuple[str, str], tuple[Analyte, AcceptedCode]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for analyte in self.analytes.values():
            for accepted in analyte.codes:
                self.by_code[(accepted.system, accepted.code)] = (analyte, accepted)

    def lookup(self, system: str | None, code: str | None) -> tuple[Analyte, AcceptedCode] | None:
        if not system or not code:
            return None
        return self.by_code.get((system, code))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnalyteCatalogue:
        try:
            analytes = {}
            for key, body in data["analyte"].items():
                codes = tuple(
                    AcceptedCode(
                        system=c["system"],
                        code=c["code"],
                        display=c.get("display", ""),
                        units={u: (Decimal(m), Decimal(d)) for u, (m, d) in c["units"].items()},
                    )
                    for c in body["codes"]
                )
                analytes[key] = Analyte(
                    key=key,
                    name=body["name"],
                    unit=body["unit"],
                    codes=codes,
                    display_only=bool(body.get("display_only", False)),
                    computed=bool(body.get("computed", False)),
                    minimum=Decimal(body["minimum"]) if "minimum" in body else None,
                    plausible=_bounds(key, body["plausible"]) if "plausible" in body else None,
                )
            return cls(analytes, data["local_system"], data["ucum_system"])
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise ConfigError(f"analyte catalogue: missing or bad entry {exc}") from exc

    @classmethod
    def from_file(cls, path: Path) -> AnalyteCatalogue:
        return cls.from_dict(_read_toml(path))


@dataclass(frozen=True, slots=True)
class VisitDef:
    code: str
    unit: str  # "h" or "d"
    nominal: timedelta
    start: timedelta
    end: timedelta

    @property
    def hour_based(self) -> bool:
        return self.unit == "h"


@dataclass(frozen=True, slots=True)
class EndpointDef:
    code: str
    analytes: tuple[str, ...]
    visits: tuple[str, ...]
    fold_change: bool = False


@dataclass(slots=True)
class StudyDefinition:
    """The numbers of a protocol: visits, windows, thresholds, endpoints (TRIAL.md 1-3, 6)."""

    id: str
    identifier_system: str
    identifier_value: str
    title: str
    timezone: ZoneInfo
    subject_prefix: str
    enrolled_statuses: frozenset[str]
    stopped_statuses: frozenset[str]
    product_system: str
    product_code: str
    product_display: str
    dose_unit: str
    baseline_start: timedelta
    visits: tuple[VisitDef, ...]
    uln_default: dict[str, Decimal]
    ctcae_normal: tuple[Decimal, ...]
    ctcae_abnormal: tuple[Decimal, ...]
    creatinine_change_pct: Decimal
    complete_below_mg_per_day: Decimal
    partial_reduction_pct: Decimal
    nephrotic_rate_mg_m2_h: Decimal
    nephrotic_mg_per_day: Decimal
    anthropometry_lookback: timedelta
    adult_age_years: int
    schwartz_k: Decimal
    endpoints: dict[str, EndpointDef]
    #: (endpoint, analyte, visit) whose change from baseline gets a study median
    median_changes: tuple[tuple[str, str, str], ...] = ()
    #: what the published ResearchStudy says of the study (absent: not said)
    sponsor: str | None = None
    site: str | None = None
    phase: str | None = None
    enrollment: int | None = None
    status: str = "active"

    def visit(self, code: str) -> VisitDef:
        for v in self.visits:
            if v.code == code:
                return v
        raise KeyError(code)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StudyDefinition:
        try:
            s, p = d["study"], d["product"]

            def span(unit: str, n: int | float) -> timedelta:
                return timedelta(hours=n) if unit == "h" else timedelta(days=n)

            visits = tuple(
                VisitDef(
                    v["code"],
                    v["unit"],
                    span(v["unit"], v["nominal"]),
                    span(v["unit"], v["start"]),
                    span(v["unit"], v["end"]),
                )
                for v in d["visits"]
            )
            endpoints = {
                code: EndpointDef(
                    code,
                    tuple(e["analytes"]),
                    tuple(e["visits"]),
                    bool(e.get("fold_change", False)),
                )
                for code, e in d["endpoints"].items()
            }
            study = cls(
                id=s["id"],
                identifier_system=s["identifier_system"],
                identifier_value=s["identifier_value"],
                title=s["title"],
                timezone=ZoneInfo(s["timezone"]),
                subject_prefix=s["subject_prefix"],
                enrolled_statuses=frozenset(s["enrolled_statuses"]),
                stopped_statuses=frozenset(s["stopped_statuses"]),
                product_system=p["system"],
                product_code=p["code"],
                product_display=p["display"],
                dose_unit=p["dose_unit"],
                baseline_start=timedelta(days=d["baseline"]["start_days"]),
                visits=visits,
                uln_default={k: Decimal(v) for k, v in d["uln_default"].items()},
                ctcae_normal=tuple(Decimal(x) for x in d["ctcae"]["normal_baseline_uln_multiples"]),
                ctcae_abnormal=tuple(Decimal(x) for x in d["ctcae"]["abnormal_baseline_multiples"]),
                creatinine_change_pct=Decimal(d["creatinine"]["change_threshold_pct"]),
                complete_below_mg_per_day=Decimal(d["proteinuria"]["complete_below_mg_per_day"]),
                partial_reduction_pct=Decimal(d["proteinuria"]["partial_reduction_pct"]),
                nephrotic_rate_mg_m2_h=Decimal(d["proteinuria"]["nephrotic_rate_mg_m2_h"]),
                nephrotic_mg_per_day=Decimal(d["proteinuria"]["nephrotic_mg_per_day"]),
                anthropometry_lookback=timedelta(days=d["anthropometry"]["lookback_days"]),
                adult_age_years=int(d["egfr"]["adult_age_years"]),
                schwartz_k=Decimal(d["egfr"]["schwartz_k"]),
                endpoints=endpoints,
                median_changes=tuple(
                    (m["endpoint"], m["analyte"], m["visit"])
                    for m in d.get("summary", {}).get("median_changes", [])
                ),
                sponsor=s.get("sponsor"),
                site=s.get("site"),
                phase=s.get("phase"),
                enrollment=int(s["enrollment"]) if s.get("enrollment") is not None else None,
                status=str(s.get("status", "active")),
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise ConfigError(f"study definition: missing or bad entry {exc}") from exc
        study.check()
        return study

    def check(self) -> None:
        """Each median names an endpoint of the study, one of its analytes and its visits."""
        for endpoint, analyte, visit in self.median_changes:
            known = self.endpoints.get(endpoint)
            if known is None or analyte not in known.analytes or visit not in known.visits:
                raise ConfigError(
                    f"study definition: summary.median_changes names {endpoint}/{analyte}/"
                    f"{visit}, which is no analyte and visit of an endpoint of the study")

    @classmethod
    def from_file(cls, path: Path) -> StudyDefinition:
        return cls.from_dict(_read_toml(path))


def _bounds(key: str, raw: Any) -> tuple[Decimal, Decimal]:
    """``plausible = ["low", "high"]``: two decimals written as strings, low <= high."""
    if not isinstance(raw, list) or len(raw) != 2 or not all(isinstance(b, str) for b in raw):
        raise ValueError(f"analyte.{key}.plausible must be [\"low\", \"high\"] (strings)")
    low, high = Decimal(raw[0]), Decimal(raw[1])
    if not low <= high:
        raise ValueError(f"analyte.{key}.plausible: {low} is above {high}")
    return low, high


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read definition file ({exc})") from exc
