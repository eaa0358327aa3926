"""Bulk Data Access IG v2 client: kick-off, status polling, file download, delete.

What it relies on (Bulk Data Access IG v2.0.0, export.html):

- "Bulk Data Kick-off Request": ``GET [base]/$export``, ``[base]/Patient/$export`` or
  ``[base]/Group/[id]/$export`` with ``Accept: application/fhir+json`` and
  ``Prefer: respond-async``; ``_type``, ``_since``; a server MAY take ``POST`` with a
  ``Parameters`` body instead (tried when the GET is answered 405). Success: ``202`` with the
  polling URL in ``Content-Location``. A server that refuses a new export while one runs
  answers ``429`` with ``Retry-After``.
- "Bulk Data Status Request": clients SHOULD back off exponentially and SHOULD follow
  ``Retry-After`` (delay-seconds or an HTTP-date); ``202`` with an optional ``X-Progress``
  while running; ``429`` when polled too often; ``200`` with the manifest when complete; a
  ``4XX``/``5XX`` with an OperationOutcome when the export failed.
- "Bulk Data Output File Request": each file is fetched with a GET of its ``url`` (with the
  access token when ``requiresAccessToken`` is true), ``Accept: application/fhir+ndjson``.
- "Bulk Data Delete Request": ``DELETE`` of the polling URL after the files are retrieved tells
  the server they may go.

Downloads are streamed to disk in chunks (never a whole file in memory); a file is written
under a ``.part`` name and renamed when complete, so a download that stopped is done again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from fhir_adapter.errors import DeliveryError
from fhir_adapter.outbound.retry import RetryPolicy, parse_retry_after
from fhir_adapter.outbound.smart import send
from fhir_adapter.version import __version__

__all__ = ["BulkClient", "BulkFailed", "ExportRequest", "Manifest"]

FHIR_JSON = "application/fhir+json"
NDJSON = "application/fhir+ndjson"
_CHUNK = 1 << 16
#: status-polling waits when the server gives no Retry-After: 1, 2, 4 ... capped at 60 s
POLL_POLICY = RetryPolicy(base=1.0, factor=2.0, max_delay=60.0, jitter=0.2, max_attempts=8)

Sleep = Callable[[float], None]
Progress = Callable[[str], None]


class BulkFailed(DeliveryError):
    """The export could not be made or fetched (the server's answer, or the network's)."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What to export: the level (``system``, ``patient`` or a Group id), types, since."""

    types: tuple[str, ...]
    group: str | None = None
    patient_level: bool = False
    since: str | None = None

    def path(self) -> str:
        if self.group:
            return f"Group/{self.group}/$export"
        return "Patient/$export" if self.patient_level else "$export"

    def parameters(self) -> list[tuple[str, str]]:
        found = [("_type", ",".join(self.types))] if self.types else []
        return found + ([("_since", self.since)] if self.since else [])


@dataclass(frozen=True, slots=True)
class Manifest:
    """The complete-status answer: ``transactionTime`` and the output, deleted, error files."""

    transaction_time: str
    requires_token: bool
    output: list[dict[str, Any]]
    deleted: list[dict[str, Any]]
    error: list[dict[str, Any]]

    @classmethod
    def of(cls, body: dict[str, Any]) -> Manifest:
        if not isinstance(body.get("transactionTime"), str):
            raise BulkFailed("the export manifest has no transactionTime")
        return cls(body["transactionTime"], body.get("requiresAccessToken") is not False,
                   _files(body.get("output")), _files(body.get("deleted")),
                   _files(body.get("error")))


