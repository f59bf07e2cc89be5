"""`audit verify` as background work whose progress a page can poll.

The same code as `pageledger audit verify` (projections.audit.Audit.verify: the log's seals,
then every read model rebuilt into scratch tables and compared), handed to the mechanism long
reports use (projections.background_reports): rq on Redis (`pageledger worker` runs it and must
share the data directory) or a thread of this process without Redis. Each run keeps its state in
adapters.report_runs' store (`state.json`, replaced atomically): queued, running with its
progress (the seals are the first half, the rebuild the second), then done with the result of
each check, or failed with the reason.
"""
from __future__ import annotations

import logging
import time
import traceback
from typing import Any, Callable

from adapters.report_runs import ReportRunStore
from projections.audit import Audit, Verification

log = logging.getLogger("pageledger.audit")

SHOWN_FINDINGS = 50
PROGRESS_EVERY = 0.5  # seconds between two progress writes
STALE_SECONDS = 600.0  # a queued or running verification whose state has not moved for this long is dead


def verification_json(result: Verification, seconds: float) -> dict[str, Any]:
    """What a verification found, check by check (the CLI prints the same facts)."""
    seals = result.seals
    return {
        "ok": result.ok, "seconds": round(seconds, 2),
        "seals": {"ok": seals.ok, "events": seals.events, "seals": seals.seals, "head_digest": seals.head_digest,
                  "findings": [f"{f.kind}: {f.describe()}"[:500] for f in seals.findings[:SHOWN_FINDINGS]],
                  "more_findings": max(0, len(seals.findings) - SHOWN_FINDINGS)},
        "read_models": [{"name": c.name, "ok": c.differences == 0, "rows": c.rows, "position": c.position,
                         "differences": c.differences, "shown": [d.describe()[:500] for d in c.shown]}
                        for c in result.read_models.checks],
    }


class BackgroundVerifications:
    def __init__(self, audit: Audit, store: ReportRunStore, submit: Callable[[str], None],
                 head: Callable[[], int], clock: Callable[[], float] = time.time) -> None:
        self.audit = audit
        self.store = store
        self.submit = submit
        self.head = head
        self.clock = clock

    def start(self, by: str) -> str:
        """A new run, or the one already queued or running: a verification reads the whole log and
        rebuilds every read model, so a second one at the same time would only halve both."""
        active = self.active()
        if active is not None:
            return active
        run_id = self.store.new({"kind": "audit-verify", "by": by, "state": "queued", "progress": 0.0,
                                 "phase": "", "error": "", "created_at": self.clock(), "finished_at": None,
                                 "result": None})
        self.submit(run_id)
        return run_id

    def active(self) -> str | None:
        """The run queued or running now, if any (one that has not moved for STALE_SECONDS is dead:
        its process was stopped)."""
        if not self.store.root.is_dir():
            return None
        for entry in self.store.root.iterdir():
            state = self.load(entry.name)
            if state is not None and state["state"] in ("queued", "running") and (
                    self.clock() - state.get("updated_at", state["created_at"]) < STALE_SECONDS):
                return entry.name
        return None

    def load(self, run_id: str) -> dict[str, Any] | None:
        state = self.store.load(run_id)
        return state if state is not None and state.get("kind") == "audit-verify" else None

    def _update(self, run_id: str, **changes: Any) -> None:
        self.store.save(run_id, {**(self.store.load(run_id) or {}), **changes, "updated_at": self.clock()})

    def execute(self, run_id: str) -> None:
        state = self.load(run_id)
        if state is None or state["state"] != "queued":
            return
        head = max(1, self.head())
        self._update(run_id, state="running", phase="checking the seals")
        last = [0.0]

        def report(progress: float, phase: str) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY:
                last[0] = now
                self._update(run_id, progress=round(min(progress, 0.99), 4), phase=phase)

        started = time.perf_counter()
        try:
            result = self.audit.verify(
                progress_log=lambda n: report(0.5 * n / head, f"seals: {n:,} of {head:,} events checked"),
                progress_replay=lambda read, top: report(0.5 + 0.5 * read / max(1, top),
                                                         f"read models: {read:,} of {top:,} events replayed"))
            self._update(run_id, state="done", progress=1.0, phase="", finished_at=self.clock(),
                         result=verification_json(result, time.perf_counter() - started))
            log.info("audit verify %s: %s", run_id, "all verified" if result.ok else "NOT verified")
        except Exception as exc:  # noqa: BLE001 - the run is marked failed, with the reason, for the page
            log.error("audit verify %s failed: %s\n%s", run_id, exc, traceback.format_exc())
            self._update(run_id, state="failed", error=f"{type(exc).__name__}: {exc}"[:500], finished_at=self.clock())
