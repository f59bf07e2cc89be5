"""Reconciliation: the legacy database's totals per site-local year and month against
PageLedger's job records for the same months, with the rows set aside listed beside them.

For every month: legacy = PageLedger + set aside, exactly, for jobs, pages (impressions, all
copies), sheets and cost (1/10,000 units). The legacy side is read again from the source (every
job row, also those the replay skipped as done), the PageLedger side from the jobs read model
(`projections.jobs`), which is what the job reports show. Jobs that PageLedger tracked live in
the same months count on its side too: reconcile months before the move.
"""
from __future__ import annotations

import bisect
import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import sqlalchemy as sa

from domain.units import format_money
from projections.jobs import JOB_TRACKED, jobs
from tools.pa6_migrate import source as src
from tools.pa6_migrate.mapping import Mapping
from tools.pa6_migrate.rows import FIGURE_NAMES, JobRows, Schedules, SiteZone

UNDATED = "undated"
FIGURES = ("jobs", "pages", "sheets", "cost")


@dataclass
class Totals:
    jobs: int = 0
    pages: int = 0
    sheets: int = 0
    cost: int = 0

    def add(self, impressions: int, sheets: int, cost: int, jobs: int = 1) -> None:
        self.jobs += jobs
        self.pages += impressions
        self.sheets += sheets
        self.cost += cost

    def values(self) -> tuple[int, int, int, int]:
        return self.jobs, self.pages, self.sheets, self.cost


@dataclass
class MonthLine:
    month: str
    legacy: Totals = field(default_factory=Totals)
    pageledger: Totals = field(default_factory=Totals)
    rejected: Totals = field(default_factory=Totals)

    def difference(self) -> tuple[int, ...]:
        return tuple(a - b - c for a, b, c in zip(self.legacy.values(), self.pageledger.values(),
                                                   self.rejected.values()))

    @property
    def matches(self) -> bool:
        return not any(self.difference())


@dataclass
class Reconciliation:
    lines: list[MonthLine]
    outside: Totals  # PageLedger jobs outside the legacy months

    @property
    def matches(self) -> bool:
        return all(line.matches for line in self.lines)

    def total(self) -> MonthLine:
        t = MonthLine("total")
        for line in self.lines:
            for mine, theirs in ((t.legacy, line.legacy), (t.pageledger, line.pageledger), (t.rejected, line.rejected)):
                mine.add(theirs.pages, theirs.sheets, theirs.cost, theirs.jobs)
        return t

    def write_csv(self, path: Path) -> None:
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["month", *(f"{side}_{name}" for side in ("legacy", "pageledger", "rejected", "difference")
                                   for name in FIGURES), "status"])
            for line in [*self.lines, self.total()]:
                row: list[Any] = [line.month]
                for values in (line.legacy.values(), line.pageledger.values(), line.rejected.values(),
                               line.difference()):
                    row += [*values[:3], format_money(values[3])]
                w.writerow(row + ["ok" if line.matches else "MISMATCH"])

    def table(self) -> str:
        head = f"{'month':<8} {'legacy jobs':>12} {'pageledger':>12} {'set aside':>10} {'pages':>14} " \
               f"{'cost':>16}  status"
        out = [head]
        for line in [*self.lines, self.total()]:
            out.append(f"{line.month:<8} {line.legacy.jobs:>12,} {line.pageledger.jobs:>12,} "
                       f"{line.rejected.jobs:>10,} {line.legacy.pages:>14,} {format_money(line.legacy.cost):>16}  "
                       f"{'ok' if line.matches else 'MISMATCH ' + str(line.difference())}")
        if self.outside.jobs:
            out.append(f"(PageLedger also holds {self.outside.jobs:,} jobs outside these months: not compared)")
        return "\n".join(out)


def legacy_totals(conn: Any, mapping: Mapping, zone: SiteZone, batch: int = 10_000) -> dict[str, Totals]:
    """Every legacy job row's figures by site-local month, read as the replay reads them."""
    names = [n for n in FIGURE_NAMES if mapping.jobs.has(n) and mapping.jobs.values[n].sql is not None]
    parser = JobRows(mapping, zone, 0, Schedules(), names=names)
    out: dict[str, Totals] = {}
    for rows in src.query(conn, mapping.jobs.select(names=names), batch=batch, what="jobs (reconciliation)"):
        for row in rows:
            f = parser.figures(row)
            out.setdefault(f.month or UNDATED, Totals()).add(f.impressions, f.sheets, f.cost)
    return out


def pageledger_totals(engine: sa.Engine, zone: SiteZone, months: list[str]) -> tuple[dict[str, Totals], Totals]:
    """Tracked jobs of the jobs read model by site-local month (of `months`), and the rest."""
    months = sorted(m for m in months if m != UNDATED)
    starts = zone.month_starts(months)
    out = {m: Totals() for m in months}
    outside = Totals()
    q = (sa.select(jobs.c.submitted_at, jobs.c.pages, jobs.c.copies, jobs.c.sheets, jobs.c.cost)
         .where(jobs.c.status == JOB_TRACKED))
    with engine.connect() as conn:
        for at, pages, copies, sheets, cost in conn.execution_options(yield_per=10_000).execute(q):
            i = bisect.bisect_right(starts, at) - 1
            target = out[months[i]] if 0 <= i < len(months) else outside
            target.add(pages * copies, sheets, cost)
    return out, outside


def reconcile(legacy: dict[str, Totals], pageledger: dict[str, Totals], outside: Totals,
              rejects: Iterable[list[Any]]) -> Reconciliation:
    lines = {m: MonthLine(m, legacy=t) for m, t in legacy.items()}
    for m, t in pageledger.items():
        lines.setdefault(m, MonthLine(m)).pageledger = t
    for r in rejects:
        if r[0] != "job":
            continue
        month = r[3] or UNDATED
        lines.setdefault(month, MonthLine(month)).rejected.add(r[4], r[5], r[6])
    return Reconciliation([lines[m] for m in sorted(lines, key=lambda m: (m == UNDATED, m))], outside)


def accepted_totals(accepted: dict[str, list[int]]) -> dict[str, Totals]:
    """A dry run's side: what would have been recorded, by month."""
    return {month: Totals(jobs=n, pages=impressions, sheets=sheets, cost=cost)
            for month, (impressions, sheets, cost, n) in accepted.items()}


def write_rejects(path: Path, rejects: Iterable[list[Any]]) -> int:
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["kind", "legacy_id", "reason", "month", "pages", "sheets", "cost"])
        for r in rejects:
            w.writerow([r[0], r[1], r[2], r[3], r[4], r[5], format_money(r[6])])
            n += 1
    return n
