"""The data manager's views on the command line: ``participants``, ``endpoints``, ``queries``,
``visits``, ``dataset`` and the ``dashboard``. Tables fit 100 columns; CSV and JSON are whole."""

from __future__ import annotations

import csv
import io
import json
import sys
import textwrap
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any

import typer

from fhir_adapter.cli.base import app, open_pipeline, out
from fhir_adapter.cli.tables import NOT_KEPT_BEFORE
from fhir_adapter.errors import UnusableInput
from fhir_adapter.pipeline.workspace_access import workspace_of
from fhir_adapter.workspace import KINDS, STATES, Snapshot, columns, grid, queries
from fhir_adapter.workspace.dataset import dataset_csv, dictionary_csv
from fhir_adapter.workspace.overview import SUMMARY_FIELDS, overview
from fhir_adapter.workspace.text import table, wrapped

__all__ = ["dashboard", "dataset", "endpoints", "participants", "queries_command", "visits"]

FORMATS = ("table", "csv", "json")
Format = Annotated[str, typer.Option(help="table (fits 100 columns), csv or json")]


def _format(value: str) -> str:
    if value not in FORMATS:
        raise UnusableInput(f"--format must be one of {', '.join(FORMATS)}, not {value!r}")
    return value


def _snapshot() -> Snapshot:
    return workspace_of(open_pipeline()).snapshot()


def _print(lines: Sequence[str]) -> None:
    sys.stdout.write("".join(f"{line}\n" for line in lines))


def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    sys.stdout.write(buffer.getvalue())


def _json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


@app.command()
def participants(format: Format = "table") -> None:  # noqa: A002
    """The participants: status, sex, age and Day 0, visits with a value, missed, out of
    window, and the latest value of each analyte."""
    fmt = _format(format)
    snapshot = _snapshot()
    rows = overview(snapshot)
    if fmt == "json":
        _json(rows)
        return
    units = {k: a.unit for k, a in snapshot.catalogue.analytes.items()}
    analytes = [a for a in snapshot.catalogue.analytes if any(a in r["latest"] for r in rows)]
    if fmt == "csv":
        header = [*SUMMARY_FIELDS, *(f"latest_{a} ({units[a]})" for a in analytes)]
        _csv(header, [[_cell(r[f]) for f in SUMMARY_FIELDS] +
                      [r["latest"].get(a, "") for a in analytes] for r in rows])
        return
    short = ("subject", "status", "sex", "age", "Day 0", "visits", "missed", "out of window")
    body = [(r["subject"], r["status"], r["sex"][:1].upper(), _cell(r["age_at_day0"]),
             r["day0"] or "no infusion", _cell(r["visits_with_value"]),
             " ".join(r["missed_visits"]) or _cell(r["visits_missed"]),
             _cell(r["values_out_of_window"])) for r in rows]
    lines = ["Participants", *table(short, body, right=frozenset({3, 5, 7}))]
    for r in rows:
        if r["results_not_computed"]:
            lines += textwrap.wrap(f"{r['subject']}: {r['results_not_computed']}", 100)
    lines += ["", "Latest values (canonical units)"]
    for r in rows:
        lines.append(r["subject"])
        lines += wrapped(f"{a} {v} {units[a]}" for a, v in r["latest"].items())
    _print([*lines, "", *textwrap.wrap(NOT_KEPT_BEFORE, 100)])


def fit(value: Decimal, room: int) -> str:
    """A value in at most ``room`` characters: fewer decimals, else thousands as ``k`` (a
    value too large for that, which a store written before the door may hold, as 1e+300)."""
    if value.adjusted() >= room + 2:
        return format(value, ".0e")
    for places in range(3, -1, -1):
        text = format(round(value, places).normalize(), "f")
        if len(text) <= room:
            return text
    return f"{value / 1000:.0f}k"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return " ".join(value)
    return str(value)


@app.command()
def endpoints(subject: Annotated[str, typer.Argument(help="Subject code")],
              format: Format = "table") -> None:  # noqa: A002
    """One participant's endpoints: a row per visit-level result, grouped by endpoint, then the
    participant-level results."""
    fmt = _format(format)
    snapshot = _snapshot()
    view = snapshot.participant(subject)
    if view is None:
        raise UnusableInput(f"no participant {subject!r} (see `fhir-adapter participants`)")
    n = snapshot.number
    results = view.endpoints.visit_results
    rows = [(r.endpoint, r.analyte, r.visit, f"{r.comparator or ''}{n(r.value)}", r.unit,
             f"{r.baseline_comparator or ''}{n(r.baseline)}", n(r.change), n(r.percent_change),
             n(r.fold_change), _category(r, snapshot)) for r in results]
    levels = [(p.code, str(p.value).lower() if isinstance(p.value, bool) else str(p.value))
              for p in view.endpoints.participant_results]
    header = ("endpoint", "analyte", "visit", "value", "unit", "baseline", "change", "change %",
              "fold", "category")
    if fmt == "csv":
        blank = ("",) * 5
        _csv(header, rows + [(code, "", "", value, *blank, "") for code, value in levels])
        return
    if fmt == "json":
        _json({"subject": subject, "visit_results": [dict(zip(header, r, strict=True))
                                                      for r in rows],
               "participant_results": dict(levels)})
        return
    lines = [f"Endpoints of {subject}"]
    for endpoint in dict.fromkeys(r[0] for r in rows):
        lines += ["", endpoint]
        mine = [r[1:] for r in rows if r[0] == endpoint]
        lines += ["  " + line for line in table(header[1:], mine,
                                                right=frozenset({2, 4, 5, 6, 7}))]
    lines += ["", "Participant-level results"]
    lines += [f"  {code}: {value}" for code, value in levels]
    _print(lines)


