"""The audit log's hash chain on the real services, on SQLite and PostgreSQL (issue 14).

* concurrent writers extend one chain (on PostgreSQL they queue on the chain's advisory lock;
  without it two transactions would take the same ``chain_seq`` and one would fail);
* ``tandem audit verify`` reports an intact chain, then the first broken link once someone who
  owns the database has changed a row;
* the migration chains the rows written before it;
* PostgreSQL: the application's role, granted as docs/audit.md says, cannot lift the triggers.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

from services.common.audit import app_role_grants, verify_chain
from services.common.db import create_engine
from services.common.migrations import alembic_config, upgrade
from services.common.settings import Settings
from services.goals.models import GoalsAudit
from tests.integration.test_goals_helpers import goal_body, seeded

ROOT = Path(__file__).resolve().parents[2]
CHAIN_REVISION = "4560ac99db3a"
"""goals' ``audit hash chain`` migration."""


def tandem_audit_verify(database_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "audit", "verify", "goals", "--database-url", database_url],
        cwd=ROOT,
        env={**env, "COLUMNS": "300", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def lift_triggers(database_url: str) -> list[str]:
    """What only the table's owner can do: the statements that switch the append-only triggers off."""
    if make_url(database_url).get_backend_name() == "postgresql":
        return ["ALTER TABLE goals_audit DISABLE TRIGGER USER"]
    return ["DROP TRIGGER goals_audit_no_update", "DROP TRIGGER goals_audit_no_delete"]


async def test_concurrent_writers_share_one_chain_and_verify_finds_the_first_tampered_entry(
    settings: Settings, database_url: str
) -> None:
    async with seeded(settings, database_url) as w:
        await w.build_tree()

        async def create(i: int) -> int:
            body = goal_body("individual", 10, goal_id=f"i_extra_{i}", employee_id="s2", parent_id="d_sales_rev")
            return (await w.client.post(f"{w.base}/goals", json=body, headers=w.hr())).status_code

        assert await asyncio.gather(*(create(i) for i in range(16))) == [201] * 16
        app = w.client.app  # type: ignore[attr-defined]
        async with app.state.engine.connect() as conn:
            report = await conn.run_sync(lambda sync: verify_chain(sync, GoalsAudit.__table__))
            rows = (await conn.execute(text("SELECT count(*) FROM goals_audit"))).scalar_one()
        assert report.intact and report.checked == rows >= 30

        intact = tandem_audit_verify(database_url)
        assert intact.returncode == 0, intact.stdout + intact.stderr
        assert f"goals: {rows} entries, chain intact; head #{rows} {report.head_hash}" in " ".join(
            intact.stdout.split()
        )

        async with app.state.engine.begin() as conn:
            for statement in await lift_triggers(database_url):
                await conn.execute(text(statement))
            await conn.execute(text("UPDATE goals_audit SET actor = 'mallory' WHERE chain_seq = 7"))
        broken = tandem_audit_verify(database_url)
        output = " ".join(broken.stdout.split())
        assert broken.returncode == 1, output
        assert "goals: BROKEN" in output and "entry #7 was changed after it was written; 6 entries verified" in output


async def test_the_migration_chains_the_entries_written_before_it(database_url: str) -> None:
    before_chain = ScriptDirectory.from_config(alembic_config("goals")).get_revision(CHAIN_REVISION).down_revision
    assert isinstance(before_chain, str)
    await upgrade("goals", database_url, revision=before_chain)
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            for i in range(3):
                written = {"actor": "hr", "actor_roles": "hr_admin", "service": "goals", "action": "create"}
                at = datetime(2026, 1, i + 1, 10, 0, 0, 123, tzinfo=UTC)
                values = {**written, "occurred_at": at, "entity": "goals_goal", "entity_id": f"c/g{i}"}
                await conn.execute(insert(GoalsAudit.__table__).values(**values))
        await upgrade("goals", database_url)
        async with engine.connect() as conn:
            report = await conn.run_sync(lambda sync: verify_chain(sync, GoalsAudit.__table__))
        assert report.intact and report.checked == 3
        with pytest.raises(Exception, match="append-only"):  # the triggers are back
            async with engine.begin() as conn:
                await conn.execute(text("UPDATE goals_audit SET actor = 'x'"))
    finally:
        await engine.dispose()


async def test_the_application_role_cannot_lift_the_triggers(postgres_url: str) -> None:
    """docs/audit.md: the migration role owns the audit tables; the application's role may only
    read and append. Run as that role, every way around the triggers is refused."""
    await upgrade("goals", postgres_url)
    url = make_url(postgres_url)
    admin = await asyncpg.connect(host=url.host, port=url.port, user=url.username, database=url.database)
    role = f"tandem_app_{url.database}"[:60]
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN")
        for statement in app_role_grants("goals_audit", role):
            await admin.execute(statement)
        app = await asyncpg.connect(host=url.host, port=url.port, user=role, database=url.database)
        try:
            await app.execute(
                "INSERT INTO goals_audit (occurred_at, actor, actor_roles, service, action, entity, entity_id) "
                "VALUES (now(), 'app', '', 'goals', 'create', 'goals_goal', 'x')"
            )
            assert await app.fetchval("SELECT count(*) FROM goals_audit") == 1
            for statement, refusal in (
                ("UPDATE goals_audit SET actor = 'mallory'", "permission denied"),
                ("DELETE FROM goals_audit", "permission denied"),
                ("TRUNCATE goals_audit", "permission denied"),
                ("ALTER TABLE goals_audit DISABLE TRIGGER USER", "must be owner"),
                ("DROP TRIGGER goals_audit_append_only ON goals_audit", "must be owner"),
                ("DROP FUNCTION goals_audit_refuse_change() CASCADE", "must be owner"),
            ):
                with pytest.raises(asyncpg.PostgresError, match=refusal):
                    await app.execute(statement)
        finally:
            await app.close()
    finally:
        await admin.execute(f"DROP OWNED BY {role}")
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()
