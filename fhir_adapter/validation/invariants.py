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

__all__ = ["ENGINE_GAPS", "Invariant", "present"]

#: Invariants of base R4 that fhirpathpy cannot evaluate faithfully; they are not checked.
ENGINE_GAPS = {
    "per-1": "uses hasValue(), which fhirpathpy does not implement",
    "ref-1": "compares a string with element ids by 'in', which fhirpathpy evaluates as false",
    "dom-3": "same 'in' comparison with ids as ref-1",
}

_MODEL = models["r4"]
_TOKEN = re.compile(r"`[^`]+`|[A-Za-z_][A-Za-z0-9_]*|\(\)|!=|[().=]")
_EXISTENCE_FUNCS = {"exists", "empty", "not", "hasValue"}
_KEYWORDS = {"and", "or", "implies", "xor"}
_PASS_THROUGH = {"where", "ofType", "select", "trace", "as", "first", "last"}
_MEMO_LIMIT = 4096
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
    """The paths of a term made only of paths, exists/empty/not/hasValue and boolean operators."""
    tokens = _TOKEN.findall(term)
    if "".join(tokens) != re.sub(r"\s+", "", term):
        return None
    paths: list[tuple[str, ...]] = []
    current: list[str] = []
    for i, token in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        if token in _EXISTENCE_FUNCS and following == "()":
            continue
        if token[0].isalpha() or token[0] in "_`":
            if token in _KEYWORDS:
                current = _flush(paths, current)
            elif following == "(":
                return None
            else:
                current.append(token.strip("`"))
        elif token in ("()", ")", "(", "=", "!="):
            current = _flush(paths, current)
    _flush(paths, current)
    return tuple(paths)


def _flush(paths: list[tuple[str, ...]], current: list[str]) -> list[str]:
    if current:
        paths.append(tuple(current))
    return []


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
    memo: dict[Any, bool | None] = field(default_factory=dict)

    def value(self, node: Node, context: dict[str, Any]) -> bool | None:
        if self.paths is not None:
            key: Any = tuple(present(node, p) for p in self.paths)
        elif self.head is not None and not present(node, (self.head,)):
            return True
        elif self.local is not None:
            key = json.dumps([_get(node, n) for n in self.local], sort_keys=True, default=str)
        else:
            return _truth(self.compiled(node, context))
        if key in self.memo:
            return self.memo[key]
        probe = _synthetic(self.paths, key) if self.paths is not None else node
        result = _truth(self.compiled(probe, context))
        if len(self.memo) > _MEMO_LIMIT:
            self.memo.clear()
        self.memo[key] = result
        return result


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


def _local_names(term: str) -> tuple[str, ...] | None:
    if "%" in term or "$" in term or "descendants" in term or "resolve" in term:
        return None
    names = {m.group(1) for m in re.finditer(r"(?<![.\w'])([a-z]\w*)", term.replace("'", " ' "))}
    return tuple(sorted(names))


class Invariant:
    """One FHIRPath invariant of an element (``key``, severity, human sentence, expression)."""

    def __init__(self, key: str, severity: str, human: str, expression: str) -> None:
        self.key, self.severity, self.human, self.expression = key, severity, human, expression
        self.operator, texts = _split(expression)
        self.terms = [self._term(t) for t in texts]

    @staticmethod
    def _term(text: str) -> _Term:
        compiled = fhirpathpy.compile(text, _MODEL)
        paths = _existence_paths(text)
        head = _empty_head(text) if paths is None else None
        local = _local_names(text) if paths is None else None
        return _Term(text, compiled, paths, head, local)

    def holds(self, node: Node, resource: Node) -> bool:
        """True unless the invariant is false at ``node`` (an element of ``resource``).

        An empty result counts as holding, as FHIR does for invariants whose paths are absent.
        """
        context = {"resource": resource, "rootResource": resource}
        try:
            return self._evaluate(node, context) is not False
        except Exception:  # noqa: BLE001 - an engine failure on odd data is a failed invariant
            return False

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
