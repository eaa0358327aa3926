"""Site code maps from TOML files and from FHIR ConceptMaps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhir_adapter.errors import ConfigError
from fhir_adapter.mapping import Mapper
from fhir_adapter.paths import mappings_dir
from fhir_adapter.terminology import SiteCodeMaps
from fhir_adapter.trial.definitions import AnalyteCatalogue, StudyDefinition

CATALOGUE = AnalyteCatalogue.from_file(mappings_dir() / "analytes.toml")
STUDY = StudyDefinition.from_file(mappings_dir() / "study.toml")


def test_the_shipped_example_site_map() -> None:
    maps = SiteCodeMaps.load(mappings_dir())
    hit = maps.lookup("https://intranet.aumc.nl/labtestcodes", "20005")
    assert hit is not None
    assert (hit.target_system, hit.target_code) == ("http://loinc.org", "14682-9")
    assert hit.origin.endswith("example-aumc.toml")
    assert maps.lookup("https://intranet.aumc.nl/labtestcodes", "99999") is None
    Mapper(CATALOGUE, STUDY, maps)  # every target is a code of the catalogue


def _concept_map(equivalence_key: str = "equivalence") -> dict:
    return {
        "resourceType": "ConceptMap",
        "id": "lab-codes",
        "status": "active",
        "group": [
            {
                "source": "https://lab.example.org/codes",
                "target": "http://loinc.org",
                "element": [
                    {
                        "code": "K-ALT",
                        "target": [{"code": "1742-6", equivalence_key: "equivalent"}],
                    },
                    {"code": "K-UREA", "target": [{"code": "3091-6", equivalence_key: "equal"}]},
                    {"code": "K-PROT", "target": [{"code": "2889-4", equivalence_key: "wider"}]},
                ],
            }
        ],
    }


@pytest.mark.parametrize("key", ["equivalence", "relationship"])
def test_concept_map_equivalent_targets_only(key: str) -> None:
    maps = SiteCodeMaps()
    maps.add_concept_map(_concept_map(key))
    alt = maps.lookup("https://lab.example.org/codes", "K-ALT")
    assert alt is not None and alt.target_code == "1742-6"
    assert alt.origin == "ConceptMap/lab-codes"
    assert maps.lookup("https://lab.example.org/codes", "K-PROT") is None  # "wider": not guessed
    assert len(maps.skipped) == (1 if key == "equivalence" else 2)  # R5 has no "equal"
    assert "wider" in maps.skipped[-1]
    assert (key == "equivalence") == (
        maps.lookup("https://lab.example.org/codes", "K-UREA") is not None
    )


def test_concept_map_file_in_the_sites_folder(tmp_path: Path) -> None:
    (tmp_path / "sites").mkdir()
    (tmp_path / "sites" / "lab.json").write_text(json.dumps(_concept_map()), encoding="utf-8")
    maps = SiteCodeMaps.load(tmp_path)
    assert len(maps) == 2


def test_a_code_mapped_twice_to_different_targets(tmp_path: Path) -> None:
    maps = SiteCodeMaps()
    maps.add_toml(
        {
            "entries": [
                {
                    "system": "s",
                    "code": "1",
                    "target_system": "http://loinc.org",
                    "target_code": "2160-0",
                }
            ]
        },
        origin="a.toml",
    )
    with pytest.raises(ConfigError, match="a.toml"):
        maps.add_toml(
            {
                "entries": [
                    {
                        "system": "s",
                        "code": "1",
                        "target_system": "http://loinc.org",
                        "target_code": "3091-6",
                    }
                ]
            },
            origin="b.toml",
        )


def test_bad_site_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="entries"):
        SiteCodeMaps().add_toml({"entry": []}, origin="x.toml")
    with pytest.raises(ConfigError, match="target_code"):
        SiteCodeMaps().add_toml({"entries": [{"system": "s", "code": "1"}]}, origin="x.toml")
    with pytest.raises(ConfigError, match="ConceptMap"):
        SiteCodeMaps().add_concept_map({"resourceType": "ValueSet"})
    broken = tmp_path / "sites"
    broken.mkdir()
    (broken / "x.toml").write_text("entries = [", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        SiteCodeMaps.load(tmp_path)
    assert caught.value.where.file == str(broken / "x.toml")


def test_a_target_outside_the_catalogue_is_refused() -> None:
    maps = SiteCodeMaps()
    maps.add_toml(
        {
            "entries": [
                {
                    "system": "s",
                    "code": "1",
                    "target_system": "http://loinc.org",
                    "target_code": "2345-7",
                }
            ]
        },
        origin="glucose.toml",
    )
    with pytest.raises(ConfigError, match="2345-7"):
        Mapper(CATALOGUE, STUDY, maps)
