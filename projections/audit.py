"""The audit use cases the CLI and the API share: usage as of an instant, verifying the log
and the read models, the admin-change report (see docs/audit-privacy.md)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import sqlalchemy as sa
from eventsourcing.application import Application

from adapters.event_seals import RawLog, SealReport, check_seals
from projections.admin_changes import AdminChange, admin_changes
from projections.event_history import EventHistory
from projections.follower import all_projections
from projections.replay import Progress, ReadModelReport, Scratch, replay_as_of, verify_read_models
from projections.report_period import ReportParameters
from domain.costs import CostSchedule
from projections.reports import CATALOGUE, Report, run_report
from projections.sources_as_of import settings_at, sources_at
from projections.usage_daily import UsageTotal, usage_totals

AS_OF_REPORTS = tuple(CATALOGUE)  # every report of the catalogue


@dataclass(frozen=True)
class Verification:
    seals: SealReport
    read_models: ReadModelReport

    @property
    def ok(self) -> bool:
        return self.seals.ok and self.read_models.ok


class Audit:
    def __init__(self, app: Application, reader: sa.Engine, history: EventHistory,
                 default_schedule: CostSchedule, scratch_dir: Path | None = None) -> None:
        self.app = app
        self.default_schedule = default_schedule  # what a printer not registered by an instant is priced with
        self.reader = reader
        self.history = history
        self.scratch_dir = scratch_dir

    def usage_as_of(self, instant_us: int, group_by: str, *, user: str | None = None,
                    since_day: int | None = None, until_day: int | None = None,
                    progress: Progress | None = None) -> tuple[list[UsageTotal], int]:
        """Usage totals as they stood at `instant_us`, from the events recorded up to then;
        returns them and the number of events read."""
        with Scratch(self.scratch_dir) as scratch:
            read = replay_as_of(self.app, self.reader, instant_us, ["usage_daily"], scratch, progress)
            with scratch.engine.connect() as conn:
                return usage_totals(conn, group_by, user=user, since_day=since_day, until_day=until_day), read

    def settings_as_of(self, instant_us: int) -> dict[str, object]:
        """The site settings as they stood at `instant_us` (e.g. the time zone a report's dates
        are read in)."""
        return settings_at(self.app, self.app.server_id, instant_us)

    def report_as_of(self, instant_us: int, name: str, p: ReportParameters,
                     progress: Progress | None = None) -> tuple[Report, int]:
        """Report `name` as it stood at `instant_us`: every read model is rebuilt into scratch
        tables from the events recorded up to then, and the report runs on those, by the same
        code as on the live tables, with the site settings (time zone, document-name privacy,
        repeat minutes, environmental factors, ...) and each printer's cost schedule as they
        stood then too (projections.sources_as_of): a change made after the instant changes
        nothing of it. Returns the report and the number of events read."""
        sources = sources_at(self.app, self.app.server_id, instant_us, self.default_schedule)
        with Scratch(self.scratch_dir) as scratch:
            read = replay_as_of(self.app, self.reader, instant_us, [projection.name for projection in all_projections()], scratch,
                                progress)
            return run_report(scratch.engine, name, p, sources), read

    def verify(self, progress_log: Callable[[int], None] | None = None,
               progress_replay: Progress | None = None) -> Verification:
        seals = check_seals(RawLog(self.app.recorder), progress_log)
        with Scratch(self.scratch_dir) as scratch:
            models = verify_read_models(self.app, self.reader, scratch, progress_replay)
        return Verification(seals, models)

    def changes(self, *, since: int | None = None, until: int | None = None,
                area: str | None = None) -> Iterator[AdminChange]:
        return admin_changes(self.history, since=since, until=until, area=area)
