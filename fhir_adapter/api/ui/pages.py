"""The dashboard's pages under /ui: schedule grid, cell values, participant, value, queries,
study summary, audit log, and the login form. Server-rendered, no script, works offline."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, FastAPI, Query
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from fhir_adapter.api.deps import in_thread, pipeline_of
from fhir_adapter.api.ui.access import COOKIE, Refusal, allowed, known, viewer
from fhir_adapter.api.ui.charts import bar_chart, line_chart
from fhir_adapter.api.ui.grid_html import grid_rows
from fhir_adapter.api.ui.render import render
from fhir_adapter.api.ui.trajectories import charts
from fhir_adapter.errors import AuthError
from fhir_adapter.pipeline.workspace_access import Workspace, workspace_of
from fhir_adapter.trial.endpoints import summarize
from fhir_adapter.workspace import (
    DAY0,
    KINDS,
    STATES,
    QueryRules,
    Snapshot,
    cell,
    columns,
    grid,
    queries,
)
from fhir_adapter.workspace.dataset import category_label

__all__ = ["follow_data", "router"]

router = APIRouter(prefix="/ui", include_in_schema=False)
Text = Annotated[str | None, Query()]


def follow_data(app: FastAPI, *, at_once: bool = False) -> Workspace:
    """The workspace of the app's pipeline, its snapshot made again in the background after
    each change while pages are looked at (``at_once``: its first snapshot made now, before
    any page is asked)."""
    workspace = workspace_of(app.state.pipeline)
    if not workspace.warming:
        workspace.prepare = prepare(workspace.rules)
        workspace.start_warming(at_once=at_once)
        app.state.workspace = workspace  # the app's end stops the thread
    return workspace


def _snapshot(request: Request) -> Snapshot:
    viewer(request)
    return follow_data(request.app).snapshot()  # from the first page on, it follows the data


def _page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(render(template, path=request.url.path, **context), status_code=status)


async def _guarded(request: Request, template: str, build: Any) -> Response:
    try:
        context = await in_thread(build)
    except Refusal as refused:
        return _refused(request, refused)
    return _page(request, template, 404 if context.get("missing") else 200, **context)


def _refused(request: Request, refused: Refusal) -> HTMLResponse:
    """401: the login form (no data); 403: why not."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return _page(request, "login.html", refused.status, message=refused.message,
                 next=target, forbidden=refused.status == 403)


def _schedule(snapshot: Snapshot, analyte: str | None) -> str:
    chosen = analyte if analyte in snapshot.catalogue.analytes else None
    shown = columns(snapshot)
    return snapshot.memo(("schedule", chosen), lambda: render(
        "schedule.html", path="/ui", body=grid_rows(grid(snapshot, chosen), shown, chosen),
        count=len(snapshot.participants), columns=shown, states=STATES, analyte=chosen,
        analytes=snapshot.catalogue.analytes, title="Schedule of activities"))


def _queries(snapshot: Snapshot, rules: QueryRules, kind: str | None) -> str:
    chosen = kind if kind in KINDS else None
    found = snapshot.memo("queries", lambda: queries(snapshot, rules))
    return snapshot.memo(("queries", chosen), lambda: render(
        "queries.html", path="/ui/queries", queries=[q for q in found if chosen in (None, q.kind)],
        kinds=KINDS, counts=Counter(q.kind for q in found), kind=chosen or "",
        zone=snapshot.study.timezone, title="Queries"))


def _summary(snapshot: Snapshot) -> str:
    def page() -> str:
        study = summarize([p.endpoints for p in snapshot.participants],
                          snapshot.study.median_changes)
        bars = {code: bar_chart(code, sorted(values.items())) for code, values in
                study.counts.items()}
        return render("summary.html", path="/ui/summary", summary=study, bars=bars,
                      snapshot=snapshot, participants=len(snapshot.participants),
                      title="Study summary")

    return snapshot.memo("summary", page)


def prepare(rules: QueryRules) -> Any:
    """What the workspace's warming thread makes for each new snapshot: the pages every viewer
    of a snapshot sees alike (the schedule of all analytes and of each, the queries, the
    summary). After a write only its participants' rows are made again (kept per view)."""

    def made(snapshot: Snapshot) -> None:
        for analyte in (None, *snapshot.catalogue.analytes):
            _schedule(snapshot, analyte)
        _queries(snapshot, rules, None)
        _summary(snapshot)

    return made


async def _shared(request: Request, page: Any) -> Response:
    """A page the same for every viewer of a snapshot (made once per snapshot)."""

    def build() -> str:
        snapshot = _snapshot(request)
        return str(page(snapshot))

    try:
        return HTMLResponse(await in_thread(build))
    except Refusal as refused:
        return _refused(request, refused)


