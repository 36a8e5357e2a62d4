"""The Interaction Concentrator (ICON) database tables gim reads, with their real names.

Column lists follow the ICON physical data model where the documentation shows them; where it
is cut off, the rest of a table follows ICON's conventions (the timestamp triple, the GSYS_*
block) and is marked "inferred" here. Code values of the dictionaries the model leaves
unpublished are ours too, and the simulator writes them into G_DICTIONARY.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from gim.schema.base import Int, Str, col
from gim.schema.base import Key as Id

idb_metadata = sa.MetaData()

Ts = sa.DateTime
SmallInt = sa.SmallInteger
# numeric(20) columns: SQLite would store them as floating point and lose digits, so there
# they are 64-bit integers (ConnIDs below 2**63 fit).
BigNum = sa.Numeric(20).with_variant(sa.BigInteger(), "sqlite")


def _gsys() -> list[sa.Column]:
    """The system block at the end of every operational table."""
    return [
        col("GSYS_DOMAIN", Int),  # DSS_ID of the data-source session (G_DSS_*_PROVIDER)
        col("GSYS_PARTITION", Int),
        col("GSYS_SYS_ID", Int),
        col("GSYS_SEQ", sa.BigInteger),
        col("GSYS_USEQ", sa.BigInteger),
        col("GSYS_TS", Ts),
        col("GSYS_TC", Int),
        col("GSYS_EXT_VCH1", Str(255)),
        col("GSYS_EXT_VCH2", Str(255)),
        col("GSYS_EXT_INT1", Int),
        col("GSYS_EXT_INT2", Int),
    ]


def _triple(name: str, nullable: bool = True) -> list[sa.Column]:
    """ICON stores each time three times: GMT date-time, UTC seconds, time-code reference."""
    return [col(name, Ts, nullable=nullable), col(f"{name}_TS", Int),
            col(f"{name}_TCODE", Int)]


def _table(name: str, *items: object, role: str, kind: str, time_column: str | None,
           comment: str | None = None) -> sa.Table:
    """kind: cfg (configuration object, updated in place), link (configuration
    association), state (latest-state row, updated in place), history (insert-only),
    dss (session control), dict (dictionary), system (ICON's own bookkeeping, read whole).
    time_column: the UTC-seconds column that says when a row was last written, which
    extraction keys on."""
    t = sa.Table(name, idb_metadata, *items, quote=False, comment=comment)
    t.info.update(role=role, kind=kind, time_column=time_column)
    return t


def _cfg(name: str, *cols: sa.Column, tenant: bool = True) -> sa.Table:
    """A configuration-object table: ID = Configuration Server DBID; updated in place,
    deleted objects kept with STATUS 2 and DELETED set."""
    return _table(
        name,
        col("ID", Int, primary_key=True, autoincrement=False),
        *([col("TENANTID", Int, nullable=False)] if tenant else []),
        col("FOLDERID", Int),
        *cols,
        col("STATE", Int, nullable=False),  # dict 500: 0 unknown, 1 enabled, 2 disabled
        col("STATUS", Int, nullable=False),  # dict 24: 1 active, 2 deleted, 10 syncing
        *_triple("CREATED"), *_triple("DELETED"), *_triple("LASTCHANGE"),
        *_gsys(),
        role="ICON_CFG", kind="cfg", time_column="LASTCHANGE_TS",
    )


def _link(name: str, *cols: sa.Column) -> sa.Table:
    """A configuration association: one row per [CREATED, DELETED) interval."""
    return _table(
        name,
        col("ID", Id, primary_key=True, autoincrement=False),
        *cols,
        col("STATUS", Int, nullable=False),
        *_triple("CREATED"), *_triple("DELETED"),
        col("LASTCHANGE_TS", Int),  # inferred: when the row was last written
        *_gsys(),
        role="ICON_CFG", kind="link", time_column="LASTCHANGE_TS",
    )


# --------------------------------------------------------------------------------------------
# Configuration (cfg role)

GC_TENANT = _cfg("GC_TENANT", col("NAME", Str(255), nullable=False), tenant=False)
GC_SWITCH = _cfg("GC_SWITCH", col("NAME", Str(255), nullable=False),
                 col("TYPE", Int, nullable=False), col("LINKTYPE", Int))
GC_APPLICATION = _cfg("GC_APPLICATION", col("NAME", Str(255), nullable=False),
                      col("TYPE", Int, nullable=False), col("VERSION", Str(64)))
GC_ENDPOINT = _cfg(  # DNs (inferred columns beyond ID and DN)
    "GC_ENDPOINT", col("SWITCHID", Int, nullable=False), col("DN", Str(255), nullable=False),
    col("TYPE", Int, nullable=False),  # CfgDNType: 1 extension, 3 ACD queue, 4 routing
    col("ASSOCIATION", Str(255)), col("NAME", Str(255)))  # point, 5 virtual queue
GC_AGENT = _cfg(
    "GC_AGENT", col("USERNAME", Str(255), nullable=False), col("FIRSTNAME", Str(64)),
    col("LASTNAME", Str(64)), col("EMPLOYEEID", Str(64), nullable=False),
    col("EMAIL", Str(255)), col("TYPE", Int, nullable=False),  # dict 509: 2 = is an agent
    col("PLACEID", Int))
GC_PLACE = _cfg("GC_PLACE", col("NAME", Str(255), nullable=False))
GC_GROUP = _cfg("GC_GROUP", col("NAME", Str(255), nullable=False),
                col("TYPE", Int, nullable=False),  # dict 540: 1 agent, 2 place, 3 DN group
                col("DNGROUPTYPE", Int), col("SCRIPT", Str(1024)))
GC_SKILL = _cfg("GC_SKILL", col("NAME", Str(255), nullable=False))
GC_LOGIN = _cfg("GC_LOGIN", col("SWITCHID", Int, nullable=False),
                col("LOGINCODE", Str(255), nullable=False))
GC_TIME_ZONE = _cfg("GC_TIME_ZONE", col("NAME", Str(255), nullable=False),  # inferred
                    col("DESCRIPTION", Str(255)), col("GMT_OFFSET", Int),
                    col("IS_DST_OBSERVED", SmallInt))
GC_SCRIPT = _cfg("GC_SCRIPT", col("NAME", Str(255), nullable=False),  # inferred
                 col("TYPE", Int, nullable=False))  # 1 interaction queue, 2 workbin, 3 strategy
GC_CAMPAIGN = _cfg("GC_CAMPAIGN", col("NAME", Str(255), nullable=False),
                   col("SCRIPTID", Int))
GC_CALLING_LIST = _cfg("GC_CALLING_LIST", col("NAME", Str(255), nullable=False),  # inferred
                       col("TABLENAME", Str(255)))

GCX_GROUP_AGENT = _link("GCX_GROUP_AGENT", col("GROUPID", Int, nullable=False),
                        col("AGENTID", Int, nullable=False))
GCX_GROUP_PLACE = _link("GCX_GROUP_PLACE", col("GROUPID", Int, nullable=False),
                        col("PLACEID", Int, nullable=False))
GCX_GROUP_ENDPOINT = _link("GCX_GROUP_ENDPOINT", col("GROUPID", Int, nullable=False),
                           col("ENDPOINTID", Int, nullable=False))
GCX_SKILL_LEVEL = _link("GCX_SKILL_LEVEL", col("SKILLID", Int, nullable=False),
                        col("AGENTID", Int, nullable=False), col("SLEVEL", Int))
GCX_AGENT_PLACE = _link("GCX_AGENT_PLACE", col("PLACEID", Int, nullable=False),
                        col("AGENTID", Int, nullable=False))
GCX_ENDPOINT_PLACE = _link("GCX_ENDPOINT_PLACE", col("ENDPOINTID", Int, nullable=False),
                           col("PLACEID", Int, nullable=False))
GCX_LOGIN_INFO = _link("GCX_LOGIN_INFO", col("LOGINID", Int, nullable=False),
                       col("AGENTID", Int, nullable=False), col("WRAPUPTIME", Int))
GCX_CAMPLIST = _link("GCX_CAMPLIST", col("CAMPAIGNID", Int, nullable=False),
                     col("CALLINGLISTID", Int, nullable=False))
GCX_GROUP_CAMPAIGN = _link(  # inferred: campaign groups (agent group running a campaign)
    "GCX_GROUP_CAMPAIGN", col("GROUPID", Int, nullable=False),
    col("CAMPAIGNID", Int, nullable=False), col("DIALMODE", Int))


# --------------------------------------------------------------------------------------------
# Interactions and parties (gcc role); the same tables hold voice (T-Server) and multimedia
# (Interaction Server) interactions, told apart by the switch.

def _state(name: str, *cols: object, role: str = "ICON_CORE") -> sa.Table:
    return _table(name, *cols, role=role, kind="state", time_column="LASTCHANGE_TS")


def _history(name: str, *cols: object, role: str = "ICON_CORE",
             time_column: str = "ADDED_TS") -> sa.Table:
    return _table(name, *cols, role=role, kind="history", time_column=time_column)


G_CALL = _state(
    "G_CALL",
    col("ID", Id, primary_key=True, autoincrement=False),
    col("CALLID", Str(50), nullable=False),
    col("PARENTCALLID", Str(50)),
    col("MERGECALLID", Str(50)),
    col("MERGETYPE", Int),  # inferred dict: 0 none, 1 transfer, 2 conference
    col("CONNID", Str(50)),
    col("CONNIDNUM", BigNum),
    col("SWITCHCALLID", Int),
    col("IRID", Str(50), nullable=False),
    # Inferred from here on.
    col("ROOTIRID", Str(50)),
    col("CALLTYPE", Int),  # T-Lib: 0 unknown, 1 internal, 2 inbound, 3 outbound, 4 consult
    col("MEDIATYPE", Int),  # T-Lib: 0 voice, 2 e-mail, 5 chat, 11 workitem, 100+ custom
    col("MEDIANAME", Str(64)),  # Interaction Server media type name (voice: 'voice')
    col("STATE", Int, nullable=False),  # 1 active, 2 terminated
    col("TENANTID", Int),
    col("SWITCHID", Int),
    col("ANI", Str(255)),
    col("DNIS", Str(255)),
    col("SUBTYPE", Str(64)),  # multimedia interaction subtype (InboundNew, ...)
    *_triple("CREATED"), *_triple("TERMINATED"), *_triple("LASTCHANGE"),
    *_gsys(),
)
G_CALL_HISTORY = _history(
    "G_CALL_HISTORY",
    col("CHID", Id, primary_key=True, autoincrement=False),
    col("CALLID", Str(50), nullable=False),
    col("CSEQ", Int, nullable=False),
    col("CHANGETYPE", Int),  # dict 1: 1 created, 2 terminated, 3 merged, 4 failed
    col("REFID", Str(50)),
    *_triple("ADDED", nullable=False),
    *_gsys(),
)
G_CALL_STAT = _history(
    "G_CALL_STAT",
    col("ID", Id, primary_key=True, autoincrement=False),
    col("CALLID", Str(50), nullable=False),
    col("F_CONN", SmallInt), col("F_CONN_EXTN", SmallInt), col("F_TE_ABND", SmallInt),
    col("CNT_HOLD", Int), col("CNT_DIVERT", Int), col("CNT_TRANSFER", Int),
    col("CNT_CONFERENCE", Int),  # inferred
    *_triple("ADDED"),  # inferred: written when the call completes
    *_gsys(),
)
G_IR = _state(
    "G_IR",
    col("ID", Id, primary_key=True, autoincrement=False),
    col("IRID", Str(50), nullable=False),
    col("STATE", Int, nullable=False),  # dict 7: 1 active, 2 terminated
    col("PARENTIRID", Str(50)),
    col("PARENTLINKTYPE", Int),
    col("ROOTCALLID", Str(50), nullable=False),
    col("ROOTIRID", Str(50)),  # inferred
    *_triple("CREATED"), *_triple("TERMINATED"), *_triple("LASTCHANGE"),
    *_gsys(),
)
G_IR_HISTORY = _history(
    "G_IR_HISTORY",
    col("IRHID", Id, primary_key=True, autoincrement=False),
    col("IRID", Str(50), nullable=False),
    col("XSEQ", BigNum),
    col("CHANGETYPE", Int),  # dict 3: 1 created, 2 terminated, 3 merged
    col("REFID", Str(50)),
    *_triple("ADDED", nullable=False),
    *_gsys(),
)
G_PARTY = _state(
    "G_PARTY",
    col("ID", Id, primary_key=True, autoincrement=False),
    col("PARTYID", Str(50), nullable=False),
    col("PARTYGUID", Str(50), nullable=False),
    col("TYPE", Int, nullable=False),  # dict 9: 1 internal, 2 external, 3 place, 4 queue...
    col("PROLE", Int, nullable=False),  # dict 10 (inferred values, see G_DICTIONARY)
    col("PARENTPARTYID", Str(50)),
    col("PARENTLINKTYPE", Int),  # dict 11 (inferred values)
    col("CALLID", Str(50), nullable=False),
    col("STATE", Int, nullable=False),  # dict 8 (inferred values)
    col("PREVSTATE", Int),
    col("ENDPOINTDN", Str(255), nullable=False),
    # Inferred from here on.
    col("ENDPOINTID", Int),
    col("ENDPOINTTYPE", Int),  # CfgDNType of the DN
    col("SWITCHID", Int),
    col("TENANTID", Int),
    col("AGENTID", Int),
    col("PLACEID", Int),
    col("CCEVENT", Int),  # event that ended the party
    col("CCEVENTCAUSE", Int),  # its cause
    *_triple("CREATED"), *_triple("TERMINATED"), *_triple("LASTCHANGE"),
    *_gsys(),
)
G_PARTY_HISTORY = _history(
    "G_PARTY_HISTORY",
    col("PHID", Id, primary_key=True, autoincrement=False),
    col("PARTYID", Str(50), nullable=False),
    col("PSEQ", Int, nullable=False),
    col("CSEQ", Int, nullable=False),
    col("CHANGETYPE", Int),  # inferred: 1 created, 2 state changed, 3 terminated
    col("CCEVENT", Int),
    col("CCEVENTCAUSE", Int),
    col("STATE", Int),  # inferred from here on
    col("PREVSTATE", Int),
    *_triple("ADDED", nullable=False),
    *_gsys(),
)
G_PARTY_STAT = _history(
    "G_PARTY_STAT",
    col("ID", Id, primary_key=True, autoincrement=False),
    col("PARTYID", Str(50), nullable=False),
    col("TT_ALERTING", Int), col("TT_CONNECTED", Int), col("TT_HOLD", Int),
    col("TT_QUEUED", Int), col("TT_ACW", Int),
    *_triple("ADDED"),  # inferred
    *_gsys(),
)
G_IS_LINK = _state(
    "G_IS_LINK",
    col("ID", Id, primary_key=True, autoincrement=False),
    col("LINKID", Str(50), nullable=False),
    col("CALLID", Str(50), nullable=False),
    col("ISLINKTYPE", Int, nullable=False),  # dict 27 (icon_codes.IsLinkType)
    col("REMOTELOCATION", Str(255)),  # the switch (GC_SWITCH.NAME) of the other call
    col("STATE", Int, nullable=False),  # dict 21 (icon_codes.IsLinkState)
    col("MERGESTATE", Int),  # icon_codes.IsLinkMerge
    *_triple("INITIATED", nullable=False), *_triple("TERMINATED"),
    *_triple("LASTCHANGE", nullable=False),
    *_gsys(),
)
# A row per remote switch whose calls this IDB does not record: its IS-Links have no
# counterpart here, and a merge need not wait for one. Kind "system": no time column, read
# whole.
GSYS_DNPREMOTELOCATION = _table(
    "GSYS_DNPREMOTELOCATION",
    col("ID", Id, primary_key=True, autoincrement=False),
    col("REMOTELOCATION", Str(255)),
    role="ICON_CORE", kind="system", time_column=None,
)
G_ROUTE_RESULT = _history(
    "G_ROUTE_RESULT",
    col("ID", Id, primary_key=True, autoincrement=False),
    col("CALLID", Str(50), nullable=False),
    col("CONNID", Str(50), nullable=False),
    col("PARTYID", Str(50), nullable=False),
    col("IRID", Str(50)),
    col("ENDPOINTID", Int),
    col("RTARGETRULESELECTED", Str(255)),
    col("RTARGETOBJECTSELECTED", Str(255)),
    col("RTARGETTYPESELECTED", Int),
    col("RTARGETAGENTSELECTED", Str(255)),
    col("RTARGETPLACESELECTED", Str(255)),  # inferred from here on
    col("RSTRATEGYNAME", Str(255)),
    col("RTENANT", Str(255)),
    col("RESULT", Int),  # 0 routed, 1 abandoned, 2 cleared
    col("DURATION", Int),
    *_triple("ADDED", nullable=False),
    *_gsys(),
)
G_VIRTUAL_QUEUE = _history(  # inferred: one row per visit of an interaction to a VQ
    "G_VIRTUAL_QUEUE",
    col("ID", Id, primary_key=True, autoincrement=False),
    col("CALLID", Str(50), nullable=False),
    col("CONNID", Str(50)),
    col("PARTYID", Str(50)),
    col("IRID", Str(50)),
    col("ENDPOINTID", Int),
    col("ENDPOINTDN", Str(255)),
    col("TENANTID", Int),
    col("SWITCHID", Int),
    col("RESULT", Int),  # 1 diverted to a target, 2 abandoned, 3 cleared
    col("TARGETAGENTID", Int),
    *_triple("ADDED", nullable=False), *_triple("REMOVED"),
    *_gsys(),
    time_column="REMOVED_TS",
)


# --------------------------------------------------------------------------------------------
# Attached data (gud role)

def _userdata_history(name: str) -> sa.Table:
    return _history(
        name,
        col("ID", Id, primary_key=True, autoincrement=False),
        col("CALLID", Str(50), nullable=False),
        col("PARTYID", Str(50)),
        col("ENDPOINTID", Int),
        col("ENDPOINTDN", Str(255)),  # inferred from here on
        col("AGENTID", Int),
        col("CSEQ", Int),
        col("KEYNAME", Str(255), nullable=False),
        col("VALUE", Str(1024)),
        col("CHANGETYPE", Int),  # 1 added, 2 updated, 3 deleted
        *_triple("ADDED", nullable=False),
        *_gsys(),
    )


G_USERDATA_HISTORY = _userdata_history("G_USERDATA_HISTORY")
G_SECURE_USERDATA_HISTORY = _userdata_history("G_SECURE_USERDATA_HISTORY")
G_CALL_USERDATA = _state(
    "G_CALL_USERDATA",
    col("ID", Id, primary_key=True, autoincrement=False),
    col("CALLID", Str(50), nullable=False),
    col("G_CUSTOMER_SEGMENT", Str(255)), col("G_SERVICE_TYPE", Str(255)),
    col("G_SERVICE_SUBTYPE", Str(255)), col("G_BUSINESS_RESULT", Str(255)),
    col("CUSTOMER_ID", Str(255)), col("TRANSACTION_ID", Str(255)),
    col("CAUSE_ID", Str(255)), col("ACCOUNT_ID", Str(255)),
    col("DESTINATION_ID", Str(255)), col("TARGET_ID", Str(255)),
    *_triple("CREATED"), *_triple("LASTCHANGE"),  # inferred
    *_gsys(),
)
GM_F_USERDATA = _state(
    "GM_F_USERDATA",
    col("ID", Id, primary_key=True, autoincrement=False),
    col("CALLID", Str(50), nullable=False),
    col("G_FROM_NAME", Str(255)), col("G_CALLED_BACK", Str(255)),
    col("G_SUBJECT", Str(1024)), col("G_ORIGIN_SOURCE", Str(128)),
    col("G_FROM_ADDRESS", Str(255)), col("G_SUB_TYPE", Str(255)),
    *_triple("CREATED"), *_triple("LASTCHANGE"),  # inferred
    *_gsys(),
    role="ICON_MM",
)
GM_L_USERDATA = _state(
    "GM_L_USERDATA",
    col("ID", Id, primary_key=True, autoincrement=False),
    col("CALLID", Str(50), nullable=False),
    col("G_S_RESPONSE", Str(255)), col("G_A_RESPONSE", Str(255)), col("G_A_ACK", Str(255)),
    col("G_STOP_REASON", Str(128)), col("G_UCS_CONTACT_ID", Str(255)),
    col("G_RESERVED1", Str(255)), col("G_RESERVED2", Str(255)),
    *_triple("CREATED"), *_triple("LASTCHANGE"),  # inferred
    *_gsys(),
    role="ICON_MM",
)


# --------------------------------------------------------------------------------------------
# Agent activity (gls role)

G_LOGIN_SESSION = _state(
    "G_LOGIN_SESSION",
    col("ID", Id, primary_key=True, autoincrement=False),
    col("LOGINSESSIONID", Str(50), nullable=False),
    col("AGENTID", Int),
    col("LOGINID", Int),  # NULL for Interaction Server
    col("PLACEID", Int),
    col("STATE", Int, nullable=False),  # inferred: 1 active, 2 terminated
    col("PRIMARYDEVICEID", Int),
    col("SWITCHID", Int),  # inferred from here on
    col("TENANTID", Int),
    col("MEDIALIST", Str(255)),  # media of an Interaction Server session, comma-separated
    *_triple("CREATED"), *_triple("TERMINATED"), *_triple("LASTCHANGE"),
    *_gsys(),
)
GX_SESSION_ENDPOINT = _state(
    "GX_SESSION_ENDPOINT",
    col("ID", Id, primary_key=True, autoincrement=False),
    col("AGENTID", Int, nullable=False),
    col("ENDPOINTID", Int, nullable=False),
    col("ENDPOINTTYPE", Int),
    col("QUEUEID", Int),
    col("QUEUETYPE", Int),
    col("PLACEID", Int),
    col("LOGINSESSIONID", Str(50), nullable=False),
    col("STATE", Int, nullable=False),
    *_triple("CREATED"), *_triple("TERMINATED"), *_triple("LASTCHANGE"),  # inferred
    *_gsys(),
)
G_AGENT_STATE_HISTORY = _history(
    "G_AGENT_STATE_HISTORY",
    col("ID", Id, primary_key=True, autoincrement=False),
    col("TYPE", Int, nullable=False),  # -1 unknown, 5 state change, 6 pending state change
    col("STATE", Int, nullable=False),  # 0 logged off, 1 logged in, 2 not ready, 3 ready,
    col("PENDINGSTATE", Int),           # 4 after-call work, 5 busy
    col("SEQ", Int, nullable=False),
    col("LOGINSESSIONID", Str(50), nullable=False),  # inferred from here on
    col("AGENTID", Int),
    col("LOGINID", Int),
    col("PLACEID", Int),
    col("ENDPOINTID", Int),
    col("QUEUEID", Int),
    col("WORKMODE", Int),  # 0 unknown, 1 manual-in, 2 auto-in, 3 ACW, 4 aux work
    col("PREVSTATE", Int),
    col("MEDIANAME", Str(64)),  # Interaction Server media the state is for
    *_triple("ADDED", nullable=False),
    *_gsys(),
)
G_AGENT_STATE_RC = _history(
    "G_AGENT_STATE_RC",
    col("ID", Id, primary_key=True, autoincrement=False),
    col("SESSIONID", Str(50), nullable=False),
    col("ENDPOINTID", Int, nullable=False),
    col("QUEUEID", Int),
    col("AGENTSTATE", Int, nullable=False),
    col("WORKMODE", Int, nullable=False),
    col("HWFLAG", SmallInt, nullable=False),
    col("KEYNAME", Str(255), nullable=False),
    col("VALUE", Str(255)),  # inferred from here on
    col("MEDIANAME", Str(64)),
    *_triple("CREATED", nullable=False), *_triple("TERMINATED"),
    *_gsys(),
    time_column="TERMINATED_TS",
)
G_DND_HISTORY = _state(
    "G_DND_HISTORY",
    col("ID", Id, primary_key=True, autoincrement=False),
    col("LOGINSESSIONID", Str(50), nullable=False),
    col("AGENTSTATE", Int),
    col("ENDPOINTID", Int, nullable=False),
    col("PLACEID", Int),  # inferred from here on
    col("STATE", Int, nullable=False),  # 1 DND on, 2 DND off
    *_triple("CREATED", nullable=False), *_triple("TERMINATED"),
    *_triple("LASTCHANGE", nullable=False),
    *_gsys(),
)


# --------------------------------------------------------------------------------------------
# Outbound (gos role)

GO_CAMPAIGN = _state(
    "GO_CAMPAIGN",
    col("ID", Id, primary_key=True, autoincrement=False),
    col("SESSID", Str(64), nullable=False),
    col("CAMPAIGNID", Int, nullable=False),
    col("GROUPID", Int, nullable=False),
    col("STATE", Int, nullable=False),  # dict 71: 0 terminated, 1 loaded, 2 started, 3 unloading
    col("OCSID", Int, nullable=False),
    col("DIALMODE", Int),
    col("OPTIMMODE", Int), col("OPTIMVALUE", Int),  # inferred from here on
    col("TENANTID", Int),
    *_triple("LOADED"), *_triple("TERMINATED"), *_triple("LASTCHANGE"),
    *_gsys(),
    role="ICON_OCS",
)
GO_CAMPAIGNHISTORY = _history(
    "GO_CAMPAIGNHISTORY",
    col("ID", Id, primary_key=True, autoincrement=False),
    col("SESSID", Str(64), nullable=False),
    col("STATE", Int, nullable=False),
    col("PREVSTATE", Int),
    col("CAUSE", Int, nullable=False),
    *_triple("PREVSENTER"), *_triple("ADDED", nullable=False),  # inferred
    *_gsys(),
    role="ICON_OCS",
)
GO_CAMPPROP_HIST = _history(
    "GO_CAMPPROP_HIST",
    col("ID", Id, primary_key=True, autoincrement=False),
    col("SESSID", Str(64), nullable=False),
    col("SEQ", Int, nullable=False),
    col("DIALMODE", Int), col("PREVDIALMODE", Int), *_triple("PREVDMENTER"),
    col("OPTIMMODE", Int), col("OPTIMVALUE", Int), col("PREVOPTIMMODE", Int),
    col("PREVOPTIMVALUE", Int),
    *_triple("ADDED", nullable=False),  # inferred
    *_gsys(),
    role="ICON_OCS",
)
GO_CHAIN = _state(
    "GO_CHAIN",
    col("ID", Id, primary_key=True, autoincrement=False),
    col("CHAINGUID", Str(64), nullable=False),
    col("PARENTGUID", Str(64)),
    col("SESSID", Str(64), nullable=False),
    col("CAMPAIGNID", Int, nullable=False),
    col("GROUPID", Int, nullable=False),
    col("CALLINGLISTID", Int, nullable=False),
    col("CHAINID", Int),  # inferred from here on
    col("STATE", Int),  # dict 76: 0 unloaded, 1 scheduled, 2 processing, 3 processed
    *_triple("LOADED"), *_triple("FINISHED"), *_triple("LASTCHANGE"),
    *_gsys(),
    role="ICON_OCS",
)
GO_CHAINREC_HIST = _history(
    "GO_CHAINREC_HIST",
    col("ID", Id, primary_key=True, autoincrement=False),
    col("CHAINGUID", Str(64), nullable=False),
    col("RECORDHANDLE", Int, nullable=False),
    col("STATE", Int, nullable=False),
    col("PREVSTATE", Int),
    *_triple("PREVSENTER"),
    col("SEQ", Int, nullable=False),  # inferred from here on
    col("CALLATTID", Str(64)),
    col("RECORDID", Int),
    col("CONTACTINFO", Str(255)),
    col("CONTACTINFOTYPE", Int),
    col("RECORDTYPE", Int),
    col("RECORDSTATUS", Int),
    col("CALLRESULT", Int),
    col("ATTEMPT", Int),
    col("CAUSE", Int),
    *_triple("ADDED", nullable=False),
    *_gsys(),
    role="ICON_OCS",
)
GO_CUSTOM_FIELDS = _state(
    "GO_CUSTOM_FIELDS",
    col("ID", Id, primary_key=True, autoincrement=False),
    col("CHAINGUID", Str(64), nullable=False),
    col("RECORDHANDLE", Int, nullable=False),
    col("FIELDID", Int, nullable=False),
    col("VALUE", Str(4000)),
    col("LASTCHAINUPDSEQ", Int, nullable=False),
    *_triple("LASTCHANGED", nullable=False), *_triple("LOADED", nullable=False),
    col("LASTCHANGE_TS", Int),  # inferred: extraction key
    *_gsys(),
    role="ICON_OCS",
)


def _fieldhist(name: str) -> sa.Table:
    return _history(
        name,
        col("ID", Id, primary_key=True, autoincrement=False),
        col("CHAINGUID", Str(64), nullable=False),
        col("RECORDHANDLE", Int, nullable=False),
        col("FIELDID", Int, nullable=False),
        col("OLDVALUE", Str(4000)),
        col("NEWVALUE", Str(4000)),
        *_triple("PREVENTER"),
        col("SEQ", Int, nullable=False),
        col("CHAINHISTSEQ", Int, nullable=False),
        col("CALLATTID", Str(50)),
        *_triple("ADDED", nullable=False),
        *_gsys(),
        role="ICON_OCS",
    )


GO_FIELDHIST = _fieldhist("GO_FIELDHIST")
GO_SEC_FIELDHIST = _fieldhist("GO_SEC_FIELDHIST")
GOX_CHAIN_CALL = _history(
    "GOX_CHAIN_CALL",
    col("ID", Id, primary_key=True, autoincrement=False),
    col("CALLID", Str(50)),
    col("CHAINGUID", Str(64), nullable=False),
    col("CALLATTID", Str(64), nullable=False),
    *_triple("ADDED", nullable=False),
    *_gsys(),
    role="ICON_OCS",
)


# --------------------------------------------------------------------------------------------
# Data-source session control (written when ICON's use-dss-monitor is on)

def _dss(name: str, role: str) -> sa.Table:
    return _table(
        name,
        col("DSS_ID", Int, primary_key=True, autoincrement=False),
        col("ICON_DBID", Int, primary_key=True, autoincrement=False),
        col("DS_DBID", Int), col("DS_DBID_PRIM", Int), col("DS2_DBID", Int),
        col("DS_TYPE", Int),  # 1 T-Server, 2 Interaction Server, 3 OCS, 4 Config Server
        col("ICON_STIME", Ts), col("DSCONN_STIME", Ts), col("DSCONN_SDSTIME", Ts),
        col("DSCONN_SDSTS", Int),
        col("DSCONN_TYPE", Int),  # 1 first, 2 reconnect, 3 source restart, 4 switch, 5 switchover
        col("ICON_ETIME", Ts), col("DSCONN_ETIME", Ts),
        col("FEVENT_ITIME", Ts), col("FEVENT_DSTIME", Ts), col("FEVENT_DSSEQ", Str(255)),
        # Inferred: the same times in UTC seconds, and the last event stored.
        col("DSCONN_STS", Int), col("DSCONN_ETS", Int), col("ICON_ETS", Int),
        col("FEVENT_ITS", Int), col("LEVENT_ITIME", Ts), col("LEVENT_ITS", Int),
        col("LASTCHANGE_TS", Int),
        role=role, kind="dss", time_column="LASTCHANGE_TS",
    )


G_DSS_CFG_PROVIDER = _dss("G_DSS_CFG_PROVIDER", "ICON_CFG")
G_DSS_GCC_PROVIDER = _dss("G_DSS_GCC_PROVIDER", "ICON_CORE")
G_DSS_GLS_PROVIDER = _dss("G_DSS_GLS_PROVIDER", "ICON_CORE")
G_DSS_GUD_PROVIDER = _dss("G_DSS_GUD_PROVIDER", "ICON_CORE")
G_DSS_GOS_PROVIDER = _dss("G_DSS_GOS_PROVIDER", "ICON_OCS")


# --------------------------------------------------------------------------------------------
# Dictionaries

G_DICT_TYPE = _table("G_DICT_TYPE", col("ID", Int, primary_key=True, autoincrement=False),
                     col("NAME", Str(128), nullable=False), role="ICON_CFG", kind="dict",
                     time_column=None)
G_DICTIONARY = _table(
    "G_DICTIONARY",
    col("DICT_TYPE", Int, primary_key=True, autoincrement=False),
    col("ID", Int, primary_key=True, autoincrement=False),
    col("NAME", Str(128), nullable=False),
    col("DESCRIPTION", Str(255)),
    role="ICON_CFG", kind="dict", time_column=None,
)


# The interaction and agent tables serve both roles: a T-Server's IDB is read as ICON_CORE,
# an Interaction Server's as ICON_MM. Principal voice user data and the remote locations of
# inter-site links are voice only.
for _t in idb_metadata.tables.values():
    _t.info["roles"] = (("ICON_CORE", "ICON_MM") if _t.info["role"] == "ICON_CORE"
                        and _t.name not in ("G_CALL_USERDATA", "GSYS_DNPREMOTELOCATION")
                        else (_t.info["role"],))


def tables_for_role(role: str) -> list[sa.Table]:
    return [t for t in idb_metadata.sorted_tables if role in t.info["roles"]]


# --------------------------------------------------------------------------------------------
# Indexes extraction relies on. ICON's own scripts do not create them; gim creates the
# missing ones on every IDB it extracts from (`gim init`, `gim extract`), as the product does
# from 8.5.006; sql/idb/ holds the same statements for DBAs who prefer to run them.

@dataclass(frozen=True)
class IdbIndex:
    name: str
    table: str
    columns: tuple[str, ...]

    def ddl(self) -> str:
        # Plain text, not sa.Index: an Index object would attach itself to the table and be
        # created with it by `gim idb create`.
        return (f"CREATE INDEX IF NOT EXISTS {self.name} ON {self.table} "
                f"({', '.join(self.columns)})")


def extraction_indexes() -> list[IdbIndex]:
    """An index on each extracted table's window column, and on G_CALL's state."""
    indexes = []
    for t in idb_metadata.sorted_tables:
        column = t.info["time_column"]
        if column and t.info["kind"] != "dss":
            indexes.append(IdbIndex(f"gim_ix_{t.name.lower()}_{column.lower()}", t.name,
                                    (column,)))
    indexes.append(IdbIndex("gim_ix_g_call_state", "G_CALL", ("STATE", "LASTCHANGE_TS")))
    return indexes
