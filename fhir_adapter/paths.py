"""Where the project's data folders are: shipped in the wheel, or beside the source tree."""

from __future__ import annotations

from pathlib import Path

__all__ = ["data_dir", "mappings_dir", "profiles_dir", "sample_bundles_dir"]

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The folder ``name`` (profiles, mappings, sample_bundles) of an installed or source tree."""
    shipped = _PACKAGE / "_data" / name
    if shipped.is_dir():
        return shipped
    return _PACKAGE.parent / name


def profiles_dir() -> Path:
    return data_dir("profiles")


def mappings_dir() -> Path:
    return data_dir("mappings")


def sample_bundles_dir() -> Path:
    return data_dir("sample_bundles")
