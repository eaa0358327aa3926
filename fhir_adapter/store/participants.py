"""Repository of the trial model: participants, enrollments, measurements and infusions."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from fhir_adapter.errors import ConflictError, InvalidResource
from fhir_adapter.store.base import UnitBase
from fhir_adapter.store.fast import FastInsert
from fhir_adapter.store.keys import from_db_time, to_utc
from fhir_adapter.store.rows import ParticipantRow
from fhir_adapter.store.schema import enrollment, infusion, measurement, participant
from fhir_adapter.trial.model import Infusion, Measurement, ParticipantRecord

__all__ = ["ParticipantRepository"]

#: The longest subject code the store holds (``participant.subject``): a longer one is refused
#: on every database alike (it is what the results are published under, so it is not hashed).
SUBJECT_MAX = 200
#: The longest identifier system and value ``enroll`` keeps (``enrollment.system``, ``.value``).
ENROLLED_MAX = 300

_BY_SUBJECT = select(participant).where(participant.c.subject == bindparam("subject"))
_BY_PATIENT = select(participant).where(participant.c.patient_id == bindparam("patient_id"))
_INSERT_MEASUREMENT = FastInsert(measurement)
_DROP_MEASUREMENT = delete(measurement).where(measurement.c.resource_id == bindparam("rid"))
#: Bits of a row's write mark: a sum of a million of them stays within a signed 64-bit integer.
_MARK_BITS = 40


def _write_mark() -> int:
    return secrets.randbits(_MARK_BITS)


class ParticipantRepository(UnitBase):
    """Participants by subject code or Patient; their measurements and infusions."""

    def participant(self, subject: str) -> ParticipantRow | None:
        if subject in self._by_subject:
            return self._by_subject[subject]
        row = self.conn.execute(_BY_SUBJECT, {"subject": subject}).first()
        found = self._by_subject[subject] = _participant(row) if row else None
        return found

    def participant_for_patient(self, patient_id: str) -> ParticipantRow | None:
        if patient_id in self._by_patient:
            return self._by_patient[patient_id]
        row = self.conn.execute(_BY_PATIENT, {"patient_id": patient_id}).first()
        found = self._by_patient[patient_id] = _participant(row) if row else None
        return found

    def participants(self) -> list[ParticipantRow]:
        rows = self.conn.execute(select(participant).order_by(participant.c.subject))
        return [_participant(r) for r in rows]

    def upsert_participant(self, subject: str, *, status: str, **fields: Any) -> ParticipantRow:
        """Create or update a participant; ``fields``: patient_id, research_subject_id, sex,
        birth_date (a None value leaves the stored one)."""
        _check_subject(subject)
        values = {k: v for k, v in fields.items() if v is not None}
        now = self.now()
        self._by_subject.clear()
        self._by_patient.clear()
        try:
            with self.conn.begin_nested():
                if self.participant(subject) is None:
                    self.conn.execute(insert(participant).values(
                        subject=subject, status=status, enrolled_at=to_utc(now),
                        updated_at=to_utc(now), **values,
                    ))
                else:
                    self.conn.execute(
                        update(participant).where(participant.c.subject == subject)
                        .values(status=status, updated_at=to_utc(now), **values)
                    )
        except IntegrityError as exc:
            raise ConflictError(
                f"participant {subject}: this Patient is already another participant"
            ) from exc
        self._by_subject.clear()
        self._by_patient.clear()
        found = self.participant(subject)
        assert found is not None
        return found

    def next_subject_code(self, prefix: str) -> str:
        """``{prefix}-{n}``, the first n not yet used."""
        used = set(self.conn.execute(
            select(participant.c.subject).where(participant.c.subject.like(f"{prefix}-%"))
        ).scalars())
        n = len(used) + 1
        while f"{prefix}-{n}" in used:
            n += 1
        return f"{prefix}-{n}"

    def enroll(self, system: str, value: str, subject: str, *, status: str) -> None:
        """Record that the Patient with this identifier is ``subject`` (before or after it came)."""
        _check_subject(subject)
        if max(len(system), len(value)) > ENROLLED_MAX:
            raise InvalidResource(f"an identifier system or value of more than {ENROLLED_MAX} "
                                  "characters cannot be enrolled")
        self._by_subject.clear()
        self._by_patient.clear()
        if self.participant(subject) is None:
            self.upsert_participant(subject, status=status)
        existing = self.conn.execute(select(enrollment.c.subject).where(
            enrollment.c.system == system, enrollment.c.value == value)).scalar()
        if existing is None:
            self.conn.execute(insert(enrollment).values(
                system=system, value=value, subject=subject, created_at=to_utc(self.now())))
        elif existing != subject:
            raise ConflictError(f"identifier {system}|{value} is already enrolled as {existing}")

    def enrolled_subject(self, identifiers: Iterable[tuple[str, str]]) -> str | None:
        """The subject an ``enroll`` gave to one of these (system, value) identifiers."""
        for system, value in identifiers:
            subject = self.conn.execute(select(enrollment.c.subject).where(
                enrollment.c.system == system, enrollment.c.value == value)).scalar()
            if subject is not None:
                return str(subject)
        return None

    def put_measurement(
        self, resource_id: str, subject: str, m: Measurement, *, specimen_key: str | None = None,
        replace: bool = True,
    ) -> None:
        """The one measurement row of an Observation resource (replaced on a new version;
        ``replace=False``: the resource was just created, so it has none yet)."""
        if replace:
            self.conn.execute(_DROP_MEASUREMENT, {"rid": resource_id})
        _INSERT_MEASUREMENT(self.conn, [{
            "resource_id": resource_id, "subject": subject, "analyte": m.analyte,
            "value": str(m.value), "unit": m.unit, "comparator": m.comparator,
            "at": to_utc(m.at), "day_precision": m.day_precision, "status": m.status,
            "uln": None if m.uln is None else str(m.uln), "code": m.code,
            "specimen_key": specimen_key, "write_mark": _write_mark(),
        }])

    def withdraw_measurement(self, resource_id: str, status: str) -> str | None:
        """An Observation withdrawn without a value (entered-in-error, cancelled): its stored
        value stays, with that status, and no longer counts. Returns its participant."""
        self.conn.execute(update(measurement).where(measurement.c.resource_id == resource_id)
                          .values(status=status, write_mark=_write_mark()))
        return self.measurement_subject(resource_id)

    def measurement_subject(self, resource_id: str) -> str | None:
        return self.conn.execute(select(measurement.c.subject).where(
            measurement.c.resource_id == resource_id)).scalar()

    def measurement_owners(self) -> list[tuple[str, str]]:
        """(Observation adapter id, subject) of every measurement, withdrawn ones included."""
        rows = self.conn.execute(select(measurement.c.resource_id, measurement.c.subject))
        return [(str(r.resource_id), str(r.subject)) for r in rows]

    def measurements_for_specimen(
        self, specimen_keys: Sequence[str]
    ) -> list[tuple[str, str, str]]:
        """(Observation adapter id, subject, specimen key) of the measurements whose specimen
        is named by one of these keys."""
        if not specimen_keys:
            return []
        rows = self.conn.execute(
            select(measurement.c.resource_id, measurement.c.subject, measurement.c.specimen_key)
            .where(measurement.c.specimen_key.in_(list(specimen_keys)))
        )
        return [(r.resource_id, r.subject, r.specimen_key) for r in rows]

    def put_infusion(self, resource_id: str, subject: str, inf: Infusion) -> None:
        self.conn.execute(delete(infusion).where(infusion.c.resource_id == resource_id))
        self.conn.execute(insert(infusion).values(
            resource_id=resource_id, subject=subject, at=to_utc(inf.at),
            day_precision=inf.day_precision, status=inf.status,
            dose=None if inf.dose is None else str(inf.dose), dose_unit=inf.dose_unit,
        ))

    def record_stamps(self) -> dict[str, tuple[Any, ...]]:
        """Per participant, what changes with any write of its record: its row, its
        infusions, and the count and sum of the write marks of its measurements. A view kept
        per participant is made again when its stamp changed. In subject order, as
        ``records``."""
        stamps: dict[str, list[Any]] = {
            str(r.subject): [tuple(r), 0, 0, ()]
            for r in self.conn.execute(select(participant).order_by(participant.c.subject))}
        for r in self.conn.execute(
                select(measurement.c.subject, func.count(), func.sum(measurement.c.write_mark))
                .group_by(measurement.c.subject)):
            if r[0] in stamps:
                stamps[r[0]][1:3] = [int(r[1]), int(r[2] or 0)]
        for r in self.conn.execute(select(infusion).order_by(infusion.c.resource_id)):
            if r.subject in stamps:
                stamps[r.subject][3] += (tuple(r),)
        return {subject: tuple(stamp) for subject, stamp in stamps.items()}

    def records(self, subjects: Iterable[str] | None = None) -> list[ParticipantRecord]:
        """The trial model of each participant (all, or those named), by subject code."""
        wanted = None if subjects is None else sorted(set(subjects))
        people = select(participant).order_by(participant.c.subject)
        infusions = select(infusion).order_by(infusion.c.at)
        values = select(measurement).order_by(measurement.c.at)
        if wanted is not None:
            if not wanted:
                return []
            people = people.where(participant.c.subject.in_(wanted))
            infusions = infusions.where(infusion.c.subject.in_(wanted))
            values = values.where(measurement.c.subject.in_(wanted))
        records = {
            p.subject: ParticipantRecord(p.as_participant())
            for p in (_participant(r) for r in self.conn.execute(people))
        }
        for row in self.conn.execute(infusions):
            if row.subject in records:
                records[row.subject].infusions.append(_infusion(row))
        for row in self.conn.execute(values):
            if row.subject in records:
                records[row.subject].measurements.append(_measurement(row))
        return list(records.values())


def _check_subject(subject: str) -> None:
    if len(subject) > SUBJECT_MAX:
        raise InvalidResource(f"a subject code of {len(subject)} characters: at most "
                              f"{SUBJECT_MAX} are kept")


def _participant(row: Any) -> ParticipantRow:
    return ParticipantRow(
        subject=row.subject, status=row.status, patient_id=row.patient_id,
        research_subject_id=row.research_subject_id, sex=row.sex, birth_date=row.birth_date,
        enrolled_at=from_db_time(row.enrolled_at),
    )


def _measurement(row: Any) -> Measurement:
    return Measurement(
        source=f"Observation/{row.resource_id}", analyte=row.analyte, value=Decimal(row.value),
        unit=row.unit, at=from_db_time(row.at), status=row.status, comparator=row.comparator,
        day_precision=bool(row.day_precision), uln=None if row.uln is None else Decimal(row.uln),
        code=row.code,
    )


def _infusion(row: Any) -> Infusion:
    return Infusion(
        source=f"MedicationAdministration/{row.resource_id}", at=from_db_time(row.at),
        status=row.status, day_precision=bool(row.day_precision),
        dose=None if row.dose is None else Decimal(row.dose), dose_unit=row.dose_unit,
    )
