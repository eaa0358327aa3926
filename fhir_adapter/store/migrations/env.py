"""Alembic environment: runs on the connection that Store.open hands over."""

from __future__ import annotations

from alembic import context

from fhir_adapter.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when someone runs the alembic command by hand
    raise RuntimeError("run the migrations through fhir_adapter.store.Store.open(url)")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
