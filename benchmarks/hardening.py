"""Hostile inputs against a served adapter, by family: how many were answered 5xx, and how many
tracebacks the server logged. Run outside CI:

    python -m benchmarks.hardening [--cases 200] [--database URL] [--json FILE]

Each family starts from a valid transaction (a Patient, its ResearchSubject and a creatinine)
and makes one thing hostile; every request is sent over real HTTP to uvicorn on loopback. A
dropped connection counts as a 5xx (status 0 in the table). The goal of every figure is 0.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import random
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from fhir_adapter.api import create_app
from fhir_adapter.pipeline import Pipeline
from fhir_adapter.settings import Settings
from fhir_adapter.store.tokens import TokenFile

STUDY = {"identifier": {"system": "https://clinicaltrials.gov", "value": "NCT02382874"}}
FHIR_JSON = "application/fhir+json"


def _transaction(n: int, value: Any = 0.6) -> dict[str, Any]:
    urls = [f"urn:uuid:{uuid.uuid4()}" for _ in range(3)]
    patient = {"resourceType": "Patient", "identifier": [{"system": "urn:oid:1.2.3.4.5.6",
                                                          "value": f"H-{n}"}],
               "gender": "female", "birthDate": "2012-03-04"}
    subject = {"resourceType": "ResearchSubject", "status": "on-study", "study": STUDY,
               "identifier": [{"system": "https://hospital.example.org/subject",
                               "value": f"S-H{n}"}], "individual": {"reference": urls[0]}}
    observation = {
        "resourceType": "Observation", "status": "final",
        "identifier": [{"system": "urn:oid:1.2.3.4.5.7", "value": f"L-{n}"}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
        "subject": {"reference": urls[0]}, "effectiveDateTime": "2024-05-01T08:00:00Z",
        "valueQuantity": {"value": value, "unit": "mg/dL", "system": "http://unitsofmeasure.org",
                          "code": "mg/dL"}}
    # a baseline and the Day 0 infusion: the value is compared with them (change, percent)
    baseline = copy.deepcopy(observation)
    baseline["identifier"][0]["value"] = f"B-{n}"
    baseline["effectiveDateTime"] = "2024-04-10T08:00:00Z"
    baseline["valueQuantity"]["value"] = 0.5
    infusion = {"resourceType": "MedicationAdministration", "status": "completed",
                "identifier": [{"system": "urn:oid:1.2.3.4.5.8", "value": f"MA-{n}"}],
                "medicationCodeableConcept": {"coding": [{
                    "system": "https://fhir-adapter.org/fhir/CodeSystem/product",
                    "code": "ad-msc"}]},
                "subject": {"reference": urls[0]}, "effectiveDateTime": "2024-04-17T09:00:00Z",
                "dosage": {"route": {"text": "intravenous"}, "dose": {
                    "value": 1.0, "unit": "10*6/kg", "system": "http://unitsofmeasure.org",
                    "code": "10*6/kg"}}}
    resources = (patient, subject, observation, baseline, infusion)
    urls += [f"urn:uuid:{uuid.uuid4()}" for _ in range(2)]
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": url, "resource": resource,
         "request": {"method": "POST", "url": resource["resourceType"]}}
        for url, resource in zip(urls, resources, strict=True)]}


def _numbers(rng: random.Random, n: int) -> dict[str, Any]:
    value = rng.choice([1e300, 1e-300, 3.4028235e38, 1.7976931348623157e308, -1e19, 1e-40,
                        2**80, 0.1 + 0.2, 0, -0.0])
    return _transaction(n, value)


def _strings(rng: random.Random, n: int) -> dict[str, Any]:
    bundle = _transaction(n)
    text = rng.choice(["a\u0000b", "x" * 2_000_000, "\ud7ff\U0010ffff", "'; DROP TABLE x; --",
                       "../../etc/passwd", "<script>", " "])
    target = rng.choice([("name",), ("identifier", 0, "value")])
    patient = bundle["entry"][0]["resource"]
    if target == ("name",):
        patient["name"] = [{"family": text}]
    else:
        patient["identifier"][0]["value"] = text
    return bundle


def _keys(rng: random.Random, n: int) -> dict[str, Any]:
    bundle = _transaction(n)
    bundle["entry"][2]["resource"]["identifier"][0]["value"] = "v" * rng.choice([600, 700, 5000])
    if rng.random() < 0.5:
        bundle["entry"][1]["resource"]["identifier"][0]["value"] = "S" * rng.choice([199, 201,
                                                                                      400])
    return bundle


def _structure(rng: random.Random, n: int) -> dict[str, Any]:
    bundle = _transaction(n)
    choice = rng.randrange(6)
    if choice == 0:
        bundle["entry"][2]["request"]["method"] = rng.choice(["FOO", 5, None, "delete"])
    elif choice == 1:
        bundle["entry"][2]["resource"]["id"] = "a" * rng.choice([64, 65, 200])
    elif choice == 2:
        bundle["entry"][2]["fullUrl"] = rng.choice(["urn:uuid:not-a-uuid", "urn:uuid:", 7])
    elif choice == 3:
        bundle[rng.choice(["madeUp", "_type", "entryx"])] = {"x": 1}
    elif choice == 4:
        bundle["entry"][2]["resource"]["identifier"] = rng.choice([5, "x", [5], {"a": 1}])
    else:
        bundle["type"] = rng.choice(["batch", "collection", "document", 3])
    return bundle


def _batch(rng: random.Random, n: int) -> dict[str, Any]:
    bundle = _structure(rng, n)
    bundle["type"] = "batch"
    return bundle


FAMILIES: dict[str, Callable[[random.Random, int], dict[str, Any]]] = {
    "numbers": _numbers, "strings": _strings, "keys": _keys, "structure": _structure,
    "batch": _batch,
}


class _Logged(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.tracebacks = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.tracebacks += 1


def _served(settings: Settings) -> Iterator[tuple[str, Pipeline]]:
    from tests.api.api_harness import serve_in_thread

    pipeline = Pipeline.from_settings(settings)
    with serve_in_thread(create_app(settings, pipeline)) as base:
        yield base, pipeline


def run(cases: int, database: str | None) -> dict[str, Any]:
    rng = random.Random(20)
    handler = _Logged()
    logging.getLogger().addHandler(handler)
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=database or f"sqlite:///{Path(tmp) / 'adapter.db'}",
                            tokens_file=Path(tmp) / "tokens.json")
        token = TokenFile(settings.tokens_file).create("hospital", ["system/*.cu"])
        for base, _pipeline in _served(settings):
            with httpx.Client(base_url=base, timeout=120, headers={
                    "Authorization": f"Bearer {token}", "Content-Type": FHIR_JSON}) as client:
                n = 0
                for family, make in FAMILIES.items():
                    before = handler.tracebacks
                    statuses: Counter[int] = Counter()
                    for _ in range(cases):
                        n += 1
                        body = copy.deepcopy(make(rng, n))
                        try:
                            answer = client.post("", content=json.dumps(body))
                        except httpx.TransportError:  # the server dropped the connection
                            statuses[0] += 1
                            continue
                        statuses[answer.status_code] += 1
                    figures[family] = {
                        "requests": cases,
                        "5xx": sum(c for s, c in statuses.items() if s >= 500 or s == 0),
                        "tracebacks": handler.tracebacks - before,
                        "statuses": dict(sorted(statuses.items())),
                    }
    logging.getLogger().removeHandler(handler)
    figures["total"] = {k: sum(f[k] for f in figures.values()) for k in
                        ("requests", "5xx", "tracebacks")}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=200, help="requests per family")
    parser.add_argument("--database", help="a database URL (default: a fresh SQLite file)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    figures = run(args.cases, args.database)
    for family, f in figures.items():
        print(f"{family:<10} {f['requests']:>6} requests  {f['5xx']:>4} 5xx  "
              f"{f['tracebacks']:>4} tracebacks  {f.get('statuses', '')}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
