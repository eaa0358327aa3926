"""Push endpoint results to a research FHIR server: client, durable outbox sender, worker."""

from __future__ import annotations

from fhir_adapter.outbound.client import (
    FhirClient,
    Rejected,
    Timeouts,
    Transient,
    check_transaction,
)
from fhir_adapter.outbound.outbox import (
    BundleBuilder,
    OutboxItem,
    OutboxRepository,
    Sender,
)
from fhir_adapter.outbound.push import (
    OutboxEntry,
    PushReport,
    outbox_listing,
    push,
    render_listing,
)
from fhir_adapter.outbound.retry import RetryPolicy, is_retryable_status, parse_retry_after
from fhir_adapter.outbound.worker import PushWorker, start_push_worker

__all__ = [
    "BundleBuilder",
    "FhirClient",
    "OutboxEntry",
    "OutboxItem",
    "OutboxRepository",
    "PushReport",
    "PushWorker",
    "Rejected",
    "RetryPolicy",
    "Sender",
    "Timeouts",
    "Transient",
    "check_transaction",
    "is_retryable_status",
    "outbox_listing",
    "parse_retry_after",
    "push",
    "render_listing",
    "start_push_worker",
]
