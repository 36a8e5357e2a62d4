"""GIDB_* tables: the Info Mart's copies of the IDB tables, filled by extraction and read by
transformation.

Each copy keeps the IDB columns but the time codes and the GSYS columns the product drops,
and adds DATA_SOURCE_KEY (the data source: a DAP, or the HA set whose IDBs hold the same
data, so that the rows of one call join whichever IDB each came from), DAP_KEY (ours: the
DAP whose IDB the row was read from; with the IDB row ID it is the row's identity, since the
two ICONs of an HA pair number their rows independently), START_DATE_TIME_KEY (the 15-minute
interval the row's interaction, session or event started in) and the audit keys of the
transactions that inserted and last updated it.

Text columns have no length limit here: a SQLite IDB does not enforce its declared lengths,
and rows that break the IDB's own rules are loaded as they are, for the transformation to
judge.
Voice and multimedia rows of the shared interaction tables go to separate copies (_V, _MM),
as in the product.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from gim.schema import idb
from gim.schema.base import Int, Key, col, table
from gim.schema.meta import metadata

_DROPPED = {"GSYS_PARTITION", "GSYS_SEQ", "GSYS_USEQ", "GSYS_TS", "GSYS_TC"}

# The column each table's rows start at (for START_DATE_TIME_KEY), where it is not
# CREATED_TS / ADDED_TS.
_START = {
    "G_IS_LINK": "INITIATED_TS", "G_VIRTUAL_QUEUE": "ADDED_TS", "GO_CAMPAIGN": "LOADED_TS",
    "GO_CHAIN": "LOADED_TS", "GO_CUSTOM_FIELDS": "LOADED_TS", "G_AGENT_STATE_RC": "CREATED_TS",
}

# Natural keys of rows ICON updates in place: how the same row is recognized in the two
# IDBs of an HA pair (whose own IDs differ). Configuration objects are identified by their
# Configuration Server DBID (the ID column); associations by the two objects and the start
# of the association (each [CREATED, DELETED) interval is a row of its own).
NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "G_CALL": ("CALLID",), "G_IR": ("IRID",), "G_PARTY": ("PARTYID",),
    # An IS-Link is one side (ISLINKTYPE) of one link (LINKID); its CALLID changes when the
    # call it was on merges into another.
    "G_IS_LINK": ("LINKID", "ISLINKTYPE"), "G_CALL_USERDATA": ("CALLID",),
    "GM_F_USERDATA": ("CALLID",), "GM_L_USERDATA": ("CALLID",),
    "G_LOGIN_SESSION": ("LOGINSESSIONID",),
    "GX_SESSION_ENDPOINT": ("LOGINSESSIONID", "ENDPOINTID", "CREATED_TS"),
    "G_DND_HISTORY": ("LOGINSESSIONID", "ENDPOINTID", "CREATED_TS"),
    "GO_CAMPAIGN": ("SESSID",), "GO_CHAIN": ("CHAINGUID",),
    "GO_CUSTOM_FIELDS": ("CHAINGUID", "RECORDHANDLE", "FIELDID"),
}
for _t in idb.idb_metadata.sorted_tables:
    if _t.info["kind"] == "cfg":
        NATURAL_KEYS[_t.name] = ("ID",)
    elif _t.info["kind"] == "link":
        _ends = [c.name for c in _t.columns if c.name != "ID"][:2]
        NATURAL_KEYS[_t.name] = (*_ends, "CREATED_TS")

# The data-source session table that tells whether an IDB holds a table's data for a time.
_PROVIDER_BY_PREFIX = (("GC", idb.G_DSS_CFG_PROVIDER), ("G_DICT", idb.G_DSS_CFG_PROVIDER),
                       ("GO", idb.G_DSS_GOS_PROVIDER), ("GM_", idb.G_DSS_GUD_PROVIDER))
_GLS = {"G_LOGIN_SESSION", "GX_SESSION_ENDPOINT", "G_AGENT_STATE_HISTORY", "G_AGENT_STATE_RC",
        "G_DND_HISTORY"}
_GUD = {"G_USERDATA_HISTORY", "G_SECURE_USERDATA_HISTORY", "G_CALL_USERDATA"}


def provider_of(name: str) -> sa.Table:
    if name in _GLS:
        return idb.G_DSS_GLS_PROVIDER
    if name in _GUD:
        return idb.G_DSS_GUD_PROVIDER
    for prefix, provider in _PROVIDER_BY_PREFIX:
        if name.startswith(prefix):
            return provider
    return idb.G_DSS_GCC_PROVIDER


@dataclass(frozen=True)
class Copy:
    """How one IDB table is extracted for one role into one GIDB table."""

    source: sa.Table  # the IDB table
    target: sa.Table  # the GIDB table
    role: str
    columns: tuple[str, ...]  # IDB columns copied, in target order
    time_column: str | None  # the window column (None: copied whole each cycle)
    start_column: str | None
    natural_key: tuple[str, ...]
    completed_only: bool  # voice calls: extracted once terminated (or stuck)
    # Where windows load the rows, when not straight into the target: voice calls wait in
    # a merge table until the calls they are linked with have arrived (see jobs.merge).
    landing: sa.Table | None = None

    @property
    def loads_into(self) -> sa.Table:
        return self.landing if self.landing is not None else self.target

    @property
    def provider(self) -> sa.Table:
        return provider_of(self.source.name)


COPIES: list[Copy] = []

# Merge columns of voice calls (GIDB_G_CALL_V and its merge table MRG_G_CALL_V), ours: the
# interaction a call belongs to once the calls of all sites and the merge references are
# put together (its first call's data source and root IRID), and how complete that merge
# is (merge.MergeState bits; 0 = complete). In the merge table, while a call waits,
# MERGE_STATE holds what it waits for.
MERGE_COLUMNS = ("MERGE_SOURCE_KEY", "MERGE_ROOTIRID", "MERGE_STATE")

# Lookups the transformation makes beyond the join keys: an agent's state at an instant
# (after-call work following a call), and the agent's parts that ended just before it.
_EXTRA_INDEXES = {"G_AGENT_STATE_HISTORY": [("AGENTID", "ADDED_TS")],
                  "G_PARTY": [("AGENTID", "TERMINATED_TS")]}


def _lookup(name: str, column: str, by_source: bool = True) -> list[sa.Index]:
    """An index the transformation and the merge look rows up by, one identifier at a time
    (a call's, a party's, a session's): always by equality, never by range or in order.

    On PostgreSQL it is a hash index on the identifier: its entries are a 4-byte hash
    rather than the identifier text, so that extraction, which adds an entry per row to
    each such index, spends about half as long on it as on a B-tree. (Lookups name the data
    source too; the hash of the identifier alone finds the few rows to check.)

    On SQLite it is a B-tree led by the data source: SQLite plans without statistics, and
    given an index that begins with a column a join names it prefers it; led by the data
    source, the identifier's index is the one it takes, rather than another index that
    also begins with the data source (which would scan the source's rows)."""
    return [
        sa.Index(name, column, postgresql_using="hash",
                 info={"lookup": True, "dialect": "postgresql"}).ddl_if(dialect="postgresql"),
        sa.Index(name, *(("DATA_SOURCE_KEY",) if by_source else ()), column,
                 info={"lookup": True, "dialect": "sqlite"}).ddl_if(dialect="sqlite"),
    ]


def _copy(source: sa.Table, role: str, suffix: str) -> None:
    name = f"GIDB_{source.name}{suffix}"
    columns = [c for c in source.columns
               if not c.name.endswith("_TCODE") and c.name not in _DROPPED]
    items: list[object] = [
        col("DATA_SOURCE_KEY", Int, nullable=False),
        col("DAP_KEY", Int, primary_key=True, autoincrement=False),
    ]
    pk = [c.name for c in source.primary_key.columns]
    for c in columns:
        type_ = sa.String() if isinstance(c.type, sa.String) else c.type
        items.append(col(c.name, type_, primary_key=c.name in pk, autoincrement=False,
                         nullable=c.name not in pk))
    items += [
        col("START_DATE_TIME_KEY", Int),
        col("CREATE_AUDIT_KEY", Key, nullable=False),
        col("UPDATE_AUDIT_KEY", Key, nullable=False),
    ]
    merged = source.name == "G_CALL" and suffix == "_V"
    if merged:
        items += [col("MERGE_SOURCE_KEY", Int), col("MERGE_ROOTIRID", sa.String()),
                  col("MERGE_STATE", Int)]
    landing_columns = [col(c.name, c.type, primary_key=c.primary_key, autoincrement=False,
                           nullable=c.nullable) for c in items if isinstance(c, sa.Column)]
    natural = NATURAL_KEYS.get(source.name, ())
    index_name = name.lower()
    # Transformation reads rows by audit key and joins them by interaction, party, session
    # and chain; purge's scan by START_DATE_TIME_KEY runs daily and does without an index.
    items.append(sa.Index(f"ix_{index_name}_upd", "UPDATE_AUDIT_KEY"))
    if len(natural) == 1:
        items += _lookup(f"ix_{index_name}_nat", natural[0])
    elif natural:
        items.append(sa.Index(f"ix_{index_name}_nat", "DATA_SOURCE_KEY", *natural))
    for join_col in ("CALLID", "PARTYID", "LOGINSESSIONID", "CHAINGUID", "ROOTIRID",
                     "SESSIONID"):
        if join_col in source.c and join_col not in natural[:1]:
            items += _lookup(f"ix_{index_name}_{join_col.lower()}", join_col)
    if source.name == "G_IS_LINK":
        # The merge finds a link's counterpart by LINKID in whatever data source holds it.
        items += _lookup(f"ix_{index_name}_linkid", "LINKID", by_source=False)
    for extra in _EXTRA_INDEXES.get(source.name, ()):
        items.append(sa.Index(f"ix_{index_name}_{'_'.join(extra).lower()}"[:63],
                              "DATA_SOURCE_KEY", *extra))
    if merged:
        # The transformation reads an interaction's calls by their merged root.
        items += _lookup(f"ix_{index_name}_merge", "MERGE_ROOTIRID")
    target = table(metadata, name, *items, category="gidb",
                   comment=f"Extracted copy of the IDB table {source.name} ({role}).")
    landing = None
    if merged:
        mrg = f"MRG_{source.name}{suffix}"
        landing = table(
            metadata, mrg, *landing_columns,
            *_lookup(f"ix_{mrg.lower()}_callid", "CALLID"),
            *_lookup(f"ix_{mrg.lower()}_rootirid", "ROOTIRID"),
            category="merge", ours=True,
            comment="Voice calls extracted and waiting for the calls they merge with "
                    "(other sites' calls, merge targets) before they enter GIDB_G_CALL_V.")
    time_column = source.info["time_column"]
    start = _START.get(source.name) or next(
        (c for c in ("CREATED_TS", "ADDED_TS", "LASTCHANGE_TS") if c in source.c), None)
    COPIES.append(Copy(source=source, target=target, role=role,
                       columns=tuple(c.name for c in columns), time_column=time_column,
                       start_column=start, natural_key=natural,
                       completed_only=(source.name == "G_CALL" and role == "ICON_CORE"),
                       landing=landing))


for _t in idb.idb_metadata.sorted_tables:
    if _t.info["kind"] == "dss" or _t.name == "G_DICT_TYPE":
        continue
    _roles = _t.info["roles"]
    if len(_roles) == 2:  # shared by voice and multimedia
        _copy(_t, "ICON_CORE", "_V")
        _copy(_t, "ICON_MM", "_MM")
    else:
        _copy(_t, _roles[0], "")

COPY_BY_TARGET = {c.target.name: c for c in COPIES}


def copies_for(role: str) -> list[Copy]:
    return [c for c in COPIES if c.role == role]


def gidb(source: str, role: str = "ICON_CORE") -> sa.Table:
    """The GIDB copy of an IDB table for a role (voice copies for the shared tables)."""
    for c in COPIES:
        if c.source.name == source and c.role in (role, "ICON_CFG", "ICON_OCS") and (
                c.role == role or len(c.source.info["roles"]) == 1):
            return c.target
    raise KeyError(f"no GIDB copy of {source} for {role}")
