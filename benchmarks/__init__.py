"""Benchmarks of fhir-adapter: ``python -m benchmarks.run [--size smoke|full]`` runs them all."""
