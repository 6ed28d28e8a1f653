"""A stand-in for PostgreSQL's autovacuum on a server that runs with it off.

A production PostgreSQL analyses a table once enough of it changed (autovacuum's defaults:
every minute, a table whose rows changed by 50 + 10% since its last analysis). A server with
autovacuum off never does: its planner guesses every table's size and spread, and the plans it
caches for prepared statements while the tables were empty stay. A bench on such a server would
measure neither what production sees nor anything the hub could change, so the benches that run
on PostgreSQL analyse as autovacuum would, with the server's own autovacuum settings, unless asked
not to (`--no-autovacuum`: the worst case, statistics never gathered).
"""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy import text


async def autovacuum_is_on(engine) -> bool:
    async with engine.connect() as conn:
        return (await conn.scalar(text("SHOW autovacuum"))) == "on"


async def analyse_the_past(engine) -> int:
    """One pass of autovacuum's analyses now, as it would have made long ago on the tables a bench
    seeds to stand for what a hub held before the run (customers, their chats); tables still empty
    (the outbox, say) are not analysed, as autovacuum never analyses a table before 50 changes.
    The number of tables analysed."""
    # A backend publishes its counts of changed rows when idle for a while or when it ends: the
    # pool's connections closed, the seeding's counts are there to be read.
    await engine.dispose()
    await asyncio.sleep(0.5)
    threshold, scale, _ = await _settings(engine)
    return await _analyse_due(engine, threshold, scale)


async def _settings(engine) -> tuple[float, float, float]:
    """autovacuum's analysis threshold, scale factor and naptime (seconds), as the server has them."""
    async with engine.connect() as conn:
        settings = dict((await conn.execute(text(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('autovacuum_naptime', 'autovacuum_analyze_threshold', 'autovacuum_analyze_scale_factor')"))).all())
    return (float(settings["autovacuum_analyze_threshold"]), float(settings["autovacuum_analyze_scale_factor"]),
            float(settings["autovacuum_naptime"]))


async def _analyse_due(engine, threshold: float, scale: float) -> int:
    """The tables of the public schema that changed enough since their last analysis, analysed."""
    async with engine.connect() as conn:
        due = (await conn.scalars(text(
            "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
            "WHERE s.schemaname = 'public' "
            "AND s.n_mod_since_analyze > :threshold + :scale * greatest(c.reltuples, 0)"),
            {"threshold": threshold, "scale": scale})).all()
        for table in due:
            await conn.execute(text(f'ANALYZE "{table}"'))
        await conn.commit()
    return len(due)


async def analyse_as_autovacuum_would(engine, stop: asyncio.Event) -> int:
    """Until `stop` is set, analyse each table of the public schema as autovacuum's analysis
    thresholds ask, every autovacuum naptime; the number of tables analysed."""
    threshold, scale, naptime = await _settings(engine)
    analysed = 0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), naptime)
        if stop.is_set():
            break
        analysed += await _analyse_due(engine, threshold, scale)
    return analysed
