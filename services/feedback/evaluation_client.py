"""The feedback service's HTTP adapter to evaluation: records adjusted appeals through calibration."""

from __future__ import annotations

import httpx

from contracts.feedback import AppealAdjustment
from services.common.auth import Role, mint_token
from services.common.errors import DomainError
from services.common.settings import Settings

__all__ = ["EvaluationClient"]


class EvaluationClient:
    """Posts ``AppealAdjustment`` to evaluation with a short-lived hr_admin service token."""

    def __init__(self, *, http: httpx.AsyncClient, settings: Settings) -> None:
        self.http = http
        self.settings = settings

    async def send_adjustment(self, cycle_id: str, adjustment: AppealAdjustment) -> None:
        token = mint_token(self.settings, sub="system:feedback", roles=[Role.HR_ADMIN.value], ttl_seconds=300)
        url = f"{self.settings.evaluation_url.rstrip('/')}/v1/cycles/{cycle_id}/appeal-adjustments"
        try:
            response = await self.http.post(
                url, json=adjustment.model_dump(mode="json"), headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError as exc:
            raise DomainError(
                f"could not reach the evaluation service to record the adjustment ({type(exc).__name__}); "
                "the appeal stays open, retry the resolution",
                status_code=502,
            ) from exc
        if response.status_code >= 300:
            raise DomainError(
                f"the evaluation service refused the adjustment ({response.status_code}: {response.text[:300]}); "
                "the appeal stays open",
                status_code=502,
            )
