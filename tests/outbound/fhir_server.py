"""A small research FHIR server for the push tests: standard library only, loopback only.

It follows the FHIR R4 rules the push relies on: a ``transaction`` is all or nothing; a
conditional ``PUT Type?identifier=s|v`` updates the one match, creates when none, answers 412
for several; ``urn:uuid`` fullUrls and conditional references are resolved; every write makes a
new version (``meta.versionId``), kept in a history, unless it changes nothing. Search by
``identifier`` and the history answer what the tests check. Faults are planned per POST
(``plan``): an HTTP status, a connection dropped mid-answer after the commit, or a stall until
the test releases it.
"""

from __future__ import annotations

import copy
import json
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["Fault", "FhirTestServer", "Refusal"]

Rule = Callable[[dict[str, Any]], str | None]  # resource -> why it is refused, or None


class Refusal(Exception):
    def __init__(self, status: int, code: str, text: str, expression: str | None = None) -> None:
        super().__init__(text)
        self.status, self.code, self.text, self.expression = status, code, text, expression

    def outcome(self) -> dict[str, Any]:
        issue: dict[str, Any] = {"severity": "error", "code": self.code, "diagnostics": self.text}
        if self.expression:
            issue["expression"] = [self.expression]
        return {"resourceType": "OperationOutcome", "issue": [issue]}


@dataclass
class Fault:
    """What the server does to one POST instead of (or around) answering it."""

    kind: str  # "status" | "drop" | "stall"
    status: int = 503
    retry_after: str | None = None
    release: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Store:
    versions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # "Type/id" -> history

    def current(self, rtype: str) -> list[dict[str, Any]]:
        return [h[-1] for key, h in self.versions.items() if key.split("/")[0] == rtype]

    def by_identifier(self, rtype: str, system: str | None, value: str) -> list[dict[str, Any]]:
        return [
            r for r in self.current(rtype)
            if any(i.get("value") == value and (system is None or i.get("system") == system)
                   for i in r.get("identifier") or [])
        ]


class FhirTestServer:
    """``base_url`` ends in ``/fhir``; ``token`` is the one bearer token accepted."""

    def __init__(self, *, token: str = "research-token", port: int = 0,
                 rules: list[Rule] | None = None) -> None:
        self.token = token
        self.rules = rules or []
        self.plan: list[Fault] = []
        self.posts = 0  # transactions received
        self.commits = 0  # transactions that changed the store
        self.store = _Store()
        self.lock = threading.Lock()
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None

    # -- life -----------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/fhir"

    def start(self) -> FhirTestServer:
        handler = type("Handler", (_Handler,), {"server_state": self})
        ThreadingHTTPServer.allow_reuse_address = True
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        self._httpd.daemon_threads = True
        self._port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        for fault in self.plan:
            fault.release.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    # -- what the tests look at -----------------------------------------------------------------

    def search(self, rtype: str, identifier: str) -> list[dict[str, Any]]:
        system, _, value = identifier.rpartition("|")
        with self.lock:
            return copy.deepcopy(self.store.by_identifier(rtype, system or None, value))

    def history(self, rtype: str, rid: str) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self.store.versions.get(f"{rtype}/{rid}", []))

    def count(self, rtype: str) -> int:
        with self.lock:
            return len(self.store.current(rtype))

    # -- the transaction ------------------------------------------------------------------------

    def transaction(self, bundle: Any) -> dict[str, Any]:
        if not isinstance(bundle, dict) or bundle.get("type") != "transaction":
            raise Refusal(400, "invalid", "expected a transaction Bundle")
        entries = bundle.get("entry") or []
        with self.lock:
            staged = _Store({k: list(v) for k, v in self.store.versions.items()})
            targets = [self._target(staged, e, i) for i, e in enumerate(entries)]
            urns = {e.get("fullUrl"): t for e, t in zip(entries, targets, strict=True)}
            answers = [self._put(staged, e, t, urns, i)
                       for i, (e, t) in enumerate(zip(entries, targets, strict=True))]
            self.store = staged
            self.commits += 1
        return {"resourceType": "Bundle", "type": "transaction-response", "entry": answers}

    def _target(self, staged: _Store, entry: dict[str, Any], index: int) -> str:
        request = entry.get("request") or {}
        if request.get("method") != "PUT":
            raise Refusal(400, "not-supported", "this server takes PUTs only",
                          f"Bundle.entry[{index}].request.method")
        path, _, query = str(request.get("url", "")).partition("?")
        if not query:
            return path
        params = dict(parse_qsl(query))
        system, _, value = params.get("identifier", "").rpartition("|")
        matches = staged.by_identifier(path, system or None, value)
        if len(matches) > 1:
            raise Refusal(412, "multiple-matches", f"{request['url']} matches {len(matches)}")
        return f"{path}/{matches[0]['id']}" if matches else f"{path}/{uuid.uuid4().hex}"

    def _put(self, staged: _Store, entry: dict[str, Any], target: str, urns: dict[Any, str],
             index: int) -> dict[str, Any]:
        resource = _resolve(copy.deepcopy(entry.get("resource") or {}), urns, staged, index)
        for rule in self.rules:
            why = rule(resource)
            if why:
                raise Refusal(422, "processing", why, f"Bundle.entry[{index}].resource")
        history = staged.versions.setdefault(target, [])
        resource["id"] = target.split("/")[1]
        if history and _content(history[-1]) == _content(resource):
            # an update that changes nothing makes no new version (as common servers do)
            current = len(history)
            return {"response": {"status": "200 OK",
                                 "location": f"{target}/_history/{current}",
                                 "etag": f'W/"{current}"'}}
        version = len(history) + 1
        resource["meta"] = {"versionId": str(version),
                            "lastUpdated": datetime.now(UTC).isoformat()}
        history.append(resource)
        return {"response": {"status": "201 Created" if version == 1 else "200 OK",
                             "location": f"{target}/_history/{version}",
                             "etag": f'W/"{version}"'}}


