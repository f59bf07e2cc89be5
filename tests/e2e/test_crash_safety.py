"""SIGKILL in the middle of a batch leaves all of it or none of it; projections catch up once."""
from __future__ import annotations

import threading
import time

import pytest
import requests
import sqlalchemy as sa

from tests.conftest import make_live_server, new_database_url, wait_until
from tools.sample_jobs import sample_jobs


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_sigkill_mid_batch_keeps_whole_batches_and_projections_catch_up_without_duplicates(store, tmp_path, request):
    url = new_database_url(store, tmp_path, request)
    server = make_live_server(tmp_path, database_url=url)
    server.start()
    batches = [list(sample_jobs(2000, seed=s, key_prefix=f"crash{s}")) for s in range(5)]
    # Time one whole batch, then kill others at fractions of that time: while the request is
    # parsed and validated, while the batch is being saved, and around its commit.
    started = time.perf_counter()
    assert requests.post(server.url + "/Services/jobs", json={"jobs": batches[0]},
                         headers=server.headers(server.agent_token), timeout=30).status_code == 200
    took = time.perf_counter() - started
    for batch, fraction in zip(batches[1:], (0.5, 0.75, 0.9, 1.1)):
        delay = took * fraction
        def post(batch=batch):
            try:
                requests.post(server.url + "/Services/jobs", json={"jobs": batch},
                              headers=server.headers(server.agent_token), timeout=30)
            except requests.RequestException:
                pass  # the server died under us: that is the point

        t = threading.Thread(target=post)
        t.start()
        time.sleep(delay)
        server.kill()
        t.join()
        server.start()

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        health = wait_until(lambda: (h := requests.get(server.url + "/healthz", timeout=5).json())
                            and min(h["projections"]["jobs"], h["projections"]["usage_daily"])
                            >= _last_job_event(engine) and h, timeout=30)
        with engine.connect() as conn:
            jobs_rows = conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar()
            distinct = conn.execute(sa.text("SELECT count(DISTINCT seq) FROM jobs")).scalar()
            usage_jobs = conn.execute(sa.text("SELECT coalesce(sum(jobs), 0) FROM usage_daily")).scalar()
        # Every batch is all there or not at all: ask the server what each batch's keys are.
        counts = []
        for batch in batches:
            results = requests.post(server.url + "/Services/jobs", json={"jobs": batch[:1]},
                                    headers=server.headers(server.agent_token), timeout=30).json()["results"]
            counts.append(results[0]["status"])
        recorded_batches = counts.count("duplicate")
        print("batch outcomes after kills:", counts)
        assert jobs_rows == distinct == usage_jobs == 2000 * recorded_batches, (counts, health)
    finally:
        engine.dispose()
        server.stop()


def _last_job_event(engine) -> int:
    """Notification id of the newest tracked job in the event store (its topic stored as the
    code "T", or spelt out by a database written before the codes: adapters.codec)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            sql = "SELECT coalesce(max(rowid), 0) FROM stored_events WHERE topic IN ('T', 'PrintJob.Tracked')"
        else:
            sql = ("SELECT coalesce(max(notification_id), 0) FROM pageledger_events "
                   "WHERE topic IN ('T', 'PrintJob.Tracked')")
        return int(conn.execute(sa.text(sql)).scalar())
