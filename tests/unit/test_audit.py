"""services.common.audit on a small model and a scratch SQLite file: what each kind of write
records, what is left out, who the actor is, and the request-id middleware."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from fastapi import Depends, FastAPI
from sqlalchemy import Integer, String, delete, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.audit import (
    REQUEST_ID_HEADER,
    AuditLogIsAppendOnly,
    AuditMiddleware,
    AuditMixin,
    audit_context,
    create_audit_triggers,
    current_audit_context,
    install_audit,
)
from services.common.auth import Principal, TokenVerifier, current_principal
from services.common.db import create_engine, create_session_factory
from services.common.outbox import OutboxMixin
from services.common.settings import Settings
from tests.support import auth


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "demo_item"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), default="draft")


class Pair(Base):
    __tablename__ = "demo_pair"

    cycle_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    key: Mapped[str] = mapped_column(String(20), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


class Raw(Base):
    __tablename__ = "demo_raw"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)


class DemoOutbox(OutboxMixin, Base):
    __tablename__ = "demo_outbox"


class DemoAudit(AuditMixin, Base):
    __tablename__ = "demo_audit"
    __audit_exclude__ = frozenset({"demo_raw"})


def _create_schema(connection: Connection) -> None:
    Base.metadata.create_all(connection)
    create_audit_triggers(Operations(MigrationContext.configure(connection)), "demo_audit")


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine: AsyncEngine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/audit.db")
    async with engine.begin() as conn:
        await conn.run_sync(_create_schema)
    factory = create_session_factory(engine)
    install_audit(factory, DemoAudit, service="demo")
    yield factory
    await engine.dispose()


async def entries(sessions: async_sessionmaker[AsyncSession]) -> list[dict[str, Any]]:
    async with sessions() as session:
        rows = (await session.scalars(select(DemoAudit).order_by(DemoAudit.id))).all()
    return [
        {
            "actor": r.actor,
            "roles": r.actor_roles,
            "request_id": r.request_id,
            "action": r.action,
            "entity": r.entity,
            "entity_id": r.entity_id,
            "row_count": r.row_count,
            "criteria": r.criteria,
            "before": json.loads(r.before) if r.before else None,
            "after": json.loads(r.after) if r.after else None,
            "changed": json.loads(r.changed) if r.changed else None,
        }
        for r in rows
    ]


async def test_row_changes_record_before_after_and_changed_columns(sessions: async_sessionmaker[AsyncSession]) -> None:
    with audit_context(actor="alice", roles=["manager", "employee"], request_id="r-1"):
        async with sessions() as session:
            item = Item(name="first")
            session.add(item)
            await session.commit()
            item.status = "approved"
            item.name = "first"  # same value: not a change
            await session.commit()
            item.name = "first"
            await session.commit()  # nothing changed: nothing recorded
            await session.delete(item)
            await session.commit()
    create, change, remove = await entries(sessions)
    assert (create["action"], create["entity"], create["entity_id"]) == ("create", "demo_item", "1")
    assert create["after"] == {"id": 1, "name": "first", "status": "draft"} and create["before"] is None
    assert (create["actor"], create["roles"], create["request_id"]) == ("alice", "employee manager", "r-1")
    assert change["before"] == {"id": 1, "name": "first", "status": "draft"}
    assert change["after"] == {"id": 1, "name": "first", "status": "approved"} and change["changed"] == ["status"]
    assert remove["action"] == "delete" and remove["before"]["status"] == "approved" and remove["after"] is None


async def test_set_based_statements_are_recorded_per_row_or_per_statement(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        await session.execute(insert(Pair), [{"cycle_id": "c1", "key": k, "value": 1} for k in ("a", "b", "c")])
        await session.execute(update(Pair).where(Pair.cycle_id == "c1", Pair.key == "a").values(value=5))
        await session.execute(update(Pair).where(Pair.cycle_id == "c1", Pair.value == 1).values(value=2))
        await session.execute(update(Pair).where(Pair.cycle_id == "c-none").values(value=3))  # no row: no entry
        await session.execute(delete(Pair).where(Pair.cycle_id == "c1"))
        await session.commit()
    recorded = await entries(sessions)
    assert [(e["action"], e["entity_id"], e["row_count"]) for e in recorded] == [
        ("create", "c1/a", 1),
        ("create", "c1/b", 1),
        ("create", "c1/c", 1),
        ("update", "c1/a", 1),
        ("update", "*", 2),
        ("delete", "*", 3),
    ]
    assert recorded[0]["after"] == {"cycle_id": "c1", "key": "a", "value": 1}
    pinned, bulk, removal = recorded[3:]
    assert pinned["after"] == {"value": 5} and pinned["changed"] == ["value"]
    assert bulk["criteria"] == "demo_pair.cycle_id = 'c1' AND demo_pair.value = 1" and bulk["after"] == {"value": 2}
    assert removal["criteria"] == "demo_pair.cycle_id = 'c1'" and removal["before"] is None
    assert {e["actor"] for e in recorded} == {"system"}  # outside any request


async def test_outbox_and_excluded_tables_are_not_audited(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        session.add(Raw())
        session.add(DemoOutbox(event_id="e1", event_type="x", payload="{}", created_at=_now()))
        await session.execute(insert(Raw), [{}, {}])
        await session.commit()
    assert await entries(sessions) == []


async def test_the_orm_and_the_database_refuse_to_change_audit_rows(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        session.add(Item(name="x"))
        await session.commit()
    async with sessions() as session:
        row = (await session.scalars(select(DemoAudit))).one()
        row.actor = "mallory"
        with pytest.raises(AuditLogIsAppendOnly, match="append-only"):
            await session.flush()
        await session.rollback()
        await session.delete(row)
        with pytest.raises(AuditLogIsAppendOnly):
            await session.flush()
        await session.rollback()
        with pytest.raises(AuditLogIsAppendOnly):
            await session.execute(delete(DemoAudit))
    async with sessions() as session:
        for statement in ("UPDATE demo_audit SET actor = 'mallory'", "DELETE FROM demo_audit"):
            with pytest.raises(IntegrityError, match="append-only"):
                await session.execute(text(statement))
            await session.rollback()
        # inserting stays allowed
        session.add(DemoAudit(**_audit_row()))
        await session.commit()
    assert [e["actor"] for e in await entries(sessions)] == ["system", "script"]


async def test_middleware_echoes_the_request_id_and_binds_the_verified_caller() -> None:
    settings = Settings(env="test", jwt_secret="unit-test-secret-unit-test-secret-32b")
    app = FastAPI()
    app.state.token_verifier = TokenVerifier(settings)
    app.add_middleware(AuditMiddleware)

    @app.get("/who")
    async def who(principal: Principal = Depends(current_principal)) -> dict[str, Any]:
        context = current_audit_context()
        return {"actor": context.actor, "roles": list(context.roles), "request_id": context.request_id}

    headers = auth(settings, "hr_admin", "ops", sub="hana")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        given = await client.get("/who", headers={**headers, REQUEST_ID_HEADER: "abc-123"})
        fresh = await client.get("/who", headers=headers)
    assert given.json() == {"actor": "hana", "roles": ["hr_admin", "ops"], "request_id": "abc-123"}
    assert given.headers[REQUEST_ID_HEADER] == "abc-123"
    assert fresh.headers[REQUEST_ID_HEADER] == fresh.json()["request_id"] and len(fresh.json()["request_id"]) == 36
    assert current_audit_context().actor == "system"  # nothing leaks out of the request


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _audit_row() -> dict[str, Any]:
    return {
        "occurred_at": _now(),
        "actor": "script",
        "actor_roles": "",
        "service": "demo",
        "action": "create",
        "entity": "demo_item",
        "entity_id": "9",
    }
