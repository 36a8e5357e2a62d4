"""DDL scripts generated from the metadata: `python -m gim.schema.ddl --write` refreshes
sql/<dialect>/infomart.sql and sql/idb/<dialect>/indexes.sql; a test fails when the files
and the metadata drift apart.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateIndex, CreateTable

from gim.schema import metadata
from gim.schema.base import index_applies
from gim.schema.control import SCHEMA_VERSION

DIALECTS = {"postgresql": postgresql.dialect(), "sqlite": sqlite.dialect()}
ROOT = Path(__file__).resolve().parents[2] / "sql"


def render(dialect_name: str, tables: list[sa.Table] | None = None,
           title: str = "Info Mart") -> str:
    dialect = DIALECTS[dialect_name]
    out = [
        f"-- gim {title} schema, version {SCHEMA_VERSION}, for {dialect_name}.",
        "-- Generated from gim/schema by `python -m gim.schema.ddl --write`; do not edit.",
        "-- `gim init` creates the same objects (and, on PostgreSQL, the partitions).",
        "",
    ]
    for table in tables if tables is not None else metadata.sorted_tables:
        out.append(str(CreateTable(table).compile(dialect=dialect)).strip() + ";")
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            if index_applies(index, dialect_name):
                out.append(str(CreateIndex(index).compile(dialect=dialect)).strip() + ";")
        out.append("")
    return "\n".join(out)


def render_idb_indexes(dialect_name: str) -> str:
    """The index statements extraction relies on, for DBAs (sql/idb/<dialect>/indexes.sql)."""
    from gim.schema.idb import extraction_indexes

    lines = [f"-- Indexes gim's extraction relies on, for an ICON IDB on {dialect_name}.",
             "-- gim init and gim extract create the missing ones themselves; this script is",
             "-- for DBAs who prefer to create them beforehand. Generated; do not edit.", ""]
    lines += [index.ddl() + ";" for index in extraction_indexes()]
    return "\n".join(lines) + "\n"


def targets() -> dict[Path, str]:
    out = {ROOT / name / "infomart.sql": render(name) for name in DIALECTS}
    out.update({ROOT / "idb" / name / "indexes.sql": render_idb_indexes(name)
                for name in DIALECTS})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite the files under sql/")
    args = parser.parse_args(argv)
    stale = [p for p, text in targets().items()
             if not p.exists() or p.read_text(encoding="utf-8") != text]
    if args.write:
        for path, text in targets().items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        return 0
    for path in stale:
        print(f"stale: {path}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
