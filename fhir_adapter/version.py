"""The adapter's version (as in pyproject.toml), named by its User-Agent, CapabilityStatement and
exports."""

__version__ = "0.1.0"
