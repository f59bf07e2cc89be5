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


def test_0016_gives_the_jobs_recorded_before_it_no_application_and_goes_back(database_url):
    """Existing job rows take app_id 0 (not known), as their events decode; downgrading removes
    the column and the application names."""
    from adapters.stores import read_model_engine

    engine = read_model_engine(database_url, writer=True)
    try:
        migrations.upgrade(engine, "0012_narrow_jobs")
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO jobs VALUES (7, 1, 2, 3, 4, 5, 6, 10, 10, 0, 1, 0,"
                                 " false, 'A4', 'pdf', 'd', '')"))
        migrations.upgrade(engine, "0016_job_applications")
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT seq, app_id, document FROM jobs")).all() == [(7, 0, "d")]
            conn.execute(sa.text("INSERT INTO application_keys (name) VALUES ('LibreOffice')"))
        migrations.downgrade(engine, "0012_narrow_jobs")
        with engine.begin() as conn:
            assert "app_id" not in [c["name"] for c in sa.inspect(conn).get_columns("jobs")]
            assert not sa.inspect(conn).has_table("application_keys")
            assert conn.execute(sa.text("SELECT seq, pages, document FROM jobs")).all() == [(7, 10, "d")]
    finally:
        engine.dispose()


def _job_indexes(conn: sa.Connection) -> dict[str, str]:
    """The jobs table's indexes: name -> definition as the database holds it."""
    if conn.dialect.name == "postgresql":
        return dict(conn.execute(sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'jobs'")).all())
    return {name: sql or "" for name, sql in conn.execute(sa.text(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs'")).all()}


def _brin_pages_read_for_a_narrow_period(conn: sa.Connection) -> int | None:
    """Heap pages PostgreSQL reads through the BRIN index for one millisecond of job times
    (None: it did not use the index)."""
    import json

    conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
    plan = conn.execute(sa.text("EXPLAIN (ANALYZE, FORMAT JSON) SELECT count(*) FROM jobs "
                                "WHERE submitted_at >= 1000000 AND submitted_at < 1001000")).scalar()
    plan = plan if isinstance(plan, list) else json.loads(plan)

    def nodes(node):
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)
    for node in nodes(plan[0]["Plan"]):
        if node["Node Type"] == "Bitmap Heap Scan":
            return node.get("Exact Heap Blocks", 0) + node.get("Lossy Heap Blocks", 0)
    return None


def test_summarising_the_brin_index_of_job_times_lets_a_period_skip_the_pages_of_other_times(database_url):
    """A bulk load's new pages are unsummarised: a period's query reads them all, whatever their
    times, until summarize_new_jobs (what a catch-up calls at its end) summarises them."""
    from adapters.stores import read_model_engine
    from projections.jobs import summarize_new_jobs

    engine = read_model_engine(database_url, writer=True)
    try:
        migrations.upgrade(engine)
        with engine.begin() as conn:
            if engine.dialect.name != "postgresql":
                summarize_new_jobs(conn)  # SQLite's btree needs nothing: a no-op
                return
            # 60,000 jobs a millisecond apart, in time order: a few hundred pages, several ranges.
            conn.execute(sa.text("INSERT INTO jobs SELECT g, g * 1000, 2, 3, g % 7, 5, 6, 1, 1, 0, 1, 0, false, "
                                 "'A4', 'pdf', 'd', '' FROM generate_series(1, 60000) AS g"))
        with engine.begin() as conn:
            before = _brin_pages_read_for_a_narrow_period(conn)
        with engine.begin() as conn:
            summarize_new_jobs(conn)
        with engine.begin() as conn:
            after = _brin_pages_read_for_a_narrow_period(conn)
            pages = conn.execute(sa.text("SELECT pg_relation_size('jobs') / 8192")).scalar()
        assert before is not None and before >= pages - 1  # every page, as none was summarised
        assert after is not None and after <= 128  # one range of 128 pages (the default)
    finally:
        engine.dispose()


def test_0014_leaner_job_indexes_keep_the_rows_and_go_back(database_url):
    """ix_jobs_user_seq becomes ix_jobs_user; on PostgreSQL ix_jobs_submitted_at becomes BRIN
    (SQLite keeps its btree). The rows stay, the period and user queries answer the same, and a
    downgrade gives the old indexes back."""
    from alembic import command

    from adapters.stores import read_model_engine
    from projections.jobs import summarize_new_jobs

    engine = read_model_engine(database_url, writer=True)
    postgres = engine.dialect.name == "postgresql"
    row = ("INSERT INTO jobs VALUES ({seq}, {at}, 2, 3, {user}, 5, 6, 1, 1, 0, 1, 0, false, 'A4', 'pdf', 'd', '')")
    try:
        migrations.upgrade(engine, "0012_narrow_jobs")
        with engine.begin() as conn:
            for seq in range(1, 301):
                conn.execute(sa.text(row.format(seq=seq, at=seq * 1000, user=seq % 3)))
        migrations.upgrade(engine, "0014_lean_jobs_indexes")
        with engine.begin() as conn:
            indexes = _job_indexes(conn)
            assert "ix_jobs_user_seq" not in indexes and "(user_id)" in indexes["ix_jobs_user"].replace('"', "")
            assert ("USING brin" in indexes["ix_jobs_submitted_at"]) == postgres
            if postgres:
                assert "autosummarize='on'" in indexes["ix_jobs_submitted_at"]
            for seq in range(301, 401):  # rows added after the index was built, then summarised
                conn.execute(sa.text(row.format(seq=seq, at=seq * 1000, user=seq % 3)))
            summarize_new_jobs(conn)
            assert conn.execute(sa.text("SELECT count(*) FROM jobs WHERE submitted_at >= 150000 "
                                        "AND submitted_at < 350000")).scalar() == 200
            assert conn.execute(sa.text("SELECT seq FROM jobs WHERE user_id = 1 ORDER BY seq DESC LIMIT 3")
                                ).scalars().all() == [400, 397, 394]
        with engine.begin() as conn:
            command.downgrade(migrations._config(conn), "0012_narrow_jobs")
        with engine.begin() as conn:
            indexes = _job_indexes(conn)
            assert "ix_jobs_user" not in indexes
            assert "(user_id, seq)" in indexes["ix_jobs_user_seq"].replace('"', "")
            assert "brin" not in indexes["ix_jobs_submitted_at"].lower()
            assert conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar() == 400
    finally:
        engine.dispose()


def test_0017_fills_the_savings_sums_from_the_jobs_recorded_before_it(database_url):
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
        migrations.upgrade(engine, "0017_savings_tables")
        with engine.begin() as conn:
            rows = conn.execute(sa.text("SELECT span, sums FROM savings_daily")).all()
            assert [d for d, _ in rows] == [4 * 20_000 + 1]  # 10:00–11:05 UTC
            sums = {k: dict(zip(VALUES, v)) for k, v in decode_sums(rows[0][1]).items()}
            picked = ("d_n", "d_sheets", "m_n", "u_n", "u_sheets", "r_n", "r_sheets", "r_cost")
            assert {k: tuple(v[c] for c in picked) for k, v in sums.items()} == {
                (1, "A4", False): (1, 1, 1, 1, 1, 0, 0, 0), (1, "A4", True): (0, 0, 0, 1, 0, 1, 1, 50)}
            assert not conn.execute(sa.text("SELECT count(*) FROM savings_dirty")).scalar()
    finally:
        engine.dispose()
