"""The CDISC terms of the export, read from mappings/sdtm.toml (schema: mappings/README.md)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhir_adapter.errors import ConfigError

__all__ = ["LabTest", "SdtmTerms"]


@dataclass(frozen=True, slots=True)
class LabTest:
    """The LB test of one analyte of the catalogue."""

    testcd: str
    test: str
    cat: str
    spec: str
    method: str = ""
    toxicity: str = ""


@dataclass(frozen=True, slots=True)
class SdtmTerms:
    """Site, arm, exposure, visit names, units and LB tests of the export."""

    siteid: str
    country: str
    ageu: str
    ctcae_version: str
    armcd: str
    arm: str
    not_treated: str
    extrt: str
    dosfrm: str
    route: str
    visit_names: dict[str, str]
    units: dict[str, str]
    egfr_methods: dict[str, str]
    lab: dict[str, LabTest]

    def unit(self, ucum: str | None) -> str:
        """The CDISC unit of a UCUM unit, else the UCUM unit itself ('' for none)."""
        if not ucum:
            return ""
        return self.units.get(ucum, ucum)

    def visit_name(self, code: str) -> str:
        return self.visit_names.get(code, code)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SdtmTerms:
        try:
            study, arm, ex = data["study"], data["arm"], data["exposure"]
            lab = {
                key: LabTest(
                    testcd=str(body["testcd"]), test=str(body["test"]), cat=str(body["cat"]),
                    spec=str(body["spec"]), method=str(body.get("method", "")),
                    toxicity=str(body.get("toxicity", "")),
                )
                for key, body in data["lb"].items()
            }
            too_long = [t.testcd for t in lab.values() if len(t.testcd) > 8 or len(t.test) > 40]
            if too_long:
                raise ValueError(f"LBTESTCD over 8 or LBTEST over 40 characters: {too_long}")
            return cls(
                siteid=str(study["siteid"]), country=str(study["country"]),
                ageu=str(study["ageu"]), ctcae_version=str(study["ctcae_version"]),
                armcd=str(arm["armcd"]), arm=str(arm["arm"]), not_treated=str(arm["not_treated"]),
                extrt=str(ex["extrt"]), dosfrm=str(ex["dosfrm"]), route=str(ex["route"]),
                visit_names={str(k): str(v) for k, v in data.get("visit_names", {}).items()},
                units={str(k): str(v) for k, v in data.get("units", {}).items()},
                egfr_methods={str(k): str(v) for k, v in data.get("egfr_methods", {}).items()},
                lab=lab,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"SDTM terms (sdtm.toml): missing or bad entry {exc}") from exc

    @classmethod
    def from_file(cls, path: Path) -> SdtmTerms:
        try:
            with path.open("rb") as fh:
                return cls.from_dict(tomllib.load(fh))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the SDTM terms ({exc})") from exc
