"""Bundle rules located at the entry that breaks them: bdl-3, bdl-4, bdl-7, local references.

The FHIRPath of bdl-3, bdl-4 and bdl-7 reads the whole Bundle, so a failure of it can only
say "Bundle". An engineer with 300 entries needs the entry: these rules are checked here entry
by entry, with the same keys and texts (R4 bundle.html, "Bundle" constraints), and left out of
the FHIRPath evaluation of the Bundle (``LOCATED``).

A ``urn:uuid:``/``urn:oid:`` reference inside a transaction or batch must name the fullUrl of
an entry (R4 http.html, "Transaction Processing Rules", and bundle.html "Resolving references
in Bundles"): one that names no entry cannot be resolved by the receiver.
"""

from __future__ import annotations

from typing import Any

from fhir_adapter.errors import Issue
from fhir_adapter.fhir import unresolved_references

__all__ = ["BUNDLE_SOURCE", "LOCAL_REFERENCE", "LOCATED", "bundle_entry_issues"]

BUNDLE_SOURCE = "http://hl7.org/fhir/StructureDefinition/Bundle"
_REQUEST_TYPES = ("batch", "transaction", "history")
_RESPONSE_TYPES = ("batch-response", "transaction-response", "history")
#: the rule of a local reference that names no entry (no constraint key: http.html states it)
LOCAL_REFERENCE = "local-reference"
#: Bundle invariants checked here, entry by entry, instead of by their FHIRPath.
LOCATED = frozenset({"bdl-3", "bdl-4", "bdl-7"})
_TEXT = {
    "bdl-3": "entry.request mandatory for batch/transaction/history, otherwise prohibited",
    "bdl-4": "entry.response mandatory for batch-response/transaction-response/history, "
    "otherwise prohibited",
    "bdl-7": "FullUrl must be unique in a bundle, or else entries with the same fullUrl must "
    "have different meta.versionId (except in history bundles)",
}


def _broken(key: str, where: str, detail: str) -> Issue:
    return Issue("error", "invariant", where, f"{key}: {_TEXT[key]} ({detail})",
                 source=BUNDLE_SOURCE, rule=key)


def bundle_entry_issues(bundle: dict[str, Any]) -> list[Issue]:
    """bdl-3, bdl-4, bdl-7 per entry, and local references that name no entry."""
    kind = bundle.get("type")
    raw = bundle.get("entry")
    entries = [e if isinstance(e, dict) else {} for e in raw] if isinstance(raw, list) else []
    out: list[Issue] = []
    for index, entry in enumerate(entries):
        where = f"Bundle.entry[{index}]"
        wants_request = kind in _REQUEST_TYPES
        if ("request" in entry) != wants_request:
            detail = (f"a {kind} entry needs a request" if wants_request
                      else f"a {kind} entry has no request")
            out.append(_broken("bdl-3", where if wants_request else f"{where}.request", detail))
        wants_response = kind in _RESPONSE_TYPES
        if ("response" in entry) != wants_response:
            detail = (f"a {kind} entry needs a response" if wants_response
                      else f"a {kind} entry has no response")
            out.append(_broken("bdl-4", where if wants_response else f"{where}.response", detail))
    if kind != "history":
        out.extend(_duplicate_full_urls(entries))
    if kind in ("transaction", "batch"):
        out.extend(_dangling(entries))
    return out


def _duplicate_full_urls(entries: list[dict[str, Any]]) -> list[Issue]:
    seen: dict[tuple[str, Any], int] = {}
    out = []
    for index, entry in enumerate(entries):
        full_url = entry.get("fullUrl")
        if not isinstance(full_url, str):
            continue
        resource = entry.get("resource")
        meta = resource.get("meta") if isinstance(resource, dict) else None
        version = meta.get("versionId") if isinstance(meta, dict) else None
        first = seen.setdefault((full_url, version), index)
        if first != index:
            out.append(_broken("bdl-7", f"Bundle.entry[{index}].fullUrl",
                               f"{full_url} is also the fullUrl of entry {first}"))
    return out


def _dangling(entries: list[dict[str, Any]]) -> list[Issue]:
    full_urls = {e["fullUrl"]: "" for e in entries if isinstance(e.get("fullUrl"), str)}
    out = []
    for index, entry in enumerate(entries):
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            continue
        base = f"Bundle.entry[{index}].resource"
        for found in unresolved_references(resource, full_urls, base=base):
            out.append(Issue(
                "error", "not-found", found.expression,
                f"{found.reference} is the fullUrl of no entry of this Bundle: a local "
                "reference must name an entry",
                source=BUNDLE_SOURCE, rule=LOCAL_REFERENCE))
    return out
