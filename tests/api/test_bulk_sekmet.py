"""sekmet-fhir's Bulk Data client exports the results, authorised by SMART Backend Services.

sekmet-fhir (written elsewhere) gets its token from the adapter's token endpoint with a
private_key_jwt, kicks off ``Group/{id}/$export``, polls as Retry-After says, downloads each
file with its token and checks every line (type, count, structure). A client whose assertion
is refused gets no token and exports nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fhir_adapter.store.exports import ExportJobs
from tests.api.api_harness import Live, make_settings, make_tokens, sample_files, start

keys = pytest.importorskip("sekmet.auth.keys", reason="sekmet-fhir is not installed")
sekmet_config = pytest.importorskip("sekmet.config")
sekmet_peer = pytest.importorskip("sekmet.client.peer")
sekmet_bulk = pytest.importorskip("sekmet.bulk.client")

EXE = Path(sys.executable).with_name("fhir-adapter")


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    settings = make_settings(tmp_path)
    for server in start(settings, make_tokens(settings.tokens_file)):
        server.pipeline.ingest_paths(sample_files())
        yield server


def _client(live: Live, tmp_path: Path, name: str, registered: str, asked: str) -> Any:
    key = keys.generate_private_key("ES384")
    path = tmp_path / f"{name}.pem"
    keys.save_private_key(key, str(path))
    jwks = tmp_path / f"{name}.jwks.json"
    jwks.write_text(json.dumps({"keys": [keys.public_jwk(key, "ES384")]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_ADAPTER_")}
    env["FHIR_ADAPTER_DATABASE_URL"] = live.settings.db_url()
    added = subprocess.run([str(EXE), "client", "add", "--name", name, "--jwks-file", str(jwks),
                            "--scope", registered], env=env, capture_output=True, text=True,
                           timeout=120, check=False)
    assert added.returncode == 0, added.stderr
    peer = sekmet_config.Peer(base_url=live.base, timeout=120, auth=sekmet_config.PeerAuth(
        type="smart", client_id=name, private_key_path=str(path), alg="ES384", scope=asked))
    return sekmet_peer.PeerClient(name, peer)


def test_sekmet_bulk_export_with_smart(live: Live, tmp_path: Path) -> None:
    client = _client(live, tmp_path, "cohort-platform", "system/*.rs", "system/*.read")
    try:
        report = sekmet_bulk.bulk_export(client, level="group", group=live.pipeline.study_id(),
                                         timeout=120, validate_sample=10_000)
    finally:
        client.close()
    assert report["errors"] == [] and report["all_valid"], report
    assert report["kickoff_status"] == 202 and report["status_codes"][-1] == 200
    bundle = live.pipeline.result_bundle()["entry"]
    expected = [e["resource"] for e in bundle if e["resource"]["resourceType"] != "Provenance"]
    assert report["total_resources"] == len(expected)
    counts: dict[str, int] = {}
    for resource in expected:
        counts[resource["resourceType"]] = counts.get(resource["resourceType"], 0) + 1
    assert {f["type"]: f["lines"] for f in report["files"]} == counts


def test_a_refused_client_exports_nothing(live: Live, tmp_path: Path) -> None:
    client = _client(live, tmp_path, "writer-only", "system/*.cu", "system/*.read")
    try:
        with pytest.raises(sekmet_peer.PeerError, match="invalid_scope"):
            sekmet_bulk.bulk_export(client, level="group", group=live.pipeline.study_id(),
                                    timeout=30)
    finally:
        client.close()
    assert ExportJobs(live.pipeline.store).known() == set()
