"""Bearer tokens and SMART v2 scopes on every call but /metadata; the loopback-only rule."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import Request

from fhir_adapter.errors import AuthError, ConfigError, Forbidden, Issue, Where
from fhir_adapter.settings import is_loopback
from fhir_adapter.store.tokens import Principal, Scope, TokenFile

__all__ = ["LOCAL", "authenticate", "check_bind", "is_loopback", "require"]

#: The caller when no token is configured and the call comes from this machine.
LOCAL = Principal("local", (Scope("*", frozenset("cruds")),))

def check_bind(host: str, tokens: TokenFile) -> None:
    """Refuse to serve on an address other than loopback when no token is configured."""
    if not is_loopback(host) and not tokens.configured():
        raise ConfigError(
            f"refusing to listen on {host}: no token is configured in {tokens.path}; "
            "create one with `fhir-adapter token create --name NAME --scope system/*.cu` "
            "or listen on 127.0.0.1",
            where=Where(file=str(tokens.path)),
        )


def authenticate(request: Request) -> Principal:
    """The caller of this request, from ``Authorization: Bearer``; 401 when missing or unknown."""
    tokens: TokenFile = request.app.state.tokens
    header = request.headers.get("authorization")
    smart = getattr(request.app.state, "smart", None)
    if header is None:
        configured = tokens.configured() or (smart is not None and smart.registry.any())
        if not configured and is_loopback(request.client.host if request.client else None):
            return LOCAL
        raise AuthError("this call needs an Authorization: Bearer token")
    scheme, _, secret = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise AuthError("the Authorization header must be 'Bearer <token>'")
    principal = tokens.verify(secret.strip())
    if principal is None and smart is not None:  # an access token of the token endpoint
        principal = smart.principal(secret.strip())
    if principal is None:
        raise AuthError("the bearer token is not known to this server")
    return principal


def require(
    principal: Principal, needs: Iterable[tuple[str, str]], *, expression: str | None = None
) -> None:
    """403 unless the principal's scopes allow every (resource type, action) pair."""
    for resource_type, action in needs:
        if not principal.allows(resource_type, action):
            text = principal.refusal(resource_type, action)
            raise Forbidden(text, issues=[Issue("error", "forbidden", expression, text)])