class BulkClient:
    """One EHR's Bulk Data endpoint, with its SMART auth (or none)."""

    def __init__(self, base_url: str, auth: requests.auth.AuthBase | None = None, *,
                 session: requests.Session | None = None, sleep: Sleep = time.sleep,
                 policy: RetryPolicy = POLL_POLICY, timeout: float = 60.0,
                 max_wait: float = 6 * 3600.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = f"fhir-adapter/{__version__}"
        self.sleep = sleep
        self.policy = policy
        self.timeout = timeout
        self.max_wait = max_wait

    def kick_off(self, request: ExportRequest) -> str:
        """The polling URL of a new export."""
        url = f"{self.base_url}/{request.path()}"
        headers = {"Accept": FHIR_JSON, "Prefer": "respond-async"}
        query = urlencode(request.parameters())
        attempt = 0
        post = False
        while True:
            attempt += 1
            if post:
                body = {"resourceType": "Parameters", "parameter": [
                    {"name": n, "valueString": v} for n, v in request.parameters()]}
                answer = self._send("POST", url, headers={**headers, "Content-Type": FHIR_JSON},
                                    json=body)
            else:
                answer = self._send("GET", f"{url}?{query}" if query else url, headers=headers)
            if answer.status_code == 202 and answer.headers.get("Content-Location"):
                return str(answer.headers["Content-Location"])
            if answer.status_code == 405 and not post:
                post = True
                continue
            self._wait_or_fail(answer, attempt, f"kick-off {url}")

    def wait(self, status_url: str, progress: Progress | None = None) -> Manifest:
        """Poll until the export is complete; its manifest."""
        attempt = 0
        waited = 0.0
        while True:
            answer = self._send("GET", status_url, headers={"Accept": "application/json"})
            if answer.status_code == 200:
                return Manifest.of(_json(answer))
            attempt += 1
            if answer.status_code == 202:
                if progress is not None and answer.headers.get("X-Progress"):
                    progress(str(answer.headers["X-Progress"])[:100])
                delay = self._delay(answer, min(attempt, 7))
            elif answer.status_code == 429 or answer.status_code in (502, 503, 504):
                if attempt > self.policy.max_attempts * 4:
                    raise BulkFailed(_failure(answer, f"status {status_url}"))
                delay = self._delay(answer, attempt)
            else:
                raise BulkFailed(_failure(answer, f"status {status_url}"))
            waited += delay
            if waited > self.max_wait:
                raise BulkFailed(f"status {status_url}: not complete after {waited:.0f} s")
            self.sleep(delay)

    def download(self, url: str, target: Path, *, with_token: bool = True) -> Path:
        """Stream one file to ``target`` (via ``target.part``); retried on 429, 5xx and
        network errors. A file already complete is not fetched again."""
        if target.is_file():
            return target
        partial = target.with_name(target.name + ".part")
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._send("GET", url, headers={"Accept": NDJSON}, stream=True,
                                auth=self.auth if with_token else None) as answer:
                    if answer.status_code == 200:
                        with partial.open("wb") as fh:
                            for chunk in answer.iter_content(_CHUNK):
                                fh.write(chunk)
                        partial.replace(target)
                        return target
                    self._wait_or_fail(answer, attempt, f"download {url}")
            except requests.RequestException as exc:
                if attempt >= self.policy.max_attempts:
                    raise BulkFailed(f"download {url}: {type(exc).__name__}") from None
                self.sleep(self.policy.delay(attempt))

    def delete(self, status_url: str) -> int:
        """Tell the server the files are fetched; its status code (a failure is only said)."""
        try:
            answer = self._send("DELETE", status_url, headers={"Accept": FHIR_JSON})
        except BulkFailed:
            return 0
        answer.close()
        return answer.status_code

    def _send(self, method: str, url: str, *, auth: Any = "default",
              **options: Any) -> requests.Response:
        chosen = self.auth if auth == "default" else auth
        try:
            return send(self.session, chosen, method, url, timeout=self.timeout, **options)
        except requests.RequestException as exc:
            raise BulkFailed(f"{method} {url}: {type(exc).__name__}") from None

    def _delay(self, answer: requests.Response, attempt: int) -> float:
        after = parse_retry_after(answer.headers.get("Retry-After"), datetime.now(UTC))
        return self.policy.delay(attempt, after)

    def _wait_or_fail(self, answer: requests.Response, attempt: int, what: str) -> None:
        """Wait before the next try of a 429 or 5xx answer; raise for any other, or when the
        tries are spent."""
        status = answer.status_code
        if (status == 429 or 500 <= status <= 599) and attempt < self.policy.max_attempts:
            delay = self._delay(answer, attempt)
            answer.close()
            self.sleep(delay)
            return
        raise BulkFailed(_failure(answer, what))


def _files(value: Any) -> list[dict[str, Any]]:
    items: Iterable[Any] = value if isinstance(value, list) else []
    return [f for f in items if isinstance(f, dict) and isinstance(f.get("url"), str)]


def _json(answer: requests.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        raise BulkFailed(f"{answer.url}: the answer is not JSON") from None
    if not isinstance(body, dict):
        raise BulkFailed(f"{answer.url}: the answer is not a JSON object")
    return body


def _failure(answer: requests.Response, what: str) -> str:
    """``what: HTTP 404: diagnostics`` from the OperationOutcome, when there is one."""
    text = ""
    try:
        body = answer.json()
        issues = body.get("issue") if isinstance(body, dict) else None
        if isinstance(issues, list) and issues and isinstance(issues[0], dict):
            first = issues[0]
            text = str(first.get("diagnostics") or (first.get("details") or {}).get("text") or "")
        elif isinstance(body, dict) and body.get("error"):
            text = str(body.get("error_description") or body["error"])
    except ValueError:
        pass
    return f"{what}: HTTP {answer.status_code}" + (f": {text[:300]}" if text else "")
