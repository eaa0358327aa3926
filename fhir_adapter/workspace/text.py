"""Plain-text tables that fit a terminal of 100 columns, with the legend of their abbreviations."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["WIDTH", "table", "wrapped"]

WIDTH = 100


def table(header: Sequence[str], rows: Iterable[Sequence[str]], *,
          right: frozenset[int] = frozenset()) -> list[str]:
    """Columns padded to their widest cell, two spaces apart; ``right``: right-aligned ones."""
    body = [list(r) for r in rows]
    widths = [max([len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in body)]


def wrapped(items: Iterable[str], *, indent: str = "  ", width: int = WIDTH,
            separator: str = "   ") -> list[str]:
    """Items on lines no longer than ``width``, each line starting with ``indent``."""
    lines: list[str] = []
    current = ""
    for item in items:
        candidate = item if not current else current + separator + item
        if current and len(indent) + len(candidate) > width:
            lines.append(indent + current)
            current = item
        else:
            current = candidate
    if current:
        lines.append(indent + current)
    return lines
