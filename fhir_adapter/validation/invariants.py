"""FHIRPath invariants, compiled once; shortcuts skip the engine where the answer is known.

An invariant is split at its top-level ``or`` / ``and`` / ``implies``. A term that only asks
whether paths exist (``dataAbsentReason.empty()``, ``extension.exists() != value.exists()``) is
decided by which of its paths are present: fhirpathpy evaluates it once per presence pattern and
the answer is kept. A term ``x.<navigation>.empty()`` is true when ``x`` is absent. Any other term
goes to fhirpathpy (compiled once); a term that reads only its own node is also kept per value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import fhirpathpy
from fhirpathpy.models import models

from fhir_adapter.errors import Issue

__all__ = ["ENGINE_GAPS", "Invariant", "present", "unchecked"]

#: Invariants of base R4 that fhirpathpy cannot evaluate faithfully; they are not checked.
ENGINE_GAPS = {
    "per-1": "uses hasValue(), which fhirpathpy does not implement",
    "ref-1": "compares a string with element ids by 'in', which fhirpathpy evaluates as false",
    "dom-3": "same 'in' comparison with ids as ref-1",
    "bdl-10": "uses hasValue(), which fhirpathpy does not implement",
}

_MODEL = models["r4"]


def _quiet_trace(label: str, value: object) -> None:
    """trace() in an invariant (dom-3, eld-*, sdf-*) is for debugging the expression: without
    this callback fhirpathpy prints it on standard output, which ``--format json`` owns."""


_OPTIONS = {"traceFn": _quiet_trace}
_TOKEN = re.compile(r"`[^`]+`|[A-Za-z_][A-Za-z0-9_]*|\(\)|!=|[().=]")
_EXISTENCE_FUNCS = {"exists", "empty", "not"}
_KEYWORDS = {"and", "or", "implies", "xor"}
_PASS_THROUGH = {"where", "ofType", "select", "trace", "as", "first", "last"}
_MEMO_LIMIT = 4096
_CONSTANT = "CONSTANTxx"  # stands for a literal or a %resource path while a term is classified
_RESOURCE_PATH = re.compile(r"%resource((?:\.[A-Za-z_]\w*)+)")
_LITERAL = re.compile(r"'[^']*'")
_ALL = re.compile(r"([A-Za-z_]\w*)\.all\((.*)\)")
Node = dict[str, Any]


def _get(node: Node, name: str) -> Any:
    if name in node:
        return node[name]
    if f"_{name}" in node:
        return node[f"_{name}"]
    size = len(name)
    for key, value in node.items():
        if len(key) > size and key.startswith(name) and key[size].isupper():
            return value
    return None


def present(node: Any, parts: tuple[str, ...]) -> bool:
    """True when the dotted path ``parts`` has at least one value under ``node``."""
    items = [node]
    for part in parts:
        found: list[Any] = []
        for item in items:
            if isinstance(item, dict):
                value = _get(item, part)
                if value is not None:
                    found.extend(value if isinstance(value, list) else [value])
        if not found:
            return False
        items = found
    return True


def _split(expression: str) -> tuple[str | None, list[str]]:
    """Split at the top-level boolean operator when there is only one kind of it."""
    depth, quote, cuts = 0, False, []
    for match in re.finditer(r"'|\(|\)| (or|and|implies) ", expression):
        text = match.group(0)
        if text == "'":
            quote = not quote
        elif quote:
            continue
        elif text == "(":
            depth += 1
        elif text == ")":
            depth -= 1
        elif depth == 0:
            cuts.append((match.start(), match.end(), match.group(1)))
    operators = {op for _, _, op in cuts}
    if len(operators) != 1 or ("implies" in operators and len(cuts) > 1):
        return None, [expression]
    terms, start = [], 0
    for begin, end, _ in cuts:
        terms.append(expression[start:begin].strip())
        start = end
    terms.append(expression[start:].strip())
    return operators.pop(), [_unwrap(t) for t in terms]


def _unwrap(term: str) -> str:
    if term.startswith("(") and term.endswith(")"):
        depth = 0
        for i, ch in enumerate(term):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(term) - 1:
                return term
        return term[1:-1].strip()
    return term


def _existence_paths(term: str) -> tuple[tuple[str, ...], ...] | None:
    """The paths of a term that only asks whether paths exist, or None for any other term.

    Allowed: ``path.exists()``, ``path.empty()``, ``.not()`` after either, parentheses, ``=``,
    ``!=`` and the boolean keywords. A bare path (a boolean value) is not allowed.
    """
    tokens = _TOKEN.findall(term)
    if "".join(tokens) != re.sub(r"\s+", "", term):
        return None
    paths: list[tuple[str, ...]] = []
    i, n = 0, len(tokens)
    while i < n:
        token = tokens[i]
        if token in ("(", ")", "=", "!=", _CONSTANT) or token in _KEYWORDS:
            i += 1
            continue
        if not (token[0].isalpha() or token[0] in "_`") or token in _EXISTENCE_FUNCS:
            return None
        parts = [token.strip("`")]
        i += 1
        while i + 1 < n and tokens[i] == "." and tokens[i + 1] not in _EXISTENCE_FUNCS:
            parts.append(tokens[i + 1].strip("`"))
            i += 2
        if tokens[i : i + 3] not in ([".", "exists", "()"], [".", "empty", "()"]):
            return None
        i += 3
        while tokens[i : i + 3] == [".", "not", "()"]:
            i += 3
        paths.append(tuple(parts))
    return tuple(paths)


def _empty_head(term: str) -> str | None:
    """``x`` when the term is ``x.<navigation and filters>.empty()``, else None."""
    match = re.fullmatch(r"([A-Za-z_]\w*)\.(.*)\.empty\(\)", term)
    if not match:
        return None
    chain, depth, outer = match.group(2), 0, []
    for ch in chain:
        if ch == "(":
            depth += 1
            outer.append("(") if depth == 1 else None
        elif ch == ")":
            depth -= 1
        elif depth == 0:
            outer.append(ch)
    for step in "".join(outer).split("."):
        name = step.removesuffix("(")
        if step.endswith("(") and name not in _PASS_THROUGH:
            return None
        if not re.fullmatch(r"[A-Za-z_]\w*\(?", step):
            return None
    return match.group(1)


@dataclass
class _Term:
    text: str
    compiled: Callable[..., list[Any]]
    paths: tuple[tuple[str, ...], ...] | None
    head: str | None
    local: tuple[str, ...] | None
    constants: tuple[tuple[str, ...], ...] = ()
    memo: dict[Any, bool | None] = field(default_factory=dict)

    def value(self, node: Node, context: dict[str, Any]) -> bool | None:
        pattern: tuple[bool, ...] = ()
        if self.paths is not None:
            pattern = tuple(present(node, p) for p in self.paths)
            key: Any = pattern
            if self.constants:
                key = (pattern, _constants(context["resource"], self.constants))
        elif self.head is not None and not present(node, (self.head,)):
            return True
        elif self.local is not None:
            key = json.dumps([_get(node, n) for n in self.local], sort_keys=True, default=str)
        else:
            return _truth(self.compiled(node, context))
        if key in self.memo:
            return self.memo[key]
        probe = _synthetic(self.paths, pattern) if self.paths is not None else node
        result = _truth(self.compiled(probe, context))
        if len(self.memo) > _MEMO_LIMIT:
            self.memo.clear()
        self.memo[key] = result
        return result


def _constants(resource: Node, paths: tuple[tuple[str, ...], ...]) -> str:
    values = []
    for parts in paths:
        value: Any = resource
        for part in parts:
            value = value.get(part) if isinstance(value, dict) else None
        values.append(value)
    return json.dumps(values, sort_keys=True, default=str)


def _synthetic(paths: tuple[tuple[str, ...], ...], pattern: tuple[bool, ...]) -> Node:
    """A stand-in node with exactly the present paths, named as the expression names them."""
    root: Node = {}
    for parts, here in zip(paths, pattern, strict=True):
        if not here:
            continue
        node = root
        for part in parts:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {"present": "yes"}
                node[part] = child
            node = child
    return root


def _truth(result: list[Any]) -> bool | None:
    if not result:
        return None
    return result[0] is True if len(result) == 1 else None


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if depth < 0:
            return False
    return depth == 0


def _local_names(term: str) -> tuple[str, ...] | None:
    if "%" in term or "$" in term or "descendants" in term or "resolve" in term:
        return None
    names = {m.group(1) for m in re.finditer(r"(?<![.\w'])([a-z]\w*)", term.replace("'", " ' "))}
    return tuple(sorted(names))


class Invariant:
    """One FHIRPath invariant of an element (``key``, severity, human sentence, expression)."""

    def __init__(self, key: str, severity: str, human: str, expression: str) -> None:
        self.key, self.severity, self.human, self.expression = key, severity, human, expression
        self.each: str | None = None
        match = _ALL.fullmatch(expression)
        if match and _balanced(match.group(2)):
            self.each, expression = match.group(1), match.group(2)  # name.all(cond): per item
        self.operator, texts = _split(expression)
        self.terms = [self._term(t) for t in texts]

    @staticmethod
    def _term(text: str) -> _Term:
        compiled = fhirpathpy.compile(text, _MODEL, _OPTIONS)
        constants = tuple(tuple(m.group(1)[1:].split(".")) for m in _RESOURCE_PATH.finditer(text))
        plain = _LITERAL.sub(_CONSTANT, _RESOURCE_PATH.sub(_CONSTANT, text))
        paths = _existence_paths(plain)
        head = _empty_head(text) if paths is None else None
        local = _local_names(text) if paths is None else None
        return _Term(text, compiled, paths, head, local, constants if paths is not None else ())

    def holds(self, node: Node, resource: Node) -> bool | None:
        """True unless the invariant is false at ``node`` (an element of ``resource``); None
        when the FHIRPath engine fails on it (fhirpathpy cannot order two Quantities, as
        ``rng-2`` asks): not known to fail, so not a failed invariant (``unchecked``).

        An empty result counts as holding, as FHIR does for invariants whose paths are absent.
        """
        context = {"resource": resource, "rootResource": resource}
        try:
            if self.each is None:
                return self._evaluate(node, context) is not False
            items = node.get(self.each, [])
            items = items if isinstance(items, list) else [items]
            return all(self._evaluate(item, context) is not False for item in items)
        except Exception:  # noqa: BLE001 - the engine's own failure, whatever its class
            return None

    def _evaluate(self, node: Node, context: dict[str, Any]) -> bool | None:
        terms = self.terms
        if self.operator == "implies":
            first = terms[0].value(node, context)
            if first is False:
                return True
            second = terms[1].value(node, context)
            return True if second is True else (None if first is None else second)
        if self.operator == "or":
            seen_empty = False
            for term in terms:
                value = term.value(node, context)
                if value is True:
                    return True
                seen_empty = seen_empty or value is None
            return None if seen_empty else False
        if self.operator == "and":
            seen_empty = False
            for term in terms:
                value = term.value(node, context)
                if value is False:
                    return False
                seen_empty = seen_empty or value is None
            return None if seen_empty else True
        return terms[0].value(node, context)


def unchecked(invariant: Invariant, path: str) -> Issue:
    """The warning for an invariant the engine could not evaluate at ``path``."""
    return Issue("warning", "not-supported", path,
                 f"{invariant.key}: not checked: the FHIRPath engine cannot evaluate "
                 f"{invariant.expression} here")
