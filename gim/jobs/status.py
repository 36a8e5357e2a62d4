"""`gim status`: schema version, the last run and outcome of each job, and the locks held now.

Read-only: it takes no lock, writes no history, and creates nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from gim import __version__
from gim.config import Config, mask_url
from gim.db import make_engine, ops_for
from gim.db.engine import check_connection, normalize_url
from gim.jobs import merge
from gim.jobs.initialize import installed_version
from gim.runner import (
    ALL_LOCKS,
    RUNNING,
    describe_holder,
    lock_dir,
    lock_is_held,
    read_lock_holder,
)
from gim.schema.control import CTL_ETL_HISTORY, SCHEMA_VERSION


def collect(config: Config) -> dict[str, Any]:
    """Everything `gim status` shows, as plain data. Raises DatabaseUnavailable."""
    version, jobs, progress, advisory = None, [], {}, set()
    if _exists(config.infomart_url):
        engine = make_engine(config.infomart_url)
        try:
            check_connection(engine)
            version = installed_version(engine)
            jobs = _jobs(engine) if version is not None or _has_history(engine) else []
            if version is not None:
                progress = _progress(engine)
            advisory = _advisory_locks_held(config, engine)
        finally:
            engine.dispose()
    if version is None:
        state = "not initialized"
    elif version < SCHEMA_VERSION:
        state = "migration needed"
    elif version > SCHEMA_VERSION:
        state = "newer than gim"
    else:
        state = "current"
    running = {job["lock_name"]: job for job in jobs if job["status"] == RUNNING}
    locks = []
    for name in ALL_LOCKS:
        here = lock_is_held(config, name)
        if not here and name not in advisory:
            continue
        if here:
            holder = read_lock_holder(lock_dir(config), name)
        else:  # held from another host (another lock folder): its run says who
            job = running.get(name, {})
            holder = {k: job[k] for k in ("job", "job_id", "pid", "host") if k in job}
            if "started_ts" in job:
                holder["started"] = job["started_ts"]
        locks.append({"lock": name, **holder, "file": here, "advisory": name in advisory})
    held_jobs = {lk.get("job_id") for lk in locks if lk["file"]}
    for job in jobs:
        if (job["status"] == RUNNING and job["job_id"] not in held_jobs
                and job["lock_name"] not in advisory):
            job["status"] = "ABANDONED"
            job["message"] = "recorded RUNNING but no process holds its lock (killed?)"
    for job in jobs:
        del job["started_ts"]
    return {
        "gim_version": __version__,
        "infomart": mask_url(config.infomart_url),
        "config": config.describe_source(),
        "schema": {"installed": version, "code": SCHEMA_VERSION, "state": state},
        "jobs": jobs,
        "locks": locks,
        "progress": progress,
        "daps": [{"name": d.name, "roles": list(d.roles), "url": mask_url(d.url),
                  **({"ha_set": d.ha_set} if d.ha_set else {})} for d in config.daps],
    }


def _advisory_locks_held(config: Config, engine: sa.Engine) -> set[str]:
    """PostgreSQL: the job locks some session holds as advisory locks, whichever host it
    runs on (a job elsewhere uses its own lock folder, which this host cannot see)."""
    if engine.dialect.name != "postgresql" or not config.get("lock", "advisory"):
        return set()
    with engine.connect() as conn:
        ops = ops_for(conn)
        return {name for name in ALL_LOCKS if ops.advisory_lock_held(conn, name)}


def _exists(url: str) -> bool:
    """False for a SQLite file that does not exist yet (status must not create it)."""
    parsed = sa.engine.make_url(normalize_url(url))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return True
    return Path(parsed.database).exists()


def _has_history(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        return ops_for(conn).table_exists(conn, CTL_ETL_HISTORY.name)


def _jobs(engine: sa.Engine) -> list[dict[str, Any]]:
    """Per job name: its latest run, and when it last completed."""
    h = CTL_ETL_HISTORY
    with engine.connect() as conn:
        present = ops_for(conn).column_names(conn, h.name)
        # Runs of one job may start within a second (extraction of several roles at once):
        # the millisecond start tells the latest; an Info Mart awaiting migration lacks it.
        start = h.c.START_TS_MS if "START_TS_MS" in present else h.c.START_TS
        rank = sa.func.row_number().over(partition_by=h.c.JOB_NAME,
                                         order_by=(start.desc(), h.c.JOB_ID.desc()))
        columns = [c for c in h.c if c.name in present]
        latest = sa.select(*columns, rank.label("RUN_RANK")).subquery()
        last_ok = (sa.select(h.c.JOB_NAME, sa.func.max(h.c.END_TS).label("OK_TS"))
                   .where(h.c.STATUS == "COMPLETE").group_by(h.c.JOB_NAME).subquery())
        query = (sa.select(latest, last_ok.c.OK_TS)
                 .outerjoin(last_ok, last_ok.c.JOB_NAME == latest.c.JOB_NAME)
                 .where(latest.c.RUN_RANK == 1)
                 .order_by(latest.c.JOB_NAME))
        out = []
        for row in conn.execute(query).mappings():
            out.append({
                "job": row["JOB_NAME"], "job_id": row["JOB_ID"], "status": row["STATUS"],
                "started": _iso(row["START_TS"]), "ended": _iso(row["END_TS"]),
                "duration_s": (row["END_TS"] - row["START_TS"]) if row["END_TS"] else None,
                "exit_code": row["EXIT_CODE"], "rows": row["ROW_COUNT"],
                "counts": json.loads(row["COUNTS"]) if row["COUNTS"] else {},
                "message": row["MESSAGE"], "host": row["HOST_NAME"], "pid": row["PID"],
                "lock_name": row["LOCK_NAME"], "started_ts": row["START_TS"],
                "last_complete": _iso(row["OK_TS"]),
            })
    return out


def _progress(engine: sa.Engine) -> dict[str, Any]:
    """How far extraction has got per source (its least advanced table), and what the
    transformation has waiting."""
    out: dict[str, Any] = {"extraction": [], "pending": {}}
    with engine.connect() as conn:
        keys = dict(conn.execute(sa.text("SELECT SOURCE_NAME, DATA_SOURCE_KEY FROM CTL_DS")).all())
        served: dict[str, dict[str, int]] = {}
        # Which DAP served each table's latest window: in an HA set, where each IDB stands.
        for source, dap, tables in conn.execute(sa.text(
                "SELECT SOURCE_NAME, DAP_NAME, COUNT(*) FROM CTL_EXTRACT_HWM "
                "GROUP BY SOURCE_NAME, DAP_NAME ORDER BY SOURCE_NAME, DAP_NAME")):
            served.setdefault(source, {})[dap] = tables
        for source, low, high, tables in conn.execute(sa.text(
                "SELECT SOURCE_NAME, MIN(MARK_TS), MAX(MARK_TS), COUNT(*) FROM CTL_EXTRACT_HWM "
                "GROUP BY SOURCE_NAME ORDER BY SOURCE_NAME")):
            out["extraction"].append({"source": source, "data_source_key": keys.get(source),
                                      "oldest_mark": _iso(low), "newest_mark": _iso(high),
                                      "tables": tables, "last_served_by": served.get(source,
                                                                                     {})})
        out["pending"] = dict(conn.execute(sa.text(
            "SELECT KIND, COUNT(*) FROM CTL_TRANSFORM_PENDING GROUP BY KIND")).all())
        out["merge"] = []
        if ops_for(conn).table_exists(conn, merge.WAITING.name):  # schema 4 on
            # Voice calls extracted but waiting for the rest of their interaction.
            out["merge"] = [{"waiting_for": merge.MergeState.describe(state), "calls": n,
                             "oldest_end": _iso(oldest)}
                            for state, n, oldest in merge.backlog(conn)]
    return out


def _iso(ts: int | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render(status: dict[str, Any]) -> None:
    """Human-readable status with rich."""
    import sys

    from rich.console import Console
    from rich.table import Table

    # Piped output (mail, files) gets a width that fits the table, not 80 columns.
    console = Console(highlight=False, soft_wrap=True,
                      width=None if sys.stdout.isatty() else 120)
    schema = status["schema"]
    color = {"current": "green", "migration needed": "red", "newer than gim": "red",
             "not initialized": "yellow"}[schema["state"]]
    console.print(f"gim {status['gim_version']}  Info Mart {status['infomart']}")
    console.print(f"configuration: {status['config']}")
    installed = schema["installed"] if schema["installed"] is not None else "-"
    console.print(f"schema: installed {installed}, gim {schema['code']}: "
                  f"[{color}]{schema['state']}[/]")
    if schema["state"] == "migration needed":
        console.print("  run `gim migrate`; every other job exits with 4 until then")
    if status["jobs"]:
        table = Table(title="last runs", title_justify="left")
        for header in ("job", "status", "started (UTC)", "took", "rows", "last complete"):
            table.add_column(header, no_wrap=True)
        for job in status["jobs"]:
            st = job["status"]
            style = {"COMPLETE": "green", "RUNNING": "cyan"}.get(st, "red")
            took = f"{job['duration_s']}s" if job["duration_s"] is not None else ""
            table.add_row(job["job"], f"[{style}]{st}[/]", job["started"] or "", took,
                          f"{job['rows'] or 0:,}", job["last_complete"] or "never")
        console.print(table)
        for job in status["jobs"]:
            if job["message"]:
                console.print(f"  {job['job']}: {job['message']}")
    else:
        console.print("no job has run yet")
    for src in status.get("progress", {}).get("extraction", []):
        by = ", ".join(f"{dap} {n}" for dap, n in src["last_served_by"].items())
        console.print(f"extracted from {src['source']}: {src['tables']} tables, up to "
                      f"{src['oldest_mark']} (least advanced) .. {src['newest_mark']}; "
                      f"latest windows from DAP {by}")
    pending = status.get("progress", {}).get("pending", {})
    if pending:
        console.print("waiting for transformation: " + ", ".join(
            f"{n:,} {kind}" for kind, n in sorted(pending.items())))
    for group in status.get("progress", {}).get("merge", []):
        console.print(f"voice calls waiting to merge: {group['calls']:,} waiting for "
                      f"{group['waiting_for']} (oldest ended {group['oldest_end']})")
    if status["locks"]:
        for lock in status["locks"]:
            kind = ("" if lock["file"] else
                    " (PostgreSQL advisory lock, from another host or lock folder)")
            console.print(f"lock [cyan]{lock['lock']}[/] held by {describe_holder(lock)}"
                          + kind)
    else:
        console.print("no lock held")
    for dap in status["daps"]:
        console.print(f"dap {dap['name']}: {', '.join(dap['roles'])} {dap['url']}")
