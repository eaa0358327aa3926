"""Who sees the dashboard: ui and system/*.rs tokens (header or the login's cookie); no token,
an unknown one or a hospital's: 401/403 and no data; on loopback without tokens, the pages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhir_adapter.api import create_app
from fhir_adapter.pipeline import Pipeline
from fhir_adapter.settings import Settings
from fhir_adapter.store.tokens import TokenFile

#: page -> what only the page with its data has
PAGES = {"/ui": 'id="schedule"', "/ui?analyte=creatinine": 'id="schedule"',
         "/ui/participants/FSGS-01": 'id="endpoints"',
         "/ui/participants/FSGS-04/visits/M7": 'id="state"', "/ui/queries": 'id="queries"',
         "/ui/summary": 'id="summary"', "/ui/audit": 'id="audit"'}


@pytest.fixture(scope="module")
def served(sample_pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("access")
    tokens = TokenFile(folder / "tokens.json")
    secrets = {"ui": tokens.create("manager", ["ui"]),
               "rs": tokens.create("research", ["system/*.rs"]),
               "cu": tokens.create("ehr", ["system/*.cu"])}
    settings = Settings(database_url="sqlite://", tokens_file=folder / "tokens.json")
    app = create_app(settings, sample_pipeline)
    yield {"client": TestClient(app, client=("127.0.0.1", 40000)), "tokens": secrets,
           "open": TestClient(create_app(Settings(database_url="sqlite://",
                                                  tokens_file=folder / "none.json"),
                                         sample_pipeline), client=("127.0.0.1", 40001))}


@pytest.mark.parametrize("path", PAGES)
def test_no_token_gets_the_login_page_and_no_data(served: dict[str, Any], path: str) -> None:
    answer = served["client"].get(path)
    assert answer.status_code == 401
    assert 'name="token"' in answer.text and "<table" not in answer.text
    assert PAGES[path] not in answer.text
    body = answer.text.split('name="next"')[0]  # the hidden field repeats the page asked for
    assert "FSGS-0" not in body


@pytest.mark.parametrize("scope", ["ui", "rs"])
def test_ui_and_rs_tokens_see_every_page(served: dict[str, Any], scope: str) -> None:
    client = served["client"]
    header = {"Authorization": f"Bearer {served['tokens'][scope]}"}
    for path, marker in PAGES.items():
        answer = client.get(path, headers=header)
        assert answer.status_code == 200, path
        assert marker in answer.text, path


def test_the_login_sets_an_http_only_cookie(served: dict[str, Any]) -> None:
    client = served["client"]
    answer = client.post("/ui/login", data={"token": served["tokens"]["ui"],
                                            "next": "/ui/queries"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/queries"
    cookie = answer.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert client.get("/ui/queries").status_code == 200  # the cookie is sent back
    client.post("/ui/logout")
    client.cookies.clear()
    assert client.get("/ui/queries").status_code == 401
    # an outside address to go to afterwards is not followed
    answer = client.post("/ui/login", data={"token": served["tokens"]["ui"],
                                            "next": "https://elsewhere.example/"},
                         follow_redirects=False)
    assert answer.headers["location"] == "/ui"
    client.cookies.clear()


def test_other_tokens_are_refused(served: dict[str, Any]) -> None:
    client = served["client"]
    answer = client.get("/ui", headers={"Authorization": f"Bearer {served['tokens']['cu']}"})
    assert answer.status_code == 403 and "FSGS-0" not in answer.text.split('name="next"')[0]
    assert client.get("/ui", headers={"Authorization": "Bearer fa_unknown"}).status_code == 401
    answer = client.post("/ui/login", data={"token": served["tokens"]["cu"]})
    assert answer.status_code == 403 and "set-cookie" not in answer.headers
    # the ui scope reads pages, not FHIR resources
    fhir = client.get("/fhir/Patient", headers={"Authorization":
                                                f"Bearer {served['tokens']['ui']}"})
    assert fhir.status_code == 403


def test_loopback_without_tokens_sees_the_pages(served: dict[str, Any], tmp_path: Path) -> None:
    assert served["open"].get("/ui").status_code == 200
    assert "FSGS-05" in served["open"].get("/ui").text
