"""metadata.json: the machine-readable description of one delivery (datasets, variables,
their core status and origin with the FHIR path each comes from, the code lists used)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir_adapter.sdtm.formats import DatasetWriter, column
from fhir_adapter.sdtm.terms import SdtmTerms
from fhir_adapter.sdtm.variables import DOMAINS
from fhir_adapter.trial.definitions import StudyDefinition

__all__ = ["metadata"]


def metadata(study: StudyDefinition, terms: SdtmTerms, fmt: str, stamp: str,
             written: Mapping[str, DatasetWriter]) -> dict[str, Any]:
    datasets = []
    for name, domain in DOMAINS.items():
        writer = written[name]
        variables = []
        for v in domain.variables:
            item = column(domain, v, writer.lengths.get(v.name))
            item |= {"core": v.core, "origin": v.origin, "predecessor": v.source}
            variables.append(item)
        datasets.append({
            "itemGroupOID": f"IG.{name}", "name": name, "label": domain.label,
            "structure": domain.structure, "file": writer.path.name, "records": writer.records,
            "variables": variables,
        })
    tests = {t.testcd: t.test for t in terms.lab.values()}
    return {
        "standard": "SDTMIG 3.4",
        "studyOID": study.id,
        "studyName": study.title,
        "created": stamp,
        "format": fmt,
        "timeZone": str(study.timezone),
        "notes": [
            "--DTC values are local times of the study's time zone, without offset.",
            "USUBJID is STUDYID-subject code; no hospital identifier is exported.",
            "LBSEQ is a keyed hash of the source Observation's identity (or of the derived "
            "row's subject, test and visit): stable across deliveries, unique per subject.",
            "A value that represents no protocol visit is an UNSCHEDULED visit numbered after "
            "the protocol visit it follows (0.01... before Day 0; previous visit + 0.01 per "
            "calendar day).",
            f"LBTOXGR is the trial's {terms.ctcae_version} grade of ALT/AST from Day 0 on.",
            "Not-done administrations are not in EX; not-done, preliminary and withdrawn "
            "lab values are not in LB.",
        ],
        "datasets": datasets,
        "codelists": {
            "LBTESTCD": sorted(tests),
            "LBTEST": dict(sorted(tests.items())),
            "LBSPEC": sorted({t.spec for t in terms.lab.values()}),
            "UNIT": dict(sorted(terms.units.items())),
            "LBANMETH": dict(sorted(terms.egfr_methods.items())),
        },
    }
