"""The CapabilityStatement: what the server really does, from the tables the routes use."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fhir_adapter.api.definitions import DEFINITION_TYPES, supported_profiles
from fhir_adapter.api.searchset import DEFAULT_COUNT, INCLUDES, MAX_COUNT, REVINCLUDES
from fhir_adapter.scope import (
    CANONICAL_BASE,
    PARAMETER_TYPES,
    RESULT_SEARCH_PARAMS,
    RESULT_TYPES,
    VALIDATE_TYPES,
    WRITE_TYPES,
)
from fhir_adapter.version import __version__

__all__ = ["capability_statement"]

_DEFINITION_NOTE = (
    "The project's own profiles, value sets and code systems (profiles/), read-only: what "
    "writes are validated against and results are published with (a token with read scope)."
)
_SEARCH_NOTE = (
    f"Searches answer a page at a time: _count (default {DEFAULT_COUNT}, at most {MAX_COUNT}), "
    "the links next, previous and first followed to the end (a keyset cursor: writes between "
    "pages neither repeat nor skip an entry), total exact; _summary=count, _elements (entries "
    "tagged SUBSETTED), _total=none|estimate|accurate, _sort=_id|date|_lastUpdated (- for "
    "descending). An unknown parameter is 400, or ignored and reported under "
    "Prefer: handling=lenient."
)

_IDENTITY_NOTE = (
    "A create (POST) of a resource that is already stored under the same identity (the same "
    "identifier, else the same sender and id, else the same urn:uuid fullUrl) is taken as an "
    "update and answered 200, not 201: a retry never doubles a value."
)
_BUNDLE_NOTE = (
    "POST [base] takes a transaction or batch Bundle; POST [base]/Bundle takes a collection "
    "Bundle whose entries are each a create-or-update, answered with a batch-response. "
    "Bundles themselves are not stored."
)
_READ_NOTE = (
    "Reads and searches see only the pseudonymised endpoint results, never the hospital's data."
)


def _search_params(resource_type: str) -> list[dict[str, Any]]:
    out = []
    for name, (kind, text) in RESULT_SEARCH_PARAMS.items():
        types = PARAMETER_TYPES[name]
        if types is None or resource_type in types:
            out.append({"name": name, "type": kind, "documentation": text})
    return out


def _resource(resource_type: str) -> dict[str, Any]:
    interactions: list[str] = []
    docs: list[str] = []
    entry: dict[str, Any] = {"type": resource_type}
    if resource_type in WRITE_TYPES:
        interactions += ["create", "update"]
        docs.append(_IDENTITY_NOTE)
        entry.update(
            versioning="versioned",
            updateCreate=True,
            conditionalCreate=True,
            conditionalUpdate=True,
        )
    if resource_type in RESULT_TYPES:
        interactions += ["read", "vread", "search-type"]
        entry["conditionalRead"] = "not-match"  # If-None-Match: 304
        docs += [_READ_NOTE, _SEARCH_NOTE]
        entry["searchParam"] = _search_params(resource_type)
        for element, table in (("searchInclude", INCLUDES), ("searchRevInclude", REVINCLUDES)):
            if table.get(resource_type):  # FHIR JSON has no empty arrays
                entry[element] = list(table[resource_type])
    if resource_type in DEFINITION_TYPES:
        interactions += ["read", "search-type"]
        docs.append(_DEFINITION_NOTE)
        entry["searchParam"] = [
            {"name": "_id", "type": "token", "documentation": "the resource id"},
            {"name": "url", "type": "uri", "documentation": "the canonical URL"}]
    profiles = supported_profiles().get(resource_type)
    if profiles:
        entry["supportedProfile"] = profiles
    entry["interaction"] = [{"code": code} for code in interactions]
    operations = [_VALIDATE] if resource_type in VALIDATE_TYPES else []
    if resource_type == "ResearchStudy":
        operations.append(_ENDPOINT_RESULTS)
    if operations:
        entry["operation"] = operations
    if resource_type == "Bundle":
        docs.append(_BUNDLE_NOTE)
    entry["documentation"] = " ".join(docs)
    return dict(sorted(entry.items(), key=lambda kv: kv[0] != "type"))


_VALIDATE = {
    "name": "validate",
    "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
    "documentation": "Validates against base R4 and the project's profiles; nothing is stored. "
                     "Needs a write scope (c or u) on the type: the answer depends on who is "
                     "enrolled.",
}
_ENDPOINT_RESULTS = {
    "name": "endpoint-results",
    "definition": f"{CANONICAL_BASE}/OperationDefinition/endpoint-results",
    "documentation": "The result Bundle (collection) of the study; _since=instant for increments.",
}


#: Bulk Data Access IG v2: the system-level and group-level export operations.
_EXPORT = {
    "name": "export",
    "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
    "documentation": "Bulk Data export of every published result (NDJSON; _since, _type, "
                     "_typeFilter Observation?code= and ?subject=).",
}
_GROUP_EXPORT = {
    "name": "export",
    "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
    "documentation": "Bulk Data export of the study's Group (its participants).",
}
_GROUP = {
    "type": "Group",
    "documentation": "The study's Group: its participants' pseudonymous Patients as members.",
    "interaction": [{"code": "read"}, {"code": "search-type"}],
    "searchParam": [{"name": "_id", "type": "token", "documentation": "the resource id"}],
    "operation": [_GROUP_EXPORT],
}


def capability_statement(base_url: str, *, now: datetime | None = None) -> dict[str, Any]:
    """The CapabilityStatement of this server, answering at ``base_url``."""
    types = sorted({*WRITE_TYPES, *RESULT_TYPES, *DEFINITION_TYPES, "Bundle"})
    resources = sorted([*(_resource(t) for t in types), _GROUP], key=lambda r: str(r["type"]))
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "publisher": "fhir-adapter",
        "kind": "instance",
        "software": {"name": "fhir-adapter", "version": __version__},
        "implementation": {"description": "fhir-adapter REST endpoint", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["json", "application/fhir+json"],
        "instantiates": ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Hospitals push transaction, batch or collection Bundles and single resources; "
                    "research servers read the pseudonymised results. " + _IDENTITY_NOTE
                ),
                "security": _security(base_url),
                "resource": resources,
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
                "operation": [_EXPORT],
            }
        ],
    }


def _security(base_url: str) -> dict[str, Any]:
    token = base_url.rstrip("/").removesuffix("/fhir") + "/auth/token"
    return {
        "cors": False,
        # SMART App Launch 2.2, conformance.html: the oauth-uris extension and the
        # SMART-on-FHIR service code, beside /.well-known/smart-configuration
        "extension": [{
            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
            "extension": [{"url": "token", "valueUri": token}],
        }],
        "service": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
            "code": "SMART-on-FHIR",
        }]}],
        "description": (
            "Every call but /metadata needs 'Authorization: Bearer <token>'. Tokens are issued "
            "with `fhir-adapter token create` and carry SMART v2 scopes: system/*.cu (EHR: "
            "create, update, $validate) or system/*.rs (research server: read and search the "
            "pseudonymised results). A token's name is the sender of what it writes. "
            "SMART Backend Services: a client registered with `fhir-adapter client add` gets "
            "an access token (300 s) at the token endpoint with client_credentials and a "
            "private_key_jwt assertion (RS384 or ES384)."
        ),
    }
