"""Public keys of SMART clients fetched from their ``jwks_url``, cached for a few minutes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from fhir_adapter.errors import DeliveryError

__all__ = ["JwksFetcher"]

#: How long a fetched key set is used before it is fetched again.
CACHE_SECONDS = 300.0
_TIMEOUT = (5.0, 10.0)
_MAX_BYTES = 1_000_000


class JwksFetcher:
    """``keys(url)`` gives the key set at ``url``; ``refresh=True`` fetches it again (a ``kid``
    not found may be a key the client rotated in since the last fetch)."""

    def __init__(self, *, session: requests.Session | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._session = session or requests.Session()
        self._clock = clock
        self._cache: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()

    def keys(self, url: str, *, refresh: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            cached = self._cache.get(url)
        if cached is not None and not refresh and cached[0] > self._clock():
            return cached[1]
        keys = self._fetch(url)
        with self._lock:
            self._cache[url] = (self._clock() + CACHE_SECONDS, keys)
        return keys

    def _fetch(self, url: str) -> list[dict[str, Any]]:
        try:
            answer = self._session.get(url, timeout=_TIMEOUT,
                                       headers={"Accept": "application/json"})
        except requests.RequestException as exc:
            raise DeliveryError(f"the key set at {url} could not be fetched: {exc}") from exc
        if answer.status_code != 200 or len(answer.content) > _MAX_BYTES:
            raise DeliveryError(f"the key set at {url} answered HTTP {answer.status_code}")
        try:
            document = answer.json()
        except ValueError as exc:
            raise DeliveryError(f"the key set at {url} is not JSON") from exc
        keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(keys, list):
            raise DeliveryError(f"the key set at {url} has no 'keys' list")
        return [k for k in keys if isinstance(k, dict)]
