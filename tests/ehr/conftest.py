"""sekmet-fhir as the hospital's EHR, on loopback: FHIR API, Bulk $export, SMART token endpoint.

Its Bulk export, token endpoint and FHIR API are its own; the test adds only the standard R4
``identifier`` search parameter of the research types sekmet lacks (as tests/outbound does), so
that the sample Bundles' conditional references to the ResearchStudy resolve on it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from fhir_adapter.outbound.smart import create_key

sekmet_config = pytest.importorskip("sekmet.config", reason="sekmet-fhir is not installed "
                                    "(it comes with the test extra: pip install -e '.[test]')")
search_params = pytest.importorskip("sekmet.fhir.search_params")
sekmet_main = pytest.importorskip("sekmet.main")
uvicorn = pytest.importorskip("uvicorn")

SAMPLES = Path(__file__).resolve().parents[2] / "sample_bundles"
PARTICIPANT_FILES = sorted(SAMPLES.glob("p*-FSGS-0*.json"))
CORRECTIONS = SAMPLES / "zz-corrections.json"
SEED_TOKEN = "sekmet-seed-token"
CLIENT_ID = "fhir-adapter-site"
RESEARCH_TYPES = ("ResearchStudy", "ResearchSubject", "PlanDefinition", "MeasureReport")
STUDY = {"resourceType": "ResearchStudy", "status": "active",
         "identifier": [{"system": "https://clinicaltrials.gov", "value": "NCT02382874"}]}


@dataclass
class Ehr:
    """A running sekmet: its base URL, our key file (registered there), a seeding session."""

    base: str
    key_file: Path
    settings: Any
    app: Any = None  # sekmet's FastAPI app: its context (store, subscription engine)

    def post(self, path: str, body: dict[str, Any], method: str = "POST") -> dict[str, Any]:
        answer = requests.request(method, f"{self.base}/{path}".rstrip("/"), json=body,
                                  timeout=60, headers={"Authorization": f"Bearer {SEED_TOKEN}",
                                                       "Content-Type": "application/fhir+json"})
        assert answer.status_code in (200, 201), answer.text[:500]
        result: dict[str, Any] = answer.json()
        return result

    def seed(self, files: list[Path]) -> None:
        for path in files:
            self.post("", json.loads(path.read_text(encoding="utf-8")))


@pytest.fixture
def ehr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ehr]:
    """sekmet with SMART Backend Services (our public key registered as a JWK Set) and a
    static bearer token for seeding; seeded with this study's ResearchStudy."""
    for rtype in RESEARCH_TYPES:
        known = dict(search_params.PARAMS.get(rtype, {}))
        known["identifier"] = search_params.SearchParam("identifier", "token", ("identifier",))
        monkeypatch.setitem(search_params.PARAMS, rtype, known)
    key_file = tmp_path / "keys" / "ehr-key.pem"
    jwks = create_key(key_file, "ES384")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}/fhir"
    settings = sekmet_config.Settings(
        base_url=base, data_dir=str(tmp_path / "sekmet"), log_inbound=False,
        simulator=sekmet_config.SimulatorSettings(enabled=False, delay_seconds=0),
        server_auth=sekmet_config.ServerAuth(
            types=["bearer", "smart"], tokens=[SEED_TOKEN], token_lifetime=300,
            smart_clients=[sekmet_config.SmartClient(client_id=CLIENT_ID, jwks=jwks,
                                                     scopes="system/*.cruds")]))
    app = sekmet_main.create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "sekmet-fhir did not start"
        time.sleep(0.05)
    running = Ehr(base, key_file, settings, app)
    running.post("ResearchStudy", STUDY)
    yield running
    server.should_exit = True
    thread.join(timeout=30)
    sock.close()
