"""The app factory: one FastAPI app over one Pipeline, with its routers and its error handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Protocol

from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware

from fhir_adapter.api.errors import install_error_handlers
from fhir_adapter.api.negotiation import Negotiation
from fhir_adapter.settings import Settings
from fhir_adapter.store import Store
from fhir_adapter.store.clients import ClientRegistry
from fhir_adapter.store.tokens import TokenFile
from fhir_adapter.version import __version__

__all__ = ["GZIP_MIN_BYTES", "PipelinePort", "create_app"]

#: Answers from this size on are gzip-compressed for a client that accepts it.
GZIP_MIN_BYTES = 1024


class PipelinePort(Protocol):
    """What the api needs of the pipeline (fhir_adapter.pipeline.Pipeline provides it)."""

    def process_bundle(
        self, bundle: dict[str, Any], *, sender: str, source: str, prefer: str = ...
    ) -> Any: ...

    def process_resource(
        self,
        resource: dict[str, Any],
        *,
        sender: str,
        method: str,
        id: str | None = ...,
        conditional: str | None = ...,
        prefer: str = ...,
        if_match: str | None = ...,
    ) -> Any: ...

    def validate(
        self,
        document: dict[str, Any],
        *,
        resource_type: str | None = ...,
        profile: str | None = ...,
    ) -> dict[str, Any]: ...

    def result_bundle(self, *, since: datetime | None = ...) -> dict[str, Any]: ...

    def read_result(self, resource_type: str, id: str) -> dict[str, Any]: ...

    def search_results(
        self, resource_type: str, params: Mapping[str, list[str]]
    ) -> list[dict[str, Any]]: ...

    def search_in_pool(
        self, resource_type: str, params: Mapping[str, list[str]], *, everything: bool = ...
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]: ...

    def study_id(self) -> str: ...


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Deliver results in the background while serving, when a push URL is configured."""
    settings: Settings = app.state.settings
    pipeline = app.state.pipeline
    worker = None
    if settings.push_url:
        from fhir_adapter.outbound import start_push_worker

        worker = start_push_worker(pipeline.outbox, pipeline.push_bundle, settings)
    app.state.push_worker = worker
    exports = _start_exports(pipeline, settings)
    app.state.exports = exports
    watch = None
    if app.state.subscriptions is not None:
        from fhir_adapter.pipeline.subscription_watch import SubscriptionWatch

        watch = SubscriptionWatch(app.state.subscriptions).start()
    try:
        yield
    finally:
        if watch is not None:
            watch.stop()
        if worker is not None:
            worker.stop()
        workspace = getattr(app.state, "workspace", None)  # the dashboard's, once used
        if workspace is not None:
            workspace.stop_warming()
        if exports is not None:
            exports.stop()


def _start_exports(pipeline: Any, settings: Settings) -> Any:
    """The Bulk Data export service, for a pipeline that publishes results (looked up in its
    own attributes: a pipeline given by a test may refuse every other lookup)."""
    publication = pipeline.__dict__.get("publication") if hasattr(pipeline, "__dict__") \
        else None
    if publication is None:
        return None
    from fhir_adapter.pipeline.exports_service import start_exports

    return start_exports(publication, settings)


def _subscriptions_of(pipeline: Any, settings: Settings) -> Any:
    """The receiver of EHR notifications, for a pipeline that writes to a store (a pipeline
    given by a test may have none)."""
    store = pipeline.__dict__.get("store") if hasattr(pipeline, "__dict__") else None
    if not isinstance(store, Store):
        return None
    from fhir_adapter.pipeline.subscriptions import Subscriptions

    return Subscriptions.from_settings(pipeline, settings)


def _store_of(pipeline: Any, settings: Settings) -> Store:
    """The pipeline's store when it has one, else the settings' database (a pipeline given
    by a test may have none)."""
    store = pipeline.__dict__.get("store") if hasattr(pipeline, "__dict__") else None
    return store if isinstance(store, Store) else Store.open(settings.db_url())


def create_app(settings: Settings, pipeline: PipelinePort | None = None) -> FastAPI:
    """The REST endpoint over ``pipeline`` (built from ``settings`` when not given)."""
    from fhir_adapter.api import (
        auth,
        bulk,
        definitions,
        jwks,
        metadata,
        notifications,
        read,
        ui,
        validate,
        write,
    )

    if pipeline is None:
        from fhir_adapter.pipeline import Pipeline

        built = Pipeline.from_settings(settings)
        built.recompute_stale()  # a server starting is a writer: it takes up a stopped load's queue
        pipeline = built
    app = FastAPI(
        title="fhir-adapter",
        version=__version__,
        description="FHIR R4 REST endpoint of fhir-adapter: hospitals push, research servers pull.",
        docs_url="/docs",
        redoc_url=None,
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.pipeline = pipeline
    app.state.tokens = TokenFile(settings.tokens_file)
    app.state.push_worker = None
    app.state.smart = auth.LazySmartServer(lambda: ClientRegistry(_store_of(pipeline, settings)))
    install_error_handlers(app)
    app.state.exports = None
    app.state.subscriptions = _subscriptions_of(pipeline, settings)
    for module in (jwks, metadata, auth, notifications, bulk, validate, definitions, read,
                   write, ui):
        app.include_router(module.router)
    # the last added runs first: HEAD, format and docs are settled before anything else
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MIN_BYTES)
    app.add_middleware(Negotiation)
    return app
