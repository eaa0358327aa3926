"""Dataset writers: Dataset-JSON v1.1 (JSON and NDJSON forms), CSV and SAS XPT v5.

Every writer takes rows one at a time. The Dataset-JSON forms put ``records`` and the planned
``length`` of each column before the rows (the standard's attribute order), so the rows are
spooled to a temporary file as they come and copied after the header: memory stays flat
however large the dataset. XPT is written by pyreadstat from one table in memory.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import orjson

from fhir_adapter.errors import UnusableInput
from fhir_adapter.sdtm.subject import Row
from fhir_adapter.sdtm.variables import Domain, Variable

__all__ = ["FORMATS", "DatasetWriter", "Header", "column", "writer_for"]

#: Format name -> file extension.
FORMATS = {"dataset-json": "json", "ndjson": "ndjson", "xpt": "xpt", "csv": "csv"}
DATASET_JSON_VERSION = "1.1.0"
#: SAS XPT v5 limits (SAS technical note TS-140): names 8, labels 40, character values 200.
XPT_VALUE_BYTES = 200
Header = dict[str, Any]


def column(domain: Domain, variable: Variable, length: int | None) -> dict[str, Any]:
    """A Dataset-JSON column, its attributes in the standard's order (itemOID, name, label,
    dataType, targetDataType, length, displayFormat, keySequence). Decimals travel as strings
    with targetDataType decimal (Dataset-JSON v1.1, "Decimal Variables"), so no value is
    rounded through a binary float."""
    item: dict[str, Any] = {"itemOID": f"IT.{domain.name}.{variable.name}",
                            "name": variable.name, "label": variable.label,
                            "dataType": variable.data_type}
    if variable.data_type == "decimal":
        item["targetDataType"] = "decimal"
    if length is not None and not variable.numeric:
        item["length"] = max(length, 1)
    if variable.key is not None:
        item["keySequence"] = variable.key
    return item


class DatasetWriter:
    """Rows of one domain into one file; ``close`` writes what only the end knows.

    A row holds text (or None) for character and decimal variables, an int for integers and a
    Decimal for VISITNUM; a cell is None when missing, "" never (Dataset-JSON: missing is
    null)."""

    def __init__(self, domain: Domain, path: Path, header: Callable[[int, list[dict]], Header]):
        self.domain, self.path, self._header = domain, path, header
        self.records = 0
        self._names = list(domain.names)
        self._texts = [i for i, v in enumerate(domain.variables) if not v.numeric]
        self._decimals = [i for i, v in enumerate(domain.variables) if v.data_type == "decimal"]
        self._longest = [0] * len(self._names)

    @property
    def lengths(self) -> dict[str, int]:
        """The longest text written of each character and decimal variable (its planned
        length; 0 for integers and for a variable never filled)."""
        return dict(zip(self._names, self._longest, strict=True))

    def add(self, row: Row) -> None:
        cells = [row.get(name) for name in self._names]
        longest = self._longest
        for i in self._texts:
            cell = cells[i]
            if cell:
                if len(cell) > longest[i]:
                    longest[i] = len(cell)
            else:
                cells[i] = None
        for i in self._decimals:
            cell = cells[i]
            if isinstance(cell, Decimal):
                cell = cells[i] = format(cell, "f")
            if cell:
                if len(cell) > longest[i]:
                    longest[i] = len(cell)
            else:
                cells[i] = None
        self.records += 1
        self._write(cells)

    def columns(self) -> list[dict[str, Any]]:
        lengths = self.lengths
        return [column(self.domain, v, lengths[v.name]) for v in self.domain.variables]

    def _write(self, cells: list[Any]) -> None:
        raise NotImplementedError

    def close(self) -> Path:
        raise NotImplementedError


class _JsonWriter(DatasetWriter):
    """Dataset-JSON, JSON form (``ndjson`` False) or NDJSON form: the rows spooled to a
    temporary file, then the header written and the rows copied after it."""

    def __init__(self, domain: Domain, path: Path, header: Callable[..., Header], *,
                 ndjson: bool) -> None:
        super().__init__(domain, path, header)
        self.ndjson = ndjson
        # closed by close(): the spool lives as long as the writer
        self._spool: IO[bytes] = tempfile.TemporaryFile("w+b")  # noqa: SIM115
        self._between = b"\n" if ndjson else b",\n"

    def _write(self, cells: list[Any]) -> None:
        if self.ndjson:
            self._spool.write(orjson.dumps(cells) + b"\n")
            return
        if self.records > 1:
            self._spool.write(b",\n")
        self._spool.write(orjson.dumps(cells))

    def close(self) -> Path:
        header = self._header(self.records, self.columns())
        self._spool.seek(0)
        with self.path.open("wb") as out:
            text = orjson.dumps(header)
            if self.ndjson:
                out.write(text + b"\n")
                shutil.copyfileobj(self._spool, out)
            else:
                out.write(text[:-1] + b',"rows":[\n')
                shutil.copyfileobj(self._spool, out)
                out.write(b"\n]}\n")
        self._spool.close()
        return self.path


class _CsvWriter(DatasetWriter):
    """RFC 4180 CSV with the SDTM variable names as header; empty cell for missing."""

    def __init__(self, domain: Domain, path: Path, header: Callable[..., Header]) -> None:
        super().__init__(domain, path, header)
        self._file = path.open("w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file, lineterminator="\r\n")
        self._csv.writerow(domain.names)

    def _write(self, cells: list[Any]) -> None:
        self._csv.writerow(["" if c is None else c for c in cells])

    def close(self) -> Path:
        self._file.close()
        return self.path


class _XptWriter(DatasetWriter):
    """SAS XPT version 5 by pyreadstat: numbers as 8-byte floats (the format's only numeric),
    character values ASCII and at most 200 bytes; anything else is refused, not cut."""

    def __init__(self, domain: Domain, path: Path, header: Callable[..., Header]) -> None:
        super().__init__(domain, path, header)
        self._rows: list[list[Any]] = []

    def _write(self, cells: list[Any]) -> None:
        for v, cell in zip(self.domain.variables, cells, strict=True):
            if isinstance(cell, str) and not v.numeric and \
                    (not cell.isascii() or len(cell) > XPT_VALUE_BYTES):
                raise UnusableInput(f"{self.domain.name}.{v.name} value {cell[:40]!r}... is not "
                                    f"ASCII of at most {XPT_VALUE_BYTES} bytes (SAS XPT v5)")
        self._rows.append([
            (float(c) if c is not None else None) if v.numeric else ("" if c is None else c)
            for v, c in zip(self.domain.variables, cells, strict=True)
        ])

    def close(self) -> Path:
        import pandas as pd
        import pyreadstat

        frame = pd.DataFrame(self._rows, columns=list(self.domain.names))
        for v in self.domain.variables:
            if v.numeric:
                frame[v.name] = frame[v.name].astype("float64")
        pyreadstat.write_xport(
            frame, str(self.path), file_label=self.domain.label,
            column_labels={v.name: v.label for v in self.domain.variables},
            table_name=self.domain.name, file_format_version=5,
        )
        return self.path


def writer_for(fmt: str, domain: Domain, folder: Path,
               header: Callable[[int, list[dict]], Header]) -> DatasetWriter:
    """The writer of ``fmt`` for ``domain``, writing ``folder/<domain>.<ext>`` (lower case)."""
    if fmt not in FORMATS:
        raise UnusableInput(f"unknown SDTM format {fmt!r} ({', '.join(FORMATS)})")
    path = folder / f"{domain.name.lower()}.{FORMATS[fmt]}"
    if fmt in ("dataset-json", "ndjson"):
        return _JsonWriter(domain, path, header, ndjson=fmt == "ndjson")
    if fmt == "csv":
        return _CsvWriter(domain, path, header)
    return _XptWriter(domain, path, header)
