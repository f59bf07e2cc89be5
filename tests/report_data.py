"""Generated print jobs whose report figures are known in advance.

`generate` makes jobs at chosen instants (many close to midnights, in UTC and in Europe/Paris,
and across a month's end), and `expected` computes any usage figure by plain arithmetic over
them — no pandas, no SQL — so the reports are checked against an answer reached another way.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from commands.job_reports import parse_batch
from domain.units import to_micros

# Two printers with different schedules (1/10,000 units a impression), one with a duplex discount.
SCHEDULES = {"hall-mono": (500, 2500, 0), "lab-colour": (1000, 6000, 10)}
SEATED = ("ann", "bob", "cat", "dan", "eve")  # the trial licence's five seats
DENIED = ("fay", "gus")  # no seat left: their jobs are denied
DEPARTMENTS = {"ann": "Sales", "bob": "Sales", "cat": "Lab", "dan": "Lab"}  # eve has none
DOCUMENTS = ("report.pdf", "minutes.docx", "poster.png", "thesis draft.pdf", "=HYPERLINK(\"x\").txt")
PDLS = ("pdf", "postscript", "pcl5", "unknown")


@dataclass(frozen=True)
class Job:
    key: str
    user: str
    printer: str
    at: int  # µs
    pages: int
    copies: int
    colour_pages: int
    duplex: bool
    pdl: str
    document: str

    @property
    def denied(self) -> bool:
        return self.user in DENIED

    @property
    def impressions(self) -> int:
        return self.pages * self.copies

    @property
    def colour_impressions(self) -> int:
        return self.colour_pages * self.copies

    @property
    def sheets(self) -> int:
        return ((self.pages + 1) // 2 if self.duplex else self.pages) * self.copies

    @property
    def cost(self) -> int:
        mono, colour, discount = SCHEDULES[self.printer]
        total = ((self.pages - self.colour_pages) * mono + self.colour_pages * colour) * self.copies
        if self.duplex and discount:
            total = (total * (100 - discount) + 50) // 100
        return total


def instants(rng: random.Random) -> list[datetime]:
    """Times from 2026-11-27 to 2026-12-01 09:00 UTC, a third of them within minutes of a
    midnight in UTC or in Paris (23:00 UTC in winter)."""
    base = datetime(2026, 11, 27, tzinfo=timezone.utc)
    out = []
    for i in range(360):
        if i % 3 == 0:
            day = base + timedelta(days=rng.randrange(0, 5))
            edge = day - timedelta(hours=rng.choice((0, 1)))  # UTC midnight or Paris midnight
            out.append(edge + timedelta(microseconds=rng.randrange(-300_000_000, 300_000_000)))
        else:
            out.append(base + timedelta(microseconds=rng.randrange(0, (4 * 24 + 9) * 3600 * 1_000_000)))
    # the exact instants of the edges, which a half-open period must place on the right side
    out += [datetime(2026, 11, 30, 23, 0, tzinfo=timezone.utc), datetime(2026, 12, 1, tzinfo=timezone.utc),
            datetime(2026, 11, 30, 22, 59, 59, 999_999, tzinfo=timezone.utc)]
    return out


def generate(seed: int = 16) -> list[Job]:
    rng = random.Random(seed)
    # The seated users print first, so that they take the trial's five seats.
    morning = to_micros(datetime(2026, 11, 27, 6, tzinfo=timezone.utc))
    jobs = [Job(f"rep-{seed}-seat-{u}", u, "hall-mono", morning + i * 60_000_000, 1, 1, 0, False, "pdf", "hello.txt")
            for i, u in enumerate(SEATED)]
    for n, at in enumerate(instants(rng)):
        user = rng.choice(SEATED + SEATED + DENIED)
        pages = rng.choice((1, 1, 2, 3, 4, 10, 25, 120))
        colour = rng.choice((0, 0, 0, min(pages, rng.randrange(1, 4))))
        document = rng.choice(DOCUMENTS)
        jobs.append(Job(f"rep-{seed}-{n}", user, rng.choice(tuple(SCHEDULES)), to_micros(at), pages,
                        rng.choice((1, 1, 1, 2, 5)), colour, rng.random() < 0.4, rng.choice(PDLS), document))
    # a repeated print: the same document by the same user two minutes apart
    first = datetime(2026, 11, 28, 10, tzinfo=timezone.utc)
    for k, delay in enumerate((0, 120)):
        jobs.append(Job(f"rep-{seed}-repeat-{k}", "ann", "hall-mono", to_micros(first) + delay * 1_000_000, 3, 1, 0,
                        False, "pdf", "budget.xlsx"))
    return jobs


def batch(jobs: list[Job]):
    return parse_batch(json.dumps({"jobs": [{
        "job_key": j.key, "user": j.user, "printer": j.printer,
        "submitted_at": datetime.fromtimestamp(j.at / 1e6, tz=timezone.utc).isoformat(),
        "pages": j.pages, "copies": j.copies, "colour_pages": j.colour_pages, "duplex": j.duplex, "pdl": j.pdl,
        "document": j.document, "client_host": "ws-1", "paper": "A4", "size": 1000} for j in jobs]}).encode())


def expected(jobs: list[Job], since: int, until: int, key=lambda j: "all", *, denied: bool = False) -> dict:
    """{group: {jobs, impressions, sheets, colour_impressions, mono_impressions, cost}} of the
    tracked (or denied) jobs in [since, until)."""
    out: dict = {}
    for j in jobs:
        if j.denied != denied or not since <= j.at < until:
            continue
        t = out.setdefault(key(j), dict.fromkeys(("jobs", "impressions", "sheets", "colour_impressions",
                                                  "mono_impressions", "cost"), 0))
        t["jobs"] += 1
        t["impressions"] += j.impressions
        t["sheets"] += j.sheets
        t["colour_impressions"] += j.colour_impressions
        t["mono_impressions"] += j.impressions - j.colour_impressions
        t["cost"] += 0 if denied else j.cost
    return out


def seed(rt, jobs: list[Job]) -> None:
    """Track `jobs` on a fresh runtime the way an agent would: a trial licence (five seats), the
    printers' schedules, the users with departments, then the jobs in batches, seat-gated."""
    from commands.jobs import TrackJobs
    from domain.costs import CostSchedule

    rt.licensing.install_trial()
    for printer, (mono, colour, discount) in SCHEDULES.items():
        rt.set_cost_schedule(printer, CostSchedule(mono_page=mono, colour_page=colour, duplex_discount_pct=discount))
    for login, department in DEPARTMENTS.items():
        rt.add_local_user(login=login, password=f"{login}-pw-4567", role="user", profile={"department": department})
    gated = TrackJobs(rt.app, rt.printers, gate=rt.licensing.gate_jobs)
    outcomes = [o for i in range(0, len(jobs), 100) for o in gated(batch(jobs[i:i + 100]))]
    assert [o.status for o in outcomes] == ["denied" if j.denied else "tracked" for j in jobs]
    rt.catch_up()
