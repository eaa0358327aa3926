"""The trial model and the endpoint computations: plain Python, no FHIR, no I/O."""
