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
from typing import Any, Callable

from adapters.background_runs import OneRunAtATime, Report
from adapters.report_runs import ReportRunStore
from projections.audit import Audit, Verification

log = logging.getLogger("pageledger.audit")

SHOWN_FINDINGS = 50


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


class BackgroundVerifications(OneRunAtATime):
    """`audit verify` one at a time in the background (adapters.background_runs)."""

    def __init__(self, audit: Audit, store: ReportRunStore, submit: Callable[[str], None],
                 head: Callable[[], int], clock: Callable[[], float] = time.time) -> None:
        super().__init__("audit-verify", store, submit, self._verify, log, clock=clock)
        self.audit = audit
        self.head = head

    def _verify(self, report: Report) -> dict[str, Any]:
        head = max(1, self.head())
        report(0.0, "checking the seals")
        started = time.perf_counter()
        result = self.audit.verify(
            progress_log=lambda n: report(0.5 * n / head, f"seals: {n:,} of {head:,} events checked"),
            progress_replay=lambda read, top: report(0.5 + 0.5 * read / max(1, top),
                                                     f"read models: {read:,} of {top:,} events replayed"))
        self.log.info("audit verify: %s", "all verified" if result.ok else "NOT verified")
        return verification_json(result, time.perf_counter() - started)
