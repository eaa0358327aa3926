"""What the queries list flags, read from ``mappings/queries.toml``: the safety thresholds.

The plausible range of each analyte is not here: it is the analyte catalogue's
(``mappings/analytes.toml``), which the validation at the door reads too."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from fhir_adapter.errors import ConfigError

__all__ = ["QueryRules"]


@dataclass(frozen=True, slots=True)
class QueryRules:
    ctcae_grade_at_least: int
    creatinine_rise_pct: Decimal

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QueryRules:
        try:
            if "plausible" in data:
                raise KeyError("plausible: the plausible ranges are in analytes.toml")
            safety = data["safety"]
            return cls(int(safety["ctcae_grade_at_least"]),
                       Decimal(safety["creatinine_rise_pct"]))
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise ConfigError(f"queries.toml: missing or bad entry {exc}") from exc

    @classmethod
    def from_file(cls, path: Path) -> QueryRules:
        try:
            with path.open("rb") as fh:
                return cls.from_dict(tomllib.load(fh))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the queries rules ({exc})") from exc
