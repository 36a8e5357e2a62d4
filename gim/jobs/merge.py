"""The voice merge: the calls of one interaction, however many sites and IDBs recorded them,
enter GIDB_G_CALL_V together, each marked with the interaction it belongs to.

Extraction loads terminated voice calls into the merge table MRG_G_CALL_V. After the
ICON_CORE windows of a run, one pass (one Info Mart transaction) groups the waiting calls
with each other and with the calls already merged:

* calls of one IDB sharing a root interaction record (G_CALL.ROOTIRID), as ICON groups
  the calls of one site;
* a call and the call its MERGECALLID names (the target of a transfer or conference);
* the two calls of an inter-site link: the G_IS_LINK rows of one LINKID on two calls, on
  one IDB (one ICON recording several switches) or on two.

A group (a connected set of calls) moves to GIDB_G_CALL_V when none of its waiting calls
still waits for something: an IS-Link's counterpart (unless the link is FAILED or leads to
a switch the IDB names in GSYS_DNPREMOTELOCATION, which no ICON records), the call at the
other end of a link, or the target of a MERGECALLID. Each of its calls gets the group's
merged root (MERGE_SOURCE_KEY, MERGE_ROOTIRID: the data source and ICON root of its
earliest call, or the root a group already merged has) and MERGE_STATE.

What is waited for may never come (the other site's IDB lost it, a reference is wrong). A
call waits at most `max-call-duration` seconds of source time: once its own source's
extraction of calls has passed its end by that much, its group goes on as it is, with
MERGE_STATE saying what was missing; the transformation then applies
`error-policy-islink-dangling` / `error-policy-call-mergecall-missing`. (The product keeps
its merge wait and its merge tables undocumented; bounding the wait by the longest expected
call is our choice.)

Released rows carry the pass's audit key, which the transformation reads as it reads an
extraction chunk's. The pass is idempotent: a pass killed midway leaves everything waiting
as it was, and the next run merges again.
"""

from __future__ import annotations

import enum

from sqlalchemy.engine import Connection

from gim.db import ops_for, write_tx
from gim.runner import JobContext
from gim.schema.control import CTL_DS, CTL_EXTRACT_HWM
from gim.schema.gidb import COPY_BY_TARGET, MERGE_COLUMNS
from gim.schema.icon_codes import IsLinkState
from gim.transform.sqlkit import count, drop, run, temp

CALLS = COPY_BY_TARGET["GIDB_G_CALL_V"].target
WAITING = COPY_BY_TARGET["GIDB_G_CALL_V"].landing
LINKS = "GIDB_G_IS_LINK_V"
UNMONITORED = "GIDB_GSYS_DNPREMOTELOCATION"
# The GIDB tables a pass reads, all of ICON_CORE: once every voice source of a run has
# extracted them, the pass can run.
INPUTS = ("GIDB_G_CALL_V", LINKS, UNMONITORED)
# Label propagation converges in as many rounds as the widest group is long; a bound
# only guards against a defect looping forever.
MAX_ROUNDS = 10_000


class MergeState(enum.IntFlag):
    """MERGE_STATE bits (ours). 0: merged completely. In MRG_G_CALL_V: what the call waits
    for; in GIDB_G_CALL_V: what its group was released without."""

    COMPLETE = 0
    ISLINK_DANGLING = 1  # an IS-Link whose counterpart no IDB holds
    MERGECALL_MISSING = 2  # MERGECALLID names a call no IDB holds
    LINKED_CALL_MISSING = 4  # the counterpart is there, the call it is on never came

    @classmethod
    def describe(cls, state: int) -> str:
        names = {cls.ISLINK_DANGLING: "IS-Link counterpart",
                 cls.MERGECALL_MISSING: "merge target call",
                 cls.LINKED_CALL_MISSING: "linked site's call"}
        # 0 while waiting: loaded by a run stopped before its merge pass.
        return ", ".join(text for bit, text in names.items() if state & bit) or \
            "the next merge pass"


def merge(ctx: JobContext) -> int:
    """One merge pass; returns the number of call rows released into GIDB_G_CALL_V."""
    wait = ctx.config.get("gim-etl", "max-call-duration")
    with write_tx(ctx.engine) as conn:
        if run(conn, f"SELECT 1 FROM {WAITING.name} LIMIT 1").first() is None:
            return 0
        audit = ops_for(conn).allocate_keys(conn, "AUDIT_KEY")
        released, lo, hi, partial = _pass(conn, audit, wait)
        if released:
            ctx.new_audit_key(conn, key=audit, min_key=lo or 0, max_key=hi or 0,
                              row_count=released, table_name=CALLS.name)
        waiting = count(conn, WAITING.name)
    if released:
        ctx.count(f"{CALLS.name} rows", released)
        ctx.count("voice calls merged", released)
    if partial:
        ctx.count("voice calls released partially merged", partial)
    if waiting:
        ctx.count("voice calls waiting to merge", waiting)
    return released


