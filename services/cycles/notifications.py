"""Reminders and escalations: recorded once per idempotency key, then sent.

The workflow's ``send_notification`` activity posts here with an
``Idempotency-Key`` built from (cycle, department, stage, step). The first call
records the notification (row + ``NotificationRecorded`` event in the outbox, in
one transaction) and hands it to the configured senders; a retried or replayed
call finds the key and returns the same notification without sending again.

Senders are pluggable: the record itself is always kept (and visible to ops);
a webhook sender and an SMTP sender are enabled by settings.
"""

from __future__ import annotations

import asyncio
import json
import logging
import smtplib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Annotated, Any, Protocol

import httpx
from fastapi import APIRouter, Header, Query, Request
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.domain_events import NotificationRecordedPayload
from contracts.workflow_io import NotificationRequest, NotificationResult
from services.common.auth import Principal, Role, requires
from services.common.deps import SessionDep
from services.common.errors import DomainError
from services.common.outbox import add_event, new_event
from services.common.settings import Settings
from services.common.telemetry import NOTIFICATION_DELIVERY_FAILURES, NOTIFICATIONS_SENT
from services.cycles.models import CyclesNotification, CyclesOutbox, CyclesSnapshotDepartment, CyclesSnapshotParticipant
from services.cycles.schemas import NotificationRead, utc

__all__ = [
    "CyclesNotification",
    "NotificationSender",
    "SmtpSender",
    "WebhookSender",
    "build_senders",
    "record_notification",
    "router",
]

log = logging.getLogger(__name__)


class NotificationSender(Protocol):
    name: str

    async def send(self, notification: NotificationRead) -> None: ...


class WebhookSender:
    name = "webhook"

    def __init__(self, url: str, http: httpx.AsyncClient) -> None:
        self.url = url
        self.http = http

    async def send(self, notification: NotificationRead) -> None:
        # The receiver deduplicates on the key: a redelivery after a crash is the same notification.
        response = await self.http.post(
            self.url,
            json=notification.model_dump(mode="json"),
            headers={"Idempotency-Key": notification.idempotency_key},
        )
        response.raise_for_status()


class SmtpSender:
    name = "smtp"

    def __init__(self, *, host: str, port: int, sender: str, hr_email: str | None) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.hr_email = hr_email

    async def send(self, notification: NotificationRead) -> None:
        to = [r["email"] for r in notification.recipients if r.get("email")]
        if any(r.get("id") == "hr" for r in notification.recipients) and self.hr_email:
            to.append(self.hr_email)
        if not to:
            return
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = ", ".join(to)
        message["Subject"] = f"[Tandem] {notification.kind.replace('_', ' ')}: {notification.stage}"
        # Mail clients and relays drop duplicates by Message-ID: a redelivery keeps the same one.
        message["Message-ID"] = f"<{notification.notification_id}@tandem>"
        message["X-Tandem-Idempotency-Key"] = notification.idempotency_key
        message.set_content(notification.message)
        await asyncio.to_thread(self._send_sync, message)

    def _send_sync(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=10) as smtp:
            smtp.send_message(message)


def build_senders(settings: Settings, http: httpx.AsyncClient) -> list[NotificationSender]:
    senders: list[NotificationSender] = []
    if settings.notify_webhook_url:
        senders.append(WebhookSender(settings.notify_webhook_url, http))
    if settings.smtp_host:
        senders.append(
            SmtpSender(
                host=settings.smtp_host, port=settings.smtp_port, sender=settings.smtp_from, hr_email=settings.hr_email
            )
        )
    return senders


def _read(row: CyclesNotification) -> NotificationRead:
    return NotificationRead(
        notification_id=row.notification_id,
        idempotency_key=row.idempotency_key,
        cycle_id=row.cycle_id,
        department_id=row.department_id,
        stage=row.stage,
        kind=row.kind,
        recipients=json.loads(row.recipients),
        pending=row.pending,
        deadline=utc(row.deadline),
        message=row.message,
        created_at=utc(row.created_at),
        delivery=json.loads(row.delivery or "{}"),
    )


async def _resolve_recipients(
    session: AsyncSession, *, cycle_id: str, department_id: str, recipients: Sequence[str]
) -> list[dict[str, Any]]:
    """Turn ids and role words ('department_head', 'hr') into people from the cycle's snapshot."""
    head_id: str | None = None
    if "department_head" in recipients:
        department = await session.get(CyclesSnapshotDepartment, (cycle_id, department_id))
        head_id = department.head_employee_id if department else None
    ids = [head_id if r == "department_head" else r for r in recipients]
    people = {
        p.employee_id: p
        for p in (
            await session.scalars(
                select(CyclesSnapshotParticipant).where(
                    CyclesSnapshotParticipant.cycle_id == cycle_id,
                    CyclesSnapshotParticipant.employee_id.in_([i for i in ids if i]),
                )
            )
        ).all()
    }
    resolved: list[dict[str, Any]] = []
    for original, employee_id in zip(recipients, ids, strict=True):
        if employee_id and employee_id in people:
            person = people[employee_id]
            resolved.append({"id": employee_id, "name": person.name, "email": person.email})
        else:
            resolved.append({"id": employee_id or original, "name": None, "email": None})
    return resolved


