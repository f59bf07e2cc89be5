"""The alembic versions build exactly the schema the code declares: no table, column, index or
type in the metadata that a migration forgot, and nothing a migration made that the code lost."""
from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import migrations
from adapters import session_revocations, throttle
from adapters.event_seals import seals_table_name
from adapters.personal_keys import erasures_table, keys_table, people_table, subjects_table
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
        return compare_metadata(context, [metadata, throttle.metadata, session_revocations.metadata])


def event_store_tables(runtime) -> set[str]:
    name = runtime.app.recorder.events_table_name
    # the events, their seals (adapters.event_seals), the personal keys, people, subjects and erasures
    # (adapters.personal_keys)
    return {name, seals_table_name(name), keys_table(name), erasures_table(name), people_table(name),
            subjects_table(name)}


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


def test_0003_widens_job_and_usage_figures_keeping_the_rows(database_url):
    """A site at 0002 with rows keeps them, and then holds sheets beyond 32 bits (SQLite keeps
    its WITHOUT ROWID usage table and its rowid job numbers)."""
    from adapters.stores import read_model_engine

    engine = read_model_engine(database_url, writer=True)
    try:
        migrations.upgrade(engine, "0002_identity")
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO jobs VALUES (7, 1, 2, 3, 4, 5, 6, 8, 9, 10, 1, 0, false, 'A4', 'pdf', 'd')"))
            conn.execute(sa.text("INSERT INTO usage_daily VALUES (1, 2, 3, 4, 5, 6, 7, 8)"))
        migrations.upgrade(engine, "0003_projection_failures")
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO jobs VALUES (8, 1, 2, 3, 4, 5, 6, 10000000000, 10000000000, 0, 1, 0,"
                                 " false, 'A4', 'pdf', 'd')"))
            conn.execute(sa.text("UPDATE usage_daily SET sheets = sheets + 10000000000"))
            assert conn.execute(sa.text("SELECT seq, sheets FROM jobs ORDER BY seq")).all() == [(7, 9), (8, 10**10)]
            assert conn.execute(sa.text("SELECT sheets FROM usage_daily")).scalar_one() == 10**10 + 5
            if engine.dialect.name == "sqlite":
                ddl = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = 'usage_daily'")).scalar_one()
                assert "WITHOUT ROWID" in ddl
    finally:
        engine.dispose()


def test_0008_gives_the_jobs_recorded_before_it_nothing_uncertain(database_url):
    from adapters.stores import read_model_engine

    engine = read_model_engine(database_url, writer=True)
    try:
        migrations.upgrade(engine, "0003_projection_failures")
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO jobs VALUES (7, 1, 2, 3, 4, 5, 6, 8, 9, 10, 1, 0, false, 'A4', 'pdf', 'd')"))
        migrations.upgrade(engine, "0008_agent")
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT seq, uncertain FROM jobs")).all() == [(7, "")]
    finally:
        engine.dispose()


def test_0010_gives_the_held_jobs_printed_before_it_the_time_they_printed(database_url):
    """A printed held job's row takes the time its last lifecycle event (Printed) was recorded;
    the others stay without one."""
    from adapters.stores import read_model_engine

    engine = read_model_engine(database_url, writer=True)
    try:
        migrations.upgrade(engine, "0009_console")
        with engine.begin() as conn:
            for job_id, seq, status in (("a", 7, 4), ("b", 8, 2)):
                conn.execute(sa.text("INSERT INTO held_jobs VALUES (:job_id, :seq, 100, :changed, 1, 1, :status,"
                                     " true, '', '', '', '', '')"),
                             {"job_id": job_id, "seq": seq, "changed": seq * 1000, "status": status})
        migrations.upgrade(engine, "0010_printed_at")
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT job_id, printed_at FROM held_jobs ORDER BY job_id")).all() == [
                ("a", 7000), ("b", None)]
    finally:
        engine.dispose()


def test_0012_narrows_job_figures_keeping_the_rows(database_url):
    """A job's pages and colour pages become 4-byte integers; the rows stay as they were."""
    from adapters.stores import read_model_engine

    engine = read_model_engine(database_url, writer=True)
    try:
        migrations.upgrade(engine, "0010_printed_at")
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO jobs VALUES (7, 1, 2, 3, 4, 5, 6, 1000000, 10000000000, 999999, 1, 0,"
                                 " false, 'A4', 'pdf', 'd', '')"))
        migrations.upgrade(engine, "0012_narrow_jobs")
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT seq, pages, sheets, colour_pages, document FROM jobs")).all() == [
                (7, 1_000_000, 10**10, 999_999, "d")]
            if engine.dialect.name == "postgresql":
                types = dict(conn.execute(sa.text(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'jobs' "
                    "AND column_name IN ('pages', 'sheets', 'colour_pages', 'seq')")).all())
                assert types == {"seq": "bigint", "pages": "integer", "sheets": "bigint", "colour_pages": "integer"}
                options = conn.execute(sa.text("SELECT reloptions FROM pg_class WHERE relname = 'jobs_pkey'")).scalar()
                assert options == ["fillfactor=100"]
    finally:
        engine.dispose()


def test_0013_fills_the_savings_sums_from_the_jobs_recorded_before_it(database_url):
    """The savings report's daily sums are made from the jobs rows already there: charged jobs
    only (tracked, and held ones once printed)."""
    from adapters.stores import read_model_engine
    from projections.savings_daily import VALUES, decode_sums

    engine = read_model_engine(database_url, writer=True)
    day = 20_000 * 86_400_000_000
    try:
        migrations.upgrade(engine, "0012_narrow_jobs")
        with engine.begin() as conn:
            # seq, at, cost, pages, sheets, colour pages, status, duplex: the second repeats the first
            # five minutes later; the denied one is not charged; the printed held one is an hour later.
            for seq, at, cost, pages, sheets, colour, status, duplex in (
                    (1, 36_000, 100, 3, 3, 1, 0, False), (2, 36_300, 50, 2, 1, 0, 0, True),
                    (3, 36_360, 10, 1, 1, 0, 1, False), (4, 39_900, 30, 1, 1, 0, 4, False)):
                conn.execute(sa.text(f"INSERT INTO jobs VALUES ({seq}, {day + at * 1_000_000}, 1, {cost}, 1, 1, 1,"
                                     f" {pages}, {sheets}, {colour}, 1, {status}, {str(duplex).lower()}, 'A4', 'pdf',"
                                     " 'x.pdf', '')"))
        migrations.upgrade(engine, "0013_savings_tables")
        with engine.begin() as conn:
            rows = conn.execute(sa.text("SELECT span, printer_id, sums FROM savings_daily")).all()
            assert [(d, p) for d, p, _ in rows] == [(4 * 20_000 + 1, 1)]  # 10:00–11:05 UTC
            sums = {k: dict(zip(VALUES, v)) for k, v in decode_sums(rows[0][2]).items()}
            picked = ("d_n", "d_sheets", "m_n", "u_n", "u_sheets", "r_n", "r_sheets", "r_cost")
            assert {k: tuple(v[c] for c in picked) for k, v in sums.items()} == {
                ("A4", False): (1, 1, 1, 1, 1, 0, 0, 0), ("A4", True): (0, 0, 0, 1, 0, 1, 1, 50)}
    finally:
        engine.dispose()
