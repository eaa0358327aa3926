"""Terminology: which analyte a code names, which units it accepts, what is the study product.

The one home of these rules: the validator (which profile applies, the unit rule of
``trial-lab-observation``) and the mapper (what a resource becomes in the trial model) ask the
same questions here, so that a resource is never validated under one answer and mapped under
another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhir_adapter.errors import ConfigError, InvalidResource, Where
from fhir_adapter.paths import mappings_dir
from fhir_adapter.settings import Settings
from fhir_adapter.terminology.sites import SiteCodeMaps
from fhir_adapter.trial.definitions import AcceptedCode, Analyte, AnalyteCatalogue, StudyDefinition
from fhir_adapter.trial.endpoints.participant import check_rules

__all__ = ["Found", "Terminology", "codings"]

#: An analyte and the accepted code (with its units) that named it.
Found = tuple[Analyte, AcceptedCode]


@dataclass(slots=True)
class Terminology:
    """The analyte catalogue, the site code maps and the study's product, asked as one."""

    catalogue: AnalyteCatalogue
    study: StudyDefinition
    site_maps: SiteCodeMaps = field(default_factory=SiteCodeMaps)

    def __post_init__(self) -> None:
        """Every site code map names a code of the catalogue (checked when loaded)."""
        bad = [
            f"{m.system}|{m.code} -> {m.target_system}|{m.target_code} ({m.origin})"
            for m in self.site_maps.mappings.values()
            if self.catalogue.lookup(m.target_system, m.target_code) is None
        ]
        if bad:
            raise ConfigError(
                "site code maps name codes the analyte catalogue does not accept: " + "; ".join(bad)
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> Terminology:
        """The study, the analyte catalogue and the site code maps the settings name (the
        shipped ``mappings/`` by default), the study's endpoint rules checked against them."""
        folder = settings.mappings_dir or mappings_dir()
        study = StudyDefinition.from_file(settings.study_file or folder / "study.toml")
        catalogue = AnalyteCatalogue.from_file(folder / "analytes.toml")
        check_rules(study, catalogue)
        return cls(catalogue, study, SiteCodeMaps.load(folder))

    @property
    def ucum_system(self) -> str:
        return self.catalogue.ucum_system

    def analytes(self, codeable: object) -> list[Found]:
        """Every distinct analyte the codings of a CodeableConcept name: catalogue codes
        first; the site code maps only when no coding is a catalogue code."""
        pairs = codings(codeable)
        found = [hit for s, c in pairs if (hit := self.catalogue.lookup(s, c))]
        if not found:
            for system, code in pairs:
                site = self.site_maps.lookup(system, code)
                if site and (hit := self.catalogue.lookup(site.target_system, site.target_code)):
                    found.append(hit)
        distinct: dict[str, Found] = {}
        for hit in found:
            distinct.setdefault(hit[0].key, hit)
        return list(distinct.values())

    def analyte_of(self, codeable: object, *, element: str = "Observation.code") -> Found | None:
        """The analyte of a CodeableConcept, or None; codings naming two analytes are refused."""
        found = self.analytes(codeable)
        if len(found) > 1:
            raise InvalidResource(two_analytes(found), where=Where(element=element))
        return found[0] if found else None

    def is_site_code(self, system: str, code: str) -> bool:
        """Whether a site code map turns this code into an analyte of the catalogue."""
        return self.site_maps.lookup(system, code) is not None

    def is_product(self, resource: dict[str, Any]) -> bool:
        """Whether a MedicationAdministration gives the study product: its
        ``medicationCodeableConcept``, or the code of the contained Medication its
        ``medicationReference`` names (``#id``, FHIR R4 references.html#contained)."""
        product = (self.study.product_system, self.study.product_code)
        concept = resource.get("medicationCodeableConcept")
        reference = resource.get("medicationReference")
        if concept is None and isinstance(reference, dict):
            local = str(reference.get("reference") or "")
            contained = resource.get("contained")
            concept = next(
                (c.get("code") for c in (contained if isinstance(contained, list) else [])
                 if isinstance(c, dict) and local.startswith("#") and c.get("id") == local[1:]),
                None,
            )
        return product in codings(concept)


def two_analytes(found: list[Found]) -> str:
    names = " and ".join(sorted({analyte.name for analyte, _ in found}))
    return f"the codings name two analytes ({names})"


def codings(codeable: object) -> list[tuple[str | None, str]]:
    """(system, code) of each coding of a CodeableConcept that has a code."""
    if not isinstance(codeable, dict):
        return []
    raw = codeable.get("coding")
    return [
        (c.get("system"), c["code"])
        for c in (raw if isinstance(raw, list) else [])
        if isinstance(c, dict) and isinstance(c.get("code"), str)
    ]
