"""Control tables (CTL_*): schema version, job runs, audit log, extraction and transformation
history, GDPR history, and the counters gim draws keys from.
"""

from __future__ import annotations

import sqlalchemy as sa

from gim.schema.base import Int, Key, Str, col, table
from gim.schema.meta import metadata

# The schema version this code writes; `gim migrate` brings older Info Marts up to it.
# 2: CTL_ETL_HISTORY.START_TS_MS. 3: GIDB_GSYS_DNPREMOTELOCATION (added by ensure_schema).
# 4: the voice merge (MRG_G_CALL_V, merge columns of GIDB_G_CALL_V, IS-Link indexes).
SCHEMA_VERSION = 7

# Ours: one row per schema version applied to this Info Mart (the product keeps its version
# in a table of this name whose columns are not documented).
CTL_SCHEMA_INFO = table(
    metadata, "CTL_SCHEMA_INFO",
    col("SCHEMA_VERSION", Int, primary_key=True, autoincrement=False),
    col("GIM_VERSION", Str(32), nullable=False),
    col("APPLIED_TS", Int, nullable=False),
    col("JOB_ID", Str(64)),
    col("DESCRIPTION", Str(255)),
    category="control",
    comment="Schema versions applied to this Info Mart; the highest is the current one.",
)

# One row per job run, written RUNNING when the job starts and COMPLETE / FAILED when it
# ends. The product documents only the view over it (job, start, end, duration, status);
# the other columns are ours.
CTL_ETL_HISTORY = table(
    metadata, "CTL_ETL_HISTORY",
    col("JOB_ID", Str(64), primary_key=True),
    col("JOB_NAME", Str(32), nullable=False),
    col("JOB_VERSION", Str(64), nullable=False),
    col("LOCK_NAME", Str(64), nullable=False),
    col("COMMAND", Str(255)),
    col("HOST_NAME", Str(255), nullable=False),
    col("PID", Int, nullable=False),
    col("START_TS", Int, nullable=False),
    # The start in milliseconds (schema 2): tells apart the runs of one job that start in
    # the same second, so that `gim status` shows the latest. NULL never once migrated.
    col("START_TS_MS", Key),
    col("END_TS", Int),
    col("STATUS", Str(16), nullable=False),
    col("EXIT_CODE", Int),
    col("ROW_COUNT", Key),
    col("COUNTS", sa.Text),
    col("MESSAGE", Str(1024)),
    col("CREATED_TS", Int, nullable=False),
    sa.Index("ix_ctl_etl_history_job", "JOB_NAME", "START_TS"),
    sa.Index("ix_ctl_etl_history_job_ms", "JOB_NAME", "START_TS_MS"),
    sa.Index("ix_ctl_etl_history_status", "STATUS"),
    category="control",
)

# One row per logical transaction committed by gim; its AUDIT_KEY is stamped on every row
# that transaction wrote (CREATE_AUDIT_KEY / UPDATE_AUDIT_KEY). Partitioned on CREATED_TS on
# PostgreSQL, so the partition key joins the primary key.
CTL_AUDIT_LOG = table(
    metadata, "CTL_AUDIT_LOG",
    col("AUDIT_KEY", Key, primary_key=True, autoincrement=False),
    col("JOB_ID", Str(64), nullable=False),
    col("JOB_NAME", Str(32)),  # ours: which job wrote the transaction
    col("CREATED", sa.DateTime, nullable=False),
    col("INSERTED", sa.DateTime),
    col("PROCESSING_STATUS_KEY", Int, nullable=False, server_default="0"),
    col("MIN_START_DATE_TIME_KEY", Int, nullable=False),
    col("MAX_START_DATE_TIME_KEY", Int, nullable=False),
    col("MAX_CHUNK_TS", Int),
    col("DATA_SOURCE_KEY", Int),
    col("DAP_NAME", Str(255)),  # ours
    col("TABLE_NAME", Str(255)),  # ours: main table of the transaction
    col("ROW_COUNT", Int),
    col("CREATED_TS", Int, primary_key=True, autoincrement=False),
    sa.Index("ix_ctl_audit_log_job", "JOB_ID"),
    sa.Index("ix_ctl_audit_log_name", "JOB_NAME", "AUDIT_KEY"),
    partition_by="CREATED_TS",
    category="control",
)

# Incremental extraction history: one row per (IDB table, data source) per committed chunk.
CTL_EXTRACT_HISTORY = table(
    metadata, "CTL_EXTRACT_HISTORY",
    col("TABLE_NAME", Str(255), primary_key=True),
    col("DATA_SOURCE_KEY", Int, primary_key=True, autoincrement=False),
    col("DATA_SOURCE_TYPE", Int),
    col("ROW_COUNT", Int),
    col("MAX_TIME", sa.DateTime),
    col("MAX_TS", Int),
    col("ICON_DBID", Int, primary_key=True, autoincrement=False, server_default="0"),
    col("DSS_ID", Int),
    col("PROVIDERTAG", Int),
    col("EXTRACT_START_TIME", sa.DateTime),
    col("EXTRACT_END_TIME", sa.DateTime),
    col("JOB_ID", Str(64), primary_key=True),
    col("JOB_NAME", Str(32)),
    col("JOB_VERSION", Str(64)),
    col("DAP_NAME", Str(255)),
    col("CREATE_AUDIT_KEY", Key, primary_key=True, autoincrement=False),
    col("CREATED_TS", Int, primary_key=True, autoincrement=False),
    partition_by="CREATED_TS",
    category="control",
)

