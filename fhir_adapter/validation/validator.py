"""The Validator: base R4 structure, required bindings, invariants, then the applicable profile."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal

from fhir_adapter.errors import Issue, StructureError, UnitError, UnusableInput
from fhir_adapter.fhir.outcome import operation_outcome
from fhir_adapter.fhir.parse import parse_resource
from fhir_adapter.fhir.primitives import parse_datetime, to_decimal
from fhir_adapter.paths import profiles_dir
from fhir_adapter.scope import CANONICAL_BASE
from fhir_adapter.settings import Settings
from fhir_adapter.terminology import (
    IMPOSSIBLE,
    Found,
    SiteCodeMaps,
    Terminology,
    convert,
    judge,
    quantity_unit,
)
from fhir_adapter.terminology.codes import two_analytes
from fhir_adapter.trial.definitions import AnalyteCatalogue, StudyDefinition
from fhir_adapter.validation.bundles import LOCATED, bundle_entry_issues
from fhir_adapter.validation.conformance import ProfileChecker
from fhir_adapter.validation.core import BASE_SD, CoreModel, base_source, core_model
from fhir_adapter.validation.profiles import Definitions

__all__ = [
    "BASE",
    "BASE_R4",
    "CLOCK_SKEW",
    "LAB_OBSERVATION",
    "MSC_ADMINISTRATION",
    "TRIAL_PATIENT",
    "Validator",
    "to_operation_outcome",
]

BASE = f"{CANONICAL_BASE}/StructureDefinition/"
#: ``--profile http://hl7.org/fhir/StructureDefinition/[type]``: base R4 only, no project profile
BASE_R4 = "base R4"
LAB_OBSERVATION = BASE + "trial-lab-observation"
MSC_ADMINISTRATION = BASE + "msc-administration"
TRIAL_PATIENT = BASE + "trial-patient"

Node = dict[str, Any]
#: what a value outside its analyte's plausible range gets (FHIR_ADAPTER_IMPLAUSIBLE_VALUES)
Implausible = Literal["refuse", "warn"]
#: how far ahead of this machine's clock a sender's clock may run before its times are refused
#: as in the future (the allowance Kerberos makes by default, RFC 4120 section 1.6)
CLOCK_SKEW = timedelta(minutes=5)
#: the rule names of time plausibility (operationoutcome-message-id)
FUTURE_TIME = "future-time"
BEFORE_BIRTH = "before-birth"


@cache
def _definitions(folder: Path) -> Definitions:
    return Definitions.load(folder, core_model())


class Validator:
    """Validates resources and Bundles offline; every problem is an Issue with a FHIRPath."""

    def __init__(
        self,
        catalogue: AnalyteCatalogue,
        study: StudyDefinition,
        *,
        site_maps: SiteCodeMaps | None = None,
        profiles: Path | None = None,
        implausible: Implausible = "refuse",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        #: which analyte, which units, which product: the mapper's rules, from the same home
        self.terminology = Terminology(catalogue, study, site_maps or SiteCodeMaps())
        self.core: CoreModel = core_model()
        self.definitions = _definitions((profiles or profiles_dir()).resolve())
        self.profiles = self.definitions.resource_profiles()
        self.checker = ProfileChecker(self.definitions, accept=self._site_mapped)
        #: severity of a value outside its plausible range (an impossible one is an error)
        self.implausible_severity = "warning" if implausible == "warn" else "error"
        self.clock = clock or (lambda: datetime.now(UTC))
        self._trial_rules: dict[str, list[Rule]] = {
            LAB_OBSERVATION: [self._unit_rule, self._time_rule],
            MSC_ADMINISTRATION: [self._time_rule],
        }

    @classmethod
    def over(cls, terminology: Terminology, settings: Settings | None = None) -> Validator:
        """The validator of these definitions, with the site's choice for implausible values
        (``settings.implausible_values``; refuse when no settings are given)."""
        return cls(terminology.catalogue, terminology.study, site_maps=terminology.site_maps,
                   implausible=settings.implausible_values if settings else "refuse")

    # -- public -------------------------------------------------------------------------------

    def validate(
        self, resource: Node, *, profile: str | None = None, enrolled: bool = False
    ) -> list[Issue]:
        """Every problem of ``resource`` (a Bundle: of the Bundle and of each entry)."""
        if isinstance(resource, dict) and resource.get("resourceType") == "Bundle":
            return [issue for _, issue in self.validate_bundle(resource, profile=profile)]
        return self._resource(resource, resource_path(resource), profile, enrolled, Beside())

    def check(
        self,
        document: Node,
        *,
        profile: str | None = None,
        enrolled: bool | Collection[int] = False,
    ) -> list[tuple[int | None, Issue]]:
        """The one validation of every way in (REST, ingest, ``$validate``, ``validate``):
        a Bundle's own problems (entry None or the entry's index) and each entry's; a
        resource's problems (None). ``enrolled``: see ``validate_bundle``."""
        if document.get("resourceType") == "Bundle":
            return self.validate_bundle(document, profile=profile, enrolled=enrolled)
        alone = enrolled if isinstance(enrolled, bool) else bool(enrolled)
        return [(None, i) for i in self.validate(document, profile=profile, enrolled=alone)]

    def validate_bundle(
        self,
        bundle: Node,
        *,
        profile: str | None = None,
        enrolled: bool | Collection[int] = False,
    ) -> list[tuple[int | None, Issue]]:
        """Problems of the Bundle itself (entry None) and of each entry's resource (its index).

        ``enrolled`` is one flag for every entry, or the indices of the entries whose Patient
        belongs to an enrolled participant (those are held to ``trial-patient``)."""
        self._known_profile(profile)
        raw = bundle.get("entry")
        entries: list[Any] = raw if isinstance(raw, list) else []
        shell = dict(bundle)
        shell["entry"] = [_entry_shell(e) for e in entries]
        bare = dict(bundle)
        bare["entry"] = [_entry_shell(e, keep=False) for e in entries]
        found: list[tuple[int | None, Issue]] = [
            (_entry_of(i), i) for i in self._structure(bare, "Bundle")
        ]
        found.extend(
            (_entry_of(i), i)
            for i in self.core.check(shell, "Bundle", "Bundle", shell, nested=False)
        )
        found = [(n, i) for n, i in found if i.rule not in LOCATED or i.expression != "Bundle"]
        found.extend((_entry_of(i), i) for i in bundle_entry_issues(bundle))
        found = _dedupe_pairs(found)
        full_urls = {
            e["fullUrl"]: e["resource"].get("resourceType")
            for e in entries
            if isinstance(e, dict)
            and isinstance(e.get("fullUrl"), str)
            and isinstance(e.get("resource"), dict)
        }
        beside = Beside(full_urls, _births(entries))
        for index, entry in enumerate(entries):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict):
                continue
            path = f"Bundle.entry[{index}].resource"
            is_enrolled = enrolled if isinstance(enrolled, bool) else index in enrolled
            for issue in self._resource(resource, path, profile, is_enrolled, beside):
                found.append((index, issue))
        return found

    def profile_for(
        self,
        resource: Node,
        *,
        profile: str | None = None,
        enrolled: bool = False,
        analytes: list[Found] | None = None,
    ) -> str | None:
        """The project profile that applies (INTERFACES.md, "Which profile applies"), or None.
        ``analytes``: those of the resource's code, when the caller has them already."""
        if profile is not None:
            return self._known_profile(profile)
        kind = resource.get("resourceType")
        meta = resource.get("meta")
        claimed = meta.get("profile") if isinstance(meta, dict) else None
        for url in claimed if isinstance(claimed, list) else []:
            if isinstance(url, str) and self.profiles.get(url.split("|")[0]) == kind:
                return url.split("|")[0]
        if analytes is None and kind == "Observation":
            analytes = self.terminology.analytes(resource.get("code"))
        if kind == "Observation" and analytes:
            return LAB_OBSERVATION
        if kind == "MedicationAdministration" and self.terminology.is_product(resource):
            return MSC_ADMINISTRATION
        if kind == "Patient" and enrolled:
            return TRIAL_PATIENT
        return None

    # -- layers -------------------------------------------------------------------------------

    def _resource(
        self,
        resource: Any,
        path: str,
        profile: str | None,
        enrolled: bool,
        beside: Beside,
    ) -> list[Issue]:
        if not isinstance(resource, dict):
            return [Issue("error", "structure", path, "expected a JSON object (a FHIR resource)")]
        structure = self._structure(resource, path)
        kind = resource.get("resourceType")
        if not isinstance(kind, str) or kind not in self.core.resources:
            return structure
        issues = _dedupe(structure + self.core.check(resource, kind, path, resource))
        found = self.terminology.analytes(resource.get("code")) if kind == "Observation" else []
        url = self.profile_for(resource, profile=profile, enrolled=enrolled, analytes=found)
        if url == BASE_R4:
            forced = str(profile).split("|")[0].removeprefix(BASE_SD)
            if forced != kind and not (path != resource_path(resource) and forced == "Bundle"):
                issues.append(Issue("error", "invalid", path,
                                    f"profile {profile} is not a profile of {kind}"))
            return issues
        if url is not None:
            if self.profiles.get(url) != kind:
                issues.append(
                    Issue("error", "invalid", path, f"profile {url} is not a profile of {kind}")
                )
                return issues
            issues = _dedupe(issues + self.checker.check(resource, url, path, beside.full_urls))
            for rule in self._trial_rules.get(url, ()):
                issues.extend(rule(resource, path, found, beside))
        return issues

    @staticmethod
    def _structure(resource: Node, path: str) -> list[Issue]:
        try:
            parse_resource(resource, base=path)
        except StructureError as exc:
            kind = resource.get("resourceType")
            source = base_source(kind) if isinstance(kind, str) and kind.isidentifier() else None
            return [i if i.source else replace(i, source=source) for i in exc.issues]
        return []

    def _unit_rule(self, resource: Node, path: str, found: list[Found],
                   beside: Beside) -> list[Issue]:
        """trial-lab-observation: one analyte, a unit it converts (mappings/analytes.toml),
        read as the mapper reads it (terminology.quantity_unit), and a value that is possible
        and plausible in the analyte's canonical unit (terminology.judge)."""
        if len(found) > 1:
            return [Issue("error", "invalid", f"{path}.code", two_analytes(found),
                          source=LAB_OBSERVATION, rule="one-analyte")]
        quantity = resource.get("valueQuantity")
        if not isinstance(quantity, dict) or not found:
            return []
        if quantity.get("code") is None and quantity.get("unit") is None:
            return []  # no unit at all: the profile's invariant tlo-2 says so
        analyte, accepted = found[0]
        element = f"{path}.valueQuantity"
        try:
            unit, _ = quantity_unit(quantity, accepted, self.terminology.ucum_system,
                                    element=element)
        except UnitError as exc:
            return [replace(i, source=LAB_OBSERVATION, rule="unit") for i in exc.issues]
        number = quantity.get("value")
        if isinstance(number, bool) or not isinstance(number, int | float):
            return []  # no value, or not a JSON number: the structure says so
        sent = to_decimal(number)
        comparator = quantity.get("comparator")
        verdict = judge(analyte, convert(sent, unit, accepted),
                        comparator if isinstance(comparator, str) else None,
                        received=(sent, unit, accepted))
        if verdict is None:
            return []
        severity = "error" if verdict.rule == IMPOSSIBLE else self.implausible_severity
        return [Issue(severity, "value", f"{element}.value", verdict.message,
                      source=LAB_OBSERVATION, rule=verdict.rule)]

    def _time_rule(self, resource: Node, path: str, found: list[Found],
                   beside: Beside) -> list[Issue]:
        """A trial value or administration is not in the future (beyond CLOCK_SKEW) and not
        before its patient's birth (when the Patient is beside it in the Bundle). A date
        without a time is placed at midnight in the study's time zone, as the mapper does."""
        kind = resource.get("resourceType")
        zone = self.terminology.study.timezone
        latest = self.clock() + CLOCK_SKEW
        subject = resource.get("subject")
        reference = subject.get("reference") if isinstance(subject, dict) else None
        born = beside.births.get(reference) if isinstance(reference, str) else None
        out = []
        for element, text in _effective_times(resource, f"{path}"):
            try:
                parsed = parse_datetime(text)
            except ValueError:
                continue  # the structure says so
            start = parsed.at or datetime.combine(parsed.value, datetime.min.time(), zone)
            if start > latest:
                skew = int(CLOCK_SKEW.total_seconds() // 60)
                out.append(Issue("error", "value", element,
                                 f"{text} is in the future (later than this server's clock "
                                 f"by more than {skew} minutes)", source=_source(kind),
                                 rule=FUTURE_TIME))
            if born is not None and _last_day(parsed, zone) < born:
                out.append(Issue("error", "value", element,
                                 f"{text} is before the patient's birth ({born.isoformat()})",
                                 source=_source(kind), rule=BEFORE_BIRTH))
        return out

    # -- helpers ------------------------------------------------------------------------------

    def _known_profile(self, profile: str | None) -> str | None:
        """The profile's URL (without version); BASE_R4 for a base StructureDefinition."""
        if profile is None:
            return None
        url = profile.split("|")[0]
        if url.startswith(BASE_SD) and url.removeprefix(BASE_SD) in self.core.resources:
            return BASE_R4
        if url not in self.profiles:
            raise UnusableInput(
                f"unknown profile {profile!r}; known: {', '.join(sorted(self.profiles))}, "
                f"or {BASE_SD}[type] for base R4 only"
            )
        return url

    def _site_mapped(self, system: str, code: str) -> bool:
        return self.terminology.is_site_code(system, code)


Rule = Callable[[Node, str, list[Found], "Beside"], list[Issue]]


class Beside:
    """What the other entries of a Bundle tell about an entry: the resource type of each
    ``fullUrl`` (local references), the birth date of each Patient (by ``fullUrl`` and by
    ``Patient/id``)."""

    __slots__ = ("births", "full_urls")

    def __init__(self, full_urls: dict[str, str] | None = None,
                 births: dict[str, date] | None = None) -> None:
        self.full_urls = full_urls or {}
        self.births = births or {}


def _births(entries: list[Any]) -> dict[str, date]:
    """The first day a Patient entry's ``birthDate`` allows, under each name it has."""
    out: dict[str, date] = {}
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") != "Patient":
            continue
        try:
            born = parse_datetime(resource.get("birthDate")).value
        except ValueError:
            continue
        born = born.date() if isinstance(born, datetime) else born
        if isinstance(entry.get("fullUrl"), str):
            out[entry["fullUrl"]] = born
        if isinstance(resource.get("id"), str):
            out[f"Patient/{resource['id']}"] = born
    return out


def _effective_times(resource: Node, path: str) -> list[tuple[str, str]]:
    """(element, text) of each time of ``effective[x]``: dateTime, instant, Period start/end."""
    out = []
    for key in ("effectiveDateTime", "effectiveInstant"):
        if isinstance(resource.get(key), str):
            out.append((f"{path}.{key}", resource[key]))
    period = resource.get("effectivePeriod")
    if isinstance(period, dict):
        out += [(f"{path}.effectivePeriod.{k}", period[k]) for k in ("start", "end")
                if isinstance(period.get(k), str)]
    return out


def _last_day(parsed: Any, zone: Any) -> date:
    """The last day (study time zone) a FHIR date or dateTime allows: 2015 -> 2015-12-31."""
    if parsed.at is not None:
        return parsed.at.astimezone(zone).date()
    first: date = parsed.value
    if parsed.precision == "year":
        return date(first.year, 12, 31)
    if parsed.precision == "month":
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return following - timedelta(days=1)
    return first


def _source(kind: Any) -> str:
    return MSC_ADMINISTRATION if kind == "MedicationAdministration" else LAB_OBSERVATION


def resource_path(resource: Any) -> str:
    kind = resource.get("resourceType") if isinstance(resource, dict) else None
    return kind if isinstance(kind, str) and kind.isidentifier() else "Resource"


def _entry_shell(entry: Any, *, keep: bool = True) -> Any:
    """An entry with its resource reduced to what Bundle rules read (or removed)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
        return entry
    if not keep:
        return {k: v for k, v in entry.items() if k != "resource"}
    resource = entry["resource"]
    stub: Node = {"resourceType": resource.get("resourceType")}
    meta = resource.get("meta")
    if isinstance(meta, dict) and "versionId" in meta:
        stub["meta"] = {"versionId": meta["versionId"]}
    return {**entry, "resource": stub}


def _entry_of(issue: Issue) -> int | None:
    text = issue.expression or ""
    if text.startswith("Bundle.entry["):
        return int(text[len("Bundle.entry[") : text.index("]")])
    return None


def _dedupe(issues: list[Issue]) -> list[Issue]:
    seen: set[tuple[str | None, str]] = set()
    out = []
    for issue in issues:
        key = (
            issue.expression,
            "required"
            if issue.code in ("required", "structure") and "required" in issue.diagnostics
            else issue.diagnostics,
        )
        if key not in seen:
            seen.add(key)
            out.append(issue)
    return out


def _dedupe_pairs(pairs: list[tuple[int | None, Issue]]) -> list[tuple[int | None, Issue]]:
    kept = set(map(id, _dedupe([i for _, i in pairs])))
    return [(n, i) for n, i in pairs if id(i) in kept]


def to_operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    """The issues as an OperationOutcome; one ``information`` issue "valid" when there is none."""
    if not issues:
        return operation_outcome([Issue("information", "informational", None, "valid")])
    return operation_outcome(issues)
