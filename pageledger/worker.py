"""`pageledger worker`: the background worker on Redis (rq).

One rq SimpleWorker per process (no fork per job, so the runtime — engines, caches — is built
once) on the queue `pageledger-<server_id>`, with rq's scheduler. A ticker thread enqueues the scheduled
reports' tick every `schedule_tick_seconds`, under a job id naming the minute, so that however
many workers run, a minute's tick is enqueued once; each schedule's run is then claimed by one
worker only (commands.report_schedules.ScheduleRuns). Without Redis, `pageledger up` runs the
same tick in-process (bootstrap.run_projections).
"""
from __future__ import annotations

import logging
import threading
import time

from redis import Redis
from rq import Queue, SimpleWorker

from pageledger.bootstrap import Runtime, build_runtime, queue_name
from pageledger.settings import Settings, SettingsError

log = logging.getLogger("pageledger.worker")

_runtime: Runtime | None = None


def tick() -> list[tuple[str, str]]:
    """The rq job: run the scheduled reports that are due (in the worker's runtime)."""
    global _runtime
    if _runtime is None:
        _runtime = build_runtime(Settings.load(), migrate=False)
    return _runtime.scheduled_runs().tick()


def run_report_job(run_id: str) -> None:
    """The rq job of a background report (projections.background_reports)."""
    global _runtime
    if _runtime is None:
        _runtime = build_runtime(Settings.load(), migrate=False)
    _runtime.background_reports.execute(run_id)


def run_audit_verify_job(run_id: str) -> None:
    """The rq job of `audit verify` started from the console (projections.background_verify)."""
    global _runtime
    if _runtime is None:
        _runtime = build_runtime(Settings.load(), migrate=False)
    _runtime.background_verifications.execute(run_id)


def run_directory_sync_job(run_id: str) -> None:
    """The rq job of a directory sync started from the console (commands.directory_sync)."""
    global _runtime
    if _runtime is None:
        _runtime = build_runtime(Settings.load(), migrate=False)
    _runtime.background_syncs.execute(run_id)


def enqueue_tick(queue: Queue, now: float, interval: float) -> bool:
    """Enqueue this interval's tick unless another worker did (one job id per interval)."""
    job_id = f"pageledger-tick-{int(now // interval)}"
    if queue.fetch_job(job_id) is not None:
        return False
    queue.enqueue(tick, job_id=job_id, result_ttl=3600, failure_ttl=86_400, job_timeout=3600)
    return True


def run_worker(settings: Settings, *, burst: bool = False) -> int:
    global _runtime
    if not settings.redis_url:
        raise SettingsError("pageledger worker needs Redis: set redis_url (PAGELEDGER_REDIS_URL); without it "
                            "`pageledger up` runs the scheduled reports itself")
    connection = Redis.from_url(settings.redis_url)
    connection.ping()
    _runtime = build_runtime(settings)
    _runtime.ensure_task_schedules()
    queue = Queue(queue_name(settings), connection=connection)
    stop = threading.Event()

    def ticker() -> None:
        while not stop.is_set():
            try:
                enqueue_tick(queue, time.time(), settings.schedule_tick_seconds)
            except Exception:  # noqa: BLE001 - Redis away for a moment: the next interval tries again
                log.exception("could not enqueue the scheduled reports' tick")
            stop.wait(settings.schedule_tick_seconds)

    thread = threading.Thread(target=ticker, name="schedule-ticker", daemon=True)
    thread.start()
    log.info("worker started on %s, queue %s, looking for due reports every %.0f s", _redacted(settings.redis_url),
             queue.name, settings.schedule_tick_seconds)
    try:
        if burst:
            enqueue_tick(queue, time.time(), settings.schedule_tick_seconds)
        SimpleWorker([queue], connection=connection).work(with_scheduler=True, burst=burst)
    finally:
        stop.set()
        _runtime.close()
        _runtime = None
    return 0


def _redacted(url: str) -> str:
    """A Redis URL without its password, for the log."""
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url
