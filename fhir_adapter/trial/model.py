"""The trial model: participants, infusions, measurements and endpoint results (no FHIR)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

__all__ = [
    "COUNTING_STATUSES",
    "Infusion",
    "Measurement",
    "Participant",
    "ParticipantEndpoints",
    "ParticipantRecord",
    "ParticipantResult",
    "StudySummary",
    "VisitResult",
]

#: Observation statuses whose values count for endpoints (TRIAL.md section 4).
COUNTING_STATUSES = frozenset({"final", "amended", "corrected"})
#: MedicationAdministration statuses that start Day 0 (TRIAL.md section 2).
DAY0_STATUSES = frozenset({"completed", "in-progress"})


@dataclass(frozen=True, slots=True)
class Measurement:
    """One analyte value in its canonical unit.

    ``source`` is the adapter's key of the source Observation (``Observation/<adapter id>``),
    never the hospital's id. ``at`` is timezone-aware. ``day_precision`` is true when the
    source gave only a date: ``at`` is then midnight of that date in the study's time zone.
    """

    source: str
    analyte: str
    value: Decimal
    unit: str
    at: datetime
    status: str = "final"
    comparator: str | None = None
    day_precision: bool = False
    uln: Decimal | None = None
    code: str = ""

    @property
    def counts(self) -> bool:
        return self.status in COUNTING_STATUSES

    @property
    def censored(self) -> bool:
        return self.comparator is not None


@dataclass(frozen=True, slots=True)
class Infusion:
    """One AD-MSC administration."""

    source: str
    at: datetime
    status: str
    day_precision: bool = False
    dose: Decimal | None = None
    dose_unit: str | None = None


@dataclass(frozen=True, slots=True)
class Participant:
    """An enrolled patient, known by the subject code only outside the hospital."""

    subject: str
    sex: str | None = None  # FHIR administrative gender: male, female, other, unknown
    birth_date: date | None = None


@dataclass(slots=True)
class ParticipantRecord:
    """Everything the endpoints need about one participant."""

    participant: Participant
    infusions: list[Infusion] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)

    @property
    def day0(self) -> Infusion | None:
        """The first AD-MSC administration that is completed or in progress."""
        started = [i for i in self.infusions if i.status in DAY0_STATUSES]
        return min(started, key=lambda i: i.at) if started else None


@dataclass(frozen=True, slots=True)
class VisitResult:
    """One visit-level endpoint value (RESULTS.md, ``endpoint-result``)."""

    subject: str
    endpoint: str
    analyte: str
    visit: str
    value: Decimal
    unit: str
    at: datetime
    comparator: str | None = None
    baseline: Decimal | None = None
    change: Decimal | None = None
    percent_change: Decimal | None = None
    fold_change: Decimal | None = None
    uln: Decimal | None = None
    fold_uln: Decimal | None = None
    ctcae_grade: int | None = None
    remission: str | None = None
    protein_rate_bsa: Decimal | None = None
    upcr: Decimal | None = None
    egfr_method: str | None = None
    interpretation: str | None = None  # v3-ObservationInterpretation D / U, or None
    sources: tuple[str, ...] = ()
    baseline_comparator: str | None = None  # the baseline's comparator when it is censored

    @property
    def key(self) -> str:
        """The stable identifier value: ``{subject}.{endpoint}.{analyte}.{visit}``."""
        return f"{self.subject}.{self.endpoint}.{self.analyte}.{self.visit}"


@dataclass(frozen=True, slots=True)
class ParticipantResult:
    """One participant-level endpoint value (RESULTS.md, ``participant-endpoint``).

    ``value`` is a bool, an int, or a code (``D``/``N``/``U``, ``complete``/``partial``/``none``).
    ``sources`` are the keys of the visit results it derives from.
    """

    subject: str
    code: str
    value: bool | int | str
    age_at_day0: int | None = None
    sources: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.subject}.{self.code}"


@dataclass(slots=True)
class ParticipantEndpoints:
    """All endpoint results of one participant."""

    subject: str
    visit_results: list[VisitResult] = field(default_factory=list)
    participant_results: list[ParticipantResult] = field(default_factory=list)


@dataclass(slots=True)
class StudySummary:
    """Study-level counts (TRIAL.md 6.7): per participant-level code, population and per value."""

    population: dict[str, int] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    medians: dict[str, Decimal | None] = field(default_factory=dict)
    #: visit-level endpoint code -> participants with at least one visit-level result
    participants_with_value: dict[str, int] = field(default_factory=dict)
