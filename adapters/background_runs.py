"""Long work that runs one at a time in the background and whose progress a page can poll:
`audit verify` (projections.background_verify) and a directory sync (workers.directory_sync).

A run's state lives in a ReportRunStore (`state.json`, replaced atomically): queued, running with
its progress (0 to 1) and the phase in words, then done with its result, or failed with the
reason. `submit` hands a run's id to rq (`pageledger worker`) or to a thread of this process;
whichever runs it calls `execute`. Starting while a run is queued or running gives that run: two
at once would only halve each other. A run whose state has not moved for `stale_seconds` is dead
(its process was stopped)."""
from __future__ import annotations

import logging
import time
import traceback
from typing import Any, Callable

from adapters.report_runs import ReportRunStore

PROGRESS_EVERY = 0.5  # seconds between two progress writes

Report = Callable[[float, str], None]  # (progress 0..1, phase in words)


class OneRunAtATime:
    def __init__(self, kind: str, store: ReportRunStore, submit: Callable[[str], None],
                 work: Callable[[Report], dict[str, Any]], log: logging.Logger, *,
                 clock: Callable[[], float] = time.time, stale_seconds: float = 600.0) -> None:
        self.kind = kind
        self.store = store
        self.submit = submit
        self.work = work
        self.log = log
        self.clock = clock
        self.stale_seconds = stale_seconds

    def start(self, by: str) -> str:
        """A new run, or the one already queued or running."""
        active = self.active()
        if active is not None:
            return active
        run_id = self.store.new({"kind": self.kind, "by": by, "state": "queued", "progress": 0.0, "phase": "",
                                 "error": "", "created_at": self.clock(), "finished_at": None, "result": None})
        self.submit(run_id)
        return run_id

    def active(self) -> str | None:
        if not self.store.root.is_dir():
            return None
        for entry in self.store.root.iterdir():
            state = self.load(entry.name)
            if state is not None and state["state"] in ("queued", "running") and (
                    self.clock() - state.get("updated_at", state["created_at"]) < self.stale_seconds):
                return entry.name
        return None

    def load(self, run_id: str) -> dict[str, Any] | None:
        state = self.store.load(run_id)
        return state if state is not None and state.get("kind") == self.kind else None

    def _update(self, run_id: str, **changes: Any) -> None:
        self.store.save(run_id, {**(self.store.load(run_id) or {}), **changes, "updated_at": self.clock()})

    def execute(self, run_id: str) -> None:
        state = self.load(run_id)
        if state is None or state["state"] != "queued":
            return
        self._update(run_id, state="running")
        last = [0.0]

        def report(progress: float, phase: str) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY:
                last[0] = now
                self._update(run_id, progress=round(min(progress, 0.99), 4), phase=phase)

        try:
            result = self.work(report)
            self._update(run_id, state="done", progress=1.0, phase="", finished_at=self.clock(), result=result)
            self.log.info("%s %s: done", self.kind, run_id)
        except Exception as exc:  # noqa: BLE001 - the run is marked failed, with the reason, for the page
            self.log.error("%s %s failed: %s\n%s", self.kind, run_id, exc, traceback.format_exc())
            self._update(run_id, state="failed", error=f"{type(exc).__name__}: {exc}"[:500], finished_at=self.clock())
