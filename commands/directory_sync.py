"""A directory sync started from the console, as background work whose progress the Users page
follows: the same SyncUsers as `pageledger users sync` and POST /api/v1/users/sync, one at a time
(adapters.background_runs: rq on Redis, else a thread of the server). Its result is the sync's
report: who was imported, updated, set Inactive or reactivated, and each clash."""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from adapters.background_runs import OneRunAtATime, Report
from adapters.report_runs import ReportRunStore
from commands.users import SyncUsers

log = logging.getLogger("pageledger.users")

SHOWN = 200  # logins shown per list on the page; the counts are whole


class BackgroundSyncs(OneRunAtATime):
    def __init__(self, sync_users: SyncUsers, store: ReportRunStore, submit: Callable[[str], None],
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__("directory-sync", store, submit, self._sync, log, clock=clock)
        self.sync_users = sync_users

    def _sync(self, report: Report) -> dict[str, Any]:
        result = self.sync_users(progress=report).as_json()
        counts = {k: len(result[k]) for k in ("imported", "updated", "deactivated", "reactivated", "clashes", "kept")}
        return {**{k: v[:SHOWN] if isinstance(v, list) else v for k, v in result.items()}, "counts": counts}
