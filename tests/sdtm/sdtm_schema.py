"""A JSON Schema of the Dataset-JSON v1.1 structure, written from the specification's text
(CDISC Dataset-JSON v1.1, 2024-12-05: "Top-level Metadata Attributes", "Column Metadata",
"Supported Column Data Type Combinations", "Row Data"), and its attribute order."""

from __future__ import annotations

from typing import Any

DATETIME = (r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]"
            r":[0-5][0-9](\.[0-9]+)?(([+-]([01][0-9]|2[0-3]):[0-5][0-9])|Z)?$")
OID = {"type": "string", "minLength": 1}
#: the top-level attributes in the order the specification gives them
TOP_LEVEL = ("datasetJSONCreationDateTime", "datasetJSONVersion", "fileOID",
             "dbLastModifiedDateTime", "originator", "sourceSystem", "studyOID",
             "metaDataVersionOID", "metaDataRef", "itemGroupOID", "records", "name", "label",
             "columns", "rows")
COLUMN = ("itemOID", "name", "label", "dataType", "targetDataType", "length", "displayFormat",
          "keySequence")

DATASET_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["datasetJSONCreationDateTime", "datasetJSONVersion", "itemGroupOID", "records",
                 "name", "label", "columns"],
    "properties": {
        "datasetJSONCreationDateTime": {"type": "string", "pattern": DATETIME},
        "datasetJSONVersion": {"type": "string", "pattern": r"^1\.1(\.(0|[1-9][0-9]*))?$"},
        "fileOID": OID,
        "dbLastModifiedDateTime": {"type": "string", "pattern": DATETIME},
        "originator": {"type": "string"},
        "sourceSystem": {
            "type": "object", "additionalProperties": False, "required": ["name", "version"],
            "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
        },
        "studyOID": OID,
        "metaDataVersionOID": OID,
        "metaDataRef": {"type": "string"},
        "itemGroupOID": OID,
        "records": {"type": "integer", "minimum": 0},
        "name": {"type": "string", "minLength": 1},
        "label": {"type": "string"},
        "columns": {
            "type": "array", "minItems": 1,
            "items": {
                "type": "object", "additionalProperties": False,
                "required": ["itemOID", "name", "label", "dataType"],
                "properties": {
                    "itemOID": OID,
                    "name": {"type": "string", "minLength": 1},
                    "label": {"type": "string"},
                    "dataType": {"enum": ["string", "integer", "decimal", "float", "double",
                                          "boolean", "datetime", "date", "time", "URI"]},
                    "targetDataType": {"enum": ["integer", "decimal"]},
                    "length": {"type": "integer", "minimum": 1},
                    "displayFormat": {"type": "string"},
                    "keySequence": {"type": "integer", "minimum": 1},
                },
                # a decimal is exchanged as a string, targetDataType decimal
                "if": {"properties": {"dataType": {"const": "decimal"}}},
                "then": {"required": ["targetDataType"],
                         "properties": {"targetDataType": {"const": "decimal"}}},
            },
        },
        "rows": {
            "type": "array",
            "items": {"type": "array",
                      "items": {"type": ["string", "integer", "number", "boolean", "null"]}},
        },
    },
}


def ordered_like_the_standard(document: dict[str, Any]) -> None:
    """The attributes appear in the order of the specification (top level and columns)."""
    keys = list(document)
    assert keys == [k for k in TOP_LEVEL if k in document], keys
    for column in document["columns"]:
        assert list(column) == [k for k in COLUMN if k in column], column
