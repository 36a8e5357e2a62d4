"""Writes the simulation's rows into the IDB and its ledger, in bounded batches (COPY on
PostgreSQL), applying injected faults; in a continued run, only what changed after the
previous run's end.
"""

from __future__ import annotations

import operator
import zlib
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gim.db import ops_for, write_tx
from gim.schema.idb import idb_metadata
from gim.simulate.ledger import SIM_FAULT, ledger_metadata
from gim.simulate.records import Entity
from gim.simulate.truth import Story

FAULT_KINDS = ("orphan_party", "unknown_config", "bad_timestamp", "duplicate_row",
               "never_terminated", "garbage_string")
DUP_OFFSET = 9_000_000_000_000  # IDs of injected copies: far above any real row ID
UNKNOWN_AGENT, UNKNOWN_PLACE = 999_999, 999_998


def _table(name: str) -> sa.Table:
    return idb_metadata.tables.get(name) if name in idb_metadata.tables else \
        ledger_metadata.tables[name]


def _tuples(rows: list[dict[str, Any]], columns: list[str], key: list[str],
            dedupe: bool) -> list[tuple]:
    """Rows as tuples in column order (missing columns as NULL); with dedupe, the last
    version of each key only (an upsert may not touch a row twice in one statement)."""
    getter = operator.itemgetter(*columns)
    out = []
    for row in rows:
        try:
            out.append(getter(row))
        except KeyError:
            out.append(tuple(row.get(c) for c in columns))
    if not dedupe:
        return out
    at = [columns.index(k) for k in key]
    return list({tuple(t[i] for i in at): t for t in out}.values())


class Writer:
    """Buffers rows per table and writes them in batches.

    since: None for a first run (plain inserts); for a continued run, the previous run's end:
    entities that ended by then are skipped, history rows dated by then are skipped, and
    everything else is upserted (their active versions were written before).
    """

    def __init__(self, engine: Engine, since: int | None, seed: int, fault_rate: float,
                 batch_rows: int = 20_000) -> None:
        self.engine = engine
        self.since = since
        self.seed = seed
        self.fault_rate = fault_rate
        self.batch_rows = batch_rows
        self.buffers: dict[str, list[dict[str, Any]]] = {}
        self.buffered = 0
        self.written: dict[str, int] = {}

    # -- entities -------------------------------------------------------------------------
    def emit(self, entity: Entity, story: Story | None, final: bool) -> None:
        since = self.since
        if since is not None and final and entity.end is not None and entity.end <= since:
            return
        rows = [(t, dict(r), is_state) for t, r, is_state in entity.rows()]
        faults: list[dict[str, Any]] = []
        if story is not None and self.fault_rate > 0:
            rows, faults = self._inject(story.callid, rows, final)
        for table, row, is_state in rows:
            if not is_state and since is not None:
                column = idb_metadata.tables[table].info["time_column"]
                if row.get(column) is not None and row[column] <= since:
                    continue
            self.add(table, row)
        if story is not None:
            summary, parts = story.rows()
            self.add("SIM_INTERACTION", summary)
            for part in parts:
                self.add("SIM_PARTICIPATION", part)
        for table, ledger_rows in entity.ledger.items():
            for row in ledger_rows:
                self.add(table, row)
        for row in faults:
            self.add(SIM_FAULT.name, row)

    def add(self, table: str, row: dict[str, Any]) -> None:
        self.buffers.setdefault(table, []).append(row)
        self.buffered += 1
        if self.buffered >= self.batch_rows:
            self.flush()

    def add_all(self, table: str, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.add(table, row)

    def flush(self) -> None:
        if not self.buffered:
            return
        with write_tx(self.engine) as conn:
            ops = ops_for(conn)
            for name, rows in self.buffers.items():
                if not rows:
                    continue
                table = _table(name)
                columns = [c.name for c in table.columns]
                key = [c.name for c in table.primary_key.columns]
                insert = self.since is None and table.name not in ledger_metadata.tables
                tuples = _tuples(rows, columns, key, dedupe=not insert)
                if insert:
                    ops.bulk_insert(conn, table, tuples, columns)
                else:
                    ops.bulk_upsert(conn, table, tuples, columns, key)
                self.written[name] = self.written.get(name, 0) + len(tuples)
        self.buffers = {}
        self.buffered = 0

    # -- faults ---------------------------------------------------------------------------
    def _pick(self, callid: str) -> str | None:
        h = zlib.crc32(f"{self.seed}:fault:{callid}".encode())
        if (h % 1_000_000) / 1_000_000 >= self.fault_rate:
            return None
        return FAULT_KINDS[zlib.crc32(f"{self.seed}:kind:{callid}".encode())
                           % len(FAULT_KINDS)]

    def _inject(self, callid: str, rows: list, final: bool):  # noqa: ANN202
        """Damage the interaction's rows in one of the known ways, the same way every time
        they are written, and describe the damage for the ledger."""
        kind = self._pick(callid)
        if kind is None:
            return rows, []
        fault_id = int(callid[:12], 16)
        calls = [r for t, r, _ in rows if t == "G_CALL" and r["CALLID"] == callid]
        parties = [r for t, r, _ in rows if t == "G_PARTY" and r["CALLID"] == callid]
        agent_parties = [p for p in parties if p.get("AGENTID")]
        call = calls[0] if calls else None
        table, row_id, text = "G_CALL", call["ID"] if call else 0, ""
        if kind == "orphan_party" and parties:
            orphan = dict(parties[0], ID=parties[0]["ID"] + DUP_OFFSET,
                          PARTYID=f"ORPHAN{parties[0]['PARTYID'][6:]}",
                          CALLID=f"MISSING{callid[7:]}")
            rows.append(("G_PARTY", orphan, True))
            table, row_id = "G_PARTY", orphan["ID"]
            text = f"party of call {orphan['CALLID']}, which does not exist"
        elif kind == "unknown_config" and agent_parties:
            p = agent_parties[0]
            text = f"agent party names agent {UNKNOWN_AGENT} / place {UNKNOWN_PLACE} " \
                   f"(really {p['AGENTID']})"
            p["AGENTID"], p["PLACEID"] = UNKNOWN_AGENT, UNKNOWN_PLACE
            table, row_id = "G_PARTY", p["ID"]
        elif kind == "bad_timestamp" and call is not None:
            call["TERMINATED_TS"] = (call["CREATED_TS"] - 3600) if final else None
            call["CREATED_TS"] = None if not final else call["CREATED_TS"]
            text = "G_CALL ends before it starts" if final else "G_CALL has no start time"
        elif kind == "duplicate_row" and call is not None:
            rows.append(("G_CALL", dict(call, ID=call["ID"] + DUP_OFFSET), True))
            row_id = call["ID"] + DUP_OFFSET
            text = f"second G_CALL row for call {callid}"
        elif kind == "never_terminated" and call is not None:
            call.update(STATE=1, TERMINATED=None, TERMINATED_TS=None, TERMINATED_TCODE=None)
            text = "G_CALL stays active although all its parties ended"
        elif kind == "garbage_string":
            ud = [r for t, r, _ in rows if t == "G_USERDATA_HISTORY"]
            if not ud:
                return rows, []
            ud[0]["VALUE"] = "\x01\x1b[31m\ufffd\u202e" + "\u00ff" * 40
            table, row_id = "G_USERDATA_HISTORY", ud[0]["ID"]
            text = "user data value of control characters and garbage"
        else:
            return rows, []
        return rows, [{"FAULT_ID": fault_id, "KIND": kind, "TABLE_NAME": table,
                       "ROW_ID": row_id, "CALLID": callid, "DESCRIPTION": text[:255]}]
