"""Reading Bundles, lone resources and NDJSON from disk; unusable input says where."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from pathlib import Path

import pytest

from fhir_adapter.errors import UnusableInput
from fhir_adapter.fhir.reading import bundle_entries, iter_ndjson, load_json, loads, read_path

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
DATA = ROOT.parent / "shared" / "data"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not found at {path}")
    return path


def test_transaction_bundle_entries_as_received() -> None:
    path = _need(DATA / "hl7-r4-examples" / "Bundle-bundle-transaction.json")
    raw = json.loads(path.read_text(encoding="utf-8"))
    opened = read_path(path)
    assert (opened.format, opened.bundle_type) == ("json", "transaction")
    entries = list(opened)
    assert len(entries) == len(raw["entry"])
    for entry, expected in zip(entries, raw["entry"], strict=True):
        request = expected.get("request", {})
        assert entry.full_url == expected.get("fullUrl")
        assert entry.resource == expected.get("resource")
        assert entry.request_method == request.get("method")
        assert entry.request_url == request.get("url")
        assert entry.if_none_exist == request.get("ifNoneExist")
    assert [e.index for e in entries] == list(range(len(raw["entry"])))
    assert entries[1].if_none_exist == "identifier=http:/example.org/fhir/ids|234234"
    assert entries[5].resource is None and entries[5].request_method == "DELETE"


def test_synthea_bundle_counts() -> None:
    folder = _need(DATA / "synthea")
    for path in sorted(folder.glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        opened = read_path(path)
        assert opened.bundle_type == raw["type"] == "transaction"
        types = [e.resource["resourceType"] for e in opened if e.resource]
        assert types == [e["resource"]["resourceType"] for e in raw["entry"]]


def test_a_lone_resource_is_one_entry() -> None:
    path = _need(DATA / "hl7-r4-examples" / "Observation-body-height.json")
    opened = read_path(path)
    assert opened.bundle_type is None
    (entry,) = list(opened)
    assert entry.index == 0 and entry.resource is not None
    assert entry.resource["id"] == "body-height"


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"resourceType": "Bundle", "type": "batch", ', encoding="utf-8")
    with pytest.raises(UnusableInput) as caught:
        read_path(path)
    assert caught.value.where.file == str(path)
    assert "not JSON" in caught.value.message
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("body", ['{"id": "x"}', "[1, 2]", '"text"'])
def test_json_that_is_not_fhir(tmp_path: Path, body: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(UnusableInput, match="not a FHIR resource"):
        load_json(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UnusableInput, match="cannot read") as caught:
        read_path(tmp_path / "absent.json")
    assert caught.value.where.file == str(tmp_path / "absent.json")


def test_an_entry_without_resource_type_is_located(tmp_path: Path) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": {"resourceType": "Patient"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {"resource": {"id": "x"}, "request": {"method": "POST", "url": "Patient"}},
        ],
    }
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    with pytest.raises(UnusableInput) as caught:
        read_path(path)  # checked before any entry is handed out
    assert caught.value.where.file == str(path)
    assert caught.value.where.entry == 1
    assert caught.value.where.element == "Bundle.entry[1].resource"
    assert len(list(bundle_entries(bundle | {"entry": bundle["entry"][:1]}))) == 1


def _ndjson(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_ndjson_bad_line_is_named(tmp_path: Path) -> None:
    good = json.dumps({"resourceType": "Patient", "id": "a"})
    path = _ndjson(tmp_path / "p.ndjson", [good, "", good, "{not json", good])
    with pytest.raises(UnusableInput) as caught:
        list(read_path(path))
    assert (caught.value.where.file, caught.value.where.line) == (str(path), 4)
    assert caught.value.line().startswith(f"{path}: line 4: not JSON")
    seen: list[UnusableInput] = []
    entries = list(iter_ndjson(path, on_error=seen.append))
    assert [e.index for e in entries] == [1, 3, 5]
    assert [e.where.line for e in seen] == [4]


def test_ndjson_found_by_its_lines_whatever_its_name(tmp_path: Path) -> None:
    lines = [json.dumps({"resourceType": "Observation", "id": str(i)}) for i in range(3)]
    opened = read_path(_ndjson(tmp_path / "export.json", lines))
    assert opened.format == "ndjson" and opened.document is None
    assert [e.resource["id"] for e in opened if e.resource] == ["0", "1", "2"]


def test_ndjson_gzip(tmp_path: Path) -> None:
    path = tmp_path / "Observation.ndjson.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(json.dumps({"resourceType": "Observation", "id": "g"}) + "\n")
    assert [e.resource["id"] for e in read_path(path) if e.resource] == ["g"]


@pytest.mark.slow
def test_ndjson_is_streamed_in_flat_memory(tmp_path: Path) -> None:
    """200,000 lines (about 60 MB) read with a peak far below the size of the file."""
    line = json.dumps(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2024-03-24T08:30:00+03:30",
            "valueQuantity": {"value": 0.61, "unit": "mg/dL", "code": "mg/dL"},
            "note": [{"text": "x" * 100}],
        }
    )
    path = tmp_path / "big.ndjson"
    with path.open("w", encoding="utf-8") as fh:
        for _ in range(200_000):
            fh.write(line + "\n")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        count = sum(1 for _ in read_path(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 200_000
    assert peak < 2_000_000 < size / 20


def test_loads_bytes() -> None:
    assert loads(b'{"resourceType": "Patient"}') == {"resourceType": "Patient"}
    with pytest.raises(UnusableInput):
        loads(b"<Patient/>")
