"""Long reports as background jobs whose progress the API can poll.

`BackgroundReports.start` records the request (adapters.report_runs) and hands the run to
`submit`: rq on Redis (`pageledger worker` runs it; it must share the data directory) or a
thread of this process when no Redis is configured. `execute` runs the report and renders it
to the run's file, writing its progress as it goes: for the job list, rows written of the rows
the period holds; for the other reports, computed then rendered.
"""
from __future__ import annotations

import logging
import time
import traceback
from typing import Any, Callable

import sqlalchemy as sa

from adapters.report_runs import ReportRunStore
from projections.report_formats import MEDIA_TYPES, render
from projections.report_period import ReportParameters, parse_parameters
from projections.reports import CATALOGUE, ReportSources, count_jobs, iter_jobs, run_report

log = logging.getLogger("pageledger.reports")


class BackgroundReports:
    def __init__(self, reader: sa.Engine, sources: ReportSources, store: ReportRunStore,
                 submit: Callable[[str], None], clock: Callable[[], float] = time.time) -> None:
        self.reader = reader
        self.sources = sources
        self.store = store
        self.submit = submit
        self.clock = clock

    def start(self, name: str, raw: dict[str, str], fmt: str, owner: str, bound_to: str | None) -> str:
        """Record the run and hand it over; the parameters were checked by the caller."""
        run_id = self.store.new({"report": name, "parameters": raw, "format": fmt, "owner": owner,
                                 "bound_to": bound_to, "state": "queued", "progress": 0.0, "rows_done": 0,
                                 "rows_total": None, "error": "", "created_at": self.clock(), "finished_at": None,
                                 "filename": f"{name}.{fmt}", "media_type": MEDIA_TYPES[fmt]})
        self.submit(run_id)
        return run_id

    def _update(self, run_id: str, **changes: Any) -> dict[str, Any]:
        state = {**(self.store.load(run_id) or {}), **changes}
        self.store.save(run_id, state)
        return state

    def execute(self, run_id: str) -> None:
        state = self.store.load(run_id)
        if state is None or state["state"] not in ("queued",):
            return
        self._update(run_id, state="running")
        try:
            settings = self.sources.settings()
            p = parse_parameters(state["parameters"], site_timezone=str(settings.get("timezone", "UTC")),
                                 now=int(state["created_at"] * 1_000_000), allowed=CATALOGUE[state["report"]].parameters)
            if state["bound_to"]:
                p = p.bound_to(state["bound_to"])
            report = run_report(self.reader, state["report"], p, self.sources)
            chunks = None
            if state["report"] == "jobs" and state["format"] in ("csv", "xlsx"):
                total = self._count(p)
                self._update(run_id, rows_total=total, progress=0.0)
                chunks = lambda: self._counting(run_id, iter_jobs(self.reader, p, str(settings.get(  # noqa: E731
                    "document_names", "keep"))), total)
            else:
                self._update(run_id, progress=0.5)
            with self.store.writer(run_id) as f:
                for piece in render(report, state["format"], chunks):
                    f.write(piece)
            self._update(run_id, state="done", progress=1.0, finished_at=self.clock())
            log.info("background report %s (%s, %s) done", run_id, state["report"], state["format"])
        except Exception as exc:  # noqa: BLE001 - the run is marked failed, with the reason, for the poller
            log.error("background report %s (%s) failed: %s\n%s", run_id, state["report"], exc, traceback.format_exc())
            self._update(run_id, state="failed", error=f"{type(exc).__name__}: {exc}"[:500], finished_at=self.clock())

    def _count(self, p: ReportParameters) -> int:
        with self.reader.connect() as conn:
            return count_jobs(conn, p)

    def _counting(self, run_id: str, chunks, total: int):
        done = 0
        for chunk in chunks:
            done += len(chunk)
            self._update(run_id, rows_done=done, progress=round(done / total, 4) if total else 1.0)
            yield chunk
