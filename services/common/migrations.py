"""Alembic migrations, one history per service.

Each service keeps its revisions in ``services/<name>/migrations/versions`` and
its own version table (``alembic_version_<name>``), so services sharing one
PostgreSQL database never step on each other. A service's ``migrations/env.py``
is two lines::

    from services.common.migrations import run_env
    from services.goals.models import Base
    run_env(Base.metadata, service="goals")

Commands::

    python -m services.common.migrations upgrade goals sqlite+aiosqlite:///x.db
    python -m services.common.migrations revision goals "add approvals"   # autogenerate
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from services.common.db import create_engine

__all__ = ["alembic_config", "make_revision", "run_env", "upgrade"]

SERVICES_DIR = Path(__file__).resolve().parent.parent


def alembic_config(service: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SERVICES_DIR / service / "migrations"))
    config.attributes["service"] = service
    return config


def _upgrade_sync(connection: Connection, config: Config, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        # Replicas starting together migrate one at a time (released at commit).
        from sqlalchemy import text

        service = str(config.attributes["service"])
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"tandem-migrate-{service}"})
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade(service: str, url: str, revision: str = "head") -> None:
    """Bring ``service``'s tables in the database at ``url`` up to ``revision``."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_sync, alembic_config(service), revision)
    finally:
        await engine.dispose()


def run_env(metadata: MetaData, *, service: str) -> None:
    """Body of every service's ``migrations/env.py``."""
    connection: Connection | None = context.config.attributes.get("connection")
    options: dict[str, Any] = {
        "target_metadata": metadata,
        "version_table": f"alembic_version_{service}",
        "render_as_batch": True,  # SQLite needs batch mode for ALTER TABLE
        "compare_type": True,
    }
    if connection is None:
        raise RuntimeError("run migrations through services.common.migrations.upgrade(), not the alembic CLI")
    context.configure(connection=connection, **options)
    with context.begin_transaction():
        context.run_migrations()


def _revision_sync(connection: Connection, config: Config, message: str) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    command.revision(config, message=message, autogenerate=True)


async def make_revision(service: str, message: str) -> None:
    """Autogenerate a revision: diff the models against a scratch SQLite at head."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp}/scratch.db")
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_revision_sync, alembic_config(service), message)
        finally:
            await engine.dispose()


if __name__ == "__main__":
    verb, service, arg = sys.argv[1], sys.argv[2], sys.argv[3]
    if verb == "upgrade":
        asyncio.run(upgrade(service, arg))
    elif verb == "revision":
        asyncio.run(make_revision(service, arg))
    else:
        raise SystemExit("usage: python -m services.common.migrations upgrade|revision <service> <url|message>")
