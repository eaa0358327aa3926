"""Who may see the dashboard: a token of the ``ui`` or ``system/*.rs`` scope, sent as the
bearer header or kept (after the login form) in an HttpOnly cookie; on loopback, with no token
configured at all, anyone on this machine (as the FHIR endpoint allows)."""

from __future__ import annotations

from starlette.requests import Request

from fhir_adapter.api.security import LOCAL, authenticate
from fhir_adapter.errors import AuthError
from fhir_adapter.store.tokens import UI, Principal, TokenFile

__all__ = ["COOKIE", "Refusal", "allowed", "known", "viewer"]

COOKIE = "fhir_adapter_ui"


class Refusal(Exception):
    """No page for this caller: 401 (no or unknown token) or 403 (a token without the scope)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def allowed(principal: Principal) -> bool:
    """The ``ui`` scope, or read and search of every resource type (``system/*.rs``)."""
    return principal.allows(UI, "r") or (principal.allows("*", "r")
                                         and principal.allows("*", "s"))


def viewer(request: Request) -> Principal:
    """The caller of a page: from the header as the FHIR endpoint reads it, else from the
    login's cookie; 401 without a known token, 403 with one of another scope."""
    cookie = request.cookies.get(COOKIE) or None
    try:
        if request.headers.get("authorization") is None and cookie is not None:
            principal = known(request, cookie)
            if principal is None:
                raise AuthError("this token is not known to the server")
        else:
            principal = authenticate(request)
    except AuthError as exc:
        raise Refusal(401, exc.message) from None
    if principal is not LOCAL and not allowed(principal):
        raise Refusal(403, f"token {principal.name!r} (scopes: {principal.scope_text()}) may "
                           "not see the dashboard: that needs the ui or system/*.rs scope")
    return principal


def known(request: Request, secret: str) -> Principal | None:
    """The principal of a token: a configured one (AuthError when revoked or expired), else
    an access token of the SMART token endpoint."""
    tokens: TokenFile = request.app.state.tokens
    principal = tokens.verify(secret)
    smart = getattr(request.app.state, "smart", None)
    if principal is None and smart is not None:
        principal = smart.principal(secret)
    return principal
