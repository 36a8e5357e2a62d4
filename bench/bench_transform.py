"""Benchmark of the transformation on PostgreSQL, for one simulated day.

Prints the GIDB rows per second `gim transform` turns into facts, as a ratio to a bare
`INSERT INTO copy SELECT * FROM gidb_table` of the same GIDB rows (those of the tables the
transformation reads; outbound and IR tables it does not read are left out of both)
measured in the same run on the same server (target: 0.4 or better), and the time of one
15-minute incremental cycle (`gim extract --role all` then `gim transform`) after the day.
The transformation's time is that of the `gim transform` process, start-up included.

    python bench/bench_transform.py                 # 100 000 calls
    python bench/bench_transform.py --calls 20000
    python bench/bench_transform.py --workers 1     # one transaction at a time
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

PG_ADMIN = os.environ.get("GIM_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
START = dt.date(2026, 11, 2)


def _db(prefix: str) -> tuple[str, str]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return name, PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def _drop(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _gim(config: Path, *args: str) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gim.cli", *args, "-c", str(config)], check=True)
    return time.perf_counter() - began


def bare_copy(im_url: str, tables: list[str]) -> tuple[int, float]:
    """INSERT ... SELECT of every GIDB table into an unindexed copy; rows and seconds."""
    rows = 0
    with psycopg.connect(im_url) as conn:
        for t in tables:
            conn.execute(f"CREATE TABLE bench_{t} (LIKE {t})")
        conn.commit()
        began = time.perf_counter()
        for t in tables:
            rows += conn.execute(f"INSERT INTO bench_{t} SELECT * FROM {t}").rowcount
        conn.commit()
        return rows, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=None,
                        help="transform-thread-pool-size (default: the option's default)")
    args = parser.parse_args()
    agents = max(20, args.calls // 65)
    from gim.jobs.transform import GIDB_READ
    from gim.simulate import simulate

    idb_name, idb_url = _db("gim_bench_idb")
    im_name, im_url = _db("gim_bench_im")
    try:
        print(f"simulating one day of {args.calls:,} calls ({agents:,} agents, all media, "
              "outbound) into PostgreSQL, and extracting it ...", flush=True)
        simulate(idb_url, start=START, days=1, calls_per_day=args.calls, agents=agents,
                 seed=42, media=("voice", "chat", "email"), outbound=True)
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "gim.toml"
            config.write_text(
                f'[infomart]\nurl = "{im_url}"\n[gim-etl]\netl-start-date = "{START}"\n'
                '[lock]\ndir = "locks"\n[log]\nfile = "gim.log"\n'
                f'[[dap]]\nname = "bench"\nurl = "{idb_url}"\n'
                'roles = ["ICON_CFG", "ICON_CORE", "ICON_MM", "ICON_OCS"]\n'
                + (f"[gim-transformation]\ntransform-thread-pool-size = {args.workers}\n"
                   if args.workers else ""))
            _gim(config, "init")
            _gim(config, "extract", "--role", "all")
            seconds = _gim(config, "transform")
            with psycopg.connect(im_url) as conn:
                gidb = [t.lower() for t in GIDB_READ]
                rows = sum(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                           for t in gidb)
                facts = sum(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in (
                    "interaction_fact", "interaction_resource_fact", "mediation_segment_fact",
                    "sm_res_session_fact", "sm_res_state_fact", "sm_res_state_reason_fact"))
            bare_rows, bare_seconds = bare_copy(im_url, gidb)
            print("continuing the simulation by 15 minutes ...", flush=True)
            simulate(idb_url, days=0, minutes=15, resume=True)
            cycle_extract = _gim(config, "extract", "--role", "all")
            cycle_transform = _gim(config, "transform")
    finally:
        _drop(idb_name)
        _drop(im_name)
    rate, bare_rate = rows / seconds, bare_rows / bare_seconds
    from gim.config import build_config

    workers = args.workers or build_config({}).get("gim-transformation",
                                                    "transform-thread-pool-size")
    print(f"gim transform ({workers} transaction(s) at a time): {rows:,} GIDB rows into "
          f"{facts:,} facts in {seconds:.1f}s = {rate:,.0f} rows/s")
    print(f"bare INSERT ... SELECT: {bare_rows:,} rows in {bare_seconds:.1f}s = "
          f"{bare_rate:,.0f} rows/s")
    print(f"ratio: {rate / bare_rate:.2f} (target >= 0.4)")
    print(f"one 15-minute cycle (processes included): extract {cycle_extract:.1f}s + "
          f"transform {cycle_transform:.1f}s = {cycle_extract + cycle_transform:.1f}s")


if __name__ == "__main__":
    main()