# Transformation progress: one row per extraction chunk (audit key) the transformation has
# read, recorded in the transaction that made its interactions and sessions pending. Chunks
# are tracked one by one, not by a highest key, because concurrent extractions may commit
# their keys out of order.
CTL_TRANSFORM_HISTORY = table(
    metadata, "CTL_TRANSFORM_HISTORY",
    col("JOB_ID", Str(64), nullable=False),
    col("JOB_VERSION", Str(64)),
    col("HWM_NAME", Str(255), primary_key=True),  # the GIDB table the chunk loaded
    col("HWM_VALUE", Key, primary_key=True, autoincrement=False),  # the chunk's audit key
    col("HWM_VALUE2", Str(255)),
    col("TRANSFORM_START_TIME", sa.DateTime),
    col("TRANSFORM_END_TIME", sa.DateTime),
    col("ROW_COUNT", Int),
    col("AUDIT_KEY", Key, nullable=False),  # the transformation transaction that read it
    col("CREATED_TS", Int, primary_key=True, autoincrement=False),
    sa.Index("ix_ctl_transform_history_value", "HWM_VALUE"),
    partition_by="CREATED_TS",
    category="control",
)

# GDPR requests processed: one row per field that may have held a value named in an
# "export" or "forget" request, with the value found ('NULL' when the field was empty).
# It holds personal data, hence the short retention (days-to-keep-gdpr-history).
CTL_GDPR_HISTORY = table(
    metadata, "CTL_GDPR_HISTORY",
    col("GDPR_HISTORY_KEY", Key, primary_key=True, autoincrement=False),  # ours
    col("REQUEST_ID", Str(255), nullable=False),
    col("REQUEST_TYPE", Str(16), nullable=False),  # export | forget
    col("REQUEST_FILE", Str(255)),
    col("TABLE_NAME", Str(255), nullable=False),
    col("COLUMN_NAME", Str(255), nullable=False),
    col("ROW_ID", Str(255)),
    col("VALUE", Str(1024), nullable=False),
    col("JOB_ID", Str(64), nullable=False),
    col("CREATED_TS", Int, nullable=False),
    sa.Index("ix_ctl_gdpr_history_created", "CREATED_TS"),
    category="control",
)

# Ours: counters keys are drawn from on SQLite (PostgreSQL uses sequences).
CTL_KEY_SEQUENCE = table(
    metadata, "CTL_KEY_SEQUENCE",
    col("SEQUENCE_NAME", Str(64), primary_key=True),
    col("LAST_VALUE", Key, nullable=False),
    category="control",
    ours=True,
)

# Ours: settings fixed when the Info Mart was initialized (calendar time zone and week rule,
# ETL start date). Changing them afterwards would make the calendar inconsistent, so jobs
# compare the configuration with these and refuse a change.
CTL_INFOMART_SETTINGS = table(
    metadata, "CTL_INFOMART_SETTINGS",
    col("SETTING_NAME", Str(64), primary_key=True),
    col("SETTING_VALUE", Str(255), nullable=False),
    col("UPDATED_TS", Int, nullable=False),
    category="control",
    ours=True,
)

# Data sources: one row per logical source gim extracts, a DAP or the HA set of DAPs whose
# IDBs hold the same data; its DATA_SOURCE_KEY is stamped on every GIDB row that came from
# it, whichever IDB of the set served the row (CTL_AUDIT_LOG and CTL_EXTRACT_HISTORY say
# which DAP served each chunk). The columns after DATA_SOURCE_KEY are ours.
CTL_DS = table(
    metadata, "CTL_DS",
    col("DATA_SOURCE_KEY", Int, primary_key=True, autoincrement=False),
    col("SOURCE_NAME", Str(255), nullable=False, unique=True),  # HA_SET, or the DAP's name
    col("HA_SET", Str(255)),
    col("DAP_NAMES", Str(1024), nullable=False),  # the DAPs configured at the last run
    col("ROLES", Str(255), nullable=False),
    col("TENANT", Str(255)),
    col("CREATED_TS", Int, nullable=False),
    col("UPDATED_TS", Int, nullable=False),
    category="control",
)

# Ours: one row per DAP gim has read; its DAP_KEY is stamped on the GIDB rows read from its
# IDB, and with the IDB's own row ID identifies them.
CTL_DAP = table(
    metadata, "CTL_DAP",
    col("DAP_KEY", Int, primary_key=True, autoincrement=False),
    col("DAP_NAME", Str(255), nullable=False, unique=True),
    col("DATA_SOURCE_KEY", Int, nullable=False),  # the source it belongs to now
    col("CREATED_TS", Int, nullable=False),
    col("UPDATED_TS", Int, nullable=False),
    category="control",
    ours=True,
)

# Ours: the committed high-water mark of each (logical source, GIDB table): the end of the
# last extracted window, which the next window starts at. It commits with the chunk it marks.
CTL_EXTRACT_HWM = table(
    metadata, "CTL_EXTRACT_HWM",
    col("SOURCE_NAME", Str(255), primary_key=True),
    col("TABLE_NAME", Str(64), primary_key=True),
    col("MARK_TS", Int, nullable=False),
    col("DAP_NAME", Str(255), nullable=False),  # the DAP the last window came from
    col("ROW_COUNT", Key, nullable=False),  # rows extracted so far
    col("JOB_ID", Str(64), nullable=False),
    col("AUDIT_KEY", Key, nullable=False),
    col("UPDATED_TS", Int, nullable=False),
    category="control",
    ours=True,
)
