"""Check an instance against a compiled profile (profiles.Rule), reporting every problem."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fhir_adapter.errors import Issue
from fhir_adapter.validation.invariants import unchecked
from fhir_adapter.validation.profiles import Definitions, Rule

__all__ = ["CodeAccepter", "ProfileChecker", "reference_type"]

#: Accepts a (system, code) outside an extensible binding (a site code mapped to an analyte).
CodeAccepter = Callable[[str, str], bool]
_LITERAL = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[^/]+)?$")
_CONDITIONAL = re.compile(r"^([A-Z][A-Za-z]+)\?")
Node = dict[str, Any]


def reference_type(reference: Any, full_urls: dict[str, str]) -> str | None:
    """The resource type a Reference points to, when it can be told without resolving it."""
    if not isinstance(reference, dict):
        return None
    target = reference.get("reference")
    if isinstance(target, str):
        if target in full_urls:
            return full_urls[target]
        for pattern in (_LITERAL, _CONDITIONAL):
            match = pattern.search(target)
            if match:
                return match.group(1)
    kind = reference.get("type")
    return kind if isinstance(kind, str) and "/" not in kind else None


def matches(value: Any, pattern: Any) -> bool:
    """FHIR pattern matching: every part of ``pattern`` is found in ``value``."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(matches(value.get(k), v) for k, v in pattern.items())
    if isinstance(pattern, list):
        return isinstance(value, list) and all(any(matches(v, p) for v in value) for p in pattern)
    return value == pattern


