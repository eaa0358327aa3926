"""Which modules and functions of fhir_adapter a ``POST /fhir/Observation`` of one value passes.

A profiler hook records every fhir_adapter function called while the REST endpoint takes one
Observation for an enrolled participant (the sample participant FSGS-01 loaded first): the
request, validation, the enrollment gate, mapping, the write and the recomputation of the
participant's endpoints. Run: ``python -m benchmarks.trace_post [--list]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = ["Trace", "observation", "trace_post"]

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fhir_adapter"
SAMPLE = ROOT / "sample_bundles" / "p1-FSGS-01.json"


@dataclass
class Trace:
    """The fhir_adapter functions called (module -> function names) and the answer's status."""

    status: int
    calls: dict[str, Counter[str]]

    @property
    def modules(self) -> list[str]:
        return sorted(self.calls)

    def count(self, module: str, name: str) -> int:
        """How many times ``module.name`` was called."""
        return self.calls.get(module, Counter())[name]

    @property
    def functions(self) -> int:
        """Named functions and methods (comprehensions and lambdas left out)."""
        return sum(1 for names in self.calls.values() for name in names if "<" not in name)


#: Work the flow should do once per resource: how often it is done shows in the figures.
REPEATED = (
    ("fhir_adapter.store.keys", "identity_keys"),
    ("fhir_adapter.fhir.references", "rewrite_references"),
    ("fhir_adapter.trial.definitions", "AnalyteCatalogue.lookup"),
    ("fhir_adapter.fhir.parse", "parse_resource"),
)


def observation() -> dict[str, Any]:
    """A serum creatinine value of FSGS-01 (its Patient named by MRN), not in the sample."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
        "identifier": [{"system": "https://hospital.example.org/fhir/sid/lab-accession",
                        "value": "TRACE-0001"}],
        "subject": {"reference":
                    "Patient?identifier=https://hospital.example.org/fhir/sid/mrn|13200001"},
        "effectiveDateTime": "2023-03-01T08:00:00+03:30",
        "issued": "2023-03-01T12:00:00+03:30",
        "valueQuantity": {"value": 0.58, "unit": "mg/dL", "system": "http://unitsofmeasure.org",
                          "code": "mg/dL"},
    }


def _module(path: str) -> str | None:
    try:
        relative = Path(path).resolve().relative_to(PACKAGE.parent)
    except ValueError:
        return None
    if relative.parts[0] != "fhir_adapter":
        return None
    return ".".join(relative.with_suffix("").parts).removesuffix(".__init__")


def trace_post(folder: Path) -> Trace:
    """Load FSGS-01 over REST, then trace the POST of one more Observation."""
    import httpx

    from fhir_adapter.api import create_app
    from fhir_adapter.pipeline import Pipeline
    from fhir_adapter.settings import Settings
    from fhir_adapter.store.tokens import TokenFile

    settings = Settings(database_url=f"sqlite:///{folder / 'trace.db'}",
                        tokens_file=folder / "tokens.json", pseudonym_key="trace-secret-0123456789")
    token = TokenFile(settings.tokens_file).create("hospital-a", ["system/*.cu"])
    pipeline = Pipeline.from_settings(settings)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    calls: dict[str, Counter[str]] = {}
    seen: dict[Any, str | None] = {}

    def hook(frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        code = frame.f_code
        if code not in seen:
            seen[code] = _module(code.co_filename)
        module = seen[code]
        if module is not None:
            calls.setdefault(module, Counter())[code.co_qualname] += 1

    app = create_app(settings, pipeline)

    async def post(path: str, body: bytes) -> int:
        # each call runs its own event loop, whose worker threads start after the hook is set
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://adapter") as client:
            return (await client.post(path, content=body, headers=headers)).status_code

    loaded = asyncio.run(post("/fhir", SAMPLE.read_bytes()))
    if loaded != 200:
        raise SystemExit(f"loading {SAMPLE.name}: HTTP {loaded}")
    body = json.dumps(observation()).encode()
    threading.setprofile(hook)
    sys.setprofile(hook)
    try:
        status = asyncio.run(post("/fhir/Observation", body))
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
    return Trace(status, calls)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print every module and function")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        trace = trace_post(Path(folder))
    print(f"POST /fhir/Observation: HTTP {trace.status}, {len(trace.modules)} modules, "
          f"{trace.functions} functions of fhir_adapter")
    for module, name in REPEATED:
        print(f"  calls of {module}.{name}: {trace.count(module, name)}")
    if args.list:
        for module in trace.modules:
            names = trace.calls[module]
            print(f"  {module} ({len(names)}): {', '.join(sorted(names))}")


if __name__ == "__main__":
    main()
