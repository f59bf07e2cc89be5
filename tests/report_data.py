"""Generated print jobs whose report figures are known in advance.

`generate` makes jobs at chosen instants (many close to midnights, in UTC and in Europe/Paris,
and across a month's end), and `expected` computes any usage figure by plain arithmetic over
them — no pandas, no SQL — so the reports are checked against an answer reached another way;
`habits`, `repeats`, `two_up` and `expected_release_states` do the same for the habits, savings
and workflow reports, and `held_jobs`/`seed_held` put jobs through secure release.
"""
from __future__ import annotations

import hashlib
import io
import json
import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from commands.job_reports import parse_batch
from domain.units import to_micros

# Two printers with different schedules (1/10,000 units a impression), one with a duplex discount.
SCHEDULES = {"hall-mono": (500, 2500, 0), "lab-colour": (1000, 6000, 10)}
SEATED = ("ann", "bob", "cat", "dan", "eve")  # the trial licence's five seats
DENIED = ("fay", "gus")  # no seat left: their jobs are denied
DEPARTMENTS = {"ann": "Sales", "bob": "Sales", "cat": "Lab", "dan": "Lab"}  # eve has none
DOCUMENTS = ("report.pdf", "minutes.docx", "poster.png", "thesis draft.pdf", "=HYPERLINK(\"x\").txt")
PDLS = ("pdf", "postscript", "pcl5", "unknown")
APPLICATIONS = ("LibreOffice", "Mozilla Firefox", "", "Microsoft\u00ae Word", "LibreOffice")  # "": not known
# The runtime's clock while seeding: the instant the licence takes its seats and refuses them.
DECIDED_AT = to_micros(datetime(2026, 11, 27, 5, 30, tzinfo=timezone.utc))
# A secure queue whose held jobs wait in October, outside every period the usage tests read:
# sent on the 15th from 09:00 UTC, released that morning, the one that prints printed the next day.
SECURE_QUEUE = "vault"
HELD_SENT = to_micros(datetime(2026, 10, 15, 9, tzinfo=timezone.utc))
HELD_HANDLED = to_micros(datetime(2026, 10, 15, 10, tzinfo=timezone.utc))
HELD_PRINTED = to_micros(datetime(2026, 10, 16, 8, tzinfo=timezone.utc))


class SetClock:
    """The runtime's clock, set by the seeding (µs)."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


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
    application: str = ""

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
                        rng.choice((1, 1, 1, 2, 5)), colour, rng.random() < 0.4, rng.choice(PDLS), document,
                        APPLICATIONS[n % len(APPLICATIONS)]))
    # a repeated print: the same document by the same user two minutes apart
    first = datetime(2026, 11, 28, 10, tzinfo=timezone.utc)
    for k, delay in enumerate((0, 120)):
        jobs.append(Job(f"rep-{seed}-repeat-{k}", "ann", "hall-mono", to_micros(first) + delay * 1_000_000, 3, 1, 0,
                        False, "pdf", "budget.xlsx"))
    return jobs


def local_time(at: int, tz: str) -> datetime:
    """An instant in µs as a time in `tz`, exactly (no float seconds on the way)."""
    return (datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=at)).astimezone(ZoneInfo(tz))


def charged(jobs: list[Job], since: int, until: int) -> list[Job]:
    """The tracked jobs of [since, until), in the order they were tracked."""
    return [j for j in jobs if not j.denied and since <= j.at < until]


def repeats(jobs: list[Job], since: int, until: int, minutes: int = 10) -> list[Job]:
    """The tracked jobs of the period that print the same user's same document again within
    `minutes` of the previous one in the period."""
    last: dict[tuple[str, str], int] = {}
    out = []
    for _, j in sorted(enumerate(charged(jobs, since, until)), key=lambda nj: (nj[1].at, nj[0])):
        previous = last.get((j.user, j.document))
        if previous is not None and j.at - previous <= minutes * 60_000_000:
            out.append(j)
        last[(j.user, j.document)] = j.at
    return out


def two_up(j: Job) -> Job:
    """The job printed two pages a side: a side is colour if either of its pages is, and the
    colour pages are taken to share sides (the fewest colour sides they can take)."""
    sides = (j.pages + 1) // 2
    return replace(j, pages=sides, colour_pages=min((j.colour_pages + 1) // 2, sides))


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SIZES = (("1", 1, 1), ("2-5", 2, 5), ("6-10", 6, 10), ("11-20", 11, 20), ("21-50", 21, 50), ("51-100", 51, 100),
         ("101-500", 101, 500), ("501 or more", 501, None))


def habits(jobs: list[Job], since: int, until: int, tz: str, limit: int = 20) -> dict:
    """The habits report's figures of the tracked jobs of [since, until), hours and weekdays in `tz`."""
    tracked = charged(jobs, since, until)
    hours = {h: [0, 0] for h in range(24)}
    weekdays = {d: [0, 0] for d in WEEKDAYS}
    documents: dict[str, list[int]] = {}
    pdls: dict[str, list[int]] = {}
    applications: dict[str, list[int]] = {}
    for j in tracked:
        t = local_time(j.at, tz)
        for table, key in ((hours, t.hour), (weekdays, WEEKDAYS[t.weekday()]), (documents, j.document),
                           (pdls, j.pdl), (applications, j.application or "unknown")):
            row = table.setdefault(key, [0, 0])
            row[0] += 1
            row[1] += j.impressions
    impressions = sum(j.impressions for j in tracked)
    shares = [("colour share of jobs", sum(1 for j in tracked if j.colour_pages), len(tracked)),
              ("colour share of impressions", sum(j.colour_impressions for j in tracked), impressions),
              ("duplex share of jobs", sum(1 for j in tracked if j.duplex), len(tracked)),
              ("duplex share of impressions", sum(j.impressions for j in tracked if j.duplex), impressions)]
    top = sorted(documents.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))[:limit]
    return {
        "shares": [(m, c, o, round(100 * c / o, 2) if o else 0.0) for m, c, o in shares],
        "hours": [(h, *v) for h, v in hours.items()],
        "weekdays": [(d, *v) for d, v in weekdays.items()],
        "sizes": [(label, sum(1 for j in tracked if low <= j.impressions and (high is None or j.impressions <= high)))
                  for label, low, high in SIZES],
        "documents": [(d, *v) for d, v in top],
        "document_types": sorted((p, *v) for p, v in pdls.items()),
        "applications": [(a, *v) for a, v in sorted(applications.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))],
    }


