"""fhir-adapter: FHIR R4 interoperability adapter for clinical trials.

``from fhir_adapter import validate`` validates a resource or a Bundle offline (see
``fhir_adapter.validation.offline``); it is imported on first use, so that importing the package
for anything else stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fhir_adapter.version import __version__

if TYPE_CHECKING:
    from fhir_adapter.validation.offline import ValidationResult, validate

__all__ = ["ValidationResult", "__version__", "validate"]


def __getattr__(name: str) -> Any:
    """The public validator, imported when first asked for (PEP 562)."""
    if name in ("validate", "ValidationResult"):
        from fhir_adapter.validation import offline

        return getattr(offline, name)
    raise AttributeError(f"module 'fhir_adapter' has no attribute {name!r}")
