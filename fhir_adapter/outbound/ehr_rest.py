"""The EHR's FHIR REST API as the Subscriptions need it: read, search (every page), create and
update a Subscription, ``$status``, the CapabilityStatement. With SMART Backend Services auth
(``outbound.smart``: a 401 gets one new token and one retry) or none."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

import requests

from fhir_adapter.errors import DeliveryError
from fhir_adapter.outbound.smart import send
from fhir_adapter.version import __version__

__all__ = ["EhrFailed", "EhrRest"]

FHIR_JSON = "application/fhir+json"
#: At most this many pages are followed in one search (a bound on a runaway ``next`` chain).
MAX_PAGES = 1000


class EhrFailed(DeliveryError):
    """The EHR refused a request or could not be reached. Answered 503 to a notification
    that needed it: the EHR may send it again."""

    exit_code = 1
    http_status = 503

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class EhrRest:
    """One EHR's FHIR base URL, with its auth."""

    def __init__(self, base_url: str, auth: requests.auth.AuthBase | None = None, *,
                 session: requests.Session | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = f"fhir-adapter/{__version__}"
        self.timeout = timeout

    def url(self, path: str) -> str:
        """An absolute URL of the server as given, else one relative to the base."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def read(self, reference: str) -> dict[str, Any] | None:
        """The resource a ``Type/id`` (or absolute) reference names; None when it is gone."""
        answer = self._send("GET", self.url(reference))
        if answer.status_code in (404, 410):
            return None
        return self._body(answer, f"GET {reference}")

    def search(self, query: str) -> Iterator[dict[str, Any]]:
        """Every resource of a search (``Type?params``), following ``next`` links; the
        ``include``/``outcome`` entries are left out."""
        url: str | None = self.url(query)
        pages = 0
        while url is not None and pages < MAX_PAGES:
            pages += 1
            bundle = self._body(self._send("GET", url), f"GET {url}")
            for entry in bundle.get("entry") or []:
                resource = entry.get("resource") if isinstance(entry, dict) else None
                mode = (entry.get("search") or {}).get("mode", "match")
                if isinstance(resource, dict) and mode == "match":
                    yield resource
            url = next((urljoin(self.base_url + "/", str(link.get("url")))
                        for link in bundle.get("link") or []
                        if isinstance(link, dict) and link.get("relation") == "next"
                        and link.get("url")), None)

    def create(self, resource: dict[str, Any]) -> dict[str, Any]:
        answer = self._send("POST", self.url(str(resource["resourceType"])), json=resource,
                            headers={"Content-Type": FHIR_JSON, "Prefer": "return=representation"})
        return self._body(answer, f"POST {resource['resourceType']}")

    def update(self, resource: dict[str, Any]) -> dict[str, Any]:
        path = f"{resource['resourceType']}/{resource['id']}"
        answer = self._send("PUT", self.url(path), json=resource,
                            headers={"Content-Type": FHIR_JSON, "Prefer": "return=representation"})
        return self._body(answer, f"PUT {path}")

    def delete(self, reference: str) -> int:
        answer = self._send("DELETE", self.url(reference))
        answer.close()
        return answer.status_code

    def capability(self) -> dict[str, Any]:
        return self._body(self._send("GET", self.url("metadata")), "GET metadata")

    def status(self, subscription_id: str) -> dict[str, Any]:
        """``GET Subscription/{id}/$status`` (Backport IG, "Operations": $status)."""
        path = f"Subscription/{subscription_id}/$status"
        return self._body(self._send("GET", self.url(path)), f"GET {path}")

    def _send(self, method: str, url: str, **options: Any) -> requests.Response:
        headers = {"Accept": FHIR_JSON, **options.pop("headers", {})}
        try:
            return send(self.session, self.auth, method, url, headers=headers,
                        timeout=self.timeout, **options)
        except requests.RequestException as exc:
            raise EhrFailed(f"{method} {url}: {type(exc).__name__}") from None

    @staticmethod
    def _body(answer: requests.Response, what: str) -> dict[str, Any]:
        try:
            body = answer.json()
        except ValueError:
            body = None
        if not answer.ok:
            text = ""
            issues = body.get("issue") if isinstance(body, dict) else None
            if isinstance(issues, list) and issues and isinstance(issues[0], dict):
                text = str(issues[0].get("diagnostics")
                           or (issues[0].get("details") or {}).get("text") or "")
            raise EhrFailed(f"{what}: HTTP {answer.status_code}"
                            + (f": {text[:300]}" if text else ""), status=answer.status_code)
        if not isinstance(body, dict):
            raise EhrFailed(f"{what}: the answer is not a JSON object", status=answer.status_code)
        return body
