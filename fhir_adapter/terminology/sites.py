"""Site code maps: a hospital's local codes -> an accepted analyte code (TOML or ConceptMap)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from fhir_adapter.errors import ConfigError, Where

__all__ = ["EQUIVALENT", "SiteCodeMaps", "SiteMapping"]

#: ConceptMap ``equivalence`` (R4) and ``relationship`` (R5) values that mean "the same concept".
#: Wider, narrower or inexact maps are skipped: a value is never guessed into an analyte.
EQUIVALENT = {
    "equivalence": frozenset({"equivalent", "equal"}),
    "relationship": frozenset({"equivalent"}),
}


@dataclass(frozen=True, slots=True)
class SiteMapping:
    """One local code and the accepted code it stands for; ``origin`` names the file or map."""

    system: str
    code: str
    target_system: str
    target_code: str
    origin: str


@dataclass(slots=True)
class SiteCodeMaps:
    """Every site's local codes, indexed by (system, code)."""

    mappings: dict[tuple[str, str], SiteMapping] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # ConceptMap targets that are not equivalent

    @classmethod
    def load(cls, mappings_dir: Path | str) -> SiteCodeMaps:
        """Read ``sites/*.toml`` and ``sites/*.json`` (ConceptMaps) under ``mappings_dir``."""
        maps = cls()
        sites = Path(mappings_dir) / "sites"
        if not sites.is_dir():
            return maps
        for path in sorted(sites.iterdir()):
            if path.suffix == ".toml":
                maps.add_toml_file(path)
            elif path.suffix == ".json":
                maps.add_concept_map_file(path)
        return maps

    def lookup(self, system: str | None, code: str | None) -> SiteMapping | None:
        if not system or not code:
            return None
        return self.mappings.get((system, code))

    def __len__(self) -> int:
        return len(self.mappings)

    def add(self, mapping: SiteMapping) -> None:
        """Add one mapping; the same local code mapped to two targets is a ConfigError."""
        key = (mapping.system, mapping.code)
        known = self.mappings.get(key)
        if known and (known.target_system, known.target_code) != (
            mapping.target_system,
            mapping.target_code,
        ):
            raise ConfigError(
                f"{mapping.system}|{mapping.code} is mapped to {known.target_code} in "
                f"{known.origin} and to {mapping.target_code} in {mapping.origin}",
                where=Where(mapping.origin),
            )
        self.mappings[key] = mapping

    def add_toml_file(self, path: Path) -> None:
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(
                f"cannot read site code map ({exc})", where=Where(str(path))
            ) from None
        self.add_toml(data, origin=str(path))

    def add_toml(self, data: dict[str, Any], *, origin: str) -> None:
        """``[[entries]]`` tables with ``system``, ``code``, ``target_system``, ``target_code``."""
        entries = data.get("entries")
        if not isinstance(entries, list):
            raise ConfigError("a site code map needs [[entries]]", where=Where(origin))
        for number, entry in enumerate(entries, start=1):
            try:
                values = [entry[k] for k in ("system", "code", "target_system", "target_code")]
            except (KeyError, TypeError):
                raise ConfigError(
                    f"entry {number} needs system, code, target_system and target_code",
                    where=Where(origin),
                ) from None
            if not all(isinstance(v, str) and v for v in values):
                raise ConfigError(
                    f"entry {number}: every field is a non-empty string", where=Where(origin)
                )
            system, code, target_system, target_code = values
            self.add(SiteMapping(system, code, target_system, target_code, origin))

    def add_concept_map_file(self, path: Path) -> None:
        try:
            data = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read ConceptMap ({exc})", where=Where(str(path))) from None
        self.add_concept_map(data, origin=str(path))

    def add_concept_map(self, concept_map: dict[str, Any], *, origin: str | None = None) -> None:
        """Add the equivalent targets of a ConceptMap (R4 ``equivalence``, R5 ``relationship``)."""
        if not isinstance(concept_map, dict) or concept_map.get("resourceType") != "ConceptMap":
            raise ConfigError("not a ConceptMap", where=Where(origin))
        origin = origin or f"ConceptMap/{concept_map.get('id') or concept_map.get('url', '?')}"
        for g, group in enumerate(concept_map.get("group") or []):
            source, target = group.get("source"), group.get("target")
            if not source or not target:
                raise ConfigError(
                    f"ConceptMap.group[{g}] needs a source and a target system", where=Where(origin)
                )
            for e, element in enumerate(group.get("element") or []):
                for t, mapped in enumerate(element.get("target") or []):
                    path = f"ConceptMap.group[{g}].element[{e}].target[{t}]"
                    key = "equivalence" if "equivalence" in mapped else "relationship"
                    kind = mapped.get(key)
                    if (
                        kind not in EQUIVALENT[key]
                        or not element.get("code")
                        or not mapped.get("code")
                    ):
                        self.skipped.append(f"{origin}: {path} ({kind or 'no equivalence'})")
                        continue
                    self.add(SiteMapping(source, element["code"], target, mapped["code"], origin))
