"""Benchmarks of fhir-adapter (run as modules: ``python -m benchmarks.validation``)."""
