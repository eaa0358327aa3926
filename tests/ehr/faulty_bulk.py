"""A small Bulk Data server of faults sekmet-fhir cannot be made to show: 429 with Retry-After
in both forms, a 5xx on a download, an error file in the manifest, an access token that the
server stops taking in the middle of a pull. Its token endpoint checks the client assertion
with PyJWT as an authorization server would (aud, exp within five minutes, kid, one-time jti).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


class FaultyBulkServer:
    """Serves one export of ``files`` (type -> NDJSON text) with the faults listed in its
    attributes; ``seen`` counts the requests per path, ``assertions`` keeps the decoded
    client assertions."""

    def __init__(self, files: dict[str, str], jwks: dict[str, Any], client_id: str, *,
                 deleted: list[str] = (), post_only: bool = False) -> None:
        self.files = files
        self.deleted_keys = list(deleted)  # ``Type/id`` the export says were deleted
        self.post_only = post_only  # the kick-off is a POST with Parameters (GET: 405)
        self.kick_off_bodies: list[dict[str, Any]] = []
        self.keys = {k["kid"]: k for k in jwks["keys"]}
        self.client_id = client_id
        self.seen: Counter[str] = Counter()
        self.assertions: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.jtis: set[str] = set()
        self.tokens: list[str] = []
        self.revoked: set[str] = set()
        self.deleted = False
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"

    def __enter__(self) -> FaultyBulkServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- what each path answers -----------------------------------------------------------
    def token(self, form: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        assertion = form.get("client_assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
            jwk = self.keys[header["kid"]]
            algorithm = RSAAlgorithm if jwk["kty"] == "RSA" else ECAlgorithm
            claims = jwt.decode(assertion, algorithm.from_jwk(json.dumps(jwk)),
                                algorithms=[header["alg"]], audience=f"{self.root}/auth/token",
                                options={"require": ["exp", "iss", "sub", "aud", "jti"]})
        except (KeyError, jwt.PyJWTError) as exc:
            return _oauth(401, "invalid_client", str(exc))
        now = datetime.now(UTC).timestamp()
        if claims["exp"] > now + 300 or claims["iss"] != claims["sub"] != self.client_id \
                or claims["jti"] in self.jtis:
            return _oauth(401, "invalid_client", "assertion refused")
        self.jtis.add(claims["jti"])
        self.assertions.append(claims)
        self.headers.append(header)
        token = f"token-{len(self.tokens) + 1}"
        self.tokens.append(token)
        return 200, {"Content-Type": "application/json"}, json.dumps(
            {"access_token": token, "token_type": "bearer", "expires_in": 300,
             "scope": form.get("scope", "")}).encode()

    @property
    def root(self) -> str:
        return self.base[: -len("/fhir")]

    def answer(self, method: str, path: str, auth: str,
               body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        count = self.seen[f"{method} {path}"]
        if path != "/fhir/.well-known/smart-configuration" and not self._authorised(auth):
            return 401, {}, b""
        if path == "/fhir/.well-known/smart-configuration":
            return _json({"token_endpoint": f"{self.root}/auth/token",
                          "token_endpoint_auth_methods_supported": ["private_key_jwt"]})
        if path == "/fhir/Patient/$export":
            if self.post_only and method == "GET":
                return 405, {}, b""
            if method == "POST":
                self.kick_off_bodies.append(json.loads(body))
                return 202, {"Content-Location": f"{self.base}/status/1"}, b""
            if count == 1:  # a new export refused while "another" runs: 429, seconds
                return 429, {"Retry-After": "7"}, b""
            return 202, {"Content-Location": f"{self.base}/status/1"}, b""
        if path == "/fhir/status/1" and method == "DELETE":
            self.deleted = True
            return 202, {}, b""
        if path == "/fhir/status/1":
            if count == 1:  # polled too often: 429, an HTTP-date
                when = datetime.now(UTC) + timedelta(seconds=30)
                return 429, {"Retry-After": format_datetime(when, usegmt=True)}, b""
            if count == 2:
                return 202, {"X-Progress": "50% complete", "Retry-After": "4"}, b""
            return _json(self.manifest())
        if path.startswith("/fhir/files/"):
            name = path.rsplit("/", 1)[-1]
            if name == "Observation" and count == 1:
                return 503, {"Retry-After": "1"}, b""
            if name == "Observation" and count == 2:  # the token stops being taken
                self.revoked.add(auth.removeprefix("Bearer "))
                return 401, {}, b""
            if name == "deleted":
                bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
                    {"request": {"method": "DELETE", "url": key}} for key in self.deleted_keys]}
                return 200, {}, (json.dumps(bundle) + "\n").encode()
            if name == "errors":
                return 200, {}, (json.dumps({"resourceType": "OperationOutcome", "issue": [
                    {"severity": "error", "code": "processing",
                     "diagnostics": "Specimen export failed: index unavailable"}]}) + "\n").encode()
            return 200, {"Content-Type": "application/fhir+ndjson"}, self.files[name].encode()
        return 404, {}, b""

    def manifest(self) -> dict[str, Any]:
        return {"transactionTime": "2026-12-01T10:00:00Z",
                "request": f"{self.base}/Patient/$export", "requiresAccessToken": True,
                "output": [{"type": t, "url": f"{self.base}/files/{t}"} for t in self.files],
                "error": [{"type": "OperationOutcome", "url": f"{self.base}/files/errors"}],
                "deleted": [{"type": "Bundle", "url": f"{self.base}/files/deleted"}]
                if self.deleted_keys else []}

    def _authorised(self, auth: str) -> bool:
        token = auth.removeprefix("Bearer ")
        return token in self.tokens and token not in self.revoked

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _serve(self, method: str) -> None:
                path = urlsplit(self.path).path
                with server.lock:
                    server.seen[f"{method} {path}"] += 1
                    size = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(size) if size else b""
                    if path == "/auth/token":
                        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                        reply = server.token(form)
                    else:
                        reply = server.answer(method, path,
                                              self.headers.get("Authorization", ""), body)
                self._reply(*reply)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        return Handler


def _json(body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


def _oauth(status: int, error: str, text: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(
        {"error": error, "error_description": text}).encode()
