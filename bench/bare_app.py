"""The baseline of ``bench.api_latency``: a bare FastAPI app, served the way ``tandem serve`` serves ours.

    python -m bench.bare_app --port 8100 --database-url postgresql+asyncpg://...

``GET /bare`` answers a constant JSON object: FastAPI, uvicorn (with its access log, as ours) and the
network, nothing else. ``GET /bare-db/{cycle_id}/{goal_id}`` also reads one goal row by primary key
through SQLAlchemy's async engine (one pooled connection, one round trip): the floor of any endpoint
that touches PostgreSQL. No auth, no middleware, no audit, no scoping.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

__all__ = ["create_bare_app", "main"]


def create_bare_app(database_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = create_async_engine(database_url)
        yield
        await app.state.engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/bare")
    async def bare() -> dict[str, Any]:
        return {"status": "ok", "items": [], "total": 0}

    @app.get("/bare-db/{cycle_id}/{goal_id}")
    async def bare_db(cycle_id: str, goal_id: str) -> dict[str, Any]:
        async with app.state.engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT goal_id, name, status, weight FROM goals_goal WHERE cycle_id = :c AND goal_id = :g"),
                    {"c": cycle_id, "g": goal_id},
                )
            ).one_or_none()
        if row is None:
            raise HTTPException(404)
        return dict(row._mapping)

    return app


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.bare_app")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args(argv)
    uvicorn.run(create_bare_app(args.database_url), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
