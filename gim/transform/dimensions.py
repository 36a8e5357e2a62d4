"""Dimensions from configuration history: tenants, time zones, resources (agents, DNs,
interaction queues), places, groups, skills, and the group and skill membership facts.

Rebuilt from the GIDB configuration copies on every run (they are small); a row is written
only when it is new or has changed, so unchanged members keep their audit keys.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from gim.schema import facts as f
from gim.transform.sqlkit import (
    assign_keys,
    drop,
    fit,
    lock_shared,
    new_members,
    run,
    temp,
    upsert_changed,
)

# Configuration Server object types (CfgObjectType) of the resources gim keeps.
CFG_PERSON, CFG_DN, CFG_SCRIPT = 3, 2, 22
FAR = 2145916800  # the end key of open spans (calendar.ACTIVE_END_KEY)

# The configuration copies the dimensions are built from.
CFG_TABLES = ("GIDB_GC_TENANT", "GIDB_GC_TIME_ZONE", "GIDB_GC_AGENT", "GIDB_GC_ENDPOINT",
              "GIDB_GC_SWITCH", "GIDB_GC_SCRIPT", "GIDB_GC_PLACE", "GIDB_GC_GROUP",
              "GIDB_GC_SKILL", "GIDB_GCX_GROUP_AGENT", "GIDB_GCX_GROUP_ENDPOINT",
              "GIDB_GCX_GROUP_PLACE", "GIDB_GCX_SKILL_LEVEL")

_DN_TYPES = {1: ("Extension", "EXTENSION", "DN"), 3: ("Queue", "QUEUE", "ACDQueue"),
             4: ("RoutingPoint", "ROUTINGPOINT", "RoutingPoint"),
             5: ("Queue", "QUEUE", "VirtualQueue")}


def _dn_case(column: str, part: int) -> str:
    whens = " ".join(f"WHEN {k} THEN '{v[part]}'" for k, v in _DN_TYPES.items())
    default = ("DN", "DN", "DN")[part]
    return f"CASE {column} {whens} ELSE '{default}' END"


def refresh(conn: Connection, audit: int) -> int:
    """Bring every configuration dimension up to date; returns the rows written."""
    written = 0
    written += _tenants(conn, audit)
    written += _time_zones(conn, audit)
    written += _resources(conn, audit)
    written += _places(conn, audit)
    written += _groups(conn, audit)
    written += _memberships(conn, audit)
    return written


def _tenants(conn: Connection, audit: int) -> int:
    rows = temp(conn, "tx_tenant", """
        SELECT ID AS TENANT_KEY, NAME AS TENANT_NAME, ID AS TENANT_CFG_DBID,
               CREATED_TS AS START_TS, DELETED_TS AS END_TS, 0 AS PURGE_FLAG
        FROM GIDB_GC_TENANT""")
    n = upsert_changed(conn, f.TENANT, rows, ["TENANT_KEY"],
                       ["TENANT_KEY", "TENANT_NAME", "TENANT_CFG_DBID", "START_TS", "END_TS",
                        "PURGE_FLAG"], audit)
    drop(conn, rows)
    return n


def _time_zones(conn: Connection, audit: int) -> int:
    rows = temp(conn, "tx_tz", """
        SELECT ID AS TIME_ZONE_KEY, TENANTID AS TENANT_KEY, NAME AS TIME_ZONE_NAME,
               DESCRIPTION, ID AS TIME_ZONE_CFG_DBID, GMT_OFFSET, IS_DST_OBSERVED,
               CREATED_TS AS START_TS, DELETED_TS AS END_TS
        FROM GIDB_GC_TIME_ZONE""")
    n = upsert_changed(conn, f.TIME_ZONE, rows, ["TIME_ZONE_KEY"],
                       ["TIME_ZONE_KEY", "TENANT_KEY", "TIME_ZONE_NAME", "DESCRIPTION",
                        "TIME_ZONE_CFG_DBID", "GMT_OFFSET", "IS_DST_OBSERVED", "START_TS",
                        "END_TS"], audit)
    drop(conn, rows)
    return n


RESOURCE_COLUMNS = ["RESOURCE_KEY", "TENANT_KEY", "RESOURCE_TYPE", "RESOURCE_TYPE_CODE",
                    "RESOURCE_SUBTYPE", "RESOURCE_NAME", "AGENT_FIRST_NAME",
                    "AGENT_LAST_NAME", "EMPLOYEE_ID", "SWITCH_NAME", "RESOURCE_CFG_DBID",
                    "RESOURCE_CFG_TYPE_ID", "IS_PLACEHOLDER", "START_TS", "END_TS",
                    "PURGE_FLAG"]


def _resources(conn: Connection, audit: int) -> int:
    rows = temp(conn, "tx_resource", f"""
        SELECT CAST(NULL AS INTEGER) AS RESOURCE_KEY, a.TENANTID AS TENANT_KEY,
               'Agent' AS RESOURCE_TYPE, 'AGENT' AS RESOURCE_TYPE_CODE,
               'Agent' AS RESOURCE_SUBTYPE, a.USERNAME AS RESOURCE_NAME,
               a.FIRSTNAME AS AGENT_FIRST_NAME, a.LASTNAME AS AGENT_LAST_NAME,
               a.EMPLOYEEID AS EMPLOYEE_ID, CAST(NULL AS VARCHAR(255)) AS SWITCH_NAME,
               a.ID AS RESOURCE_CFG_DBID, {CFG_PERSON} AS RESOURCE_CFG_TYPE_ID,
               0 AS IS_PLACEHOLDER, a.CREATED_TS AS START_TS, a.DELETED_TS AS END_TS,
               0 AS PURGE_FLAG
        FROM GIDB_GC_AGENT a
        UNION ALL
        SELECT NULL, e.TENANTID, {_dn_case('e.TYPE', 0)}, {_dn_case('e.TYPE', 1)},
               {_dn_case('e.TYPE', 2)}, e.DN, NULL, NULL, NULL, s.NAME, e.ID, {CFG_DN}, 0,
               e.CREATED_TS, e.DELETED_TS, 0
        FROM GIDB_GC_ENDPOINT e LEFT JOIN GIDB_GC_SWITCH s ON s.ID = e.SWITCHID
        UNION ALL
        SELECT NULL, c.TENANTID, 'Queue', 'QUEUE',
               CASE c.TYPE WHEN 1 THEN 'InteractionQueue' WHEN 2 THEN 'Workbin'
                           ELSE 'Script' END,
               c.NAME, NULL, NULL, NULL, NULL, c.ID, {CFG_SCRIPT}, 0, c.CREATED_TS,
               c.DELETED_TS, 0
        FROM GIDB_GC_SCRIPT c""")
    return _write_resources(conn, rows, audit)


def _write_resources(conn: Connection, rows: str, audit: int) -> int:
    # A placeholder invented earlier keeps its key and is corrected when the object's
    # configuration arrives.
    assign_keys(conn, rows, "RESOURCE_KEY", f.RESOURCE_.name, "RESOURCE_KEY",
                ["TENANT_KEY", "RESOURCE_CFG_TYPE_ID", "RESOURCE_CFG_DBID"], "RESOURCE_KEY",
                shared=True)
    n = upsert_changed(conn, f.RESOURCE_, rows, ["RESOURCE_KEY"], RESOURCE_COLUMNS, audit)
    drop(conn, rows)
    return n


def placeholder_resources(conn: Connection, refs: str, audit: int) -> int:
    """Invent RESOURCE_ rows for configuration objects that facts name but configuration
    never described. `refs` is a temp table of (TENANT_KEY, RESOURCE_CFG_TYPE_ID,
    RESOURCE_CFG_DBID). Returns how many were invented."""
    rows, _ = new_members(conn, "tx_placeholder", f"""
        SELECT DISTINCT CAST(NULL AS INTEGER) AS RESOURCE_KEY, r.TENANT_KEY,
               'Unknown' AS RESOURCE_TYPE, 'UNKNOWN' AS RESOURCE_TYPE_CODE,
               'Unknown' AS RESOURCE_SUBTYPE,
               'Unknown ' || CAST(r.RESOURCE_CFG_DBID AS VARCHAR(32)) AS RESOURCE_NAME,
               CAST(NULL AS VARCHAR(64)) AS AGENT_FIRST_NAME,
               CAST(NULL AS VARCHAR(64)) AS AGENT_LAST_NAME,
               CAST(NULL AS VARCHAR(255)) AS EMPLOYEE_ID,
               CAST(NULL AS VARCHAR(255)) AS SWITCH_NAME, r.RESOURCE_CFG_DBID,
               r.RESOURCE_CFG_TYPE_ID, 1 AS IS_PLACEHOLDER,
               CAST(NULL AS INTEGER) AS START_TS, CAST(NULL AS INTEGER) AS END_TS,
               0 AS PURGE_FLAG
        FROM {refs} r
        WHERE r.RESOURCE_CFG_DBID IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM {f.RESOURCE_.name} x WHERE x.TENANT_KEY = r.TENANT_KEY
            AND x.RESOURCE_CFG_TYPE_ID = r.RESOURCE_CFG_TYPE_ID
            AND x.RESOURCE_CFG_DBID = r.RESOURCE_CFG_DBID)""")
    return _write_resources(conn, rows, audit)


def _places(conn: Connection, audit: int) -> int:
    rows = temp(conn, "tx_place", """
        SELECT CAST(NULL AS INTEGER) AS PLACE_KEY, TENANTID AS TENANT_KEY,
               NAME AS PLACE_NAME, ID AS PLACE_CFG_DBID, 0 AS IS_PLACEHOLDER,
               CREATED_TS AS START_TS, DELETED_TS AS END_TS, 0 AS PURGE_FLAG
        FROM GIDB_GC_PLACE""")
    return _write_places(conn, rows, audit)


def _write_places(conn: Connection, rows: str, audit: int) -> int:
    assign_keys(conn, rows, "PLACE_KEY", f.PLACE.name, "PLACE_KEY",
                ["TENANT_KEY", "PLACE_CFG_DBID"], "PLACE_KEY", shared=True)
    n = upsert_changed(conn, f.PLACE, rows, ["PLACE_KEY"],
                       ["PLACE_KEY", "TENANT_KEY", "PLACE_NAME", "PLACE_CFG_DBID",
                        "IS_PLACEHOLDER", "START_TS", "END_TS", "PURGE_FLAG"], audit)
    drop(conn, rows)
    return n


def placeholder_places(conn: Connection, refs: str, audit: int) -> int:
    """Places that facts name but configuration never described (refs: TENANT_KEY,
    PLACE_CFG_DBID)."""
    rows, _ = new_members(conn, "tx_place_ph", f"""
        SELECT DISTINCT CAST(NULL AS INTEGER) AS PLACE_KEY, r.TENANT_KEY,
               'Unknown ' || CAST(r.PLACE_CFG_DBID AS VARCHAR(32)) AS PLACE_NAME,
               r.PLACE_CFG_DBID, 1 AS IS_PLACEHOLDER, CAST(NULL AS INTEGER) AS START_TS,
               CAST(NULL AS INTEGER) AS END_TS, 0 AS PURGE_FLAG
        FROM {refs} r WHERE r.PLACE_CFG_DBID IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM {f.PLACE.name} x WHERE x.TENANT_KEY = r.TENANT_KEY
            AND x.PLACE_CFG_DBID = r.PLACE_CFG_DBID)""")
    return _write_places(conn, rows, audit)


def _groups(conn: Connection, audit: int) -> int:
    rows = temp(conn, "tx_group", """
        SELECT ID AS GROUP_KEY, TENANTID AS TENANT_KEY, NAME AS GROUP_NAME,
               CASE TYPE WHEN 1 THEN 'Agent' WHEN 2 THEN 'Place' WHEN 3 THEN 'DN'
                         ELSE 'Unknown' END AS GROUP_TYPE,
               CASE TYPE WHEN 1 THEN 'AGENT' WHEN 2 THEN 'PLACE' WHEN 3 THEN 'DN'
                         ELSE 'UNKNOWN' END AS GROUP_TYPE_CODE,
               ID AS GROUP_CFG_DBID, CREATED_TS AS START_TS, DELETED_TS AS END_TS,
               0 AS PURGE_FLAG
        FROM GIDB_GC_GROUP""")
    n = upsert_changed(conn, f.GROUP_, rows, ["GROUP_KEY"],
                       ["GROUP_KEY", "TENANT_KEY", "GROUP_NAME", "GROUP_TYPE",
                        "GROUP_TYPE_CODE", "GROUP_CFG_DBID", "START_TS", "END_TS",
                        "PURGE_FLAG"], audit)
    drop(conn, rows)
    skills = temp(conn, "tx_skill", """
        SELECT ID AS SKILL_KEY, TENANTID AS TENANT_KEY, NAME AS SKILL_NAME,
               ID AS SKILL_CFG_DBID, 0 AS PURGE_FLAG FROM GIDB_GC_SKILL""")
    n += upsert_changed(conn, f.SKILL, skills, ["SKILL_KEY"],
                        ["SKILL_KEY", "TENANT_KEY", "SKILL_NAME", "SKILL_CFG_DBID",
                         "PURGE_FLAG"], audit)
    drop(conn, skills)
    return n


def _memberships(conn: Connection, audit: int) -> int:
    """Group and skill membership intervals from the configuration links: agents in agent
    groups and DNs (queues, routing points) in DN groups, as RESOURCE_GROUP_FACT_ rows of
    their resources; agents' skills, as RESOURCE_SKILL_FACT_ rows; places in place
    groups, as PLACE_GROUP_FACT_ rows."""
    n = 0
    person = (f"JOIN {f.RESOURCE_.name} r ON r.RESOURCE_CFG_TYPE_ID = {CFG_PERSON} "
              "AND r.RESOURCE_CFG_DBID = l.AGENTID")
    for target, link, member, extra, owner in (
            (f.RESOURCE_GROUP_FACT_, "GIDB_GCX_GROUP_AGENT", "GROUPID AS GROUP_KEY", "",
             person),
            (f.RESOURCE_GROUP_FACT_, "GIDB_GCX_GROUP_ENDPOINT", "GROUPID AS GROUP_KEY", "",
             f"JOIN {f.RESOURCE_.name} r ON r.RESOURCE_CFG_TYPE_ID = {CFG_DN} "
             "AND r.RESOURCE_CFG_DBID = l.ENDPOINTID"),
            (f.RESOURCE_SKILL_FACT_, "GIDB_GCX_SKILL_LEVEL", "SKILLID AS SKILL_KEY",
             ", l.SLEVEL AS SKILL_LEVEL", person),
            (f.PLACE_GROUP_FACT_, "GIDB_GCX_GROUP_PLACE", "GROUPID AS GROUP_KEY", "",
             f"JOIN {f.PLACE.name} r ON r.PLACE_CFG_DBID = l.PLACEID")):
        key_column = target.primary_key.columns.values()[0].name
        rows = temp(conn, "tx_member", f"""
            SELECT r.{key_column}, l.{member}, l.CREATED_TS AS START_TS{extra},
                   r.TENANT_KEY, l.DELETED_TS AS END_TS,
                   (l.CREATED_TS / 900) * 900 AS START_DATE_TIME_KEY,
                   COALESCE((l.DELETED_TS / 900) * 900, {FAR}) AS END_DATE_TIME_KEY,
                   CASE WHEN l.DELETED_TS IS NULL THEN 1 ELSE 0 END AS ACTIVE_FLAG,
                   0 AS PURGE_FLAG
            FROM {link} l {owner}
            WHERE l.CREATED_TS IS NOT NULL""")
        key = [c.name for c in target.primary_key.columns]
        cols = [c.name for c in target.columns
                if c.name not in ("CREATE_AUDIT_KEY", "UPDATE_AUDIT_KEY")]
        n += upsert_changed(conn, target, rows, key, cols, audit)
        drop(conn, rows)
    return n


def reason_keys(conn: Connection, rows: str, audit: int) -> None:
    """RESOURCE_STATE_REASON members for the reasons in temp table `rows` (TENANT_KEY,
    REASON_TYPE_CODE, HARDWARE_REASON, SOFTWARE_REASON_KEY, SOFTWARE_REASON_VALUE,
    WORKMODE_CODE, RESOURCE_STATE_REASON_KEY); fills its key column."""
    fit(conn, f.RESOURCE_STATE_REASON, rows)  # cut first, so that cut values match
    unknown = f"SELECT 1 FROM {f.RESOURCE_STATE_REASON.name} WHERE RESOURCE_STATE_REASON_KEY = 0"
    if run(conn, unknown).first() is None:
        lock_shared(conn)
        run(conn, f"""INSERT INTO {f.RESOURCE_STATE_REASON.name} (RESOURCE_STATE_REASON_KEY,
            TENANT_KEY, REASON_TYPE, REASON_TYPE_CODE, HARDWARE_REASON, SOFTWARE_REASON_KEY,
            SOFTWARE_REASON_VALUE, WORKMODE, WORKMODE_CODE, PURGE_FLAG, CREATE_AUDIT_KEY,
            UPDATE_AUDIT_KEY) SELECT 0, 0, 'Unknown', 'UNKNOWN', NULL, NULL, NULL, 'Unknown',
            'UNKNOWN', 0, 0, 0 WHERE NOT EXISTS ({unknown})""")
    distinct = temp(conn, f"{rows}_d", f"""
        SELECT DISTINCT CAST(NULL AS INTEGER) AS RESOURCE_STATE_REASON_KEY, TENANT_KEY,
               REASON_TYPE_CODE, HARDWARE_REASON, SOFTWARE_REASON_KEY, SOFTWARE_REASON_VALUE,
               WORKMODE_CODE FROM {rows}""")
    natural = ["TENANT_KEY", "REASON_TYPE_CODE", "HARDWARE_REASON", "SOFTWARE_REASON_KEY",
               "SOFTWARE_REASON_VALUE", "WORKMODE_CODE"]
    assign_keys(conn, distinct, "RESOURCE_STATE_REASON_KEY", f.RESOURCE_STATE_REASON.name,
                "RESOURCE_STATE_REASON_KEY", natural, "RESOURCE_STATE_REASON_KEY",
                nullable=natural, shared=True)
    run(conn, f"""INSERT INTO {f.RESOURCE_STATE_REASON.name} (RESOURCE_STATE_REASON_KEY,
        TENANT_KEY, REASON_TYPE, REASON_TYPE_CODE, HARDWARE_REASON, SOFTWARE_REASON_KEY,
        SOFTWARE_REASON_VALUE, WORKMODE, WORKMODE_CODE, PURGE_FLAG, CREATE_AUDIT_KEY,
        UPDATE_AUDIT_KEY)
        SELECT d.RESOURCE_STATE_REASON_KEY, d.TENANT_KEY,
               CASE d.REASON_TYPE_CODE WHEN 'HARDWARE' THEN 'Hardware' ELSE 'Software' END,
               d.REASON_TYPE_CODE, d.HARDWARE_REASON, d.SOFTWARE_REASON_KEY,
               d.SOFTWARE_REASON_VALUE, d.WORKMODE_CODE, d.WORKMODE_CODE, 0, {audit},
               {audit}
        FROM {distinct} d WHERE NOT EXISTS (SELECT 1 FROM {f.RESOURCE_STATE_REASON.name} x
             WHERE x.RESOURCE_STATE_REASON_KEY = d.RESOURCE_STATE_REASON_KEY)""")
    match = " AND ".join(
        f"((d.{c} = {rows}.{c}) OR (d.{c} IS NULL AND {rows}.{c} IS NULL))" for c in natural)
    run(conn, f"UPDATE {rows} SET RESOURCE_STATE_REASON_KEY = (SELECT "
              f"d.RESOURCE_STATE_REASON_KEY FROM {distinct} d WHERE {match})")
    drop(conn, distinct)
