"""The pseudonym key of published ids: configured, or made once in the store by a write."""

from __future__ import annotations

import secrets

from fhir_adapter.errors import ConfigError
from fhir_adapter.results import ResultBuilder
from fhir_adapter.store import Store, Unit
from fhir_adapter.store.secrets import PSEUDONYM_KEY, read_secret, secret
from fhir_adapter.terminology import Terminology
from fhir_adapter.trial.definitions import AnalyteCatalogue, StudyDefinition

__all__ = ["PseudonymKey", "configured_key"]

_MIN_KEY_BYTES = 16


def configured_key(settings: object) -> bytes | None:
    """The pseudonym key of the settings (``FHIR_ADAPTER_PSEUDONYM_KEY``), when one is set."""
    raw = getattr(settings, "pseudonym_key", None)
    if raw is None or raw == "":
        return None
    if hasattr(raw, "get_secret_value"):
        raw = raw.get_secret_value()
    key = raw if isinstance(raw, bytes) else str(raw).encode("utf-8")
    if len(key) < _MIN_KEY_BYTES:
        raise ConfigError(f"FHIR_ADAPTER_PSEUDONYM_KEY must have at least {_MIN_KEY_BYTES} "
                          f"bytes; it has {len(key)}")
    return key


class PseudonymKey:
    """The key: the configured one, else the store's (made by the first write that needs it,
    kept in memory once it is committed). A read never makes it."""

    def __init__(self, store: Store, study: StudyDefinition, catalogue: AnalyteCatalogue,
                 configured: bytes | None = None, *,
                 terminology: Terminology | None = None) -> None:
        self.store = store
        self.study = study
        self.catalogue = catalogue
        #: which analyte a source is, as the inputs were read (with the site code maps)
        self.terminology = terminology or Terminology(catalogue, study)
        self._key = configured

    def in_unit(self, unit: Unit) -> bytes:
        """The key, made in this writing unit on first use."""
        if self._key is not None:
            return self._key
        key, created = secret(unit, PSEUDONYM_KEY)
        if not created:
            self._key = key
        return key

    def for_reading(self) -> bytes:
        """The key, outside any open unit of work; a read makes nothing. Without a stored key
        no participant was ever written, so no published id depends on it: a key of this
        call alone serves (the study resources carry no pseudonym)."""
        if self._key is None:
            with self.store.read() as unit:
                found = read_secret(unit, PSEUDONYM_KEY)
            if found is None:
                return secrets.token_bytes(32)
            self._key = found
        return self._key

    def builder(self, key: bytes) -> ResultBuilder:
        """The result builder publishing under ``key``."""
        return ResultBuilder(self.study, self.catalogue, pseudonym_key=key,
                             clock=self.store.clock, terminology=self.terminology)
