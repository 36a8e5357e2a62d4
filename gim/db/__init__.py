"""Database access: engines, dialect operations and identifier safety."""

from gim.db.engine import (
    check_connection,
    describe_db_error,
    is_postgres,
    label_of,
    make_engine,
    read_conn,
    write_tx,
)
from gim.db.ops import Ops, Partition, ops_for, partition_name, safe_identifier

__all__ = [
    "Ops",
    "Partition",
    "check_connection",
    "describe_db_error",
    "is_postgres",
    "label_of",
    "make_engine",
    "ops_for",
    "partition_name",
    "read_conn",
    "safe_identifier",
    "write_tx",
]
