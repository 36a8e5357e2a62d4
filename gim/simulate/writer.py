"""Writes the simulation's rows into the IDB and its ledger as they are produced, in bounded
batches (COPY on PostgreSQL), applying injected faults. Insert-only rows are always new;
latest-state and ledger rows of a continued run may replace what an earlier run wrote. With
an IDB per site, each row goes to the IDB of the ICON that recorded it.
"""

from __future__ import annotations

import hashlib
import operator
import zlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gim.db import ops_for, write_tx
from gim.schema.idb import idb_metadata
from gim.simulate.ledger import SIM_FAULT, ledger_metadata
from gim.simulate.model import triple
from gim.simulate.records import Entity
from gim.simulate.truth import Story

FAULT_KINDS = ("orphan_party", "unknown_config", "bad_timestamp", "duplicate_row",
               "never_terminated", "garbage_string")
# Injected only in simulations of several sites, so that single-site ones keep their faults.
MULTISITE_FAULT_KINDS = ("dangling_islink", "mergecall_missing")
# The ways a call's timestamps are broken; the first two need a call that has ended.
BAD_TIMESTAMPS = ("end_before_start", "missing_end", "negative_start", "missing_start")
DUP_OFFSET = 9_000_000_000_000  # IDs of injected copies: far above any real row ID
UNKNOWN_AGENT, UNKNOWN_PLACE = 999_999, 999_998
ALWAYS_UPSERT = ("SIM_RUN", "SIM_CHECKPOINT")


def _table(name: str) -> sa.Table:
    return idb_metadata.tables[name] if name in idb_metadata.tables else \
        ledger_metadata.tables[name]


