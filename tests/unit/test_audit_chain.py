"""The audit log's hash chain on a scratch SQLite file (issue 14: make the log tamper-evident).

The triggers stop the application from changing audit rows; these tests play someone who owns
the database (drops the trigger, edits, deletes, recomputes a hash) and check that
``verify_chain`` names the first broken link.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.audit import GENESIS_HASH, ChainReport, audit_context, entry_hash, verify_chain
from tests.unit.test_audit import DemoAudit, Item, _audit_row, sessions

__all__ = ["sessions"]  # the fixture, shared with test_audit.py


async def write_five(sessions: async_sessionmaker[AsyncSession]) -> None:
    with audit_context(actor="script"):
        async with sessions() as session:
            session.add_all([Item(name="a"), Item(name="b")])
            await session.commit()
            first = (await session.scalars(select(Item).order_by(Item.id))).first()
            assert first is not None
            first.status = "done"
            await session.commit()
            await session.delete(first)
            await session.commit()
        async with sessions() as session:
            session.add(Item(name="c"))
            await session.commit()


async def verify(sessions: async_sessionmaker[AsyncSession]) -> ChainReport:
    async with sessions() as session:
        report: ChainReport = await session.run_sync(lambda sync: verify_chain(sync.connection(), DemoAudit.__table__))
    return report


async def tamper(sessions: async_sessionmaker[AsyncSession], *statements: str) -> None:
    """As the table's owner: lift the append-only triggers and run ``statements``."""
    async with sessions() as session:
        await session.execute(text("DROP TRIGGER IF EXISTS demo_audit_no_update"))
        await session.execute(text("DROP TRIGGER IF EXISTS demo_audit_no_delete"))
        for statement in statements:
            await session.execute(text(statement))
        await session.commit()


async def chain(sessions: async_sessionmaker[AsyncSession]) -> list[Any]:
    async with sessions() as session:
        return list((await session.scalars(select(DemoAudit).order_by(DemoAudit.chain_seq))).all())


async def test_every_write_extends_one_chain(sessions: async_sessionmaker[AsyncSession]) -> None:
    await write_five(sessions)
    rows = await chain(sessions)
    assert [r.chain_seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == GENESIS_HASH
    assert all(rows[i].prev_hash == rows[i - 1].row_hash for i in range(1, 5))
    report = await verify(sessions)
    assert report.intact and (report.checked, report.head_seq, report.head_hash) == (5, 5, rows[-1].row_hash)


async def test_a_changed_row_is_the_first_broken_link(sessions: async_sessionmaker[AsyncSession]) -> None:
    await write_five(sessions)
    await tamper(sessions, "UPDATE demo_audit SET actor = 'mallory' WHERE chain_seq = 3")
    report = await verify(sessions)
    assert (report.broken_at, report.checked) == (3, 2)
    assert report.problem == "entry #3 was changed after it was written"


async def test_a_recomputed_hash_breaks_the_next_link(sessions: async_sessionmaker[AsyncSession]) -> None:
    await write_five(sessions)
    rows = await chain(sessions)
    forged = {c.name: getattr(rows[1], c.key) for c in DemoAudit.__table__.columns}
    forged["after"] = '{"name":"forged"}'
    await tamper(
        sessions,
        f"UPDATE demo_audit SET after = '{forged['after']}', row_hash = '{entry_hash(forged)}' WHERE chain_seq = 2",
    )
    report = await verify(sessions)
    assert report.broken_at == 3 and "does not link to entry #2" in str(report.problem)


async def test_a_deleted_row_leaves_a_gap(sessions: async_sessionmaker[AsyncSession]) -> None:
    await write_five(sessions)
    await tamper(sessions, "DELETE FROM demo_audit WHERE chain_seq = 4")
    report = await verify(sessions)
    assert report.broken_at == 4 and report.problem == "entry #4 is missing (the next one is #5): a row was deleted"


async def test_a_row_written_past_the_application_is_reported(sessions: async_sessionmaker[AsyncSession]) -> None:
    await write_five(sessions)
    async with sessions() as session:
        session.add(DemoAudit(**_audit_row()))  # an INSERT that does not go through append_entries
        await session.commit()
    report = await verify(sessions)
    assert report.checked == 5 and report.audit_id is not None
    assert "is not in the chain" in str(report.problem)