def _category(result: Any, snapshot: Snapshot) -> str:
    from fhir_adapter.workspace.dataset import category_label

    if result.remission:
        return result.remission
    if result.ctcae_grade is not None:
        return f"CTCAE {result.ctcae_grade}"
    if result.interpretation:
        return category_label(result.interpretation, snapshot).split(" (")[0]
    return ""


@app.command("queries")
def queries_command(
    format: Format = "table",  # noqa: A002
    kind: Annotated[list[str] | None, typer.Option(help="Only these kinds")] = None,
) -> None:
    """What needs a data manager's action: safety signals, values out of window, missed visits,
    preliminary results, implausible values, refused entries, data of patients not enrolled."""
    fmt = _format(format)
    for k in kind or []:
        if k not in KINDS:
            raise UnusableInput(f"--kind must be one of {', '.join(KINDS)}, not {k!r}")
    workspace = workspace_of(open_pipeline())
    snapshot = workspace.snapshot()
    found = [q for q in queries(snapshot, workspace.rules)
             if not kind or q.kind in kind]
    if fmt == "json":
        _json([q.as_dict() for q in found])
        return
    if fmt == "csv":
        header = ("kind", "subject", "analyte", "visit", "time", "reason", "source")
        _csv(header, [[q.as_dict()[h] for h in header] for q in found])
        return
    lines = [f"Queries: {len(found)}"]
    for k, title in KINDS.items():
        mine = [q for q in found if q.kind == k]
        if not mine:
            continue
        lines += ["", f"{title} ({len(mine)})"]
        for q in mine:
            at = q.at.astimezone(snapshot.study.timezone) if q.at else None
            head = " ".join(x for x in (q.subject, q.visit, q.analyte.replace(",", " "),
                                        at.isoformat(timespec="minutes") if at else "") if x)
            lines += wrapped([head] if head else [], indent="  ")
            lines += wrapped([q.reason + (f" [source {q.source}]" if q.source else "")],
                             indent="    ")
    _print(lines)


@app.command()
def visits(
    analyte: Annotated[str | None, typer.Option(help="One analyte (default: all)")] = None,
    format: Format = "table",  # noqa: A002
) -> None:
    """The schedule of activities: participants x visits, one symbol per cell, a legend."""
    fmt = _format(format)
    snapshot = _snapshot()
    if analyte is not None and analyte not in snapshot.catalogue.analytes:
        raise UnusableInput(f"--analyte must be one of {', '.join(snapshot.catalogue.analytes)}"
                            f", not {analyte!r}")
    rows = grid(snapshot, analyte)
    shown = columns(snapshot)
    if fmt != "table":
        records = [{"subject": r.view.subject, "visit": c.visit, "state": c.state,
                    "text": c.text(analyte),
                    "analytes": " ".join(f"{a}={s}" for a, s in c.analytes.items())}
                   for r in rows for c in r.cells.values()]
        if fmt == "json":
            _json(records)
        else:
            _csv(list(records[0]) if records else ["subject"],
                 [list(x.values()) for x in records])
        return
    width = 5 if analyte else 4  # 10 + 17 x 5 columns: within 100
    lines = [f"Visits: {analyte or 'all analytes'}", ""]
    lines.append("subject".ljust(10) + "".join(c.rjust(width) for c in shown))
    for r in rows:
        cells = []
        for c in shown:
            found = r.cells[c]
            value = found.value_of(analyte) if analyte and found.state == "present" else None
            cells.append((found.symbol if value is None else fit(value, width - 1))
                         .rjust(width))
        lines.append(r.view.subject[:9].ljust(10) + "".join(cells))
    lines += ["", "Legend:"]
    lines += wrapped((f"{sym} {label}" for sym, label in STATES.values()), indent="  ")
    if analyte:
        lines.append(f"  values in {snapshot.catalogue.analytes[analyte].unit}, cut to "
                     f"{width - 1} characters (k: thousands); whole values: --format csv")
    _print(lines)


@app.command()
def dataset(
    out_file: Annotated[str | None, typer.Option("--out", help="Write to this file")] = None,
    dictionary: Annotated[bool, typer.Option(
        "--dictionary", help="Print the data dictionary of the columns instead")] = False,
) -> None:
    """The statisticians' table: visit-level and participant-level rows with covariates and
    category codes spelled out (CSV); ``--dictionary`` describes every column."""
    text = dictionary_csv() if dictionary else dataset_csv(_snapshot())
    if out_file is None:
        sys.stdout.write(text)
        return
    try:
        with open(out_file, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    except OSError as exc:
        raise UnusableInput(f"cannot write {out_file}: {exc.strerror or exc}") from exc
    out.print(f"{'data dictionary' if dictionary else 'table'} written to {out_file}",
              markup=False, soft_wrap=True)


@app.command()
def dashboard(
    port: Annotated[int, typer.Option(help="Port")] = 8080,
    open_browser: Annotated[bool, typer.Option("--open/--no-open",
                                               help="Open the browser")] = True,
) -> None:
    """The data manager's dashboard: `serve` on loopback, the browser opened at /ui."""
    import threading
    import webbrowser

    import uvicorn

    url = f"http://127.0.0.1:{port}/ui"
    out.print(f"dashboard at {url} (Ctrl-C to stop)", markup=False)
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run("fhir_adapter.api:app_from_env", factory=True, host="127.0.0.1", port=port)
