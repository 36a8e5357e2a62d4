"""The Info Mart schema, declared once as SQLAlchemy metadata; DDL and docs derive from it."""

from gim.schema import control, dims, facts, gidb  # noqa: F401 - registers the tables
from gim.schema.meta import metadata

__all__ = ["metadata", "tables_in", "partitioned_tables"]


def tables_in(category: str):  # noqa: ANN201
    return [t for t in metadata.sorted_tables if t.info.get("category") == category]


def partitioned_tables():  # noqa: ANN201
    return [t for t in metadata.sorted_tables if t.info.get("partition_by")]
