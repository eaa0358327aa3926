"""The Mapper: Observation, Patient, MedicationAdministration, Specimen, ResearchSubject."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fhir_adapter.errors import InvalidResource, Where
from fhir_adapter.fhir.primitives import decimal_problem, parse_datetime, to_decimal
from fhir_adapter.mapping.enrollment import is_this_study, patient_identifiers, read_subject
from fhir_adapter.mapping.facts import PatientFacts, SubjectFacts, Unmapped
from fhir_adapter.mapping.times import at_midnight, place
from fhir_adapter.terminology import SiteCodeMaps, Terminology, codings, convert, quantity_unit
from fhir_adapter.trial.definitions import AcceptedCode, Analyte, AnalyteCatalogue, StudyDefinition
from fhir_adapter.trial.model import Infusion, Measurement

__all__ = ["Mapper"]

#: Observation statuses whose resource need not carry a value.
_NO_VALUE_STATUSES = frozenset({"entered-in-error", "cancelled"})


class Mapper:
    """Reads FHIR resource dicts (as received, already valid R4) into the trial model.

    Driven by the analyte catalogue, the study definition and the site code maps, asked through
    :class:`Terminology` (as the validator asks them): no code or unit is written here.
    """

    def __init__(
        self,
        catalogue: AnalyteCatalogue,
        study: StudyDefinition,
        site_maps: SiteCodeMaps | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.study = study
        self.terminology = Terminology(catalogue, study, site_maps or SiteCodeMaps())

    # -- Observation ---------------------------------------------------------------------------

    def observation(
        self,
        resource: dict[str, Any],
        *,
        source: str,
        specimen_time: date | None = None,
    ) -> Measurement | Unmapped:
        """A Measurement in the analyte's canonical unit, or Unmapped.

        ``specimen_time`` (from :meth:`specimen_time`) wins over ``effective[x]``; a ``date``
        that is not a ``datetime`` is a day-precision time.
        """
        codes = tuple(f"{s or ''}|{c}" for s, c in codings(resource.get("code")))
        found = self.terminology.analyte_of(resource.get("code"))
        if found is None:
            return Unmapped(codes)
        analyte, accepted = found
        if analyte.computed:
            return Unmapped(
                codes, f"{analyte.name} is computed by the adapter, never read", analyte.key
            )
        status = str(resource.get("status") or "")
        quantity = resource.get("valueQuantity")
        if not isinstance(quantity, dict):
            return self._no_value(resource, analyte, codes, status)
        if quantity.get("value") is None:
            raise InvalidResource(
                f"the {analyte.name} value has no number",
                where=Where(element="Observation.valueQuantity.value"),
            )
        value = _decimal(quantity["value"], "Observation.valueQuantity.value")
        unit, element = quantity_unit(quantity, accepted, self.catalogue.ucum_system)
        at, day_precision = self._observation_time(resource, specimen_time)
        return Measurement(
            source=source,
            analyte=analyte.key,
            value=convert(value, unit, accepted, element=element),
            unit=analyte.unit,
            at=at,
            status=status,
            comparator=quantity.get("comparator") or None,
            day_precision=day_precision,
            uln=self._uln(resource, accepted, unit),
            code=accepted.code,
        )

    def _no_value(
        self, resource: dict[str, Any], analyte: Analyte, codes: tuple[str, ...], status: str
    ) -> Unmapped:
        absent = resource.get("dataAbsentReason")
        if status in _NO_VALUE_STATUSES or absent:
            why = f"status {status}" if status in _NO_VALUE_STATUSES else "a dataAbsentReason"
            return Unmapped(codes, f"no {analyte.name} value ({why})", analyte.key)
        other = next((k for k in resource if k.startswith("value")), None)
        has = f"; it has {other} instead" if other else ""
        raise InvalidResource(
            f"a {analyte.name} Observation needs a valueQuantity (a number and a unit){has}",
            where=Where(element=f"Observation.{other}" if other else "Observation.value[x]"),
        )

    def _observation_time(
        self, resource: dict[str, Any], specimen_time: date | None
    ) -> tuple[datetime, bool]:
        if isinstance(specimen_time, datetime):
            return specimen_time, False
        if isinstance(specimen_time, date):
            return at_midnight(specimen_time, self.study.timezone), True
        return self._effective(resource, "Observation")

    def _effective(self, resource: dict[str, Any], kind: str) -> tuple[datetime, bool]:
        zone = self.study.timezone
        if resource.get("effectiveDateTime") is not None:
            return place(resource["effectiveDateTime"], f"{kind}.effectiveDateTime", zone)
        period = resource.get("effectivePeriod")
        if isinstance(period, dict) and period.get("start") is not None:
            return place(period["start"], f"{kind}.effectivePeriod.start", zone)
        if resource.get("effectiveInstant") is not None:
            return place(resource["effectiveInstant"], f"{kind}.effectiveInstant", zone)
        raise InvalidResource(
            f"the {kind} gives no time (effectiveDateTime or effectivePeriod.start)",
            where=Where(element=f"{kind}.effective[x]"),
        )

    def _uln(self, resource: dict[str, Any], accepted: AcceptedCode, unit: str) -> Decimal | None:
        """``referenceRange.high`` of the first range that has one, in the canonical unit."""
        for index, reference_range in enumerate(resource.get("referenceRange") or []):
            high = reference_range.get("high") if isinstance(reference_range, dict) else None
            if isinstance(high, dict) and high.get("value") is not None:
                element = f"Observation.referenceRange[{index}].high"
                high_unit, unit_element = quantity_unit(
                    high, accepted, self.catalogue.ucum_system, element=element, default=unit
                )
                value = _decimal(high["value"], f"{element}.value")
                return convert(value, high_unit, accepted, element=unit_element)
        return None

    # -- Patient, Specimen -------------------------------------------------------------------

    def patient(self, resource: dict[str, Any]) -> PatientFacts:
        identifiers = patient_identifiers(resource)
        text = resource.get("birthDate")
        birth_date = None
        if isinstance(text, str):
            try:
                parsed = parse_datetime(text)
            except ValueError as exc:
                raise InvalidResource(str(exc), where=Where(element="Patient.birthDate")) from None
            birth_date = parsed.value if parsed.precision == "day" else None
        return PatientFacts(identifiers, resource.get("gender"), birth_date, text)

    def specimen_time(self, resource: dict[str, Any]) -> date | None:
        """Collection time: aware datetime, a ``date`` for a day-only value, None when unknown."""
        collection = resource.get("collection")
        if not isinstance(collection, dict):
            return None
        if collection.get("collectedDateTime") is not None:
            text, element = collection["collectedDateTime"], "Specimen.collection.collectedDateTime"
        elif isinstance(collection.get("collectedPeriod"), dict) and collection[
            "collectedPeriod"
        ].get("start"):
            text = collection["collectedPeriod"]["start"]
            element = "Specimen.collection.collectedPeriod.start"
        else:
            return None
        at, day_precision = place(text, element, self.study.timezone)
        return at.date() if day_precision else at

    # -- MedicationAdministration --------------------------------------------------------------

    def administration(self, resource: dict[str, Any], *, source: str) -> Infusion | None:
        """An Infusion of the study's product; None for any other medication."""
        if not self.terminology.is_product(resource):
            return None
        at, day_precision = self._effective(resource, "MedicationAdministration")
        dose, dose_unit = self._dose(resource.get("dosage"))
        return Infusion(
            source=source,
            at=at,
            status=str(resource.get("status") or ""),
            day_precision=day_precision,
            dose=dose,
            dose_unit=dose_unit,
        )

    def _dose(self, dosage: object) -> tuple[Decimal | None, str | None]:
        """``dosage.dose`` (else ``dosage.rateQuantity``) and its unit, kept as given."""
        if not isinstance(dosage, dict):
            return None, None
        for name in ("dose", "rateQuantity"):
            quantity = dosage.get(name)
            if isinstance(quantity, dict) and quantity.get("value") is not None:
                value = _decimal(quantity["value"], f"MedicationAdministration.dosage.{name}.value")
                if quantity.get("system") == self.catalogue.ucum_system and quantity.get("code"):
                    return value, str(quantity["code"])
                return value, quantity.get("unit") or quantity.get("code")
        return None, None

    # -- ResearchSubject, ResearchStudy --------------------------------------------------------

    def research_subject(self, resource: dict[str, Any]) -> SubjectFacts:
        """Whether it is about this study, its status, subject code and patient reference."""
        return read_subject(resource, self.study)

    def is_this_study(self, resource: dict[str, Any]) -> bool:
        """Whether a ResearchStudy resource is this study (by its identifier)."""
        return is_this_study(resource, self.study)


def _decimal(value: object, element: str) -> Decimal:
    """A number the trial model keeps: checked here, where every quantity it keeps is read."""
    problem = decimal_problem(value)
    if problem is not None:
        raise InvalidResource(problem, where=Where(element=element))
    return to_decimal(value)
