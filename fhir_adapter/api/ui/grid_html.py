"""The body of the schedule table, written directly (a Jinja loop over 10,000 cells of 600
participants costs seconds; this costs a tenth of that)."""

from __future__ import annotations

from html import escape

from fhir_adapter.workspace import GridRow

__all__ = ["grid_rows"]


def grid_rows(rows: list[GridRow], columns: list[str], analyte: str | None) -> str:
    suffix = f"?analyte={escape(analyte)}" if analyte else ""
    parts: list[str] = []
    for row in rows:
        subject = escape(row.view.subject)
        parts.append(f'<tr><th scope="row"><a href="/ui/participants/{subject}">{subject}</a>'
                     "</th>")
        for column in columns:
            cell = row.cells[column]
            parts.append(
                f'<td class="s-{cell.state}" data-visit="{column}" data-state="{cell.state}">'
                f'<a href="/ui/participants/{subject}/visits/{column}{suffix}" '
                f'title="{subject} {column}: {escape(cell.label)}"><span class="sym">'
                f"{cell.symbol}</span> {escape(cell.text(analyte))}</a></td>")
        parts.append("</tr>\n")
    return "".join(parts)
