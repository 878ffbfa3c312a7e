"""Routes of the cycles service (the front door). Thin: rules live in ``service.py``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel

from services.common.auth import ALL_ROLES, Principal, requires

__all__ = ["router"]

router = APIRouter(prefix="/v1")


class WhoAmI(BaseModel):
    sub: str
    roles: list[str]
    employee_id: str | None
    department_id: str | None


@router.get("/me", summary="The caller's identity and roles, as the token states them", tags=["auth"])
async def me(principal: Annotated[Principal, requires(*ALL_ROLES)]) -> WhoAmI:
    return WhoAmI(
        sub=principal.sub,
        roles=sorted(principal.roles),
        employee_id=principal.employee_id,
        department_id=principal.department_id,
    )
