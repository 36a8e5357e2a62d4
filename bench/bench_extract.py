"""Benchmark of extraction, PostgreSQL IDB to PostgreSQL Info Mart, for one simulated day.

Prints the rows per second `gim extract --role all` moves, as a ratio to a raw
`COPY (SELECT * FROM t) TO STDOUT | COPY t FROM STDIN` of the same IDB tables measured in the
same run on the same server (target: 0.6 or better), and the peak memory of the extraction
process alone (its own maximum resident set, read when it ends; `gim init` before it and
this script are not counted).

    python bench/bench_extract.py                 # 100 000 calls
    python bench/bench_extract.py --calls 20000
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


def raw_copy(idb_url: str, scratch_url: str, tables: list[str]) -> tuple[int, float]:
    """COPY every table out of the IDB and into an empty copy of it; rows and seconds."""
    import sqlalchemy as sa

    from gim.schema.idb import idb_metadata

    engine = sa.create_engine(scratch_url.replace("postgresql://", "postgresql+psycopg://"))
    idb_metadata.create_all(engine, tables=[idb_metadata.tables[t] for t in tables])
    engine.dispose()
    rows = 0
    began = time.perf_counter()
    with psycopg.connect(idb_url) as src, psycopg.connect(scratch_url) as dst:
        for table in tables:
            with src.cursor() as out_cur, dst.cursor() as in_cur, \
                    out_cur.copy(f"COPY (SELECT * FROM {table}) TO STDOUT") as out, \
                    in_cur.copy(f"COPY {table} FROM STDIN") as inp:
                for data in out:
                    inp.write(data)
            rows += dst.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        dst.commit()
    return rows, time.perf_counter() - began


def _watch_peak(pid: int) -> list[float]:
    """The peak resident memory of process `pid` in MB (a one-item list, filled until the
    process ends), from /proc/<pid>/status VmHWM. Neither RUSAGE_CHILDREN (the maximum over
    every child, `gim init` included) nor the child's ru_maxrss (which counts this big
    process's memory the child shared until it started gim) measure the extraction."""
    import threading

    peak = [0.0]

    def watch() -> None:
        path = Path(f"/proc/{pid}/status")
        while True:
            try:
                text = path.read_text()
            except OSError:
                return
            if "State:\tZ" in text:  # ended, not yet reaped
                return
            for line in text.splitlines():
                if line.startswith("VmHWM:"):
                    peak[0] = max(peak[0], int(line.split()[1]) / 1024)
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=None,
                        help="extract-data-thread-pool-size (default: gim's)")
    args = parser.parse_args()
    agents = max(20, args.calls // 65)
    from gim.schema.gidb import COPIES
    from gim.simulate import simulate

    idb_name, idb_url = _db("gim_bench_idb")
    im_name, im_url = _db("gim_bench_im")
    raw_name, raw_url = _db("gim_bench_raw")
    raw2_name, raw2_url = _db("gim_bench_raw")
    tables = sorted({c.source.name for c in COPIES})
    try:
        print(f"simulating one day of {args.calls:,} calls ({agents:,} agents, all media, "
              "outbound) into PostgreSQL ...", flush=True)
        simulate(idb_url, start=START, days=1, calls_per_day=args.calls, agents=agents,
                 seed=42, media=("voice", "chat", "email"), outbound=True)
        # A live IDB has planner statistics and is vacuumed (autovacuum keeps it so); a
        # database the simulator just wrote is neither, and autovacuum would get to it
        # during the measurement.
        with psycopg.connect(idb_url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        # The raw copy runs before and after the extraction, so that a change in the load of
        # the machine during the run weighs on both sides alike.
        before = raw_copy(idb_url, raw_url, tables)
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "gim.toml"
            config.write_text(
                f'[infomart]\nurl = "{im_url}"\n[gim-etl]\netl-start-date = "{START}"\n'
                + (f"extract-data-thread-pool-size = {args.workers}\n" if args.workers else "")
                + '[lock]\ndir = "locks"\n[log]\nfile = "gim.log"\n'
                f'[[dap]]\nname = "bench"\nurl = "{idb_url}"\n'
                'roles = ["ICON_CFG", "ICON_CORE", "ICON_MM", "ICON_OCS"]\n')
            run = [sys.executable, "-m", "gim.cli"]
            subprocess.run([*run, "init", "-c", str(config)], check=True)
            began = time.perf_counter()
            proc = subprocess.Popen([*run, "extract", "--role", "all", "-c", str(config)])
            peak = _watch_peak(proc.pid)
            # wait4 reports the CPU time of that one process.
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - began
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode:
                raise SystemExit(f"gim extract failed (exit {proc.returncode})")
        cpu = usage.ru_utime + usage.ru_stime
        with psycopg.connect(im_url) as conn:
            rows = sum(conn.execute(f"SELECT COUNT(*) FROM {c.target.name}").fetchone()[0]
                       for c in COPIES)
        after = raw_copy(idb_url, raw2_url, tables)
    finally:
        for name in (idb_name, im_name, raw_name, raw2_name):
            _drop(name)
    raw_rows, raw_seconds = before[0], (before[1] + after[1]) / 2
    rate, raw_rate = rows / seconds, raw_rows / raw_seconds
    print(f"gim extract: {rows:,} rows in {seconds:.1f}s = {rate:,.0f} rows/s "
          f"(peak RSS of the extraction process {peak[0]:,.0f} MB, CPU {cpu:.1f}s)")
    print(f"raw COPY TO | COPY FROM: {raw_rows:,} rows in {before[1]:.1f}s before and "
          f"{after[1]:.1f}s after = {raw_rate:,.0f} rows/s")
    print(f"ratio: {rate / raw_rate:.2f} (target >= 0.6)")


if __name__ == "__main__":
    main()
