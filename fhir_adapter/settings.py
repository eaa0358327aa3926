"""One typed Settings object, read from FHIR_ADAPTER_* variables or a .env file."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "default_database_url", "is_loopback"]


def default_database_url() -> str:
    """A SQLite file in the working directory."""
    return f"sqlite:///{Path.cwd() / 'fhir-adapter.db'}"


class Settings(BaseSettings):
    """Everything configurable, built once at the edge (cli, api) and passed down."""

    model_config = SettingsConfigDict(env_prefix="FHIR_ADAPTER_", env_file=".env", extra="ignore")

    database_url: str = ""
    tokens_file: Path = Path("fhir-adapter-tokens.json")
    push_url: str | None = None
    push_token: str | None = None
    #: the longest wait a research server's Retry-After may ask of ``push`` and its worker
    #: (seconds); a longer one is cut to it
    push_max_retry_after: float = 120.0
    #: the SMART Backend Services client the research server registered for ``push`` (its
    #: private key: ``ehr_key_file``, the site's one key pair, whose public set is served at
    #: /.well-known/jwks.json); when set, push asks the research server's token endpoint for
    #: an access token instead of sending ``push_token``
    push_client_id: str | None = None
    push_token_url: str | None = None
    push_scope: str = "system/*.cu"
    max_body_bytes: int = 50 * 1024 * 1024
    max_json_depth: int = 64
    study_file: Path | None = None
    mappings_dir: Path | None = None
    sender: str = "cli"
    #: a value outside its analyte's plausible range (mappings/analytes.toml): ``refuse`` it
    #: at the door, or ``warn`` (kept with a warning, and listed by the implausible queries)
    implausible_values: Literal["refuse", "warn"] = "refuse"
    #: processes that validate the lines of a large NDJSON file beside the one that writes;
    #: unset: one less than the cores (at most 4); 0: none
    bulk_workers: int | None = None
    #: keyed-hash secret for pseudonymous ids in result Bundles (>= 16 characters); when unset,
    #: one is generated once and kept in the database. It never leaves the adapter.
    pseudonym_key: SecretStr | None = None
    #: the hospital's EHR that ``pull`` reads from: its FHIR base URL, the SMART Backend
    #: Services client registered there (client id, private key file, scope), the token
    #: endpoint when its smart-configuration does not name it, the Group of the trial
    ehr_base_url: str | None = None
    ehr_client_id: str | None = None
    ehr_key_file: Path = Path("fhir-adapter-key.pem")
    ehr_token_url: str | None = None
    ehr_scope: str = "system/*.rs"
    ehr_group_id: str | None = None
    #: the URL at which the EHR reaches ``serve``: Subscriptions made by ``subscribe`` send
    #: their notifications to PUBLIC_URL/notifications/ID
    public_url: str = "http://127.0.0.1:8080"
    #: where a pull keeps the files it downloads until they are loaded
    pull_dir: Path = Path("fhir-adapter-pull")
    #: where Bulk Data export files are written; unset: beside a SQLite database, else here
    export_dir: Path | None = None
    #: how long a finished export's files are kept before they are removed
    export_retention_seconds: int = 86400
    #: participants an export reads and writes per chunk (its memory holds one chunk)
    export_batch: int = 10

    def db_url(self) -> str:
        return self.database_url or default_database_url()


def is_loopback(host: str | None) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if not host:
        return False
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
