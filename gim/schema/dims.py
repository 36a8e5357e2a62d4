"""Dimensions that initialization fills: the calendar (DATE_TIME) and the twelve fixed
lookup dimensions. Their rows live in `gim.schema.seed`.
"""

from __future__ import annotations

import sqlalchemy as sa

from gim.schema.base import Flag, Int, Key, Str, audit_columns, col, table
from gim.schema.meta import metadata


def _dim(name: str, *items: object, comment: str | None = None) -> sa.Table:
    return table(metadata, name, *items, *audit_columns(), category="dimension",
                 comment=comment)


DATE_TIME = _dim(
    "DATE_TIME",
    col("DATE_TIME_KEY", Int, primary_key=True, autoincrement=False),
    col("DATE_TIME_NEXT_KEY", Int, nullable=False),
    col("DATE_TIME_30MIN_KEY", Int, nullable=False),
    col("DATE_TIME_HOUR_KEY", Int, nullable=False),
    col("DATE_TIME_DAY_KEY", Int, nullable=False),
    col("DATE_TIME_WEEK_KEY", Int, nullable=False),
    col("DATE_TIME_MONTH_KEY", Int, nullable=False),
    col("DATE_TIME_QUARTER_KEY", Int, nullable=False),
    col("DATE_TIME_YEAR_KEY", Int, nullable=False),
    col("UTC_OFFSET_MINUTES", Int, nullable=False),  # ours: offset of the calendar zone
    col("CAL_DATE", sa.DateTime, nullable=False),
    col("CAL_DAY_NAME", Str(32), nullable=False),
    col("CAL_DAY_NUM_IN_WEEK", Int, nullable=False),
    col("CAL_DAY_NUM_IN_MONTH", Int, nullable=False),
    col("CAL_DAY_NUM_IN_YEAR", Int, nullable=False),
    col("CAL_WEEK_NUM_IN_YEAR", Int, nullable=False),
    col("CAL_WEEK_YEAR_NUM", Int, nullable=False),
    col("CAL_MONTH_NAME", Str(32), nullable=False),
    col("CAL_MONTH_NUM_IN_YEAR", Int, nullable=False),
    col("CAL_QUARTER_NAME", Str(8), nullable=False),
    col("CAL_QUARTER_NUM_IN_YEAR", Int, nullable=False),
    col("CAL_YEAR_NUM", Int, nullable=False),
    col("CAL_HOUR_24_NUM_IN_DAY", Int, nullable=False),
    col("CAL_MINUTE_NUM_IN_HOUR", Int, nullable=False),
    col("LABEL_YYYY", Str(4), nullable=False),
    col("LABEL_YYYY_QQ", Str(8), nullable=False),
    col("LABEL_YYYY_MM", Str(7), nullable=False),
    col("LABEL_YYYY_WW", Str(8), nullable=False),
    col("LABEL_YYYY_MM_DD", Str(10), nullable=False),
    col("LABEL_YYYY_MM_DD_HH24", Str(13), nullable=False),
    col("LABEL_YYYY_MM_DD_HH24_30INT", Str(16), nullable=False),
    col("LABEL_YYYY_MM_DD_HH24_15INT", Str(16), nullable=False),
    col("LABEL_HH24", Str(2), nullable=False),
    col("LABEL_HH24_MI", Str(5), nullable=False),
    sa.Index("ix_date_time_day", "DATE_TIME_DAY_KEY"),
    comment="Calendar at 15-minute grain; keys are UTC epoch seconds of interval starts.",
)

TECHNICAL_DESCRIPTOR = _dim(
    "TECHNICAL_DESCRIPTOR",
    col("TECHNICAL_DESCRIPTOR_KEY", Int, primary_key=True, autoincrement=False),
    col("TECHNICAL_RESULT", Str(255)),
    col("TECHNICAL_RESULT_CODE", Str(32)),
    col("RESULT_REASON", Str(255)),
    col("RESULT_REASON_CODE", Str(32)),
    col("RESOURCE_ROLE", Str(255)),
    col("RESOURCE_ROLE_CODE", Str(32)),
    col("ROLE_REASON", Str(255)),
    col("ROLE_REASON_CODE", Str(32)),
    sa.UniqueConstraint("TECHNICAL_RESULT_CODE", "RESULT_REASON_CODE", "RESOURCE_ROLE_CODE",
                        "ROLE_REASON_CODE", name="uq_technical_descriptor_codes"),
)

