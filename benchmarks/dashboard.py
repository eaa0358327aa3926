"""The dashboard's pages on a store of many participants: server time of each page, against
``fhir-adapter participants --format csv`` run as a command on the same store.

The first page builds the workspace snapshot; then the shared pages are prepared as the
warming thread prepares them after a change (timed on its own); then every page is asked.

    python -m benchmarks.dashboard [--observations N] [--json OUT]

The store is filled by a bulk NDJSON load (not timed, see ``bulk_ndjson``). Pages are asked of
the app in this process (ASGI, no network), as a caller on loopback with no token configured.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.bulk_ndjson import _prepared, show, timed

__all__ = ["PAGES", "main", "run"]

#: The pages timed ({subject}: the first participant).
PAGES = ("/ui", "/ui?analyte=creatinine", "/ui/participants/{subject}",
         "/ui/participants/{subject}/visits/M3", "/ui/queries", "/ui/summary", "/ui/audit")



def run(observations: int = 20_000) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from benchmarks.data import write_bulk_export
    from fhir_adapter.api import create_app
    from fhir_adapter.pipeline.workspace_access import workspace_of
    from fhir_adapter.settings import Settings

    with tempfile.TemporaryDirectory(prefix="fa-dash-") as tmp:
        folder = Path(tmp)
        export = write_bulk_export(folder, observations)
        url = f"sqlite:///{folder / 'dash.db'}"
        pipeline = _prepared(folder, url)
        try:
            pipeline.ingest_paths([export.observations], sender="bulk")
            env = {**os.environ, "FHIR_ADAPTER_DATABASE_URL": url}
            command = [str(Path(sys.executable).parent / "fhir-adapter"), "participants",
                       "--format", "csv"]
            csv_s, done = timed(lambda: subprocess.run(command, env=env, capture_output=True,
                                                        cwd=folder, check=True))
            settings = Settings(database_url=url, tokens_file=folder / "no-tokens.json")
            client = TestClient(create_app(settings, pipeline), client=("127.0.0.1", 50000))
            subject = done.stdout.decode().splitlines()[1].split(",")[0]
            pages: dict[str, float] = {}
            first_s, first = timed(lambda: client.get("/ui"))
            assert first.status_code == 200, first.status_code
            workspace = workspace_of(pipeline)  # what its warming thread does next, timed here
            snapshot = workspace.snapshot()
            assert workspace.prepare is not None
            prepare_s, _ = timed(lambda: workspace.prepare(snapshot))
            for page in PAGES:
                path = page.format(subject=subject)
                seconds, answer = timed(lambda path=path: client.get(path))
                assert answer.status_code == 200, (path, answer.status_code)
                pages[path] = round(seconds, 3)
            # one participant's value corrected, then the pages asked at once (no warming)
            workspace.stop_warming()
            correction = folder / "correction.ndjson"
            correction.write_text(_corrected_line(export.observations), encoding="utf-8")
            loaded = pipeline.ingest_paths([correction], sender="bulk")
            assert not loaded.errors, loaded.errors[0].line()
            after: dict[str, float] = {}
            for path in ("/ui", "/ui?analyte=creatinine"):
                seconds, answer = timed(lambda path=path: client.get(path))
                assert answer.status_code == 200, (path, answer.status_code)
                after[path] = round(seconds, 3)
        finally:
            workspace_of(pipeline).stop_warming()
            pipeline.store.close()
    slowest = max(pages, key=lambda p: pages[p])
    return {
        "observations": observations, "participants": export.participants,
        "participants_csv_seconds": round(csv_s, 3),
        "first_page_seconds": round(first_s, 3),
        "prepare_seconds": round(prepare_s, 3),
        "slowest_page": slowest, "slowest_page_seconds": pages[slowest], "pages": pages,
        "after_one_correction": after,
    }


def _corrected_line(observations: Path) -> str:
    """The first Observation of the export with its value changed (a new version of it)."""
    import json

    with observations.open(encoding="utf-8") as lines:
        first = json.loads(next(lines))
    quantity = first["valueQuantity"]
    quantity["value"] = round(float(quantity["value"]) * 1.1 + 0.01, 2)
    return json.dumps(first) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--observations", type=int, default=20_000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    show(run(args.observations), args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