def _content(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource without its version metadata, to tell a no-op update."""
    return {k: v for k, v in resource.items() if k != "meta"}


def _resolve(value: Any, urns: dict[Any, str], staged: _Store, index: int) -> Any:
    if isinstance(value, list):
        return [_resolve(v, urns, staged, index) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _resolve(v, urns, staged, index) for k, v in value.items()}
    ref = out.get("reference")
    if isinstance(ref, str):
        if ref in urns:
            out["reference"] = urns[ref]
        elif ref.startswith("urn:"):
            raise Refusal(400, "not-found", f"{ref} is not in the Bundle",
                          f"Bundle.entry[{index}].resource")
        elif "?identifier=" in ref:
            rtype, _, query = ref.partition("?")
            system, _, v = dict(parse_qsl(query))["identifier"].rpartition("|")
            found = staged.by_identifier(rtype, system or None, v)
            if len(found) != 1:
                raise Refusal(412, "multiple-matches", f"{ref} matches {len(found)}")
            out["reference"] = f"{rtype}/{found[0]['id']}"
    return out


class _Handler(BaseHTTPRequestHandler):
    server_state: FhirTestServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet in tests
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        state = self.server_state
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with state.lock:
            state.posts += 1
            fault = state.plan.pop(0) if state.plan else None
        if not self._authorised():
            return
        if fault is not None and fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            self._send(fault.status, Refusal(fault.status, "transient", "try later").outcome(),
                       headers)
            return
        if fault is not None and fault.kind == "stall":
            fault.arrived.set()
            fault.release.wait(60)
        try:
            answer = state.transaction(json.loads(body))
        except Refusal as refusal:
            self._send(refusal.status, refusal.outcome())
            return
        except ValueError:
            self._send(400, Refusal(400, "structure", "not JSON").outcome())
            return
        if fault is not None and fault.kind == "drop":
            self._drop(answer)
            return
        self._send(200, answer)

    def do_GET(self) -> None:  # noqa: N802
        if not self._authorised():
            return
        parts = urlsplit(self.path)
        rtype = parts.path.removeprefix("/fhir/").split("/")[0]
        identifier = dict(parse_qsl(parts.query)).get("identifier", "")
        found = self.server_state.search(rtype, identifier) if identifier else []
        self._send(200, {"resourceType": "Bundle", "type": "searchset", "total": len(found),
                         "entry": [{"resource": r} for r in found]})

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {self.server_state.token}":
            return True
        self._send(401, Refusal(401, "login", "a valid bearer token is needed").outcome())
        return False

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None,
              ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _drop(self, answer: dict[str, Any]) -> None:
        """Committed, but the connection breaks halfway through the answer."""
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True