@router.get("")
@router.get("/")
async def schedule(request: Request, analyte: Text = None) -> Response:
    return await _shared(request, lambda snapshot: _schedule(snapshot, analyte))


@router.get("/participants/{subject}/visits/{visit}")
async def visit_values(request: Request, subject: str, visit: str,
                       analyte: Text = None) -> Response:
    def build() -> dict[str, Any]:
        snapshot = _snapshot(request)
        view = snapshot.participant(subject)
        if view is None or visit not in columns(snapshot):
            return {"missing": f"no participant {subject} or no visit {visit}", "title": "Visit"}
        chosen = analyte if analyte in snapshot.catalogue.analytes else None
        found = cell(snapshot, view, visit, chosen)
        return {"view": view, "cell": found, "visit": visit, "analyte": chosen,
                "snapshot": snapshot, "states": STATES, "day0": visit == DAY0,
                "infusion": view.record.day0, "title": f"{subject} {visit}"}

    return await _guarded(request, "visit.html", build)


@router.get("/participants/{subject}")
async def participant(request: Request, subject: str) -> Response:
    def build() -> dict[str, Any]:
        snapshot = _snapshot(request)
        view = snapshot.participant(subject)
        if view is None:
            return {"missing": f"no participant {subject}", "title": "Participant"}
        drawn = [(c, line_chart(c)) for c in charts(snapshot, view)]
        labels = {p.code: category_label(str(p.value).lower() if isinstance(p.value, bool)
                                         else str(p.value), snapshot, endpoint=p.code)
                  for p in view.endpoints.participant_results}
        return {"view": view, "snapshot": snapshot, "charts": drawn, "labels": labels,
                "age": snapshot.age_at_day0(view), "day0": snapshot.day0_date(view),
                "title": f"Participant {subject}"}

    return await _guarded(request, "participant.html", build)


@router.get("/participants/{subject}/values/{value_id}")
async def value(request: Request, subject: str, value_id: str) -> Response:
    def build() -> dict[str, Any]:
        snapshot = _snapshot(request)
        view = snapshot.participant(subject)
        found = None
        if view is not None:
            found = next((m for m in view.record.measurements
                          if snapshot.source_id(m.source) == value_id), None)
        if view is None or found is None:
            return {"missing": f"no value {value_id} of {subject}", "title": "Value"}
        derived = [r for r in view.endpoints.visit_results if found.source in r.sources]
        offset = found.at - view.day0 if view.day0 else None
        return {"view": view, "m": found, "id": value_id, "snapshot": snapshot,
                "derived": derived, "offset": offset, "title": f"Value {value_id}"}

    return await _guarded(request, "value.html", build)


@router.get("/queries")
async def queries_page(request: Request, kind: Text = None) -> Response:
    rules = workspace_of(pipeline_of(request)).rules
    return await _shared(request, lambda snapshot: _queries(snapshot, rules, kind))


@router.get("/summary")
async def summary(request: Request) -> Response:
    return await _shared(request, _summary)


@router.get("/audit")
async def audit(request: Request, sender: Text = None, outcome: Text = None) -> Response:
    def build() -> dict[str, Any]:
        snapshot = _snapshot(request)
        rows = [e for e in snapshot.audit if sender in (None, "", e.sender)
                and (outcome in (None, "") or (outcome == "refused") == e.refused)]
        senders = sorted({e.sender for e in snapshot.audit})
        types = [Counter(r.split("/")[0] for r in e.resources) for e in rows]
        return {"rows": list(zip(rows, types, strict=True)), "senders": senders,
                "sender": sender or "", "outcome": outcome or "",
                "zone": snapshot.study.timezone, "title": "Audit log"}

    return await _guarded(request, "audit.html", build)


@router.get("/login")
async def login_form(request: Request, next: Text = None) -> HTMLResponse:  # noqa: A002
    return _page(request, "login.html", message="", next=next or "/ui", forbidden=False,
                 title="Sign in")


@router.post("/login")
async def login(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    secret = (form.get("token") or [""])[0].strip()
    target = (form.get("next") or ["/ui"])[0]
    if not target.startswith("/ui"):  # never redirect elsewhere
        target = "/ui"
    try:
        principal = known(request, secret) if secret else None
        why = "this token is not known to the server"
    except AuthError as exc:  # revoked or expired
        principal, why = None, exc.message
    if principal is None or not allowed(principal):
        if principal is not None:
            why = "this token has neither the ui nor the system/*.rs scope"
        return _page(request, "login.html", 401 if principal is None else 403,
                     message=why, next=target, forbidden=principal is not None)
    response = RedirectResponse(quote(target, safe="/?=&"), status_code=303)
    response.set_cookie(COOKIE, secret, httponly=True, samesite="strict", path="/ui",
                        secure=request.url.scheme == "https")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response
