"""References in resources: find them, resolve urn:uuid fullUrls, read conditional ones."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote

from fhir_adapter.errors import AdapterError, ReferenceError_, UnusableInput, Where

__all__ = [
    "ConditionalReference",
    "FoundReference",
    "iter_references",
    "parse_conditional",
    "rewrite_references",
    "split_token",
    "unresolved_references",
]

_LOCAL_PREFIXES = ("urn:uuid:", "urn:oid:")


@dataclass(frozen=True, slots=True)
class FoundReference:
    """A ``Reference.reference`` string and the FHIRPath of the element that holds it."""

    expression: str  # e.g. Observation.subject.reference
    reference: str


@dataclass(frozen=True, slots=True)
class ConditionalReference:
    """``Patient?identifier=s|v``: the target type and the search parameters, decoded."""

    text: str
    resource_type: str
    params: tuple[tuple[str, str], ...]

    @property
    def identifier(self) -> tuple[str | None, str] | None:
        """(system, value) of an ``identifier`` parameter (system None when none was given)."""
        for name, value in self.params:
            if name == "identifier":
                return split_token(value)
        return None


def split_token(token: str) -> tuple[str | None, str]:
    """A search token ``system|value`` (``|value``: empty system; ``value``: any system)."""
    if "|" not in token:
        return None, token
    system, _, value = token.partition("|")
    return system, value


def parse_conditional(reference: str) -> ConditionalReference | None:
    """Read ``Type?name=value&...``; None when ``reference`` is not a conditional reference."""
    if "?" not in reference:
        return None
    resource_type, _, query = reference.partition("?")
    if not resource_type.isalpha() or not resource_type[:1].isupper():
        return None
    params = []
    for part in query.split("&"):
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep or not name:
            raise UnusableInput(f"conditional reference {reference!r}: {part!r} is not name=value")
        params.append((unquote(name), unquote(value)))
    if not params:
        raise UnusableInput(f"conditional reference {reference!r} has no search parameter")
    return ConditionalReference(reference, resource_type, tuple(params))


def iter_references(
    resource: dict[str, Any], *, base: str | None = None
) -> Iterator[FoundReference]:
    """Every ``reference`` string in ``resource`` (contained resources too), in order."""
    root = base or str(resource.get("resourceType", "Resource"))
    yield from _walk(resource, root)


def _walk(node: Any, path: str) -> Iterator[FoundReference]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield FoundReference(f"{path}.reference", value)
            elif isinstance(value, dict | list):
                yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _walk(item, f"{path}[{index}]")


def unresolved_references(
    resource: dict[str, Any], targets: Mapping[str, str], *, base: str | None = None
) -> list[FoundReference]:
    """The ``urn:uuid:``/``urn:oid:`` references that ``targets`` (fullUrl -> Type/id) lacks."""
    return [
        found
        for found in iter_references(resource, base=base)
        if found.reference.startswith(_LOCAL_PREFIXES) and found.reference not in targets
    ]


def rewrite_references(
    resource: dict[str, Any],
    targets: Mapping[str, str],
    *,
    base: str | None = None,
    where: Where | None = None,
    conditional: Callable[[ConditionalReference], str] | None = None,
) -> dict[str, Any]:
    """A copy of ``resource`` whose references to Bundle fullUrls point to the assigned ``Type/id``.

    ``targets`` maps each fullUrl of the Bundle to the key it was given. A ``urn:uuid:`` or
    ``urn:oid:`` reference that ``targets`` lacks raises ReferenceError_ naming the element.
    ``conditional``, when given, resolves ``Type?params`` references (it raises when there is
    none or more than one match); without it they are left as they are.
    """
    where = where or Where()
    root = base or str(resource.get("resourceType", "Resource"))

    def fix(at: _Path, reference: str) -> str:
        if reference in targets:
            return targets[reference]
        if reference.startswith(_LOCAL_PREFIXES):
            raise ReferenceError_(
                f"{reference} is not the fullUrl of any entry of the Bundle",
                where=replace(where, element=_render(at)),
            )
        if conditional is not None:
            parsed = parse_conditional(reference)
            if parsed is not None:
                try:
                    return conditional(parsed)
                except AdapterError as exc:
                    raise exc.located(element=_render(at)) from None
        return reference

    return _copy(resource, root, fix)


#: Where a node is: the root's name, or (its parent's path, key or index). Rendered as FHIRPath
#: only when a reference fails, so the copy builds no string per node.
_Path = str | tuple[Any, str | int]


def _render(at: _Path) -> str:
    parts: list[str] = []
    while isinstance(at, tuple):
        at, step = at
        parts.append(f"[{step}]" if isinstance(step, int) else f".{step}")
    return at + "".join(reversed(parts))


def _copy(node: Any, at: _Path, fix: Callable[[_Path, str], str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                out[key] = fix((at, "reference"), value)
            elif isinstance(value, dict | list):
                out[key] = _copy(value, (at, key), fix)
            else:
                out[key] = value
        return out
    if isinstance(node, list):
        return [_copy(item, (at, index), fix) for index, item in enumerate(node)]
    return node
