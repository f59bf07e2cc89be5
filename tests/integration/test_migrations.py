"""The alembic versions build exactly the schema the code declares: no table, column, index or
type in the metadata that a migration forgot, and nothing a migration made that the code lost."""
from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import migrations
from adapters import throttle
from projections.follower import all_projections, metadata


def schema_differences(engine: sa.Engine, event_store_tables: set[str]) -> list:
    """What alembic's autogenerate would change; the event store's own tables (the
    eventsourcing library's, not the migrations') are left out."""
    all_projections()  # every read model's tables are on the metadata

    def ours(name: str | None, type_: str, parent_names: dict) -> bool:
        table = name if type_ == "table" else parent_names.get("table_name")
        return table not in event_store_tables

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": ours})
        return compare_metadata(context, [metadata, throttle.metadata])


def event_store_tables(runtime) -> set[str]:
    return {runtime.app.recorder.events_table_name}


def test_alembic_head_builds_the_schema_the_code_declares(runtime):
    assert migrations.current_revision(runtime.writer) is not None
    assert schema_differences(runtime.writer, event_store_tables(runtime)) == []


def test_a_table_missing_from_the_migrations_is_found(runtime):
    extra = sa.Table("jobs_extra_probe", metadata, sa.Column("id", sa.Integer, primary_key=True))
    try:
        assert any(diff[0] == "add_table" and diff[1].name == "jobs_extra_probe"
                   for diff in schema_differences(runtime.writer, event_store_tables(runtime)))
    finally:
        metadata.remove(extra)
