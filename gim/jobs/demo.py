"""`gim demo`: a newcomer's first run. Simulates a small contact center into a SQLite IDB,
writes a configuration pointing at it and runs every job, then says where things are.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from gim.config import load_config
from gim.runner import JobSpec, Output, run_job

SEED = 1
AGENTS = 24
# One site: calls crossing sites stay unmerged until the transformation merges them, and a
# first look should show every job handling all of its data.
SITES = 1


def demo_config(directory: Path, start: dt.date) -> str:
    return textwrap.dedent(f"""\
        # Written by `gim demo`: a SQLite Info Mart fed by one simulated IDB.
        [infomart]
        url = "sqlite:///infomart.db"

        [gim-etl]
        etl-start-date = "{start.isoformat()}"

        [lock]
        dir = "locks"

        [log]
        file = "gim.log"

        [[dap]]
        name = "demo_idb"
        url = "sqlite:///idb.db"
        roles = ["ICON_CFG", "ICON_CORE", "ICON_MM", "ICON_OCS"]
        """)


def steps() -> list[tuple[str, JobSpec, Callable]]:
    """The jobs the demo runs, in cycle order."""
    from gim.jobs import extract, initialize, transform
    from gim.runner import EXTRACT_LOCKS

    return [
        ("init", JobSpec("init", locks=("init",), initializes=False), initialize.run),
        ("extract --role all", JobSpec("extract", locks=EXTRACT_LOCKS, fast_commit=True),
         lambda ctx: extract.run(ctx, "all")),
        ("transform", JobSpec("transform", locks=("transform",), fast_commit=True),
         transform.run_job),
    ]


def run(directory: Path, days: int = 3, calls_per_day: int = 300) -> int:
    from gim.db import make_engine
    from gim.simulate import _previous_run, simulate

    console = Console(highlight=False, soft_wrap=True)
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    idb_url = f"sqlite:///{directory / 'idb.db'}"
    today = dt.datetime.now(dt.UTC).date()
    engine = make_engine(idb_url, label="IDB")
    previous = _previous_run(engine)
    engine.dispose()
    if previous is not None and previous.get("STATE") != "complete":
        # An earlier demo stopped while simulating: its IDB is partly written, start over.
        for suffix in ("", "-wal", "-shm"):
            (directory / f"idb.db{suffix}").unlink(missing_ok=True)
        previous = None
    if previous is None:
        start = today - dt.timedelta(days=days)
        with console.status(f"simulating {days} days of a contact center ..."):
            result = simulate(idb_url, start=start, days=days, calls_per_day=calls_per_day,
                              agents=AGENTS, seed=SEED, media=("voice", "chat", "email"),
                              outbound=True, faults=0.0, sites=SITES)
        console.print(f"[green]simulated[/] {days} days from {start}: "
                      f"{result.total_rows:,} IDB and ledger rows in {result.seconds:.1f}s")
    else:
        start = dt.datetime.fromtimestamp(previous["START_TS"], dt.UTC).date()
        console.print(f"reusing the simulated IDB from {start} (seed {previous['SEED']})")
    config_path = directory / "gim.toml"
    config_path.write_text(demo_config(directory, start), encoding="utf-8")
    config = load_config(config_path)
    for label, spec, body in steps():
        result = run_job(spec, config, body, Output(interactive=False),
                         command=f"gim demo ({label})")
        if result.exit_code:
            console.print(f"[red]gim {label} failed[/]: {result.message}")
            return result.exit_code
        counts = ", ".join(f"{k} {v:,}" for k, v in sorted(result.counts.items()) if v)
        console.print(f"[green]gim {label}[/] done in {result.ended - result.started:.1f}s"
                      + (f": {counts}" if counts else ""))
    console.print(textwrap.dedent(f"""
        Everything is in {directory}:
          idb.db        the simulated Interaction Concentrator database (ICON tables, and
                        the truth ledger in SIM_* tables)
          infomart.db   the Info Mart
          gim.toml      the configuration the jobs ran with
          gim.log       the jobs' log
        Try next:
          gim status -c {config_path}
          gim config show -c {config_path}
          sqlite3 {directory / 'infomart.db'} "SELECT MEDIA_NAME_CODE, IS_ONLINE FROM MEDIA_TYPE"
          sqlite3 {directory / 'idb.db'} "SELECT OUTCOME, COUNT(*) FROM SIM_INTERACTION GROUP BY 1"
        """).rstrip())
    return 0
