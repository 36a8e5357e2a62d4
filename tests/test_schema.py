"""Schema as data: the DDL under sql/ matches the metadata; names follow the conventions."""

from __future__ import annotations

from gim.schema import ddl, metadata, partitioned_tables


def test_sql_files_match_the_metadata():
    for path, text in ddl.targets().items():
        assert path.exists(), f"{path} missing: run python -m gim.schema.ddl --write"
        assert path.read_text(encoding="utf-8") == text, \
            f"{path} is stale: run python -m gim.schema.ddl --write"


def test_names_are_upper_case_and_categorized():
    for table in metadata.sorted_tables:
        assert table.name == table.name.upper()
        assert table.info.get("category") in {"control", "dimension", "fact", "gidb",
                                              "staging", "aggregate", "merge"}
        for column in table.columns:
            assert column.name == column.name.upper(), (table.name, column.name)


def test_partitioned_tables_have_their_key_in_the_primary_key():
    assert partitioned_tables()
    for table in partitioned_tables():
        key = table.info["partition_by"]
        assert key in table.c
        assert key in {c.name for c in table.primary_key.columns}, table.name
