"""The dialect seam on SQLite and PostgreSQL: engines, bulk load, upsert, key blocks,
partitions, identifier safety, advisory locks and connection errors."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gim.db import make_engine, ops_for, partition_name, safe_identifier, write_tx
from gim.db.engine import check_connection
from gim.errors import ConfigError, DatabaseUnavailable
from gim.schema.base import Int, Str, col, table


def _scratch(partitioned: bool = False) -> tuple[sa.MetaData, sa.Table]:
    md = sa.MetaData()
    t = table(md, "SCRATCH_FACT",
              col("ID", Int, primary_key=True, autoincrement=False),
              col("START_DATE_TIME_KEY", Int, primary_key=True, autoincrement=False),
              col("NAME", Str(50)),
              partition_by="START_DATE_TIME_KEY" if partitioned else None,
              category="fact")
    return md, t


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url, label="test db")
    yield eng
    eng.dispose()


def test_sqlite_pragmas(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path}/sub/dir/x.db")
    with eng.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    assert (tmp_path / "sub" / "dir" / "x.db").exists()


def test_bulk_insert_and_upsert(engine):
    md, t = _scratch()
    md.create_all(engine)
    rows = [(i, 900 * i, f"n{i}" if i % 7 else None) for i in range(12_345)]
    with write_tx(engine) as conn:
        assert ops_for(conn).bulk_insert(conn, t, iter(rows), ["ID", "START_DATE_TIME_KEY",
                                                              "NAME"]) == len(rows)
    with write_tx(engine) as conn:
        ops_for(conn).upsert(conn, t, [
            {"ID": 1, "START_DATE_TIME_KEY": 900, "NAME": "changed"},
            {"ID": 99_999, "START_DATE_TIME_KEY": 0, "NAME": "new"}],
            key=["ID", "START_DATE_TIME_KEY"])
        ops_for(conn).upsert(conn, t, [{"ID": 2, "START_DATE_TIME_KEY": 1800, "NAME": "kept?"}],
                             key=["ID", "START_DATE_TIME_KEY"], update=[])
    with engine.connect() as conn:
        got = dict(conn.execute(sa.select(t.c.ID, t.c.NAME)).all())
    assert len(got) == len(rows) + 1
    assert got[1] == "changed" and got[99_999] == "new" and got[2] == "n2" and got[7] is None


def test_bulk_insert_rolls_back_with_its_transaction(engine):
    md, t = _scratch()
    md.create_all(engine)
    with pytest.raises(RuntimeError), write_tx(engine) as conn:
        ops_for(conn).bulk_insert(conn, t, [(1, 0, "a"), (2, 0, "b")],
                                  ["ID", "START_DATE_TIME_KEY", "NAME"])
        raise RuntimeError("boom")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() == 0


def test_allocate_keys_gives_consecutive_disjoint_blocks(engine):
    from gim.jobs.initialize import create_control_tables

    create_control_tables(engine)
    with write_tx(engine) as conn:
        ops = ops_for(conn)
        a = ops.allocate_keys(conn, "TEST", 10)
        b = ops.allocate_keys(conn, "TEST", 5)
        c = ops.allocate_keys(conn, "TEST")
        other = ops.allocate_keys(conn, "OTHER")
    assert b == a + 10 and c == b + 5 and other == 1


def test_keys_are_drawn_side_by_side_and_after_a_rollback(engine):
    """A sequence first drawn from in a transaction that rolls back is still there for the
    next; transactions drawing blocks at the same time (PostgreSQL) get disjoint ones."""
    import concurrent.futures
    import threading

    from gim.jobs.initialize import create_control_tables

    create_control_tables(engine)
    with pytest.raises(RuntimeError), write_tx(engine) as conn:
        ops_for(conn).allocate_keys(conn, "FRESH", 3)
        raise RuntimeError("rolled back")
    with write_tx(engine) as conn:
        first = ops_for(conn).allocate_keys(conn, "FRESH", 3)
    assert first >= 1
    if engine.dialect.name != "postgresql":
        return
    start = threading.Barrier(4)

    def draw(_: int) -> list[int]:
        with write_tx(engine) as conn:
            start.wait()
            return [ops_for(conn).allocate_keys(conn, "SIDE", 7) for _ in range(20)]

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        blocks = [b for got in pool.map(draw, range(4)) for b in got]
    keys = [b + i for b in blocks for i in range(7)]
    assert len(set(keys)) == len(keys) == 4 * 20 * 7


def test_partitions(engine):
    md, t = _scratch(partitioned=True)
    md.create_all(engine)
    day = 86400
    base = 20_000 * day  # 2024-10-04
    with write_tx(engine) as conn:
        ops = ops_for(conn)
        if engine.dialect.name == "sqlite":
            assert ops.ensure_partitions(conn, t, base, base + 3 * day, day) == []
            assert ops.list_partitions(conn, t) == []
            return
        created = ops.ensure_partitions(conn, t, base, base + 2 * day, day)
        assert created == ["scratch_fact_pdefault", "scratch_fact_p20241004",
                           "scratch_fact_p20241005"]
        # A row outside every range lands in DEFAULT, and moves when its range is created.
        conn.execute(t.insert(), [{"ID": 1, "START_DATE_TIME_KEY": base + 3 * day + 5},
                                  {"ID": 2, "START_DATE_TIME_KEY": base + 10}])
        assert ops.ensure_partitions(conn, t, base, base + 4 * day, day) == [
            "scratch_fact_p20241006", "scratch_fact_p20241007"]
        assert ops.ensure_partitions(conn, t, base, base + 4 * day, day) == []
        parts = ops.list_partitions(conn, t)
        assert [(p.lower, p.upper) for p in parts if p.lower is not None] == [
            (base + i * day, base + (i + 1) * day) for i in range(4)]
        in_default = conn.exec_driver_sql("SELECT count(*) FROM scratch_fact_pdefault").scalar()
        in_p7 = conn.exec_driver_sql("SELECT count(*) FROM scratch_fact_p20241007").scalar()
        assert (in_default, in_p7) == (0, 1)
        ops.drop_partition(conn, t, "scratch_fact_p20241004")
        assert conn.execute(sa.select(t.c.ID)).scalars().all() == [1]
        with pytest.raises(ValueError):
            ops.drop_partition(conn, t, "not_a_partition")


def test_partition_names():
    assert partition_name("INTERACTION_FACT", 1764547200, 86400) == "interaction_fact_p20251201"
    assert partition_name("X", 1764547200 + 3600, 3600) == "x_p20251201_0100"


@pytest.mark.parametrize("bad", ["a b", "x;drop table y", "1abc", "", "a" * 64, "é"])
def test_safe_identifier_refuses(bad):
    with pytest.raises(ConfigError):
        safe_identifier(bad, "user-data column")


def test_safe_identifier_accepts():
    assert safe_identifier("CUSTOM_DATA_1") == "CUSTOM_DATA_1"


def test_advisory_lock_excludes_other_sessions(db_kind, engine):
    ops = ops_for(engine)
    with engine.connect() as a, engine.connect() as b:
        assert ops.try_advisory_lock(a, "job-x")
        if db_kind == "sqlite":  # no advisory locks: the file lock is the only one
            assert ops.try_advisory_lock(b, "job-x")
            return
        assert not ops.try_advisory_lock(b, "job-x")
        assert ops.advisory_lock_held(b, "job-x")
        ops.advisory_unlock(a, "job-x")
        assert ops.try_advisory_lock(b, "job-x")
        ops.advisory_unlock(b, "job-x")


def test_unreachable_postgres_names_the_database_and_hides_the_password():
    eng = make_engine("postgresql://gim:topsecret@127.0.0.1:1/im", label="Info Mart")
    with pytest.raises(DatabaseUnavailable) as info:
        check_connection(eng)
    message = info.value.message
    assert "Info Mart postgresql+psycopg://gim:***@127.0.0.1:1/im" in message
    assert "topsecret" not in message and "\n" not in message


def test_unsupported_url():
    with pytest.raises(DatabaseUnavailable, match="unsupported database"):
        make_engine("mysql://x@y/z")
