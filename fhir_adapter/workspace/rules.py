"""What the queries list flags, read from ``mappings/queries.toml``: safety thresholds and the
plausible range of each analyte."""

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
    plausible: dict[str, tuple[Decimal, Decimal]]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QueryRules:
        try:
            safety = data["safety"]
            bounds = {k: (Decimal(low), Decimal(high))
                      for k, (low, high) in data.get("plausible", {}).items()}
            return cls(int(safety["ctcae_grade_at_least"]),
                       Decimal(safety["creatinine_rise_pct"]), bounds)
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise ConfigError(f"queries.toml: missing or bad entry {exc}") from exc

    @classmethod
    def from_file(cls, path: Path) -> QueryRules:
        try:
            with path.open("rb") as fh:
                return cls.from_dict(tomllib.load(fh))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the queries rules ({exc})") from exc