INTERACTION_TYPE = _dim(
    "INTERACTION_TYPE",
    col("INTERACTION_TYPE_KEY", Int, primary_key=True, autoincrement=False),
    col("INTERACTION_TYPE", Str(64)),
    col("INTERACTION_TYPE_CODE", Str(32)),
    col("INTERACTION_SUBTYPE", Str(64)),
    col("INTERACTION_SUBTYPE_CODE", Str(32)),
    col("IGNORE", Flag, nullable=False, server_default="0"),
    sa.UniqueConstraint("INTERACTION_TYPE_CODE", "INTERACTION_SUBTYPE_CODE",
                        name="uq_interaction_type_codes"),
)

MEDIA_TYPE = _dim(
    "MEDIA_TYPE",
    col("MEDIA_TYPE_KEY", Int, primary_key=True, autoincrement=False),
    col("MEDIA_NAME", Str(64)),
    col("MEDIA_NAME_CODE", Str(32)),
    col("IS_ONLINE", Flag, nullable=False, server_default="0"),
    sa.UniqueConstraint("MEDIA_NAME_CODE", name="uq_media_type_code"),
)

RESOURCE_STATE = _dim(
    "RESOURCE_STATE",
    col("RESOURCE_STATE_KEY", Int, primary_key=True, autoincrement=False),
    col("STATE_TYPE", Str(64)),
    col("STATE_TYPE_CODE", Str(32)),
    col("STATE_NAME", Str(64)),
    col("STATE_NAME_CODE", Str(32)),
)

INTERACTION_RESOURCE_STATE = _dim(
    "INTERACTION_RESOURCE_STATE",
    col("INTERACTION_RESOURCE_STATE_KEY", Int, primary_key=True, autoincrement=False),
    col("STATE_NAME", Str(64)),
    col("STATE_NAME_CODE", Str(32)),
    col("STATE_ROLE", Str(64)),
    col("STATE_ROLE_CODE", Str(32)),
    col("STATE_DESCRIPTOR", Str(64)),
    col("STATE_DESCRIPTOR_CODE", Str(32)),
    col("PURGE_FLAG", Flag, nullable=False, server_default="0"),
)

ATTEMPT_DISPOSITION = _dim(
    "ATTEMPT_DISPOSITION",
    col("ATTEMPT_DISPOSITION_KEY", Int, primary_key=True, autoincrement=False),
    col("CAUSE", Str(255)),
    col("CAUSE_ID", Int),
    col("CAUSE_CODE", Str(255)),
    col("DESCRIPTOR", Str(255)),
    col("DESCRIPTOR_CODE", Str(255)),
)


def _ocs_enum(name: str, comment: str) -> sa.Table:
    """The outbound enumerations share one shape: key = the OCS integer, a localizable name
    and a stable code."""
    return _dim(
        name,
        col(f"{name}_KEY", Int, primary_key=True, autoincrement=False),
        col(name, Str(255)),
        col(f"{name}_CODE", Str(32)),
        comment=comment,
    )


CALL_RESULT = _ocs_enum("CALL_RESULT", "Outbound call results (OCS call_result values).")
DIALING_MODE = _ocs_enum("DIALING_MODE", "Outbound dialing modes (OCS dial mode values).")
RECORD_STATUS = _ocs_enum("RECORD_STATUS", "Outbound record statuses (OCS values).")
RECORD_TYPE = _ocs_enum("RECORD_TYPE", "Outbound record types (OCS values).")
CONTACT_INFO_TYPE = _ocs_enum("CONTACT_INFO_TYPE", "Outbound contact types (OCS values).")
CAMPAIGN_GROUP_STATE = _ocs_enum("CAMPAIGN_GROUP_STATE",
                                 "States of a campaign group session (ICON values).")

# The twelve lookup dimensions whose rows are fixed, in the order they are filled.
FIXED_DIMENSIONS: tuple[sa.Table, ...] = (
    ATTEMPT_DISPOSITION, CALL_RESULT, CAMPAIGN_GROUP_STATE, CONTACT_INFO_TYPE, DIALING_MODE,
    INTERACTION_RESOURCE_STATE, INTERACTION_TYPE, MEDIA_TYPE, RECORD_STATUS, RECORD_TYPE,
    RESOURCE_STATE, TECHNICAL_DESCRIPTOR,
)

__all__ = ["DATE_TIME", "FIXED_DIMENSIONS", "Key"]