class ProfileChecker:
    """Walks an instance and a profile's rules together."""

    def __init__(self, definitions: Definitions, accept: CodeAccepter | None = None) -> None:
        self.defs = definitions
        self.accept = accept

    def check(
        self, resource: Node, url: str, path: str, full_urls: dict[str, str] | None = None
    ) -> list[Issue]:
        out: list[Issue] = []
        self._full_urls = full_urls or {}
        self._resource = resource
        self._source = url
        self._node(resource, self.defs.compiled[url], path, out)
        return out

    def _node(self, node: Node, rule: Rule, path: str, out: list[Issue]) -> None:
        for invariant in rule.invariants:
            verdict = invariant.holds(node, self._resource)
            if verdict is None:
                out.append(unchecked(invariant, path))
            elif not verdict:
                out.append(
                    Issue(
                        "error" if invariant.severity == "error" else "warning",
                        "invariant",
                        path,
                        f"{invariant.key}: {invariant.human}",
                        source=self._source,
                        rule=invariant.key,
                    )
                )
        for child in rule.children.values():
            self._element(node, child, path, out)

    def _element(self, node: Node, rule: Rule, path: str, out: list[Issue]) -> None:
        base = rule.name.removesuffix("[x]")
        if rule.name.endswith("[x]"):
            size = len(base)
            keys = [k for k in node if k.startswith(base) and len(k) > size and k[size].isupper()]
        else:
            keys = [rule.name] if rule.name in node or f"_{rule.name}" in node else []
        entries: list[tuple[str, Any]] = []
        for key in keys:
            value = node.get(key, node.get(f"_{key}"))
            if isinstance(value, list):
                entries.extend((f"{path}.{key}[{i}]", v) for i, v in enumerate(value))
            else:
                entries.append((f"{path}.{key}", value))
        shown = f"{path}.{base}"
        self._cardinality(rule, len(entries), shown, out)
        if rule.types is not None:
            allowed = {t[0].upper() + t[1:] for t in rule.types}
            for key in keys:
                if key[len(base) :] not in allowed:
                    out.append(
                        Issue(
                            "error",
                            "structure",
                            f"{path}.{key}",
                            f"{key} is not allowed here: {base} must be one of "
                            f"{', '.join(sorted(rule.types))}",
                            source=self._source,
                            rule="type",
                        )
                    )
        for where, value in entries:
            self._value(value, rule, where, out)
        if rule.slices:
            self._slices(entries, rule, shown, out)

    def _cardinality(self, rule: Rule, count: int, shown: str, out: list[Issue]) -> None:
        label = f"slice {rule.slice_name!r} of {rule.name}" if rule.slice_name else rule.name
        if rule.min is not None and count < rule.min:
            out.append(
                Issue(
                    "error",
                    "required",
                    shown,
                    f"{label} is required: min {rule.min}, found {count}",
                    source=self._source,
                    rule="min",
                )
            )
        if rule.max is not None and count > rule.max:
            out.append(
                Issue(
                    "error", "structure", shown,
                    f"{label} allows at most {rule.max}, found {count}",
                    source=self._source, rule="max",
                )
            )

    def _value(self, value: Any, rule: Rule, where: str, out: list[Issue]) -> None:
        if rule.fixed is not None and value != rule.fixed:
            out.append(
                Issue("error", "value", where, f"must be exactly {rule.fixed!r}, got {value!r}",
                      source=self._source, rule="fixed")
            )
        if rule.pattern is not None and not matches(value, rule.pattern):
            out.append(Issue("error", "value", where, f"must match the pattern {rule.pattern}",
                             source=self._source, rule="pattern"))
        if rule.binding is not None:
            self._binding(value, rule, where, out)
        if rule.targets is not None:
            kind = reference_type(value, self._full_urls)
            if kind is not None and kind not in rule.targets:
                out.append(
                    Issue(
                        "error",
                        "structure",
                        where,
                        f"refers to a {kind}; only {', '.join(sorted(rule.targets))} allowed",
                        source=self._source,
                        rule="target",
                    )
                )
        if rule.extension_profile and isinstance(value, dict):
            compiled = self.defs.compiled.get(rule.extension_profile)
            if compiled is not None:
                outer, self._source = self._source, rule.extension_profile
                self._node(value, compiled, where, out)
                self._source = outer
        if isinstance(value, dict):
            self._node(value, rule, where, out)

    def _binding(self, value: Any, rule: Rule, where: str, out: list[Issue]) -> None:
        assert rule.binding is not None
        strength, url = rule.binding
        codes = self.defs.value_sets.get(url)
        if codes is None:
            return
        if isinstance(value, str):
            pairs = [("", value)]
            ok = any(code == value for _, code in codes)
        else:
            codings = (
                value.get("coding", [])
                if "coding" in value or rule.type_key == "CodeableConcept"
                else [value]
            )
            pairs = [
                (c.get("system", ""), c.get("code", "")) for c in codings if isinstance(c, dict)
            ]
            ok = any(p in codes for p in pairs)
            if not ok and strength == "extensible" and self.accept is not None:
                ok = any(self.accept(s, c) for s, c in pairs if s and c)
        if not ok:
            shown = ", ".join(f"{s}|{c}" if s else c for s, c in pairs) or "no code"
            out.append(
                Issue("error", "code-invalid", where, f"{shown} is not in the value set {url}",
                      source=self._source, rule="binding")
            )

    def _slices(
        self, entries: list[tuple[str, Any]], rule: Rule, shown: str, out: list[Issue]
    ) -> None:
        counts = {piece.slice_name: 0 for piece in rule.slices}
        for where, value in entries:
            piece = next((p for p in rule.slices if self._in_slice(value, p, rule)), None)
            if piece is None:
                if rule.slicing is not None and rule.slicing.closed:
                    out.append(
                        Issue(
                            "error", "structure", where,
                            f"matches no slice of {rule.name} (closed)",
                            source=self._source, rule="slicing",
                        )
                    )
                continue
            counts[piece.slice_name] += 1
            self._value(value, piece, where, out)
        for piece in rule.slices:
            self._cardinality(piece, counts[piece.slice_name], shown, out)

    def _in_slice(self, value: Any, piece: Rule, sliced: Rule) -> bool:
        discriminators = sliced.slicing.discriminators if sliced.slicing else []
        if not discriminators:
            return False
        for _, path in discriminators:
            target, actual = piece, value
            if path == "url" and piece.extension_profile:
                if not isinstance(value, dict) or value.get("url") != piece.extension_profile:
                    return False
                continue
            if path != "$this":
                for part in path.split("."):
                    found = target.children.get(part)
                    if found is None or not isinstance(actual, dict):
                        return False
                    target, actual = found, actual.get(part)
            expected = target.fixed if target.fixed is not None else target.pattern
            if expected is None or not matches(actual, expected):
                return False
        return True
