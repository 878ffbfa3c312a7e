from __future__ import annotations

from sqlalchemy import Integer, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.db import create_engine, create_session_factory, session_scope


class Base(DeclarativeBase):
    pass


class Probe(Base):
    __tablename__ = "harness_probe"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)


async def test_round_trip_on_sqlite_and_postgres(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        sessions = create_session_factory(engine)
        async with session_scope(sessions) as session:
            session.add_all([Probe(name="alpha"), Probe(name="beta")])
        async with sessions() as session:
            names = (await session.scalars(select(Probe.name).order_by(Probe.name))).all()
        assert names == ["alpha", "beta"]
        assert engine.dialect.name == ("sqlite" if database_url.startswith("sqlite") else "postgresql")
    finally:
        await engine.dispose()