@dataclass(frozen=True)
class HeldJob:
    """A job sent to the secure queue, and what then happens to it through the release commands."""

    job: Job
    fate: str  # waits, released, printed, failed, held again, expired, deleted

    @property
    def state(self) -> str:
        """Its state in the jobs read model once its fate is recorded."""
        return {"waits": "held", "held again": "held"}.get(self.fate, self.fate)


def held_jobs() -> list[HeldJob]:
    fates = (("ann", 2, 1, "waits"), ("bob", 3, 2, "released"), ("ann", 4, 1, "printed"), ("ann", 5, 1, "failed"),
             ("bob", 6, 1, "held again"), ("cat", 7, 3, "expired"), ("bob", 8, 1, "deleted"))
    return [HeldJob(Job(f"held-{n}", user, SECURE_QUEUE, HELD_SENT + n * 300_000_000, pages, copies, 0, False, "pdf",
                        "payslips.pdf"), fate) for n, (user, pages, copies, fate) in enumerate(fates)]


def expected_release_states(held: list[HeldJob], since: int, until: int) -> dict[str, tuple[int, int]]:
    """{state: (jobs, impressions)} of the held jobs of [since, until) that were not printed."""
    out: dict[str, tuple[int, int]] = {}
    for h in held:
        if h.state != "printed" and since <= h.job.at < until:
            n, impressions = out.get(h.state, (0, 0))
            out[h.state] = (n + 1, impressions + h.job.impressions)
    return out


def batch(jobs: list[Job]):
    return parse_batch(json.dumps({"jobs": [{
        "job_key": j.key, "user": j.user, "printer": j.printer,
        "submitted_at": datetime.fromtimestamp(j.at / 1e6, tz=timezone.utc).isoformat(),
        "pages": j.pages, "copies": j.copies, "colour_pages": j.colour_pages, "duplex": j.duplex, "pdl": j.pdl,
        "document": j.document, "client_host": "ws-1", "paper": "A4", "size": 1000,
        **({"application": j.application} if j.application else {})} for j in jobs]}).encode())


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


def seed_held(rt, held: list[HeldJob], clock: SetClock) -> None:
    """Send `held` to the secure queue and carry each to its fate with the release commands, as
    the agent, the Secure Print page and the release service would; `clock` is the runtime's."""
    from commands.release import Caller
    from domain.costs import CostSchedule

    clock.now = HELD_HANDLED
    rt.set_cost_schedule(SECURE_QUEUE, CostSchedule(mono_page=500, colour_page=2500))
    rt.set_secure_hold(SECURE_QUEUE, True)
    outcomes = rt.track_jobs(batch([h.job for h in held]))
    assert [(o.status, o.decision) for o in outcomes] == [("tracked", "hold")] * len(held)
    ids = {h.job.key: str(o.job_id) for h, o in zip(held, outcomes)}
    for h, o in zip(held, outcomes):
        data = f"%PDF-1.7 {h.job.key}\n".encode()
        rt.hold_job(o.job_id, io.BytesIO(data), sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    admin = Caller("root", admin=True)
    rt.release_jobs([ids[h.job.key] for h in held if h.fate in ("released", "printed", "failed", "held again")],
                    admin)
    for n, h in enumerate(held):
        job_id = outcomes[n].job_id
        if h.fate == "printed":
            clock.now = HELD_PRINTED
            rt.release_outcome.printed(job_id, cups_job=f"cups:{SECURE_QUEUE}:{n}")
        elif h.fate in ("failed", "held again"):
            rt.release_outcome.failed(job_id, why="the printer is stopped", held=h.fate == "held again")
        elif h.fate == "deleted":
            rt.delete_jobs([ids[h.job.key]], admin)
        elif h.fate == "expired":
            assert rt.expire_jobs([ids[h.job.key]]) == 1
        clock.now = HELD_HANDLED
    rt.catch_up()