async def record_notification(
    *,
    session: AsyncSession,
    request: NotificationRequest,
    idempotency_key: str,
    senders: Sequence[NotificationSender],
) -> NotificationResult:
    """Record once per key, then deliver through every sender at least once.

    The record is committed before sending, with each sender's delivery state: a repeat of the key
    (the worker's retry) returns the first record and re-sends only where delivery did not succeed,
    so a crash or a failed sender between record and send loses nothing. When a sender fails, the
    answer is 503, so the worker retries until every sender has delivered.
    """
    existing = await session.scalar(
        select(CyclesNotification).where(CyclesNotification.idempotency_key == idempotency_key)
    )
    if existing is not None:
        await _deliver(session, existing, senders)
        return NotificationResult(notification_id=existing.notification_id, created=False)
    row = CyclesNotification(
        notification_id=str(uuid.uuid4()),
        idempotency_key=idempotency_key,
        cycle_id=request.cycle_id,
        department_id=request.department_id,
        stage=request.stage.value,
        kind=request.kind,
        recipients=json.dumps(
            await _resolve_recipients(
                session,
                cycle_id=request.cycle_id,
                department_id=request.department_id,
                recipients=request.recipients,
            )
        ),
        pending=request.pending,
        deadline=request.deadline,
        message=request.message,
        created_at=datetime.now(UTC),
        delivery=json.dumps({"record": "stored"}),
    )
    session.add(row)
    add_event(
        session,
        CyclesOutbox,
        new_event(
            service="cycles",
            type="NotificationRecorded",
            cycle_id=request.cycle_id,
            subject_id=request.department_id,
            payload=NotificationRecordedPayload.model_validate(_read(row).model_dump(mode="json")),
        ),
    )
    try:
        await session.commit()
    except IntegrityError:
        # A concurrent retry recorded the same key first.
        await session.rollback()
        winner = await session.scalar(
            select(CyclesNotification).where(CyclesNotification.idempotency_key == idempotency_key)
        )
        assert winner is not None
        return NotificationResult(notification_id=winner.notification_id, created=False)
    NOTIFICATIONS_SENT.labels(kind=request.kind, stage=request.stage.value).inc()
    await _deliver(session, row, senders)
    return NotificationResult(notification_id=row.notification_id, created=True)


async def _deliver(session: AsyncSession, row: CyclesNotification, senders: Sequence[NotificationSender]) -> None:
    """Send through each sender that has not delivered yet; 503 (retry) if any still failed."""
    delivery: dict[str, str] = json.loads(row.delivery or "{}")
    pending = [s for s in senders if delivery.get(s.name) != "sent"]
    if not pending:
        return
    read = _read(row)
    for sender in pending:
        try:
            await sender.send(read)
            delivery[sender.name] = "sent"
        except Exception as exc:  # noqa: BLE001 - recorded, visible to ops, and retried by the worker
            log.warning("notification %s via %s failed: %s", row.notification_id, sender.name, exc)
            delivery[sender.name] = f"failed: {exc}"
            NOTIFICATION_DELIVERY_FAILURES.labels(sender=sender.name).inc()
    row.delivery = json.dumps(delivery)
    await session.commit()
    failed = sorted(name for name, state in delivery.items() if state.startswith("failed"))
    if failed:
        raise DomainError(
            f"notification {row.notification_id} is recorded but not delivered via {failed}; "
            "retry with the same Idempotency-Key to deliver it",
            status_code=503,
        )


router = APIRouter(prefix="/v1", tags=["notifications"])


@router.post(
    "/notifications",
    summary="Record and send a reminder or escalation (idempotent on the Idempotency-Key header)",
    description="Called by the review-cycle worker. The same key always yields the same notification, sent once.",
)
async def post_notification(
    body: NotificationRequest,
    request: Request,
    session: SessionDep,
    _principal: Annotated[Principal, requires(Role.HR_ADMIN)],
    idempotency_key: Annotated[str | None, Header(max_length=300)] = None,
) -> NotificationResult:
    key = idempotency_key or body.idempotency_key
    if idempotency_key and idempotency_key != body.idempotency_key:
        raise DomainError("the Idempotency-Key header and the body's idempotency_key differ", field="idempotency_key")
    senders: list[NotificationSender] = getattr(request.app.state, "notification_senders", [])
    return await record_notification(session=session, request=body, idempotency_key=key, senders=senders)


@router.get(
    "/notifications",
    summary="Reminders and escalations recorded for a cycle (newest first)",
)
async def list_notifications(
    session: SessionDep,
    _principal: Annotated[Principal, requires(Role.HR_ADMIN, Role.OPS)],
    cycle_id: Annotated[str, Query(max_length=64)],
    kind: Annotated[str | None, Query(max_length=64)] = None,
    department_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Rows to skip (at most 1,000,000).")] = 0,
) -> list[NotificationRead]:
    query = select(CyclesNotification).where(CyclesNotification.cycle_id == cycle_id)
    if kind:
        query = query.where(CyclesNotification.kind == kind)
    if department_id:
        query = query.where(CyclesNotification.department_id == department_id)
    rows = (await session.scalars(query.order_by(CyclesNotification.id.desc()).limit(limit).offset(offset))).all()
    return [_read(r) for r in rows]


@router.get(
    "/notifications/counts",
    summary="Number of reminders and escalations per kind for a cycle",
)
async def notification_counts(
    session: SessionDep,
    _principal: Annotated[Principal, requires(Role.HR_ADMIN, Role.OPS)],
    cycle_id: Annotated[str, Query(max_length=64)],
) -> dict[str, int]:
    rows = (
        await session.execute(
            select(CyclesNotification.kind, func.count())
            .where(CyclesNotification.cycle_id == cycle_id)
            .group_by(CyclesNotification.kind)
        )
    ).all()
    return {kind: int(count) for kind, count in rows}
