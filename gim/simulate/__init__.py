"""A contact-center simulator that fills an ICON-shaped IDB and records the truth beside it.

`simulate()` runs a new simulation; `simulate(..., resume=True)` continues the one an IDB
holds for more days, giving the same content as one run over the whole span.
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
from gim.errors import UsageError
from gim.schema.icon_codes import DICTIONARIES
from gim.schema.idb import G_DICT_TYPE, G_DICTIONARY, idb_metadata
from gim.simulate.engine import DAY, Params, Sim
from gim.simulate.ledger import SIM_RUN, ledger_metadata
from gim.simulate.model import ConfigStore, build_center, dss_rows, initial_config
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
    """Create the ICON tables (and the ledger's) that are missing; returns how many."""
    with write_tx(engine) as conn:
        existing = ops_for(conn).table_names(conn)
        tables = list(idb_metadata.sorted_tables)
        if with_ledger:
            tables += list(ledger_metadata.sorted_tables)
        missing = [t for t in tables if t.name not in existing]
        for table in missing:
            table.create(conn)
    return len(missing)


def _previous_run(engine: Engine) -> dict[str, Any] | None:
    with engine.connect() as conn:
        if not ops_for(conn).table_exists(conn, SIM_RUN.name):
            return None
        row = conn.execute(sa.select(SIM_RUN)).mappings().first()
        return dict(row) if row else None


def simulate(url: str, *, start: dt.date | None = None, days: int = 1, minutes: int = 0,
             calls_per_day: int = 200, agents: int = 20, seed: int = 1,
             media: tuple[str, ...] = ("voice",), outbound: bool = False,
             faults: float = 0.0, resume: bool = False, batch_rows: int = 20_000,
             progress: Any = None) -> SimResult:
    """Simulate into the IDB at `url`. With resume=True the parameters come from the IDB's
    SIM_RUN and `days` days and `minutes` minutes more are simulated (a run may end at any
    minute, so that incremental loading can be tried every quarter of an hour)."""
    began = time.time()
    engine = make_engine(url, label="IDB")
    try:
        previous = _previous_run(engine)
        if resume:
            if previous is None:
                raise UsageError(f"{engine.info['url']}: no simulation to continue "
                                 "(SIM_RUN is empty)")
            old = json.loads(previous["PARAMS"])
            total = old["days"] * 1440 + old.get("minutes", 0) + days * 1440 + minutes
            if total * 60 <= previous["END_TS"] - previous["START_TS"]:
                raise UsageError("--continue needs --days or --minutes to add")
            params = Params(**{**old, "days": total // 1440, "minutes": total % 1440})
            params.media = tuple(params.media)
            since: int | None = previous["END_TS"]
        else:
            if previous is not None:
                raise UsageError(f"{engine.info['url']} already holds a simulation (seed "
                                 f"{previous['SEED']}); use --continue to extend it, or a "
                                 "new database")
            if start is None:
                raise UsageError("--start is required for a new simulation")
            _check(days, minutes, calls_per_day, agents, media, faults)
            params = Params(seed=seed, start=_midnight(start), days=days, minutes=minutes,
                            calls_per_day=calls_per_day, agents=agents, media=tuple(media),
                            outbound=outbound, faults=faults)
            since = None
        create_idb(engine)
        writer = Writer(engine, since, params.seed, params.faults, batch_rows)
        center = build_center(params.seed, params.agents, params.media, params.outbound)
        store = ConfigStore(params.seed)
        # ICON's first configuration synchronization happened a week before the first call.
        initial_config(center, store, params.start - 7 * DAY, params.media, params.outbound)
        sim = Sim(params, center, store, writer.emit)
        sim.run(params.end)
        _write_config(writer, store, since)
        for name, rows in dss_rows(center, params.start - 7 * DAY, params.end, params.media,
                                   params.outbound).items():
            writer.add_all(name, rows)
        if since is None:
            for dict_type, (name, enum) in sorted(DICTIONARIES.items()):
                writer.add(G_DICT_TYPE.name, {"ID": dict_type, "NAME": name})
                for member in enum:
                    writer.add(G_DICTIONARY.name, {"DICT_TYPE": dict_type, "ID": int(member),
                                                   "NAME": member.name, "DESCRIPTION": None})
        for name, rows in sim.truth.rows(since).items():
            writer.add_all(name, rows)
        writer.add(SIM_RUN.name, {
            "RUN_KEY": 1, "SEED": params.seed, "START_TS": params.start, "END_TS": params.end,
            "PARAMS": json.dumps(dataclasses.asdict(params), sort_keys=True),
            "GIM_VERSION": __version__})
        writer.flush()
        return SimResult(start=params.start, end=params.end, previous_end=since,
                         rows=dict(writer.written), seconds=time.time() - began)
    finally:
        engine.dispose()


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
