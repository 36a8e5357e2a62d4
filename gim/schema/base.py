"""Helpers to declare tables once, in the product's upper-case names.

Names are emitted unquoted, so PostgreSQL folds them to lower case and reports written as
`SELECT ... FROM INTERACTION_FACT` work on both databases.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

# Surrogate keys and audit keys: numeric(19) in the product, bigint here (same range for
# any key gim can generate, and much cheaper to index and join).
Key = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Int = sa.Integer
Flag = sa.SmallInteger


def Str(length: int) -> sa.String:  # noqa: N802 - reads like a type
    return sa.String(length)


def col(name: str, type_: Any, *args: Any, **kw: Any) -> sa.Column:
    kw.setdefault("nullable", not kw.get("primary_key", False))
    return sa.Column(name, type_, *args, quote=False, **kw)


def table(metadata: sa.MetaData, name: str, *items: Any, partition_by: str | None = None,
          category: str, comment: str | None = None, ours: bool = False) -> sa.Table:
    """Declare a table.

    partition_by: the epoch-seconds column PostgreSQL range-partitions the table on (its
    partitions are partitioning-interval-size-gim seconds long).
    category: control | dimension | fact | gidb | staging | aggregate (drives export, purge).
    ours: True for tables gim adds that the product does not have.
    """
    kw: dict[str, Any] = {}
    if partition_by:
        kw["postgresql_partition_by"] = f"RANGE ({partition_by})"
    t = sa.Table(name, metadata, *items, quote=False, comment=comment, **kw)
    t.info.update(category=category, ours=ours)
    if partition_by:
        t.info.update(partition_by=partition_by)
    return t


def audit_columns() -> list[sa.Column]:
    return [
        col("CREATE_AUDIT_KEY", Key, nullable=False),
        col("UPDATE_AUDIT_KEY", Key, nullable=False),
    ]


def index_applies(index: sa.Index, dialect_name: str) -> bool:
    """Whether `index` is made on a database of that dialect (some are made on one only,
    in a form that suits its planner; see gidb._lookup)."""
    return index.info.get("dialect") in (None, dialect_name)
