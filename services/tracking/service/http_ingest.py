"""The HTTP ingest for department systems without Kafka: each event validated on its own, the valid
ones published to ``metrics.v1`` for the consumer, stamped with the caller."""

from __future__ import annotations

import logging

from pydantic import TypeAdapter, ValidationError

from contracts.events import MetricEvent
from services.common.auth import Principal
from services.common.errors import DomainError
from services.common.kafka import principal_headers
from services.tracking.ingest.prepare import nul_reason
from services.tracking.publisher import MetricPublisher
from services.tracking.schemas import IngestError, IngestRejected, IngestResult

__all__ = ["ingest_metrics", "validate_ingest"]

log = logging.getLogger(__name__)

_EVENTS = TypeAdapter(list[MetricEvent])


def validate_ingest(
    *, events: list[dict[str, object]], principal: Principal
) -> tuple[list[MetricEvent], list[IngestRejected]]:
    """Validate each event on its own; a department system may publish only for its own department."""
    own = principal.department_id
    if not own:
        raise DomainError(
            "this token has no department_id claim; a department system token must name its department",
            status_code=403,
        )
    foreign = [i for i, e in enumerate(events) if isinstance(e, dict) and e.get("department_id") not in (None, own)]
    if foreign:
        raise DomainError(
            f"a department system may publish only for its own department {own!r}; "
            f"events at index {foreign[:20]} name another department",
            status_code=403,
            field="events.department_id",
        )
    try:
        valid: list[tuple[int, MetricEvent]] = list(enumerate(_EVENTS.validate_python(events)))
        rejected: list[IngestRejected] = []  # the usual request: every event valid, one call
    except ValidationError:
        valid, rejected = _one_by_one(events)
    accepted: list[MetricEvent] = []
    for index, event in valid:
        if "\x00" in event.unit:
            # valid by the contract, but no database stores it: refused here rather than accepted and
            # dead-lettered by the consumer, which the system would only learn from the DLQ
            error = IngestError(field="unit", message=nul_reason(["unit"]))
            rejected.append(IngestRejected(index=index, event_id=str(event.event_id), errors=[error]))
        else:
            accepted.append(event)
    rejected.sort(key=lambda r: r.index)
    return accepted, rejected


def _one_by_one(events: list[dict[str, object]]) -> tuple[list[tuple[int, MetricEvent]], list[IngestRejected]]:
    """Each event validated on its own: the valid ones with their index, the others' errors by index."""
    valid: list[tuple[int, MetricEvent]] = []
    rejected: list[IngestRejected] = []
    for index, raw in enumerate(events):
        try:
            valid.append((index, MetricEvent.model_validate(raw)))
        except ValidationError as exc:
            event_id = raw.get("event_id") if isinstance(raw, dict) else None
            rejected.append(
                IngestRejected(
                    index=index,
                    event_id=str(event_id) if event_id is not None else None,
                    errors=[
                        IngestError(field=".".join(str(p) for p in err["loc"]) or "event", message=err["msg"])
                        for err in exc.errors()
                    ],
                )
            )
    return valid, rejected


async def ingest_metrics(
    *, events: list[dict[str, object]], principal: Principal, publisher: MetricPublisher
) -> IngestResult:
    """Validate ``events`` and publish the valid ones, acknowledged by the broker before returning.

    503 when Kafka is unavailable: nothing is stored on our side, and retrying the whole batch is
    safe because ingestion deduplicates on ``event_id``.
    """
    accepted, rejected = validate_ingest(events=events, principal=principal)
    if accepted:
        try:
            await publisher.publish(
                accepted, headers=principal_headers(sub=principal.sub, department_id=principal.department_id or "")
            )
        except Exception as exc:  # noqa: BLE001 - reported to the caller, who retries (dedup on event_id)
            log.warning("ingest publish failed: %s", exc)
            raise DomainError(
                f"Kafka is unavailable ({type(exc).__name__}); nothing was lost on our side, retry the batch",
                status_code=503,
            ) from exc
    return IngestResult(accepted=len(accepted), rejected=rejected)
