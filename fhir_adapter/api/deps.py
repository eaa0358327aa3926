"""What handlers need from the request: the pipeline, the limits, the body, a worker thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from fhir_adapter.api.body import read_json
from fhir_adapter.errors import Issue, NotFound, UnusableInput
from fhir_adapter.settings import Settings

__all__ = ["body_of", "in_thread", "pipeline_of", "settings_of", "unknown_type", "wake_delivery",
           "wrong_type"]

T = TypeVar("T")


def pipeline_of(request: Request) -> Any:
    return request.app.state.pipeline


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def body_of(request: Request) -> dict[str, Any]:
    settings = settings_of(request)
    return await read_json(
        request, max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth
    )


async def in_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking pipeline work in the thread pool, so the event loop keeps serving."""
    return await run_in_threadpool(function, *args, **kwargs)


def wake_delivery(request: Request) -> None:
    """After a write: let the background push worker (if any) look at the outbox now."""
    worker = getattr(request.app.state, "push_worker", None)
    if worker is not None:
        worker.wake()


def wrong_type(expected: str, found: object) -> UnusableInput:
    text = f"expected a {expected} here, got {found!r}"
    return UnusableInput(text, issues=[Issue("error", "invalid", "resourceType", text)])


def unknown_type(resource_type: str, allowed: tuple[str, ...], what: str) -> NotFound:
    return NotFound(
        f"{resource_type} is not a resource type this server {what} "
        f"(it {what}: {', '.join(allowed)})"
    )