class Writer:
    """Converts rows to tuples as they come and writes them in batches of `batch_rows`, each
    batch in its own transaction (so that the write-ahead log stays small); SIM_RUN marks a
    run that did not complete.

    first_run: every row is new, so all are plain inserts. In a continued run latest-state
    rows (and ledger rows) of what was still going on at the previous end are upserted;
    insert-only rows, all made after that end, are still inserted.

    sites: the simulation's sites (which fault kinds exist); remote_domains: GSYS_DOMAIN of
    the T-Server sessions of sites 2.. . With site_engines (the IDBs of sites 2.., in
    order), rows of the domains in `domains` and data-source sessions of the ICONs in
    `icons` go to the IDB of that index (0: `engine`); configuration, dictionaries and
    remote locations go to every IDB; the ledger and anything else to `engine`.
    """

    def __init__(self, engine: Engine, first_run: bool, seed: int, fault_rate: float,
                 batch_rows: int = 20_000, *, sites: int = 1,
                 remote_domains: frozenset[int] = frozenset(),
                 site_engines: tuple[Engine, ...] = (), domains: dict[int, int] | None = None,
                 icons: dict[int, int] | None = None) -> None:
        self.engine = engine
        self.engines = (engine, *site_engines)
        self.first_run = first_run
        self.seed = seed
        self.fault_rate = fault_rate
        self.kinds = FAULT_KINDS + (MULTISITE_FAULT_KINDS if sites > 1 else ())
        self.remote_domains = remote_domains
        self.batch_rows = batch_rows
        self.buffers: list[dict[str, list[tuple]]] = [{} for _ in self.engines]
        self.buffered = 0
        self.written: dict[str, int] = {}
        self._shapes: dict[str, tuple[list[str], Any, bool]] = {}
        self._domains = domains or {}
        self._icons = icons or {}
        self._routes: dict[str, str] = {}

    # -- rows -----------------------------------------------------------------------------
    def _shape(self, name: str) -> tuple[list[str], Any, bool]:
        shape = self._shapes.get(name)
        if shape is None:
            table = _table(name)
            columns = [c.name for c in table.columns]
            upsert = name in ALWAYS_UPSERT or (
                not self.first_run and table.info.get("kind") != "history")
            shape = self._shapes[name] = (columns, operator.itemgetter(*columns), upsert)
        return shape

    def add(self, table: str, row: dict[str, Any]) -> None:
        columns, getter, _ = self._shape(table)
        try:
            values = getter(row)
        except KeyError:
            values = tuple(row.get(c) for c in columns)
        if len(self.engines) == 1:
            self.buffers[0].setdefault(table, []).append(values)
            self.buffered += 1
        else:
            for i in self._targets(table, row):
                self.buffers[i].setdefault(table, []).append(values)
                self.buffered += 1
        if self.buffered >= self.batch_rows:
            self.flush()

    def _targets(self, table: str, row: dict[str, Any]) -> range | tuple[int]:
        """The IDBs (indexes into engines) a row goes to."""
        route = self._routes.get(table)
        if route is None:
            kind = _table(table).info.get("kind")
            route = self._routes[table] = (
                "ledger" if table in ledger_metadata.tables else
                "all" if kind in ("cfg", "link", "dict", "system") else
                "icon" if kind == "dss" else "domain")
        if route == "domain":
            return (self._domains.get(row.get("GSYS_DOMAIN"), 0),)
        if route == "all":
            return range(len(self.engines))
        if route == "icon":
            return (self._icons.get(row["ICON_DBID"], 0),)
        return (0,)

    def history(self, items: list[tuple[str, dict[str, Any], Entity]]) -> None:
        """Insert-only rows of one event, damaged where their entity's fault says so."""
        for table, row, entity in items:
            if self.fault_rate > 0:
                if self.remote_domains and row.get("GSYS_DOMAIN") in self.remote_domains \
                        and entity.kind == "ixn" \
                        and self._dropped_domain(entity) == row["GSYS_DOMAIN"]:
                    continue
                if not entity.damaged:
                    self._damage_history(table, row, entity)
            self.add(table, row)

    def ledger(self, rows: dict[str, list[dict[str, Any]]]) -> None:
        for table, table_rows in rows.items():
            for row in table_rows:
                self.add(table, row)

    def emit(self, entity: Entity, story: Story | None, final: bool) -> None:
        """An entity's latest-state rows (copies, so that faults never reach the state) and
        its ledger rows; `final` when it has ended."""
        rows = [(t, dict(r)) for t, r in entity.rows()]
        if self.fault_rate > 0:
            if self.remote_domains and entity.kind == "ixn":
                rows = self._drop_leg(entity, rows)
            rows += self._damage_state(entity, rows, final)
        for table, row in rows:
            self.add(table, row)
        if story is not None:
            summary, parts = story.rows()
            self.add("SIM_INTERACTION", summary)
            for part in parts:
                self.add("SIM_PARTICIPATION", part)
        for table, ledger_rows in entity.ledger.items():
            for row in ledger_rows:
                self.add(table, row)

    def flush(self) -> None:
        """Every IDB's rows, each IDB in its own transaction: the first (with the ledger and
        SIM_RUN, whose completion comes with the last rows) last."""
        if not self.buffered:
            return
        for engine, buffers in reversed(list(zip(self.engines, self.buffers, strict=True))):
            if not any(buffers.values()):
                continue
            with write_tx(engine) as conn:
                ops = ops_for(conn)
                for name, rows in buffers.items():
                    if not rows:
                        continue
                    table = _table(name)
                    columns, _, upsert = self._shape(name)
                    if upsert:
                        key = [c.name for c in table.primary_key.columns]
                        at = [columns.index(k) for k in key]
                        # The last version of each key only: an upsert may not touch a row
                        # twice.
                        rows = list({tuple(t[i] for i in at): t for t in rows}.values())
                        ops.bulk_upsert(conn, table, rows, columns, key)
                    else:
                        ops.bulk_insert(conn, table, rows, columns)
                    self.written[name] = self.written.get(name, 0) + len(rows)
        self.buffers = [{} for _ in self.engines]
        self.buffered = 0

    # -- faults ---------------------------------------------------------------------------
    def pick(self, key: str) -> str | None:
        """The fault an interaction (or login session) gets, a pure function of its id."""
        h = zlib.crc32(f"{self.seed}:fault:{key}".encode())
        if (h % 1_000_000) / 1_000_000 >= self.fault_rate:
            return None
        return self.kinds[zlib.crc32(f"{self.seed}:kind:{key}".encode()) % len(self.kinds)]

    def _variant(self, key: str) -> str:
        # Not CRC-32: being linear, its low bits would follow those that chose the kind.
        digest = hashlib.md5(f"{self.seed}:variant:{key}".encode()).digest()
        return BAD_TIMESTAMPS[digest[0] % len(BAD_TIMESTAMPS)]

    def _fault(self, key: str, kind: str, variant: str, table: str, row_id: int,
               callid: str | None, text: str) -> None:
        self.add(SIM_FAULT.name, {"FAULT_ID": int(key[:12], 16), "KIND": kind,
                                  "TABLE_NAME": table, "ROW_ID": row_id, "CALLID": callid,
                                  "DESCRIPTION": f"{variant}: {text}"[:255]})

    def _damage_history(self, table: str, row: dict[str, Any], entity: Entity) -> None:
        """Faults that live in insert-only rows: garbage in an interaction's first user-data
        value; an agent session's state rows naming an agent that does not exist."""
        if entity.kind == "ixn" and table == "G_USERDATA_HISTORY" and \
                self.pick(entity.key) == "garbage_string":
            row["VALUE"] = "\x01\x1b[31m\ufffd\u202e" + "\u00ff" * 40
            entity.damaged = True
            self._fault(entity.key, "garbage_string", "control_characters", table, row["ID"],
                        entity.key, "user data value of control characters and garbage")
        elif entity.kind == "session" and table == "G_AGENT_STATE_HISTORY" and \
                self.pick(entity.key) == "unknown_config":
            row["AGENTID"] = UNKNOWN_AGENT

    def _damage_state(self, entity: Entity, rows: list[tuple[str, dict[str, Any]]],
                      final: bool) -> list[tuple[str, dict[str, Any]]]:
        """Damage an entity's latest-state rows in place, the same way every time they are
        written, and list the damage in SIM_FAULT; returns rows to add (copies)."""
        if entity.kind == "session":
            return self._damage_session(entity, rows)
        if entity.kind != "ixn":
            return []
        callid = entity.key
        kind = self.pick(callid)
        if kind is None:
            return []
        calls = [r for t, r in rows if t == "G_CALL" and r["CALLID"] == callid]
        parties = [r for t, r in rows if t == "G_PARTY" and r["CALLID"] == callid]
        agent_parties = [p for p in parties if p.get("AGENTID")]
        call = calls[0] if calls else None
        if kind == "orphan_party" and parties:
            orphan = dict(parties[0], ID=parties[0]["ID"] + DUP_OFFSET,
                          PARTYID=f"ORPHAN{parties[0]['PARTYID'][6:]}",
                          CALLID=f"MISSING{callid[7:]}")
            self._fault(callid, kind, "missing_call", "G_PARTY", orphan["ID"], callid,
                        f"party of call {orphan['CALLID']}, which does not exist")
            return [("G_PARTY", orphan)]
        if kind == "unknown_config" and agent_parties:
            p = agent_parties[0]
            self._fault(callid, kind, "agent_party", "G_PARTY", p["ID"], callid,
                        f"agent party names agent {UNKNOWN_AGENT} / place {UNKNOWN_PLACE} "
                        f"(really {p['AGENTID']})")
            p["AGENTID"], p["PLACEID"] = UNKNOWN_AGENT, UNKNOWN_PLACE
        elif kind == "bad_timestamp" and call is not None:
            self._bad_timestamp(callid, call, final)
        elif kind == "duplicate_row" and call is not None:
            copy = dict(call, ID=call["ID"] + DUP_OFFSET)
            self._fault(callid, kind, "second_call_row", "G_CALL", copy["ID"], callid,
                        f"second G_CALL row for call {callid}")
            return [("G_CALL", copy)]
        elif kind == "never_terminated" and call is not None and final:
            # Only a call that really ended can be left active by mistake.
            call.update(STATE=1, **triple("TERMINATED", None))
            self._fault(callid, kind, "call_left_active", "G_CALL", call["ID"], callid,
                        "G_CALL stays active although all its parties ended")
        elif kind == "mergecall_missing":
            merged = [r for t, r in rows if t == "G_CALL" and r.get("MERGECALLID")]
            if merged:
                m = min(merged, key=operator.itemgetter("ID"))
                missing = f"MISSING{m['MERGECALLID'][7:]}"
                self._fault(callid, kind, "missing_target", "G_CALL", m["ID"], callid,
                            f"call {m['CALLID']} merged into call {missing}, which does not "
                            "exist")
                m["MERGECALLID"] = missing
        return []

    def _dropped_domain(self, entity: Entity) -> int | None:
        """For an interaction given dangling_islink: the T-Server session (GSYS_DOMAIN) of
        the first other site its calls reached, whose rows are all left out."""
        if self.pick(entity.key) != "dangling_islink":
            return None
        calls = entity.state.get("G_CALL", ())
        first = calls[0]["GSYS_DOMAIN"] if calls else None
        return next((c["GSYS_DOMAIN"] for c in calls if c["GSYS_DOMAIN"] != first), None)

    def _drop_leg(self, entity: Entity, rows: list[tuple[str, dict[str, Any]]]
                  ) -> list[tuple[str, dict[str, Any]]]:
        """dangling_islink: the latest-state rows of the dropped site go, and every IS-Link
        left without its counterpart there is listed (one fault row per link)."""
        dropped = self._dropped_domain(entity)
        if dropped is None:
            return rows
        links = [r for t, r in rows if t == "G_IS_LINK"]
        gone = {r["LINKID"] for r in links if r["GSYS_DOMAIN"] == dropped}
        for r in links:
            if r["GSYS_DOMAIN"] != dropped and r["LINKID"] in gone:
                self._fault(r["LINKID"], "dangling_islink", "missing_leg", "G_IS_LINK",
                            r["ID"], entity.key, f"IS-Link {r['LINKID']} to "
                            f"{r['REMOTELOCATION']}, a monitored switch, whose call is "
                            "missing")
        return [(t, r) for t, r in rows if r.get("GSYS_DOMAIN") != dropped]

    def _bad_timestamp(self, callid: str, call: dict[str, Any], final: bool) -> None:
        """One of four broken times on the G_CALL row; each time's date-time, seconds and
        time code stay in agreement, as ICON writes them."""
        variant = self._variant(callid)
        if variant in ("end_before_start", "missing_end") and not final:
            return  # waits for the call to end
        created = call["CREATED_TS"]
        if variant == "end_before_start":
            call.update(triple("TERMINATED", created - 3600))
            text = "G_CALL ends an hour before it starts"
        elif variant == "missing_end":
            call.update(triple("TERMINATED", None))
            text = "G_CALL terminated (STATE 2) with no end time"
        elif variant == "negative_start":
            call.update(triple("CREATED", -created))
            text = "G_CALL starts at a negative time"
        else:
            call.update(triple("CREATED", None))
            text = "G_CALL has no start time"
        self._fault(callid, "bad_timestamp", variant, "G_CALL", call["ID"], callid, text)

    def _damage_session(self, entity: Entity, rows: list[tuple[str, dict[str, Any]]]
                        ) -> list[tuple[str, dict[str, Any]]]:
        if self.pick(entity.key) != "unknown_config":
            return []
        session = next((r for t, r in rows if t == "G_LOGIN_SESSION"), None)
        if session is None:
            return []
        self._fault(entity.key, "unknown_config", "agent_session", "G_LOGIN_SESSION",
                    session["ID"], None, f"login session, its endpoint and agent states name "
                    f"agent {UNKNOWN_AGENT} (really {session['AGENTID']})")
        for table, row in rows:
            if table in ("G_LOGIN_SESSION", "GX_SESSION_ENDPOINT"):
                row["AGENTID"] = UNKNOWN_AGENT
        return []
