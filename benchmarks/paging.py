"""Searchset paging over a store of many participants: one page of Observations, a page deep in
the result set, against the whole result Bundle of the same store in the same run.

    python -m benchmarks.paging [--observations N] [--count C] [--pages P] [--json OUT]

The store is filled by a bulk NDJSON load (not timed, see ``bulk_ndjson``). Pages are asked of
the app in this process (ASGI, no network), as a caller on loopback with no token configured:
``GET /fhir/Observation?_count=C``, then its ``next`` links up to page P. Baseline: building the
whole result Bundle (``Pipeline.result_bundle``). The walk of every page is estimated from the
mean page time and the number of pages the first page's ``total`` gives (walking them all at
100,000 Observations takes hours today: each page is cut from the published set, made per
request).
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.bulk_ndjson import _prepared, show, timed

__all__ = ["main", "run"]



def run(observations: int = 20_000, count: int = 100, pages: int = 50) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from benchmarks.data import write_bulk_export
    from fhir_adapter.api import create_app
    from fhir_adapter.settings import Settings

    with tempfile.TemporaryDirectory(prefix="fa-paging-") as tmp:
        folder = Path(tmp)
        export = write_bulk_export(folder, observations)
        url = f"sqlite:///{folder / 'paging.db'}"
        pipeline = _prepared(folder, url)
        try:
            pipeline.ingest_paths([export.observations], sender="bulk")
            whole_s, whole = timed(pipeline.result_bundle)
            settings = Settings(database_url=url, tokens_file=folder / "no-tokens.json")
            client = TestClient(create_app(settings, pipeline), client=("127.0.0.1", 50000))
            times: list[float] = []
            link = f"/fhir/Observation?_count={count}"
            total = 0
            for _ in range(pages):
                seconds, answer = timed(lambda link=link: client.get(link))
                assert answer.status_code == 200, answer.text[:300]
                page = answer.json()
                times.append(seconds)
                total = total or int(page.get("total") or 0)
                following = [x["url"] for x in page.get("link", []) if x["relation"] == "next"]
                if not following:
                    break
                link = following[0].split("://", 1)[-1].split("/", 1)[-1]
                link = "/" + link
        finally:
            pipeline.store.close()
    mean = sum(times) / len(times)
    every = math.ceil(total / count) if total else len(times)
    return {
        "observations": observations, "participants": export.participants,
        "whole_bundle_seconds": round(whole_s, 3),
        "whole_bundle_entries": len(whole.get("entry", [])),
        "page_count": count, "search_total": total,
        "page_1_seconds": round(times[0], 3),
        "page_1_ratio_to_whole": round(times[0] / whole_s, 4),
        f"page_{len(times)}_seconds": round(times[-1], 3),
        "deep_page_ratio_to_page_1": round(times[-1] / times[0], 3),
        "pages_asked": len(times), "pages_in_all": every,
        "walk_estimate_seconds": round(mean * every, 1),
        "walk_estimate_ratio_to_whole": round(mean * every / whole_s, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--observations", type=int, default=20_000)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    show(run(args.observations, args.count, args.pages), args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
