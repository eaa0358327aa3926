"""The variables of each exported domain: SDTMIG v3.4 name, label, type, core status, origin.

Names, labels, order and core status (Req / Exp / Perm) are those of the SDTMIG v3.4 domain
specification tables (chapter 5: Demographics, Subject Visits; chapter 6: Exposure, Laboratory
Test Results; chapter 7: Trial Visits), as the CDISC Library export of the guide's Variables
table gives them. Only the variables the export fills are listed, in the guide's order;
an Exp variable the adapter cannot know is left out and named in the README.

``origin`` follows Define-XML 2.1 origin types; ``source`` is the predecessor: the FHIR path
(or the project file) the value comes from.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DOMAINS", "Domain", "Variable"]


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    label: str
    data_type: str  # Dataset-JSON dataType: string, integer, decimal, datetime
    core: str  # SDTMIG v3.4: Req, Exp, Perm
    origin: str  # Define-XML 2.1: Collected, Derived, Assigned, Protocol
    source: str
    key: int | None = None  # keySequence

    @property
    def numeric(self) -> bool:
        return self.data_type in ("integer", "decimal")


@dataclass(frozen=True, slots=True)
class Domain:
    name: str
    label: str
    structure: str
    variables: tuple[Variable, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variables)


def _v(name: str, label: str, data_type: str, core: str, origin: str, source: str,
       key: int | None = None) -> Variable:
    return Variable(name, label, data_type, core, origin, source, key)


_STUDY = "mappings/study.toml [study] id"
_SUBJECT = "ResearchSubject.identifier.value (the subject code)"
_DAY0 = "MedicationAdministration.effective[x] (start) of the first completed AD-MSC infusion"
_VISITS = "mappings/study.toml visits (the protocol schedule)"

DM = Domain("DM", "Demographics", "One record per subject", (
    _v("STUDYID", "Study Identifier", "string", "Req", "Assigned", _STUDY, 1),
    _v("DOMAIN", "Domain Abbreviation", "string", "Req", "Assigned", "DM"),
    _v("USUBJID", "Unique Subject Identifier", "string", "Req", "Derived",
       f"STUDYID-{_SUBJECT}", 2),
    _v("SUBJID", "Subject Identifier for the Study", "string", "Req", "Collected", _SUBJECT),
    _v("RFSTDTC", "Subject Reference Start Date/Time", "datetime", "Exp", "Derived", _DAY0),
    _v("RFENDTC", "Subject Reference End Date/Time", "datetime", "Exp", "Derived",
       "the latest LBDTC of the subject"),
    _v("RFXSTDTC", "Date/Time of First Study Treatment", "datetime", "Exp", "Derived", _DAY0),
    _v("RFXENDTC", "Date/Time of Last Study Treatment", "datetime", "Exp", "Derived",
       "MedicationAdministration.effectivePeriod.end (else start) of the last infusion"),
    _v("SITEID", "Study Site Identifier", "string", "Req", "Assigned", "mappings/sdtm.toml"),
    _v("AGE", "Age", "integer", "Exp", "Derived",
       "Patient.birthDate to Day 0, completed years (the trial's age-at-day0)"),
    _v("AGEU", "Age Units", "string", "Exp", "Assigned", "mappings/sdtm.toml"),
    _v("SEX", "Sex", "string", "Req", "Collected", "Patient.gender"),
    _v("ARMCD", "Planned Arm Code", "string", "Exp", "Assigned", "mappings/sdtm.toml [arm]"),
    _v("ARM", "Description of Planned Arm", "string", "Exp", "Assigned",
       "mappings/sdtm.toml [arm]"),
    _v("ACTARMCD", "Actual Arm Code", "string", "Exp", "Derived",
       "an AD-MSC MedicationAdministration that is completed or in progress"),
    _v("ACTARM", "Description of Actual Arm", "string", "Exp", "Derived",
       "an AD-MSC MedicationAdministration that is completed or in progress"),
    _v("ARMNRS", "Reason Arm and/or Actual Arm is Null", "string", "Exp", "Derived",
       "no AD-MSC infusion (the no-infusion endpoint)"),
    _v("COUNTRY", "Country", "string", "Req", "Assigned", "mappings/sdtm.toml"),
))

_OBS = "Observation"
LB = Domain("LB", "Laboratory Test Results",
            "One record per lab test per time point per visit per subject", (
    _v("STUDYID", "Study Identifier", "string", "Req", "Assigned", _STUDY, 1),
    _v("DOMAIN", "Domain Abbreviation", "string", "Req", "Assigned", "LB"),
    _v("USUBJID", "Unique Subject Identifier", "string", "Req", "Derived",
       f"STUDYID-{_SUBJECT}", 2),
    _v("LBSEQ", "Sequence Number", "integer", "Req", "Derived",
       "keyed hash of the source Observation's identity (stable across exports)", 5),
    _v("LBTESTCD", "Lab Test or Examination Short Name", "string", "Req", "Assigned",
       f"{_OBS}.code -> analyte (mappings/analytes.toml) -> mappings/sdtm.toml", 3),
    _v("LBTEST", "Lab Test or Examination Name", "string", "Req", "Assigned",
       "mappings/sdtm.toml"),
    _v("LBCAT", "Category for Lab Test", "string", "Exp", "Assigned", "mappings/sdtm.toml"),
    _v("LBORRES", "Result or Finding in Original Units", "string", "Exp", "Collected",
       f"{_OBS}.valueQuantity.comparator + .value"),
    _v("LBORRESU", "Original Units", "string", "Exp", "Collected",
       f"{_OBS}.valueQuantity.code (UCUM) -> CDISC unit"),
    _v("LBORNRLO", "Reference Range Lower Limit in Orig Unit", "string", "Exp", "Collected",
       f"{_OBS}.referenceRange.low.value"),
    _v("LBORNRHI", "Reference Range Upper Limit in Orig Unit", "string", "Exp", "Collected",
       f"{_OBS}.referenceRange.high.value"),
    _v("LBSTRESC", "Character Result/Finding in Std Format", "string", "Exp", "Derived",
       "the value in the analyte's canonical unit, with its comparator"),
    _v("LBSTRESN", "Numeric Result/Finding in Standard Units", "decimal", "Exp", "Derived",
       "the value in the analyte's canonical unit, as the result Bundle publishes it"),
    _v("LBSTRESU", "Standard Units", "string", "Exp", "Assigned",
       "the analyte's canonical unit (mappings/analytes.toml) -> CDISC unit"),
    _v("LBSTNRLO", "Reference Range Lower Limit-Std Units", "decimal", "Exp", "Derived",
       f"{_OBS}.referenceRange.low, when in the canonical unit"),
    _v("LBSTNRHI", "Reference Range Upper Limit-Std Units", "decimal", "Exp", "Derived",
       f"{_OBS}.referenceRange.high, converted to the canonical unit"),
    _v("LBNRIND", "Reference Range Indicator", "string", "Exp", "Derived",
       "LBSTRESN against LBSTNRLO / LBSTNRHI"),
    _v("LBLOINC", "LOINC Code", "string", "Perm", "Collected", f"{_OBS}.code.coding (LOINC)"),
    _v("LBSPEC", "Specimen Type", "string", "Perm", "Assigned", "mappings/sdtm.toml"),
    _v("LBMETHOD", "Method of Test or Examination", "string", "Perm", "Assigned",
       "mappings/sdtm.toml"),
    _v("LBANMETH", "Analysis Method", "string", "Perm", "Derived",
       "the eGFR equation: the trial's formula, or the one the LOINC code names"),
    _v("LBLOBXFL", "Last Observation Before Exposure Flag", "string", "Exp", "Derived",
       "the last counting value of the test before Day 0"),
    _v("LBBLFL", "Baseline Flag", "string", "Perm", "Derived",
       "the trial's baseline: the last counting value in [-30 d, Day 0)"),
    _v("LBDRVFL", "Derived Flag", "string", "Perm", "Derived", "the eGFR computed by the trial"),
    _v("LBTOX", "Toxicity", "string", "Perm", "Assigned", "mappings/sdtm.toml (CTCAE term)"),
    _v("LBTOXGR", "Standard Toxicity Grade", "string", "Perm", "Derived",
       "the trial's CTCAE v5.0 grade (TRIAL.md 6.1), from Day 0 on"),
    _v("VISITNUM", "Visit Number", "decimal", "Exp", "Derived",
       f"{_VISITS}; unscheduled: the previous visit's number + .01, .02, ...", 4),
    _v("VISIT", "Visit Name", "string", "Perm", "Derived", f"{_VISITS}; mappings/sdtm.toml"),
    _v("VISITDY", "Planned Study Day of Visit", "integer", "Perm", "Derived", _VISITS),
    _v("LBDTC", "Date/Time of Specimen Collection", "datetime", "Exp", "Collected",
       "Specimen.collection.collected[x], else Observation.effective[x]"),
    _v("LBDY", "Study Day of Specimen Collection", "integer", "Perm", "Derived",
       "LBDTC relative to RFSTDTC (no day 0)"),
))

EX = Domain("EX", "Exposure", "One record per constant dosing interval per subject", (
    _v("STUDYID", "Study Identifier", "string", "Req", "Assigned", _STUDY, 1),
    _v("DOMAIN", "Domain Abbreviation", "string", "Req", "Assigned", "EX"),
    _v("USUBJID", "Unique Subject Identifier", "string", "Req", "Derived",
       f"STUDYID-{_SUBJECT}", 2),
    _v("EXSEQ", "Sequence Number", "integer", "Req", "Derived",
       "order of the subject's administrations by start"),
    _v("EXTRT", "Name of Treatment", "string", "Req", "Assigned", "mappings/sdtm.toml", 3),
    _v("EXDOSE", "Dose", "decimal", "Exp", "Collected", "MedicationAdministration.dosage.dose"),
    _v("EXDOSU", "Dose Units", "string", "Exp", "Collected",
       "MedicationAdministration.dosage.dose.code (UCUM) -> CDISC unit"),
    _v("EXDOSFRM", "Dose Form", "string", "Exp", "Protocol", "mappings/sdtm.toml"),
    _v("EXROUTE", "Route of Administration", "string", "Perm", "Protocol",
       "mappings/sdtm.toml (the protocol's intravenous infusion)"),
    _v("EXLOT", "Lot Number", "string", "Perm", "Collected",
       "Medication.batch.lotNumber of the administration's contained Medication"),
    _v("EXSTDTC", "Start Date/Time of Treatment", "datetime", "Exp", "Collected",
       "MedicationAdministration.effective[x] (start)", 4),
    _v("EXENDTC", "End Date/Time of Treatment", "datetime", "Exp", "Collected",
       "MedicationAdministration.effectivePeriod.end"),
    _v("EXSTDY", "Study Day of Start of Treatment", "integer", "Perm", "Derived",
       "EXSTDTC relative to RFSTDTC"),
    _v("EXENDY", "Study Day of End of Treatment", "integer", "Perm", "Derived",
       "EXENDTC relative to RFSTDTC"),
))

SV = Domain("SV", "Subject Visits", "One record per actual or planned visit per subject", (
    _v("STUDYID", "Study Identifier", "string", "Req", "Assigned", _STUDY, 1),
    _v("DOMAIN", "Domain Abbreviation", "string", "Req", "Assigned", "SV"),
    _v("USUBJID", "Unique Subject Identifier", "string", "Req", "Derived",
       f"STUDYID-{_SUBJECT}", 2),
    _v("VISITNUM", "Visit Number", "decimal", "Req", "Derived", "LB.VISITNUM", 3),
    _v("VISIT", "Visit Name", "string", "Perm", "Derived", "LB.VISIT"),
    _v("SVPRESP", "Pre-specified", "string", "Exp", "Derived",
       "Y for a visit of the protocol, empty for an unscheduled one"),
    _v("SVOCCUR", "Occurrence", "string", "Exp", "Derived", "Y: the visit has values"),
    _v("VISITDY", "Planned Study Day of Visit", "integer", "Perm", "Derived", _VISITS),
    _v("SVSTDTC", "Start Date/Time of Observation", "datetime", "Exp", "Derived",
       "the earliest LBDTC of the visit"),
    _v("SVENDTC", "End Date/Time of Observation", "datetime", "Exp", "Derived",
       "the latest LBDTC of the visit"),
    _v("SVUPDES", "Description of Unplanned Visit", "string", "Perm", "Derived",
       "why the values of an unscheduled visit belong to no protocol visit"),
))

TV = Domain("TV", "Trial Visits", "One record per planned Visit per Arm", (
    _v("STUDYID", "Study Identifier", "string", "Req", "Assigned", _STUDY, 1),
    _v("DOMAIN", "Domain Abbreviation", "string", "Req", "Assigned", "TV"),
    _v("VISITNUM", "Visit Number", "decimal", "Req", "Protocol", _VISITS, 2),
    _v("VISIT", "Visit Name", "string", "Req", "Protocol", "mappings/sdtm.toml"),
    _v("VISITDY", "Planned Study Day of Visit", "integer", "Perm", "Protocol", _VISITS),
    _v("ARMCD", "Planned Arm Code", "string", "Exp", "Protocol", "mappings/sdtm.toml [arm]"),
    _v("ARM", "Description of Planned Arm", "string", "Perm", "Protocol",
       "mappings/sdtm.toml [arm]"),
    _v("TVSTRL", "Visit Start Rule", "string", "Req", "Protocol", f"{_VISITS} window start"),
    _v("TVENRL", "Visit End Rule", "string", "Perm", "Protocol", f"{_VISITS} window end"),
))

#: Every exported domain, in the order they are written.
DOMAINS: dict[str, Domain] = {d.name: d for d in (DM, LB, EX, SV, TV)}
