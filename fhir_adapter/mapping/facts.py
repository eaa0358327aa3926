"""What the mapper reads from resources that are not measurements, and what it cannot map."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

__all__ = ["PatientFacts", "SubjectFacts", "Unmapped"]


@dataclass(frozen=True, slots=True)
class Unmapped:
    """An Observation that gives no measurement: reported, never an error.

    ``codes`` are its codings as ``system|code`` (``|code`` without a system); ``reason`` is a
    sentence for the report: a code of no analyte, a computed analyte, no value.
    """

    codes: tuple[str, ...]
    reason: str = "no analyte is mapped to these codes"
    analyte: str | None = None  # set when the code is known but the resource gives no value

    def describe(self) -> str:
        return f"{', '.join(self.codes) or 'no code'}: {self.reason}"


@dataclass(frozen=True, slots=True)
class PatientFacts:
    """A Patient as the trial sees it. ``birth_date`` is None unless the full date is known."""

    identifiers: tuple[tuple[str | None, str], ...]
    sex: str | None
    birth_date: date | None
    birth_date_text: str | None = None


@dataclass(frozen=True, slots=True)
class SubjectFacts:
    """A ResearchSubject: is it about this study, its status, its subject code, its patient.

    ``individual`` is the ``individual.reference`` string (``Patient/…``, ``urn:uuid:…`` or a
    conditional ``Patient?identifier=s|v``); ``individual_identifier`` is a logical reference
    (``individual.identifier``) as (system, value).
    """

    is_study: bool
    status: str | None
    subject_code: str | None
    individual: str | None
    individual_identifier: tuple[str | None, str] | None = None
    study_reference: str | None = None
