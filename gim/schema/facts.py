"""The dimensional model the transformation writes: configuration dimensions, interaction
facts (IF, IRF, MSF), agent-activity facts (SM_*), user-data extensions, discards, and the
queue of intervals waiting for aggregation.

Column lists follow the product's physical data model where it is documented; columns that
are gim's own say so. Fact tables are range-partitioned on START_DATE_TIME_KEY on PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa

from gim.schema.base import Flag, Int, Key, Str, audit_columns, col, table
from gim.schema.meta import metadata


def _split(items: tuple) -> tuple[list, list]:
    """Columns first, then indexes and constraints (which may name the audit columns)."""
    cols = [i for i in items if isinstance(i, sa.Column)]
    return cols, [i for i in items if not isinstance(i, sa.Column)]


def _dim(name: str, *items: object, comment: str | None = None, ours: bool = False) -> sa.Table:
    cols, rest = _split(items)
    return table(metadata, name, *cols, *audit_columns(), *rest, category="dimension",
                 comment=comment, ours=ours)


def _fact(name: str, *items: object, comment: str | None = None) -> sa.Table:
    cols, rest = _split(items)
    return table(metadata, name, *cols, *audit_columns(),
                 col("PURGE_FLAG", Flag, nullable=False, server_default="0"), *rest,
                 partition_by="START_DATE_TIME_KEY", category="fact", comment=comment)


def _span() -> list[sa.Column]:
    """The time columns every span fact carries."""
    return [
        col("START_TS", Int, nullable=False),
        col("END_TS", Int),
        col("END_DATE_TIME_KEY", Int, nullable=False),
        col("TOTAL_DURATION", Int, nullable=False),
        col("LEAD_CLIP_DURATION", Int, nullable=False),
        col("TRAIL_CLIP_DURATION", Int, nullable=False),
        col("ACTIVE_FLAG", Flag, nullable=False),
    ]


# --------------------------------------------------------------------------------------------
# Configuration dimensions

TENANT = _dim(
    "TENANT",
    col("TENANT_KEY", Int, primary_key=True, autoincrement=False),  # the tenant's DBID
    col("TENANT_NAME", Str(255), nullable=False),
    col("TENANT_CFG_DBID", Int),
    col("START_TS", Int), col("END_TS", Int),
    col("PURGE_FLAG", Flag, nullable=False, server_default="0"),
)

TIME_ZONE = _dim(
    "TIME_ZONE",
    col("TIME_ZONE_KEY", Int, primary_key=True, autoincrement=False),
    col("TENANT_KEY", Int, nullable=False),
    col("TIME_ZONE_NAME", Str(255)),
    col("DESCRIPTION", Str(255)),
    col("TIME_ZONE_CFG_DBID", Int),
    col("GMT_OFFSET", Int),
    col("IS_DST_OBSERVED", Flag),
    col("START_TS", Int), col("END_TS", Int),
)

# One table for every kind of resource: agents, DNs (queues, routing points, virtual
# queues, extensions), interaction queues. Rows gim had to invent for references to
# configuration objects it never saw have IS_PLACEHOLDER = 1 (ours).
RESOURCE_ = _dim(
    "RESOURCE_",
    col("RESOURCE_KEY", Int, primary_key=True, autoincrement=False),
    col("TENANT_KEY", Int, nullable=False),
    col("RESOURCE_TYPE", Str(255), nullable=False),  # Agent, Queue, RoutingPoint, ...
    col("RESOURCE_TYPE_CODE", Str(32), nullable=False),
    col("RESOURCE_SUBTYPE", Str(255)),
    col("RESOURCE_NAME", Str(255)),
    col("AGENT_FIRST_NAME", Str(64)),
    col("AGENT_LAST_NAME", Str(64)),
    col("EMPLOYEE_ID", Str(255)),
    col("SWITCH_NAME", Str(255)),
    col("RESOURCE_CFG_DBID", Int, nullable=False),
    col("RESOURCE_CFG_TYPE_ID", Int, nullable=False),  # CfgObjectType: 3 person, 2 DN, 22 script
    col("IS_PLACEHOLDER", Flag, nullable=False, server_default="0"),  # ours
    col("START_TS", Int), col("END_TS", Int),
    col("PURGE_FLAG", Flag, nullable=False, server_default="0"),
    sa.UniqueConstraint("TENANT_KEY", "RESOURCE_CFG_TYPE_ID", "RESOURCE_CFG_DBID",
                        name="uq_resource_cfg"),
)

PLACE = _dim(
    "PLACE",
    col("PLACE_KEY", Int, primary_key=True, autoincrement=False),
    col("TENANT_KEY", Int, nullable=False),
    col("PLACE_NAME", Str(255)),
    col("PLACE_CFG_DBID", Int, nullable=False),
    col("IS_PLACEHOLDER", Flag, nullable=False, server_default="0"),  # ours
    col("START_TS", Int), col("END_TS", Int),
    col("PURGE_FLAG", Flag, nullable=False, server_default="0"),
    sa.UniqueConstraint("TENANT_KEY", "PLACE_CFG_DBID", name="uq_place_cfg"),
)

GROUP_ = _dim(
    "GROUP_",
    col("GROUP_KEY", Int, primary_key=True, autoincrement=False),  # the group's DBID
    col("TENANT_KEY", Int, nullable=False),
    col("GROUP_NAME", Str(255), nullable=False),
    col("GROUP_TYPE", Str(64), nullable=False),  # Agent | Place | DN
    col("GROUP_TYPE_CODE", Str(32), nullable=False),
    col("GROUP_CFG_DBID", Int, nullable=False),
    col("START_TS", Int), col("END_TS", Int),
    col("PURGE_FLAG", Flag, nullable=False, server_default="0"),
)

SKILL = _dim(
    "SKILL",
    col("SKILL_KEY", Int, primary_key=True, autoincrement=False),  # the skill's DBID
    col("TENANT_KEY", Int, nullable=False),
    col("SKILL_NAME", Str(255), nullable=False),
    col("SKILL_CFG_DBID", Int, nullable=False),
    col("PURGE_FLAG", Flag, nullable=False, server_default="0"),
)


def _membership(name: str, member: str, extra: list[sa.Column],
                owner: str = "RESOURCE_KEY") -> sa.Table:
    """Configuration-history facts: one row per [START_TS, END_TS) membership."""
    return table(
        metadata, name,
        col(owner, Int, primary_key=True, autoincrement=False),
        col(member, Int, primary_key=True, autoincrement=False),
        col("START_TS", Int, primary_key=True, autoincrement=False),
        *extra,
        col("TENANT_KEY", Int, nullable=False),
        col("END_TS", Int),
        col("START_DATE_TIME_KEY", Int, nullable=False),
        col("END_DATE_TIME_KEY", Int, nullable=False),
        col("ACTIVE_FLAG", Flag, nullable=False),
        *audit_columns(),
        col("PURGE_FLAG", Flag, nullable=False, server_default="0"),
        category="fact",
    )


RESOURCE_GROUP_FACT_ = _membership("RESOURCE_GROUP_FACT_", "GROUP_KEY", [])
RESOURCE_SKILL_FACT_ = _membership("RESOURCE_SKILL_FACT_", "SKILL_KEY",
                                   [col("SKILL_LEVEL", Int)])
PLACE_GROUP_FACT_ = _membership("PLACE_GROUP_FACT_", "GROUP_KEY", [], owner="PLACE_KEY")

RESOURCE_STATE_REASON = _dim(
    "RESOURCE_STATE_REASON",
    col("RESOURCE_STATE_REASON_KEY", Int, primary_key=True, autoincrement=False),
    col("TENANT_KEY", Int, nullable=False),
    col("REASON_TYPE", Str(64)),  # Hardware | Software
    col("REASON_TYPE_CODE", Str(32)),
    col("HARDWARE_REASON", Str(255)),
    col("SOFTWARE_REASON_KEY", Str(255)),
    col("SOFTWARE_REASON_VALUE", Str(255)),
    col("WORKMODE", Str(64)),
    col("WORKMODE_CODE", Str(32)),
    col("PURGE_FLAG", Flag, nullable=False, server_default="0"),
    sa.UniqueConstraint("TENANT_KEY", "REASON_TYPE_CODE", "SOFTWARE_REASON_KEY",
                        "SOFTWARE_REASON_VALUE", "HARDWARE_REASON", "WORKMODE_CODE",
                        name="uq_resource_state_reason"),
)

INTERACTION_DESCRIPTOR = _dim(
    "INTERACTION_DESCRIPTOR",
    col("INTERACTION_DESCRIPTOR_KEY", Int, primary_key=True, autoincrement=False),
    col("TENANT_KEY", Int, nullable=False),
    col("CUSTOMER_SEGMENT", Str(170), nullable=False),
    col("SERVICE_TYPE", Str(170), nullable=False),
    col("SERVICE_SUBTYPE", Str(170), nullable=False),
    col("BUSINESS_RESULT", Str(170), nullable=False),
    col("PURGE_FLAG", Flag, nullable=False, server_default="0"),
    sa.UniqueConstraint("TENANT_KEY", "CUSTOMER_SEGMENT", "SERVICE_TYPE", "SERVICE_SUBTYPE",
                        "BUSINESS_RESULT", name="uq_interaction_descriptor"),
)

# Which attached-data key goes to which user-data extension column (the product's table;
# gim seeds the keys its transformation knows, operators add their own).
CTL_UD_TO_UDE_MAPPING = table(
    metadata, "CTL_UD_TO_UDE_MAPPING",
    col("ID", Int, primary_key=True, autoincrement=False),
    col("UD_KEY_NAME", Str(255), nullable=False),
    col("UDE_TABLE_NAME", Str(30), nullable=False),
    col("UDE_COLUMN_NAME", Str(30), nullable=False),
    col("PROPAGATION_RULE", Str(16), nullable=False),
    col("DEFAULT_VALUE", Str(255)),
    col("ACTIVE_FLAG", Flag, nullable=False),
    col("CONVERT_EXPRESSION", Str(255)),
    category="control",
)


# --------------------------------------------------------------------------------------------
# Interaction facts

INTERACTION_FACT = _fact(
    "INTERACTION_FACT",
    col("INTERACTION_ID", Key, primary_key=True, autoincrement=False),
    col("START_DATE_TIME_KEY", Int, primary_key=True, autoincrement=False),
    col("TENANT_KEY", Int, nullable=False),
    col("INTERACTION_TYPE_KEY", Int, nullable=False),
    col("MEDIA_TYPE_KEY", Int, nullable=False),
    col("MEDIA_SERVER_ROOT_IXN_GUID", Str(50)),  # the root interaction record (IRID)
    col("MEDIA_SERVER_IXN_GUID", Str(50)),  # the root call's CallID / interaction id
    col("SOURCE_ADDRESS", Str(255)),
    col("TARGET_ADDRESS", Str(255)),
    col("SUBJECT", Str(1024)),
    col("STATUS", sa.SmallInteger, nullable=False, server_default="0"),
    col("START_TS", Int, nullable=False),
    col("END_TS", Int),
    col("END_DATE_TIME_KEY", Int, nullable=False),
    col("ACTIVE_FLAG", Flag, nullable=False),
    col("DATA_SOURCE_KEY", Int, nullable=False),  # ours: the DAP it came from
    sa.Index("ix_interaction_fact_root", "MEDIA_SERVER_ROOT_IXN_GUID"),
    sa.Index("ix_interaction_fact_upd", "UPDATE_AUDIT_KEY"),
    comment="One row per customer interaction (accumulating snapshot).",
)

# INTERACTION_FACT.STATUS values (ours; the product records error kinds there):
# 0 complete and consistent;
# 1 terminated artificially after days-to-keep-active-facts: frozen, later rows of it are
#   ignored (so that it stops being re-aggregated);
# 2 partial: its root interaction record is not among its calls (the first call stands in);
# 3 a voice call of it that ICON never terminated ended, for the facts, with its last party;
#   recomputed like any other when rows of it arrive (ICON may terminate it after all).
STATUS_OK, STATUS_ARTIFICIAL_END, STATUS_PARTIAL, STATUS_ENDED_WITH_PARTIES = 0, 1, 2, 3

INTERACTION_RESOURCE_FACT = _fact(
    "INTERACTION_RESOURCE_FACT",
    col("INTERACTION_RESOURCE_ID", Key, primary_key=True, autoincrement=False),
    col("START_DATE_TIME_KEY", Int, primary_key=True, autoincrement=False),
    col("INTERACTION_ID", Key, nullable=False),
    col("INTERACTION_SDT_KEY", Int, nullable=False),
    col("TENANT_KEY", Int, nullable=False),
    col("MEDIA_TYPE_KEY", Int, nullable=False),
    col("INTERACTION_TYPE_KEY", Int, nullable=False),
    col("TECHNICAL_DESCRIPTOR_KEY", Int, nullable=False),
    col("RESOURCE_KEY", Int, nullable=False),
    col("MEDIA_RESOURCE_KEY", Int),  # the DN (voice) the resource used
    col("PLACE_KEY", Int),
    col("RESOURCE_GROUP_COMBINATION_KEY", Int, nullable=False, server_default="-1"),
    col("INTERACTION_DESCRIPTOR_KEY", Int, nullable=False, server_default="-2"),
    col("INTERACTION_RESOURCE_ORDINAL", Int, nullable=False),
    col("RECEIVED_FROM_IXN_RESOURCE_ID", Key),
    col("MEDIATION_SEGMENT_ID", Key),  # the segment that delivered the interaction here
    col("LAST_VQUEUE_RESOURCE_KEY", Int),
    col("LAST_QUEUE_RESOURCE_KEY", Int),
    col("PARTYGUID", Str(50)),  # ours: the ICON party instance this row summarizes
    col("START_TS", Int, nullable=False),
    col("END_TS", Int),
    col("END_DATE_TIME_KEY", Int, nullable=False),
    col("RING_COUNT", Int, nullable=False), col("RING_DURATION", Int, nullable=False),
    col("TALK_COUNT", Int, nullable=False), col("TALK_DURATION", Int, nullable=False),
    col("HOLD_COUNT", Int, nullable=False), col("HOLD_DURATION", Int, nullable=False),
    col("AFTER_CALL_WORK_COUNT", Int, nullable=False),
    col("AFTER_CALL_WORK_DURATION", Int, nullable=False),
    col("CONS_INIT_TALK_COUNT", Int, nullable=False),
    col("CONS_INIT_TALK_DURATION", Int, nullable=False),
    col("CONS_RCV_TALK_COUNT", Int, nullable=False),
    col("CONS_RCV_TALK_DURATION", Int, nullable=False),
    col("MEDIATION_DURATION", Int, nullable=False),
    col("LAST_INTERACTION_RESOURCE", Flag, nullable=False),
    col("TARGET_ADDRESS", Str(255)),
    col("ACTIVE_FLAG", Flag, nullable=False),
    sa.Index("ix_irf_interaction", "INTERACTION_ID"),
    sa.Index("ix_irf_upd", "UPDATE_AUDIT_KEY"),
    comment="One row per resource's attempt to handle an interaction.",
)

MEDIATION_SEGMENT_FACT = _fact(
    "MEDIATION_SEGMENT_FACT",
    col("MEDIATION_SEGMENT_ID", Key, primary_key=True, autoincrement=False),
    col("START_DATE_TIME_KEY", Int, primary_key=True, autoincrement=False),
    col("INTERACTION_ID", Key, nullable=False),
    col("TENANT_KEY", Int, nullable=False),
    col("MEDIA_TYPE_KEY", Int, nullable=False),
    col("INTERACTION_TYPE_KEY", Int, nullable=False),
    col("TECHNICAL_DESCRIPTOR_KEY", Int, nullable=False),
    col("RESOURCE_KEY", Int, nullable=False),  # the queue
    col("RESOURCE_GROUP_COMBINATION_KEY", Int, nullable=False, server_default="-1"),
    col("TARGET_IXN_RESOURCE_ID", Key),  # the IRF it distributed to
    col("TARGET_IXN_RESOURCE_SDT_KEY", Int),
    col("MEDIA_SERVER_IXN_GUID", Str(50)),
    col("START_TS", Int, nullable=False),
    col("END_TS", Int),
    col("END_DATE_TIME_KEY", Int, nullable=False),
    col("MEDIATION_DURATION", Int, nullable=False),
    col("ACTIVE_FLAG", Flag, nullable=False),
    sa.Index("ix_msf_interaction", "INTERACTION_ID"),
    sa.Index("ix_msf_upd", "UPDATE_AUDIT_KEY"),
    comment="One row per stay in a queue, virtual queue or interaction queue.",
)

IXN_RESOURCE_STATE_FACT = _fact(
    "IXN_RESOURCE_STATE_FACT",
    col("IXN_RESOURCE_STATE_FACT_KEY", Key, primary_key=True, autoincrement=False),
    col("START_DATE_TIME_KEY", Int, primary_key=True, autoincrement=False),
    col("TENANT_KEY", Int, nullable=False),
    col("MEDIA_TYPE_KEY", Int, nullable=False),
    col("RESOURCE_KEY", Int, nullable=False),
    col("MEDIA_RESOURCE_KEY", Int, nullable=False, server_default="-1"),
    col("PLACE_KEY", Int, nullable=False, server_default="-1"),
    col("INTERACTION_RESOURCE_STATE_KEY", Int, nullable=False),
    col("INTERACTION_TYPE_KEY", Int, nullable=False),
    col("INTERACTION_RESOURCE_SDT_KEY", Int),
    col("INTERACTION_RESOURCE_ID", Key),
    col("INTERACTION_ID", Key, nullable=False),  # ours: the interaction, for recomputing
    *_span(),
    col("TARGET_ADDRESS", Str(255)),
    sa.Index("ix_ixn_resource_state_interaction", "INTERACTION_ID"),
    sa.Index("ix_ixn_resource_state_upd", "UPDATE_AUDIT_KEY"),
    comment="One row per interaction-related state of an agent (alerting, connected, held, "
            "after-call work) within one of its IRFs.",
)

# --------------------------------------------------------------------------------------------
# Agent activity

SM_RES_SESSION_FACT = _fact(
    "SM_RES_SESSION_FACT",
    col("SM_RES_SESSION_FACT_KEY", Key, primary_key=True, autoincrement=False),
    col("START_DATE_TIME_KEY", Int, primary_key=True, autoincrement=False),
    col("TENANT_KEY", Int, nullable=False),
    col("MEDIA_TYPE_KEY", Int, nullable=False),
    col("RESOURCE_KEY", Int, nullable=False),
    col("RESOURCE_GROUP_COMBINATION_KEY", Int, nullable=False, server_default="-1"),
    col("LOGIN_SESSION_ID", Str(50), nullable=False),  # ours: ICON's LoginSessionID
    col("DATA_SOURCE_KEY", Int, nullable=False),  # ours
    *_span(),
    sa.Index("ix_sm_session_login", "LOGIN_SESSION_ID"),
    sa.Index("ix_sm_session_upd", "UPDATE_AUDIT_KEY"),
    comment="One row per agent login session and media.",
)


def _state_fact(name: str, *extra: sa.Column, comment: str) -> sa.Table:
    return _fact(
        name,
        col(f"{name}_KEY", Key, primary_key=True, autoincrement=False),
        col("START_DATE_TIME_KEY", Int, primary_key=True, autoincrement=False),
        col("TENANT_KEY", Int, nullable=False),
        col("MEDIA_TYPE_KEY", Int, nullable=False),
        col("RESOURCE_KEY", Int, nullable=False),
        col("RESOURCE_GROUP_COMBINATION_KEY", Int, nullable=False, server_default="-1"),
        col("RESOURCE_STATE_KEY", Int, nullable=False),
        *extra,
        col("SM_RES_SESSION_FACT_KEY", Key, nullable=False),  # ours: its session
        *_span(),
        sa.Index(f"ix_{name.lower()}_session", "SM_RES_SESSION_FACT_KEY"),
        sa.Index(f"ix_{name.lower()}_upd", "UPDATE_AUDIT_KEY"),
        comment=comment,
    )


SM_RES_STATE_FACT = _state_fact(
    "SM_RES_STATE_FACT", comment="Contiguous time of an agent in one summarized state.")
SM_RES_STATE_REASON_FACT = _state_fact(
    "SM_RES_STATE_REASON_FACT", col("RESOURCE_STATE_REASON_KEY", Int, nullable=False),
    comment="Time of an agent in a state with a reason code.")

# --------------------------------------------------------------------------------------------
# User data extensions (one row per IRF)


def _ude(name: str, *cols: sa.Column) -> sa.Table:
    return table(
        metadata, name,
        col("INTERACTION_RESOURCE_ID", Key, primary_key=True, autoincrement=False),
        col("START_DATE_TIME_KEY", Int, primary_key=True, autoincrement=False),
        col("TENANT_KEY", Int, nullable=False),
        *cols,
        col("CREATE_AUDIT_KEY", Key, nullable=False, server_default="-1"),
        col("UPDATE_AUDIT_KEY", Key, nullable=False, server_default="0"),
        sa.Index(f"ix_{name.lower()}_upd", "UPDATE_AUDIT_KEY"),
        partition_by="START_DATE_TIME_KEY", category="fact",
    )


IRF_USER_DATA_KEYS = _ude("IRF_USER_DATA_KEYS",
                          col("INTERACTION_DESCRIPTOR_KEY", Int, nullable=False))
IRF_USER_DATA_GEN_1 = _ude(
    "IRF_USER_DATA_GEN_1",
    *(col(c, Str(255)) for c in ("CUSTOMER_ID", "CASE_ID", "TRANSACTION_ID", "ACCOUNT_ID",
                                  "CAUSE_ID", "DESTINATION_ID", "TARGET_ID")),
    col("REVENUE", Int), col("SATISFACTION", Int))
IRF_USER_DATA_CUST_1 = _ude("IRF_USER_DATA_CUST_1",
                            *(col(f"CUSTOM_DATA_{i}", Str(1024)) for i in range(1, 17)))
USER_DATA_TABLES = (IRF_USER_DATA_KEYS, IRF_USER_DATA_GEN_1, IRF_USER_DATA_CUST_1)

# --------------------------------------------------------------------------------------------
# Discards, pending work, aggregation queue

STG_TRANSFORM_DISCARDS = table(
    metadata, "STG_TRANSFORM_DISCARDS",
    col("TABLE_NAME", Str(255), primary_key=True),
    col("GUID", Str(64), primary_key=True),  # the interaction (or row) identity
    col("CODE", Int, primary_key=True, autoincrement=False),
    col("INTERACTION_ID", Key, nullable=False),  # -2 when no interaction could be named
    col("CREATE_AUDIT_KEY", Key, nullable=False),
    col("REASON", Str(255), nullable=False),
    col("ETL_TS", Int, nullable=False),
    col("ETL_DATE_TIME_KEY", Int, nullable=False),
    category="staging",
    comment="Interactions and rows the transformation could not use, and why.",
)

# Ours: interactions and login sessions whose GIDB rows changed and whose facts are to be
# (re)computed, remembered across runs while they wait for their data.
CTL_TRANSFORM_PENDING = table(
    metadata, "CTL_TRANSFORM_PENDING",
    col("KIND", Str(16), primary_key=True),  # interaction | session
    col("DATA_SOURCE_KEY", Int, primary_key=True, autoincrement=False),
    col("ENTITY_ID", Str(64), primary_key=True),  # root IRID | LoginSessionID
    col("SINCE_TS", Int, nullable=False),  # when it was first found waiting
    category="control",
    ours=True,
)

# Ours: the 15-minute intervals whose facts changed, per tenant, for the aggregation job;
# written in the transaction that changed the facts. Whenever an interaction's or a login
# session's facts are written, ended or deleted, every interval it covered before the
# change and every interval it covers after it is queued: from its start to the latest time
# any of its facts names (an IRF's after-call work included; an open fact counts up to its
# start). Aggregates of an interval the queue does not name cannot have changed.
CTL_AGG_QUEUE = table(
    metadata, "CTL_AGG_QUEUE",
    col("TENANT_KEY", Int, primary_key=True, autoincrement=False),
    col("DATE_TIME_KEY", Int, primary_key=True, autoincrement=False),
    col("AUDIT_KEY", Key, nullable=False),  # the latest transaction that touched it
    col("QUEUED_TS", Int, nullable=False),
    category="control",
    ours=True,
)
