"""Benchmark of the simulator: rows per second written into SQLite and PostgreSQL for one
simulated day, and the peak memory of the process that wrote them, at two volumes (N and 4N
calls a day, agents in proportion) so that one sees memory follow the size of the center,
not the number of rows written.

The baseline, measured in the same run on the same machine and database, is the bulk load
alone: the simulated G_PARTY_HISTORY rows (already in memory) loaded again into an empty
copy of the table through the same loader (COPY on PostgreSQL, batched executemany on
SQLite). The ratio says how much of the load speed the simulation keeps.

    python bench/bench_simulate.py                      # 25 000 and 100 000 calls, both
    python bench/bench_simulate.py --calls 2500 --db sqlite
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid

PG_ADMIN = os.environ.get("GIM_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _child(url: str, calls: int, agents: int) -> None:
    """Runs in a subprocess, so that its peak memory is its own."""
    import sqlalchemy as sa

    from gim.db import make_engine, ops_for, write_tx
    from gim.schema.idb import G_PARTY_HISTORY
    from gim.simulate import simulate
    from gim.simulate.ledger import SIM_CHECKPOINT

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = simulate(url, start=dt.date(2026, 11, 2), days=1, calls_per_day=calls,
                      agents=agents, seed=42, media=("voice", "chat", "email"), outbound=True)
    peak_sim = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    engine = make_engine(url)
    columns = [c.name for c in G_PARTY_HISTORY.columns]
    with engine.connect() as conn:
        state = len(conn.execute(sa.select(SIM_CHECKPOINT.c.STATE)).scalar_one())
        rows = [tuple(r) for r in conn.execute(sa.select(G_PARTY_HISTORY))]
    copy = sa.Table("BENCH_PARTY_HISTORY", sa.MetaData(),
                    *[sa.Column(c.name, c.type, quote=False) for c in G_PARTY_HISTORY.columns],
                    quote=False)
    copy.create(engine)
    began = time.perf_counter()
    with write_tx(engine) as conn:
        ops_for(conn).bulk_insert(conn, copy, rows, columns)
    load_seconds = time.perf_counter() - began
    engine.dispose()
    print(json.dumps({"rows": result.total_rows, "seconds": result.seconds,
                      "baseline_rows": len(rows), "baseline_seconds": load_seconds,
                      "peak_rss_mb": peak_sim / 1024, "start_rss_mb": before / 1024,
                      "state_kb": state / 1024,
                      "calls": result.rows.get("SIM_INTERACTION", 0)}))


def _run(kind: str, calls: int, agents: int) -> dict:
    import psycopg

    with tempfile.TemporaryDirectory() as tmp:
        name = None
        if kind == "sqlite":
            url = f"sqlite:///{tmp}/bench_idb.db"
        else:
            name = f"gim_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
        try:
            out = subprocess.run([sys.executable, __file__, "--child", url, "--calls",
                                  str(calls), "--agents", str(agents)],
                                 capture_output=True, text=True, check=True)
        finally:
            if name:
                with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                    conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _agents(calls: int) -> int:
    return max(20, calls // 65)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=25_000,
                        help="inbound calls in the smaller day (the larger has 4 times as many)")
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--agents", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.calls, args.agents or _agents(args.calls))
        return
    volumes = (args.calls, 4 * args.calls)
    print(f"one simulated day of {volumes[0]:,} and {volumes[1]:,} inbound calls (voice, "
          f"chat, e-mail, outbound; agents: calls / 65)")
    print(f"{'database':<11} {'calls/day':>9} {'agents':>6} {'rows':>10} {'rows/s':>8} "
          f"{'baseline/s':>10} {'ratio':>6} {'peak RSS MB':>11} {'state KB':>9}")
    for kind in args.db.split(","):
        peaks = []
        for calls in volumes:
            r = _run(kind, calls, _agents(calls))
            rate = r["rows"] / r["seconds"]
            base = r["baseline_rows"] / r["baseline_seconds"]
            peaks.append(r["peak_rss_mb"])
            print(f"{kind:<11} {calls:>9,} {_agents(calls):>6,} {r['rows']:>10,} {rate:>8,.0f} "
                  f"{base:>10,.0f} {rate / base:>6.3f} {r['peak_rss_mb']:>11,.0f} "
                  f"{r['state_kb']:>9,.0f}")
        print(f"{kind:<11} peak memory at 4N / at N: {peaks[1] / peaks[0]:.2f} "
              f"(rows written: about 4x)")


if __name__ == "__main__":
    main()
