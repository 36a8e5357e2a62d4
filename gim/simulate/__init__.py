"""A contact-center simulator that fills an ICON-shaped IDB and records the truth beside it.

`simulate()` runs a new simulation; `simulate(..., resume=True)` continues the one an IDB
holds from the checkpoint its last run saved (SIM_CHECKPOINT), giving the same content as one
run over the whole span.

A simulation of several sites (sites=N) writes all switches into the one IDB (one ICON
recording N T-Servers), or, given site_idbs (one URL per site after the first), the rows of
site k's switch into the k-th of them, as if each site had its ICON: configuration and
dictionaries go to every IDB, the ledger and the checkpoint stay in the first. The site
IDBs' URLs are not stored (they may hold passwords): a continued run is given them again, in
the same order, and checks that each is the IDB of its site as the last run left it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gim import __version__
from gim.db import make_engine, ops_for, write_tx
from gim.errors import JobFailed, UsageError
from gim.schema.icon_codes import DICTIONARIES, MULTISITE_DICTIONARIES
from gim.schema.idb import (
    G_DICT_TYPE,
    G_DICTIONARY,
    G_DSS_GCC_PROVIDER,
    GC_SWITCH,
    GSYS_DNPREMOTELOCATION,
    idb_metadata,
)
from gim.simulate.engine import CHECKPOINT_FORMAT, DAY, Params, Sim
from gim.simulate.ledger import SIM_CHECKPOINT, SIM_RUN, ledger_metadata
from gim.simulate.model import (
    MAX_SITES,
    REMOTE_SWITCH_NAME,
    Center,
    ConfigStore,
    build_center,
    dss_rows,
    initial_config,
)
from gim.simulate.writer import Writer

MEDIA = ("voice", "chat", "email")


@dataclass
class SimResult:
    start: int
    end: int
    previous_end: int | None
    rows: dict[str, int]
    seconds: float

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def create_idb(engine: Engine, with_ledger: bool = True) -> int:
    """Create the ICON tables (and the ledger's) that are missing; returns how many. Ledger
    columns added since a ledger was created (all nullable) are added to it."""
    with write_tx(engine) as conn:
        ops = ops_for(conn)
        existing = ops.table_names(conn)
        tables = list(idb_metadata.sorted_tables)
        if with_ledger:
            tables += list(ledger_metadata.sorted_tables)
        missing = [t for t in tables if t.name not in existing]
        for table in missing:
            table.create(conn)
        if with_ledger:
            for table in ledger_metadata.sorted_tables:
                if table.name in existing:
                    for column in table.columns:
                        if column.nullable and not column.primary_key:
                            ops.add_column(conn, table, column)
    return len(missing)


def _previous_run(engine: Engine) -> dict[str, Any] | None:
    """The SIM_RUN row of the IDB, or None (also for a database with no SIM_RUN)."""
    with engine.connect() as conn:
        if not ops_for(conn).table_exists(conn, SIM_RUN.name):
            return None
        # Every column there is: an IDB written by an older simulator lacks some.
        row = conn.exec_driver_sql(f"SELECT * FROM {SIM_RUN.name}").mappings().first()
        return {k.upper(): v for k, v in row.items()} if row else None


def _checkpoint(engine: Engine) -> dict[str, Any] | None:
    with engine.connect() as conn:
        if not ops_for(conn).table_exists(conn, SIM_CHECKPOINT.name):
            return None
        row = conn.execute(sa.select(SIM_CHECKPOINT)).mappings().first()
        return dict(row) if row else None


FIXED = ("start", "seed", "calls_per_day", "agents", "media", "outbound", "faults", "sites")


def simulate(url: str, *, start: dt.date | None = None, days: int | None = None,
             minutes: int = 0, calls_per_day: int | None = None, agents: int | None = None,
             seed: int | None = None, media: tuple[str, ...] | None = None,
             outbound: bool | None = None, faults: float | None = None,
             sites: int | None = None, site_idbs: tuple[str, ...] = (),
             resume: bool = False, batch_rows: int = 20_000,
             progress: Any = None) -> SimResult:
    """Simulate into the IDB at `url` for `days` days (default 1) and `minutes` minutes.

    With resume=True the simulation the IDB holds continues from its checkpoint for `days`
    (default 0) days and `minutes` minutes more (a run may end at any minute, so that
    incremental loading can be tried every quarter of an hour); the parameters fixed when
    it was created (FIXED) may not be given then, the site IDBs must be given again.
    """
    began = time.time()
    engine = make_engine(url, label="IDB")
    site_engines: list[Engine] = []
    try:
        for i, site_url in enumerate(site_idbs, start=2):
            site_engines.append(make_engine(site_url, label=f"IDB of site {i}"))
        _check_distinct(engine, site_engines)
        previous = _previous_run(engine)
        if resume:
            fixed = dict(start=start, seed=seed, calls_per_day=calls_per_day, agents=agents,
                         media=media, outbound=outbound, faults=faults, sites=sites)
            given = [name for name in FIXED if fixed[name] is not None]
            if given:
                raise UsageError(
                    "--continue: " + ", ".join(f"--{g.replace('_', '-')}" for g in given)
                    + " cannot change: fixed when the simulation was created (see SIM_RUN)")
            sim, params, since = _resume(engine, previous, days or 0, minutes)
            _check_site_idbs(site_engines, sim.c, params, since)
            create_idb(engine)
            for site_engine in site_engines:
                create_idb(site_engine, with_ledger=False)
        else:
            if previous is not None:
                raise UsageError(f"{engine.info['url']} already holds a simulation (seed "
                                 f"{previous['SEED']}); use --continue to extend it, or a "
                                 "new database")
            if start is None:
                raise UsageError("--start is required for a new simulation")
            days = 1 if days is None else days
            if days >= 0 and minutes >= 0:  # as a continued run counts them
                days, minutes = divmod(days * 1440 + minutes, 1440)
            media = tuple(media) if media is not None else ("voice",)
            params = Params(seed=1 if seed is None else seed, start=_midnight(start),
                            days=days, minutes=minutes,
                            calls_per_day=200 if calls_per_day is None else calls_per_day,
                            agents=20 if agents is None else agents, media=media,
                            outbound=bool(outbound), faults=faults or 0.0,
                            sites=1 if sites is None else sites,
                            site_idbs=len(site_engines))
            _check(params.days, params.minutes, params.calls_per_day, params.agents,
                   params.media, params.faults)
            if not 1 <= params.sites <= MAX_SITES:
                raise UsageError(f"--sites must be between 1 and {MAX_SITES}")
            center = build_center(params.seed, params.agents, params.media, params.outbound,
                                  params.sites, split=bool(site_engines))
            _check_sites(params, center)
            for site_engine in site_engines:
                _check_empty(site_engine)
            create_idb(engine)
            for site_engine in site_engines:
                create_idb(site_engine, with_ledger=False)
            store = ConfigStore(params.seed)
            # ICON's first configuration synchronization happened a week before the first
            # call.
            initial_config(center, store, params.start - 7 * DAY, params.media,
                           params.outbound)
            sim = Sim(params, center, store)
            sim.begin()
            since = None
        _mark_running(engine, params, previous)
        writer = _writer(engine, tuple(site_engines), sim.c, params, since is None, batch_rows)
        sim.sink = writer
        sim.run(params.end)
        blob = sim.checkpoint()
        sim.close_open(params.end)
        _write_config(writer, sim.store, since)
        for name, rows in dss_rows(sim.c, params.start - 7 * DAY, params.end, params.media,
                                   params.outbound).items():
            for row in rows:
                writer.add(name, row)
        if since is None:
            for dict_type, (name, enum) in sorted(DICTIONARIES.items()):
                if params.sites == 1 and dict_type in MULTISITE_DICTIONARIES:
                    continue
                writer.add(G_DICT_TYPE.name, {"ID": dict_type, "NAME": name})
                for member in enum:
                    writer.add(G_DICTIONARY.name, {"DICT_TYPE": dict_type, "ID": int(member),
                                                   "NAME": member.name, "DESCRIPTION": None})
            if params.sites > 1:
                # No ICON records the remote switch: its IS-Links have no counterpart.
                writer.add(GSYS_DNPREMOTELOCATION.name,
                           {"ID": 1, "REMOTELOCATION": REMOTE_SWITCH_NAME})
        # The run's completion commits with its last rows: an interrupted run leaves
        # SIM_RUN in state running, which no later run accepts.
        writer.add(SIM_CHECKPOINT.name, {
            "RUN_KEY": 1, "FORMAT_VERSION": CHECKPOINT_FORMAT, "END_TS": params.end,
            "GIM_VERSION": __version__, "STATE": blob})
        writer.add(SIM_RUN.name, _run_row(params, "complete"))
        writer.batch_rows = 1 << 62  # the rest in one transaction
        writer.flush()
        return SimResult(start=params.start, end=params.end, previous_end=since,
                         rows={k: v for k, v in writer.written.items()
                               if k not in (SIM_RUN.name, SIM_CHECKPOINT.name)},
                         seconds=time.time() - began)
    finally:
        engine.dispose()
        for site_engine in site_engines:
            site_engine.dispose()


def _writer(engine: Engine, site_engines: tuple[Engine, ...], c: Center, params: Params,
            first_run: bool, batch_rows: int) -> Writer:
    remote = frozenset(s.domain for s in c.site_list[1:])
    domains = {s.domain: s.number - 1 for s in c.site_list[1:]} if site_engines else {}
    icons = {s.icon: s.number - 1 for s in c.site_list[1:]} if site_engines else {}
    return Writer(engine, first_run, params.seed, params.faults, batch_rows,
                  sites=params.sites, remote_domains=remote, site_engines=site_engines,
                  domains=domains, icons=icons)


def _check_distinct(engine: Engine, site_engines: list[Engine]) -> None:
    seen = {engine.info["url"]}
    for site_engine in site_engines:
        if site_engine.info["url"] in seen:
            raise UsageError(f"--site-idb {site_engine.info['url']}: given twice (with --idb "
                             "or another --site-idb); every site needs its own IDB")
        seen.add(site_engine.info["url"])


def _check_sites(params: Params, center: Center) -> None:
    if params.site_idbs not in (0, params.sites - 1):
        raise UsageError(f"--site-idb: give one for each site after the first "
                         f"({params.sites - 1} for --sites {params.sites}), or none to write "
                         f"every site into --idb; got {params.site_idbs}")
    staffed = {a.site for a in center.agents if not a.outbound}
    if len(staffed) < params.sites:
        raise UsageError(f"--agents {params.agents} is too few for --sites {params.sites}: "
                         "every site needs an inbound agent (multimedia and outbound agents "
                         "work at site 1)")


def _check_empty(engine: Engine) -> None:
    with engine.connect() as conn:
        if ops_for(conn).table_exists(conn, GC_SWITCH.name) and \
                conn.execute(sa.select(sa.func.count()).select_from(GC_SWITCH)).scalar():
            raise UsageError(f"--site-idb {engine.info['url']} already holds IDB rows; every "
                             "site needs a new database")


def _check_site_idbs(site_engines: list[Engine], c: Center, params: Params,
                     since: int) -> None:
    """A continued run is given the site IDBs it was created with, in that order: each
    holds its site's T-Server session as the last run ended it."""
    if len(site_engines) != params.site_idbs:
        raise UsageError(
            f"--continue: this simulation writes sites 2..{params.sites} to {params.site_idbs} "
            f"other IDBs; give them again with --site-idb, in the order of its creation"
            if params.site_idbs else
            "--continue: this simulation writes every site into --idb; --site-idb is not "
            "for it")
    table = G_DSS_GCC_PROVIDER
    for site, engine in zip(c.site_list[1:1 + len(site_engines)], site_engines, strict=True):
        with engine.connect() as conn:
            found = ops_for(conn).table_exists(conn, table.name) and conn.execute(
                sa.select(sa.func.count()).select_from(table).where(
                    table.c.DSS_ID == site.domain, table.c.DS2_DBID == site.switch_id,
                    table.c.ICON_DBID == site.icon, table.c.ICON_ETS == since)).scalar()
        if not found:
            raise UsageError(f"--site-idb {engine.info['url']}: not the IDB of site "
                             f"{site.number} ({site.switch_name}) as the last run left it; "
                             "give the site IDBs in the order of the simulation's creation")


def _resume(engine: Engine, previous: dict[str, Any] | None, days: int,
            minutes: int) -> tuple[Sim, Params, int]:
    where = engine.info["url"]
    if previous is None:
        raise UsageError(f"{where}: no simulation to continue (SIM_RUN is empty)")
    if previous.get("STATE") != "complete":
        raise JobFailed(f"{where}: the last simulation run into this IDB did not complete "
                        "(SIM_RUN.STATE is not complete), so its rows are partly written; "
                        "simulate into a new database")
    if days < 0 or minutes < 0 or days * 1440 + minutes < 1:
        raise UsageError("--continue needs --days or --minutes to add")
    saved = _checkpoint(engine)
    if saved is None or saved["END_TS"] != previous["END_TS"]:
        raise UsageError(f"{where}: no checkpoint of the simulation to continue from (an "
                         "IDB written by an older gim); simulate into a new database")
    if saved["FORMAT_VERSION"] != CHECKPOINT_FORMAT:
        raise UsageError(f"{where}: its checkpoint has format {saved['FORMAT_VERSION']}, "
                         f"gim {__version__} reads format {CHECKPOINT_FORMAT}; simulate into "
                         "a new database")
    try:
        sim = Sim.resume(saved["STATE"])
    except Exception as exc:  # noqa: BLE001 - any unreadable state is the same error
        raise UsageError(f"{where}: its checkpoint cannot be read ({type(exc).__name__}: "
                         f"{exc}); simulate into a new database") from None
    p = sim.p
    total = p.days * 1440 + p.minutes + days * 1440 + minutes
    p.days, p.minutes = total // 1440, total % 1440
    return sim, p, previous["END_TS"]


def _run_row(params: Params, state: str) -> dict[str, Any]:
    values = dataclasses.asdict(params)
    if params.sites == 1:  # as a single-site run wrote it before sites existed
        del values["sites"], values["site_idbs"]
    return {"RUN_KEY": 1, "SEED": params.seed, "START_TS": params.start,
            "END_TS": params.end, "PARAMS": json.dumps(values, sort_keys=True),
            "GIM_VERSION": __version__, "STATE": state}


def _mark_running(engine: Engine, params: Params, previous: dict[str, Any] | None) -> None:
    """SIM_RUN says a run is writing (END_TS still the previous end) before any row is."""
    row = _run_row(params, "running")
    row["END_TS"] = previous["END_TS"] if previous else params.start
    with write_tx(engine) as conn:
        conn.execute(sa.delete(SIM_RUN))
        conn.execute(sa.insert(SIM_RUN).values(**row))


def _write_config(writer: Writer, store: ConfigStore, since: int | None) -> None:
    for name, rows in store.rows().items():
        for row in rows:
            if since is None or (row.get("LASTCHANGE_TS") or 0) > since:
                writer.add(name, row)


def _midnight(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp())


def _check(days: int, minutes: int, calls: int, agents: int, media: tuple[str, ...],
           faults: float) -> None:
    if days < 0 or minutes < 0 or days * 1440 + minutes < 1:
        raise UsageError("--days and --minutes must add up to at least one minute")
    if calls < 0 or agents < 3:
        raise UsageError("--calls-per-day must be >= 0 and --agents >= 3")
    unknown = [m for m in media if m not in MEDIA]
    if unknown or "voice" not in media:
        raise UsageError(f"--media: unknown {', '.join(unknown) or '(voice missing)'}; "
                         f"choose among {', '.join(MEDIA)} (voice included)")
    if not 0 <= faults <= 1:
        raise UsageError("--faults must be between 0 and 1")
