"""Check-in reminders: overdue check-ins reminded on their cadence, through the cycles service.

The department workflow reminds about what a stage's owner reports as pending, by counts; a
check-in's cadence is per KPI (last check-in + ``check_in_cadence_days``), which only tracking
knows. So tracking sends these itself, on the same path as every other reminder: ``POST
/v1/notifications`` on cycles, which records each idempotency key once and hands it to the
configured senders (SMTP, webhook). ``service.overdue_check_ins`` decides who is owed what;
this sends it, from the tracking service's periodic loop (``TANDEM_TRACKING_STALENESS_INTERVAL``).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.common.client import ServiceCallError, ServiceClient
from services.tracking.service import overdue_check_ins

__all__ = ["CheckInReminders"]

log = logging.getLogger(__name__)


class CheckInReminders:
    """Sends the reminders ``overdue_check_ins`` owes, each key once per process (cycles dedupes too)."""

    def __init__(self, *, client: ServiceClient) -> None:
        self.client = client
        self._sent: dict[tuple[str, str, str], str] = {}

    async def send_due(self, *, session: AsyncSession, now: datetime | None = None) -> int:
        """Send the reminders due now that were not sent yet; the number sent. A refused or failed
        one is logged and tried again at the next turn (same key: cycles sends it once)."""
        sent = 0
        for request in await overdue_check_ins(session=session, now=now):
            # The last key per person and department: a new round (or a new due day) is a new key.
            slot = (request.cycle_id, request.department_id, ",".join(request.recipients))
            if self._sent.get(slot) == request.idempotency_key:
                continue
            try:
                await self.client.call(
                    "POST", "cycles", "/v1/notifications", json=request, idempotency_key=request.idempotency_key
                )
            except ServiceCallError as exc:
                log.warning("check-in reminder %s not sent (%s); retrying next turn", request.idempotency_key, exc)
                continue
            self._sent[slot] = request.idempotency_key
            sent += 1
        return sent
