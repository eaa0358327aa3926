"""Pulling results from a store that holds many participants: the whole result Bundle against
an incremental pull (``_since``), right after the whole one and after new data.

    python -m benchmarks.pull [--observations N] [--json OUT]

The store is filled by a bulk NDJSON load (not timed, see ``bulk_ndjson``). Then, in this
process: the whole Bundle (every result, its participants and sources, the study summary); an
incremental pull since the load (nothing new: the summary of the first is reused); a read of
one result Observation by id, and a search of one participant's Observations by subject; a
correction of one participant's last creatinine; the incremental pull again (its results
amended: that participant's part of the summary is computed again). Baseline: the whole Bundle,
in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import orjson

from benchmarks.bulk_ndjson import _prepared, show, timed

__all__ = ["main", "run"]

CREATININE = "2160-0"  # LOINC, serum creatinine (mass/volume)



def run(observations: int = 20_000) -> dict[str, Any]:
    from benchmarks.data import write_bulk_export

    with tempfile.TemporaryDirectory(prefix="fa-pull-") as tmp:
        folder = Path(tmp)
        export = write_bulk_export(folder, observations)
        pipeline = _prepared(folder, f"sqlite:///{folder / 'pull.db'}")
        try:
            pipeline.ingest_paths([export.observations], sender="bulk")
            since = pipeline.store.clock()
            whole_s, whole = timed(pipeline.result_bundle)
            empty_s, empty = timed(lambda: pipeline.result_bundle(since))
            observation = next(e["resource"] for e in whole["entry"]
                               if e["resource"]["resourceType"] == "Observation")
            read_s, _ = timed(lambda: pipeline.read_result("Observation", observation["id"]))
            subject = {"subject": [observation["subject"]["reference"]]}
            search_s, found = timed(lambda: pipeline.search_results("Observation", subject))
            line = _last_creatinine_of_the_first_participant(export.observations)
            line["status"] = "amended"  # corrected by the lab: its results are amended
            line["valueQuantity"]["value"] = round(line["valueQuantity"]["value"] * 1.5, 2)
            pipeline.process_resource(line, sender="bulk")
            changed_s, changed = timed(lambda: pipeline.result_bundle(since))
        finally:
            pipeline.store.close()
    return {
        "observations": observations, "participants": export.participants,
        "whole_seconds": round(whole_s, 3), "whole_entries": len(whole["entry"]),
        "nothing_new_seconds": round(empty_s, 3), "nothing_new_entries": len(empty["entry"]),
        "read_observation_seconds": round(read_s, 3),
        "search_subject_seconds": round(search_s, 3), "search_subject_found": len(found),
        "after_change_seconds": round(changed_s, 3),
        "after_change_entries": len(changed["entry"]),
    }


def _last_creatinine_of_the_first_participant(path: Path) -> dict[str, Any]:
    """The first participant's last serum creatinine (its M12 value: a result uses it)."""
    found: dict[str, Any] = {}
    with path.open("rb") as fh:
        for raw in fh:
            line = orjson.loads(raw)
            subject = line["subject"]["reference"]
            if found and subject != found["subject"]["reference"]:
                break
            if line["code"]["coding"][0]["code"] == CREATININE:
                found = line
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--observations", type=int, default=20_000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    show(run(args.observations), args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
