"""fhir-adapter: FHIR R4 interoperability adapter for clinical trials."""

__all__ = ["__version__"]

__version__ = "0.1.0"
