"""Request bodies as the network delivers them: gzip decoded with the size limit applied to the
decoded bytes, a wrong or unknown Content-Encoding refused, a client gone mid-body one line."""

from __future__ import annotations

import gzip
import json
import logging
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.api.api_harness import FHIR_JSON, Live, make_settings, make_tokens, start
from tests.builders import HOSPITAL, hospital_patient, lab_creatinine, linked_bundle

JSON = {"Content-Type": FHIR_JSON}


def _bundle(family: str = "Testperson") -> dict[str, Any]:
    return linked_bundle(hospital_patient("m1", family=family),
                         lab_creatinine("{ref:0}", 0.5, "2024-03-24T08:00:00+02:00", ident="A1"))


def _outcome(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text[:1500]
    assert "Traceback" not in response.text
    return dict(response.json()["issue"][0])


def test_gzip_bodies_are_decoded_and_limited_by_their_decoded_size(tmp_path: Path) -> None:
    settings = make_settings(tmp_path).model_copy(update={"max_body_bytes": 64 * 1024})
    gen = start(settings, make_tokens(settings.tokens_file))
    live = next(gen)
    try:
        live.pipeline.enroll(HOSPITAL, "m1", "S-01")
        plain = json.dumps(_bundle()).encode()
        with live.client(live.ehr) as client:
            zipped = client.post("", content=gzip.compress(plain),
                                 headers={**JSON, "Content-Encoding": "gzip"})
            assert zipped.status_code == 200, zipped.text[:800]
            before = live.pipeline.store.row_counts()
            assert before["measurement"] == 1
            issue = _outcome(client.post("", content=plain,
                                         headers={**JSON, "Content-Encoding": "gzip"}), 400)
            assert "gzip" in issue["diagnostics"]
            _outcome(client.post("", content=plain, headers={**JSON, "Content-Encoding": "br"}),
                     415)
            # under 64 KiB on the wire, 1 MiB decoded: over the limit
            packed = gzip.compress(json.dumps(_bundle(" " * (1024 * 1024))).encode(), 9)
            assert len(packed) < 64 * 1024
            issue = _outcome(client.post("", content=packed,
                                         headers={**JSON, "Content-Encoding": "gzip"}), 413)
            assert "decoded" in issue["diagnostics"]
        after = live.pipeline.store.row_counts()
        assert {k: v for k, v in after.items() if k != "audit"} == \
            {k: v for k, v in before.items() if k != "audit"}
    finally:
        gen.close()


def test_a_client_that_disconnects_mid_body_is_one_line(live: Live,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    url = urlparse(live.base)
    head = (f"POST /fhir HTTP/1.1\r\nHost: {url.hostname}\r\nAuthorization: Bearer {live.ehr}\r\n"
            f"Content-Type: {FHIR_JSON}\r\nContent-Length: 100000\r\n\r\n").encode()
    assert url.hostname is not None and url.port is not None
    with caplog.at_level(logging.INFO):
        with socket.create_connection((url.hostname, url.port)) as sock:
            sock.sendall(head + b'{"resourceType": "Bundle", "type": "tra')
            time.sleep(0.3)
        time.sleep(1.0)
        with live.client(live.ehr) as client:  # the server still serves
            assert client.get("/metadata").status_code == 200
    mine = [r for r in caplog.records if "disconnect" in r.getMessage().lower()]
    assert len(mine) == 1, [r.getMessage() for r in caplog.records]
    assert all(r.exc_info is None and "Traceback" not in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
