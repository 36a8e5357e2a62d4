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
    version, jobs, progress = None, [], {}
    if _exists(config.infomart_url):
        engine = make_engine(config.infomart_url)
        try:
            check_connection(engine)
            version = installed_version(engine)
            jobs = _jobs(engine) if version is not None or _has_history(engine) else []
            if version is not None:
                progress = _progress(engine)
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
    locks = []
    for name in ALL_LOCKS:
        if lock_is_held(config, name):
            holder = read_lock_holder(lock_dir(config), name)
            locks.append({"lock": name, **holder})
    held_jobs = {lk.get("job_id") for lk in locks}
    for job in jobs:
        if job["status"] == RUNNING and job["job_id"] not in held_jobs:
            job["status"] = "ABANDONED"
            job["message"] = "recorded RUNNING but no process holds its lock (killed?)"
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
    latest = (sa.select(h.c.JOB_NAME, sa.func.max(h.c.START_TS).label("START_TS"))
              .group_by(h.c.JOB_NAME).subquery())
    last_ok = (sa.select(h.c.JOB_NAME, sa.func.max(h.c.END_TS).label("OK_TS"))
               .where(h.c.STATUS == "COMPLETE").group_by(h.c.JOB_NAME).subquery())
    query = (sa.select(h, last_ok.c.OK_TS)
             .join(latest, sa.and_(h.c.JOB_NAME == latest.c.JOB_NAME,
                                   h.c.START_TS == latest.c.START_TS))
             .outerjoin(last_ok, last_ok.c.JOB_NAME == h.c.JOB_NAME)
             .order_by(h.c.JOB_NAME, h.c.JOB_ID))
    out: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        for row in conn.execute(query).mappings():
            out[row["JOB_NAME"]] = {  # several runs in one second: the last one listed wins
                "job": row["JOB_NAME"], "job_id": row["JOB_ID"], "status": row["STATUS"],
                "started": _iso(row["START_TS"]), "ended": _iso(row["END_TS"]),
                "duration_s": (row["END_TS"] - row["START_TS"]) if row["END_TS"] else None,
                "exit_code": row["EXIT_CODE"], "rows": row["ROW_COUNT"],
                "counts": json.loads(row["COUNTS"]) if row["COUNTS"] else {},
                "message": row["MESSAGE"], "host": row["HOST_NAME"], "pid": row["PID"],
                "last_complete": _iso(row["OK_TS"]),
            }
    return list(out.values())


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
    if status["locks"]:
        for lock in status["locks"]:
            console.print(f"lock [cyan]{lock['lock']}[/] held by {describe_holder(lock)}")
    else:
        console.print("no lock held")
    for dap in status["daps"]:
        console.print(f"dap {dap['name']}: {', '.join(dap['roles'])} {dap['url']}")
