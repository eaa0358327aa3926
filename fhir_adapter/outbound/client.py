"""The HTTP client that POSTs a transaction Bundle of conditional PUTs to a research FHIR server."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from fhir_adapter.errors import ConfigError, DeliveryError, Issue
from fhir_adapter.outbound.retry import is_retryable_status, parse_retry_after
from fhir_adapter.outbound.smart import AuthFailed, SmartAuth
from fhir_adapter.settings import is_loopback
from fhir_adapter.version import __version__

__all__ = [
    "FHIR_JSON",
    "FhirClient",
    "Rejected",
    "Timeouts",
    "Transient",
    "check_transaction",
]

FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait for the connection, and for each read of the answer."""

    connect: float = 10.0
    read: float = 120.0


class Transient(DeliveryError):
    """The delivery may or may not have happened; try again (network error, 408, 429, 5xx)."""

    def __init__(self, message: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class Rejected(DeliveryError):
    """The server refused the Bundle for good (a 4xx other than 408 and 429)."""

    def __init__(self, message: str, *, status: int, outcome: dict[str, Any] | None) -> None:
        issues = [Issue("error", "processing", None, message)]
        super().__init__(message, issues=issues)
        self.status = status
        self.outcome = outcome


def check_transaction(bundle: dict[str, Any]) -> None:
    """Refuse anything but a ``transaction`` of PUTs (conditional by identifier, or to a stable
    ``Type/id``): only those make a re-delivery harmless."""
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
        raise ConfigError("a push needs a Bundle of type 'transaction'")
    for index, entry in enumerate(bundle.get("entry") or []):
        request = entry.get("request") or {}
        url = str(request.get("url", ""))
        path, _, query = url.partition("?")
        by_identifier = query.startswith("identifier=") and "/" not in path
        by_id = not query and path.count("/") == 1
        if request.get("method") != "PUT" or not (by_identifier or by_id):
            raise ConfigError(
                f"Bundle.entry[{index}] is {request.get('method')} {url!r}: a push sends only "
                "PUTs, conditional by identifier or to a stable id"
            )


class FhirClient:
    """A research FHIR server at ``base_url`` (https, or http on loopback only for testing).

    ``session`` is the HTTP transport (a ``requests.Session``); TLS certificates are always
    verified (``ca_bundle`` names extra trusted authorities), redirects are not followed.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        auth: SmartAuth | None = None,
        session: requests.Session | None = None,
        timeouts: Timeouts | None = None,
        ca_bundle: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        parts = urlsplit(base_url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"push URL {base_url!r} is not an http(s) URL of a FHIR base")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ConfigError(f"push URL {base_url!r}: results leave only over https "
                              "(plain http is allowed to a loopback address only)")
        self.base_url = base_url.rstrip("/")
        self.token = token
        #: SMART Backend Services: an access token of the server's own authorization server
        #: (then ``token`` is not sent)
        self.auth = auth
        self.session = session or requests.Session()
        self.timeouts = timeouts or Timeouts()
        self.verify: bool | str = ca_bundle or True
        self.clock = clock or (lambda: datetime.now(UTC))

    def headers(self) -> dict[str, str]:
        out = {
            "Content-Type": f"{FHIR_JSON}; charset=utf-8",
            "Accept": FHIR_JSON,
            "Prefer": "return=minimal",
            "User-Agent": f"fhir-adapter/{__version__}",
        }
        if self.token and self.auth is None:
            out["Authorization"] = f"Bearer {self.token}"
        return out

    def post_transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """POST the Bundle to the base URL; the ``transaction-response`` on success.

        Raises ``Transient`` (try again) or ``Rejected`` (do not)."""
        check_transaction(bundle)
        body = json.dumps(bundle, ensure_ascii=False).encode("utf-8")
        response, content = self._post(body)
        if response.status_code == 401 and self.auth is not None:
            self.auth.invalidate()  # revoked or expired early: one new token, one more try
            response, content = self._post(body)
        return self._answer(response, content, len(bundle.get("entry") or []))

    def _post(self, body: bytes) -> tuple[requests.Response, bytes]:
        try:
            response = self.session.post(
                self.base_url,
                data=body,
                headers=self.headers(),
                auth=self.auth,
                timeout=(self.timeouts.connect, self.timeouts.read),
                verify=self.verify,
                allow_redirects=False,
            )
            content = response.content  # read it all here: a cut body is a network error
        except AuthFailed as exc:
            # no access token: the results stay queued, and the reason is the token
            # endpoint's answer (a registration to fix, or a server away)
            raise Transient(f"{self.base_url}: no access token: {exc.message}",
                            status=401) from None
        except requests.RequestException as exc:
            raise Transient(f"{self.base_url}: {_describe(exc)}") from exc
        return response, content

    def _answer(self, response: requests.Response, content: bytes, sent: int) -> dict[str, Any]:
        status = response.status_code
        if is_retryable_status(status):
            wait = parse_retry_after(response.headers.get("Retry-After"), self.clock())
            raise Transient(f"{self.base_url}: HTTP {status} {_diagnostics(content)}".rstrip(),
                            status=status, retry_after=wait)
        if 300 <= status < 400:
            where = response.headers.get("Location", "?")
            raise Rejected(f"{self.base_url}: HTTP {status}, redirected to {where}; "
                           "configure that URL", status=status, outcome=None)
        if status >= 400 or status < 200:
            outcome = _outcome(content)
            raise Rejected(f"{self.base_url}: HTTP {status} {_diagnostics(content)}".rstrip(),
                           status=status, outcome=outcome)
        return _transaction_response(content, sent, self.base_url)


def _transaction_response(content: bytes, sent: int, base_url: str) -> dict[str, Any]:
    """A 2xx answer must be a complete transaction-response; anything else leaves the delivery in
    doubt, so it is taken as transient (re-sending conditional PUTs is harmless)."""
    try:
        answer = json.loads(content) if content else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or answer.get("type") != "transaction-response":
        raise Transient(f"{base_url}: the answer is not a transaction-response")
    entries = answer.get("entry") or []
    if len(entries) != sent:
        raise Transient(f"{base_url}: the transaction-response has {len(entries)} entries "
                        f"for {sent} sent")
    return answer


def _outcome(content: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(content) if content else None
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("resourceType") == "OperationOutcome":
        return data
    return None


def _diagnostics(content: bytes) -> str:
    """The first issue of an OperationOutcome body, or the start of a text body."""
    outcome = _outcome(content)
    if outcome:
        for issue in outcome.get("issue") or []:
            text = issue.get("diagnostics") or (issue.get("details") or {}).get("text")
            if text:
                where = ", ".join(issue.get("expression") or [])
                return f"{text} ({where})" if where else str(text)
        return ""
    text = content[:200].decode("utf-8", "replace").strip()
    return " ".join(text.split())


def _describe(exc: requests.RequestException) -> str:
    kinds: list[tuple[type[Exception], str]] = [
        (requests.exceptions.SSLError, "TLS verification failed"),
        (requests.exceptions.ConnectTimeout, "connect timed out"),
        (requests.exceptions.ReadTimeout, "no answer within the read timeout"),
        (requests.exceptions.ConnectionError, "connection failed"),
        (requests.exceptions.ChunkedEncodingError, "connection dropped mid-answer"),
    ]
    for kind, text in kinds:
        if isinstance(exc, kind):
            return f"{text} ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"
