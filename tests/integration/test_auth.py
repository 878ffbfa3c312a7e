"""Auth rejects a missing, expired or forged token (401) and a wrong role (403)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import pytest
from fastapi import APIRouter, FastAPI

from services.common.app import create_service_app
from services.common.auth import Role, mint_token, requires
from services.common.settings import DEV_JWT_SECRET, Settings

hr_only = APIRouter()


@hr_only.get("/hr-only", dependencies=[requires(Role.HR_ADMIN)])
async def hr_endpoint() -> dict[str, str]:
    return {"ok": "yes"}


@pytest.fixture
async def client(settings: Settings, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app_settings = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path}/{{service}}.db"})
    app: FastAPI = create_service_app(
        service="authtest", settings=app_settings, description="auth test", routers=[hr_only]
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_missing_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/hr-only")
    assert response.status_code == 401
    assert response.json()["detail"] == "missing bearer token"


async def test_expired_token_is_401(client: httpx.AsyncClient, settings: Settings) -> None:
    token = mint_token(settings, sub="alice", roles=["hr_admin"], ttl_seconds=-10)
    response = await client.get("/hr-only", headers=bearer(token))
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


async def test_bad_signature_is_401(client: httpx.AsyncClient, settings: Settings) -> None:
    forged = mint_token(
        settings.model_copy(update={"jwt_secret": "some-other-secret-that-is-long-enough-000"}),
        sub="mallory",
        roles=["hr_admin"],
    )
    response = await client.get("/hr-only", headers=bearer(forged))
    assert response.status_code == 401
    assert "signature" in response.json()["detail"]


async def test_wrong_role_is_403_and_right_role_is_200(client: httpx.AsyncClient, settings: Settings) -> None:
    employee = mint_token(settings, sub="bob", roles=["employee"])
    response = await client.get("/hr-only", headers=bearer(employee))
    assert response.status_code == 403
    assert "hr_admin" in response.json()["detail"]
    hr = mint_token(settings, sub="alice", roles=["hr_admin"])
    assert (await client.get("/hr-only", headers=bearer(hr))).json() == {"ok": "yes"}


async def test_unsigned_alg_none_token_is_401(client: httpx.AsyncClient) -> None:
    token = jwt.encode({"sub": "eve", "roles": ["hr_admin"], "exp": 9999999999}, key="", algorithm="none")
    assert (await client.get("/hr-only", headers=bearer(token))).status_code == 401


def test_default_dev_secret_is_refused_outside_dev() -> None:
    with pytest.raises(ValueError, match="TANDEM_ENV=dev"):
        Settings(env="prod", jwt_secret=DEV_JWT_SECRET)
    assert Settings(env="dev", jwt_secret=DEV_JWT_SECRET).env == "dev"