def _pass(conn: Connection, audit: int, wait: int) -> tuple[int, int | None, int | None, int]:
    w = WAITING.name
    g = CALLS.name
    # The waiting calls (one node per call: a CALLID written twice is one call), with how
    # long they may wait: their source's extraction of calls must pass END_TS + wait.
    nodes_w = temp(conn, "mg_wait", f"""
        SELECT m.DATA_SOURCE_KEY AS SRC, m.CALLID, MIN(m.ROOTIRID) AS ROOTIRID,
               MIN(m.MERGECALLID) AS MERGECALLID, MIN(m.CREATED_TS) AS CREATED_TS,
               CASE WHEN MAX(h.MARK_TS) > MAX(COALESCE(m.TERMINATED_TS, m.LASTCHANGE_TS,
                                                       m.CREATED_TS, 0)) + {int(wait)}
                    THEN 1 ELSE 0 END AS TIMED_OUT
        FROM {w} m
        LEFT JOIN {CTL_DS.name} d ON d.DATA_SOURCE_KEY = m.DATA_SOURCE_KEY
        LEFT JOIN {CTL_EXTRACT_HWM.name} h ON h.SOURCE_NAME = d.SOURCE_NAME
             AND h.TABLE_NAME = '{g}'
        GROUP BY m.DATA_SOURCE_KEY, m.CALLID""")
    run(conn, f"CREATE INDEX {nodes_w}_ix ON {nodes_w} (SRC, CALLID)")
    run(conn, f"CREATE INDEX {nodes_w}_root ON {nodes_w} (SRC, ROOTIRID)")
    # The IS-Links of the waiting calls and their counterparts (the other link row of the
    # LINKID, on another call, in whatever source), and whether one is expected at all.
    links = temp(conn, "mg_link", f"""
        SELECT n.SRC, n.CALLID, l.LINKID,
               CASE WHEN l.STATE = {int(IsLinkState.FAILED)} OR EXISTS (
                    SELECT 1 FROM {UNMONITORED} u WHERE u.DATA_SOURCE_KEY = l.DATA_SOURCE_KEY
                    AND u.REMOTELOCATION = l.REMOTELOCATION) THEN 0 ELSE 1 END AS EXPECTED,
               o.DATA_SOURCE_KEY AS OSRC, o.CALLID AS OCALLID
        FROM {nodes_w} n
        JOIN {LINKS} l ON l.DATA_SOURCE_KEY = n.SRC AND l.CALLID = n.CALLID
        LEFT JOIN {LINKS} o ON o.LINKID = l.LINKID
             AND NOT (o.DATA_SOURCE_KEY = l.DATA_SOURCE_KEY AND o.CALLID = l.CALLID)""")
    run(conn, f"CREATE INDEX {links}_ix ON {links} (SRC, CALLID)")
    # Calls already merged that the waiting ones reach: same root, merge target, the
    # other end of a link. Their group's root is kept.
    reached = temp(conn, "mg_reached", f"""
        SELECT n.SRC, n.CALLID AS WCALLID, c.CALLID, c.MERGE_SOURCE_KEY, c.MERGE_ROOTIRID,
               c.CREATED_TS
        FROM {nodes_w} n JOIN {g} c ON c.DATA_SOURCE_KEY = n.SRC AND c.ROOTIRID = n.ROOTIRID
        UNION ALL
        SELECT n.SRC, n.CALLID, c.CALLID, c.MERGE_SOURCE_KEY, c.MERGE_ROOTIRID, c.CREATED_TS
        FROM {nodes_w} n JOIN {g} c ON c.DATA_SOURCE_KEY = n.SRC AND c.CALLID = n.MERGECALLID
        UNION ALL
        SELECT l.OSRC, NULL, c.CALLID, c.MERGE_SOURCE_KEY, c.MERGE_ROOTIRID, c.CREATED_TS
        FROM {links} l JOIN {g} c ON c.DATA_SOURCE_KEY = l.OSRC AND c.CALLID = l.OCALLID""",
                   analyze=False)
    run(conn, f"CREATE INDEX {reached}_ix ON {reached} (SRC, CALLID)")
    # Every node numbered in the order that decides a group's root: merged calls first
    # (a merged group keeps its root), then the earliest call.
    nodes = temp(conn, "mg_node", f"""
        SELECT x.*, ROW_NUMBER() OVER (ORDER BY x.KIND, x.CREATED_TS, x.SRC, x.CALLID)
               AS N, CAST(NULL AS BIGINT) AS L
        FROM (SELECT SRC, CALLID, 1 AS KIND, MIN(CREATED_TS) AS CREATED_TS,
                     SRC AS ROOT_SRC, MIN(ROOTIRID) AS ROOT_IRID
              FROM {nodes_w} GROUP BY SRC, CALLID
              UNION ALL
              SELECT SRC, CALLID, 0, MIN(CREATED_TS), MIN(MERGE_SOURCE_KEY),
                     MIN(MERGE_ROOTIRID)
              FROM {reached} GROUP BY SRC, CALLID) x""")
    run(conn, f"UPDATE {nodes} SET L = N")
    run(conn, f"CREATE INDEX {nodes}_ix ON {nodes} (SRC, CALLID, KIND)")
    run(conn, f"CREATE INDEX {nodes}_n ON {nodes} (N)")
    # Edges between nodes, both ways.
    pairs = f"""
        SELECT n.SRC AS ASRC, n.CALLID AS ACALL, 1 AS AKIND, b.SRC AS BSRC,
               b.CALLID AS BCALL, 1 AS BKIND
        FROM {nodes_w} n JOIN {nodes_w} b ON b.SRC = n.SRC AND b.ROOTIRID = n.ROOTIRID
             AND b.CALLID <> n.CALLID
        UNION ALL
        SELECT n.SRC, n.CALLID, 1, b.SRC, b.CALLID, 1 FROM {nodes_w} n
        JOIN {nodes_w} b ON b.SRC = n.SRC AND b.CALLID = n.MERGECALLID
        UNION ALL
        SELECT r.SRC, r.WCALLID, 1, r.SRC, r.CALLID, 0 FROM {reached} r
        WHERE r.WCALLID IS NOT NULL
        UNION ALL
        SELECT l.SRC, l.CALLID, 1, l.OSRC, l.OCALLID, 1 FROM {links} l
        JOIN {nodes_w} b ON b.SRC = l.OSRC AND b.CALLID = l.OCALLID
        UNION ALL
        SELECT l.SRC, l.CALLID, 1, l.OSRC, l.OCALLID, 0 FROM {links} l
        JOIN {reached} r ON r.SRC = l.OSRC AND r.CALLID = l.OCALLID AND r.WCALLID IS NULL"""
    edges = temp(conn, "mg_edge", f"""
        SELECT DISTINCT a.N AS A, b.N AS B FROM ({pairs}) p
        JOIN {nodes} a ON a.SRC = p.ASRC AND a.CALLID = p.ACALL AND a.KIND = p.AKIND
        JOIN {nodes} b ON b.SRC = p.BSRC AND b.CALLID = p.BCALL AND b.KIND = p.BKIND""",
                 analyze=False)
    both = temp(conn, "mg_edge2", f"SELECT A, B FROM {edges} UNION SELECT B, A FROM {edges}")
    run(conn, f"CREATE INDEX {both}_ix ON {both} (A)")
    # Each node takes the smallest label of its neighbours until none changes: every node
    # of a group ends with the number of the group's first node.
    for _ in range(MAX_ROUNDS):
        changed = run(conn, f"""
            UPDATE {nodes} SET L = x.M FROM (
                SELECT e.A, MIN(b.L) AS M FROM {both} e JOIN {nodes} b ON b.N = e.B
                GROUP BY e.A) x
            WHERE x.A = {nodes}.N AND x.M < {nodes}.L""").rowcount
        if not changed:
            break
    else:  # pragma: no cover - would be a defect of the edges
        raise RuntimeError("voice merge: labels did not settle")
    # What each waiting call still waits for.
    blocked = temp(conn, "mg_block", f"""
        SELECT n.SRC, n.CALLID, n.TIMED_OUT,
               CASE WHEN EXISTS (SELECT 1 FROM {links} l WHERE l.SRC = n.SRC
                    AND l.CALLID = n.CALLID AND l.EXPECTED = 1 AND l.OSRC IS NULL)
                    THEN {int(MergeState.ISLINK_DANGLING)} ELSE 0 END
             + CASE WHEN n.MERGECALLID IS NOT NULL AND NOT EXISTS (
                    SELECT 1 FROM {nodes_w} b WHERE b.SRC = n.SRC
                    AND b.CALLID = n.MERGECALLID) AND NOT EXISTS (
                    SELECT 1 FROM {g} c WHERE c.DATA_SOURCE_KEY = n.SRC
                    AND c.CALLID = n.MERGECALLID)
                    THEN {int(MergeState.MERGECALL_MISSING)} ELSE 0 END
             + CASE WHEN EXISTS (SELECT 1 FROM {links} l WHERE l.SRC = n.SRC
                    AND l.CALLID = n.CALLID AND l.OSRC IS NOT NULL AND NOT EXISTS (
                        SELECT 1 FROM {nodes_w} b WHERE b.SRC = l.OSRC
                        AND b.CALLID = l.OCALLID) AND NOT EXISTS (
                        SELECT 1 FROM {g} c WHERE c.DATA_SOURCE_KEY = l.OSRC
                        AND c.CALLID = l.OCALLID))
                    THEN {int(MergeState.LINKED_CALL_MISSING)} ELSE 0 END AS STATE
        FROM {nodes_w} n""")
    run(conn, f"CREATE INDEX {blocked}_ix ON {blocked} (SRC, CALLID)")
    # Groups whose every waiting call has nothing left to wait for, or has waited long
    # enough; their state is what their calls went without.
    groups = temp(conn, "mg_group", f"""
        SELECT n.L,
               MAX(CASE WHEN b.STATE <> 0 AND b.TIMED_OUT = 0 THEN 1 ELSE 0 END) AS HELD,
               MAX(CASE WHEN (b.STATE / 1) % 2 = 1 THEN 1 ELSE 0 END) * 1
             + MAX(CASE WHEN (b.STATE / 2) % 2 = 1 THEN 1 ELSE 0 END) * 2
             + MAX(CASE WHEN (b.STATE / 4) % 2 = 1 THEN 1 ELSE 0 END) * 4 AS STATE
        FROM {nodes} n JOIN {blocked} b ON b.SRC = n.SRC AND b.CALLID = n.CALLID
        WHERE n.KIND = 1 GROUP BY n.L""")
    release = temp(conn, "mg_release", f"""
        SELECT n.SRC, n.CALLID, r.ROOT_SRC, r.ROOT_IRID, gr.STATE
        FROM {nodes} n JOIN {groups} gr ON gr.L = n.L AND gr.HELD = 0
        JOIN {nodes} r ON r.N = n.L
        WHERE n.KIND = 1""")
    run(conn, f"CREATE INDEX {release}_ix ON {release} (SRC, CALLID)")
    released = count(conn, release)
    lo = hi = None
    partial = 0
    if released:
        columns = [c.name for c in CALLS.columns]
        plain = [c for c in columns if c not in (*MERGE_COLUMNS, "UPDATE_AUDIT_KEY")]
        key = [c.name for c in CALLS.primary_key.columns]
        rows = temp(conn, "mg_rows", f"""
            SELECT {', '.join('m.' + c for c in plain)}, {int(audit)} AS UPDATE_AUDIT_KEY,
                   r.ROOT_SRC AS MERGE_SOURCE_KEY, r.ROOT_IRID AS MERGE_ROOTIRID,
                   r.STATE AS MERGE_STATE
            FROM {w} m JOIN {release} r ON r.SRC = m.DATA_SOURCE_KEY
                 AND r.CALLID = m.CALLID""", analyze=False)
        released = count(conn, rows)
        lo, hi, partial = run(conn, f"SELECT MIN(START_DATE_TIME_KEY), "
                                    f"MAX(START_DATE_TIME_KEY), SUM(CASE WHEN MERGE_STATE "
                                    f"<> 0 THEN 1 ELSE 0 END) FROM {rows}").one()
        # An HA set: the version of the call merged before from the partner IDB goes.
        run(conn, f"""DELETE FROM {g} WHERE ({', '.join(key)}) IN (
            SELECT {', '.join('t.' + k for k in key)} FROM {rows} n JOIN {g} t
            ON t.DATA_SOURCE_KEY = n.DATA_SOURCE_KEY AND t.CALLID = n.CALLID
            AND t.DAP_KEY <> n.DAP_KEY)""")
        ops_for(conn).upsert_from(conn, CALLS, rows, [c for c in columns], key,
                                  update=[c for c in columns
                                          if c not in key and c != "CREATE_AUDIT_KEY"])
        run(conn, f"DELETE FROM {w} WHERE ({', '.join(key)}) IN (SELECT "
                  f"{', '.join(key)} FROM {rows})")
        drop(conn, rows)
    # What the calls left waiting wait for (for `gim status`).
    run(conn, f"""UPDATE {w} SET MERGE_STATE = (SELECT b.STATE FROM {blocked} b
        WHERE b.SRC = {w}.DATA_SOURCE_KEY AND b.CALLID = {w}.CALLID)""")
    drop(conn, nodes_w, links, reached, nodes, edges, both, blocked, groups, release)
    return released, lo, hi, int(partial or 0)


def backlog(conn: Connection) -> list[tuple[int, int, int | None]]:
    """The calls waiting to merge: (MERGE_STATE, calls, oldest end), by what they wait for."""
    return [tuple(r) for r in run(conn, f"""
        SELECT COALESCE(MERGE_STATE, 0), COUNT(*), MIN(COALESCE(TERMINATED_TS,
               LASTCHANGE_TS)) FROM {WAITING.name} GROUP BY COALESCE(MERGE_STATE, 0)
        ORDER BY 1""")]
