"""Realistic print-job reports for demos, tests and benchmarks (deterministic for a seed).

Many users and printers, like real offices: a few heavy users; each user prints mostly to the
printer near them (85%), sometimes to a second one (10%), rarely anywhere else; jobs arrive
in working hours on weekdays; document names, page counts, copies, duplex and colour shares
follow the usual skews.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Iterator

_WORDS = ("Quarterly", "Report", "Invoice", "Minutes", "Draft", "Budget", "Contract", "Slides", "Agenda",
          "Policy", "Summary", "Forecast", "Letter", "Memo", "Handbook", "Timesheet", "Proposal", "Review")
_EXT = (".pdf", ".docx", ".xlsx", ".pptx", ".txt", "")
_PAPERS = ("A4",) * 8 + ("Letter", "A3")
_PDLS = ("pdf",) * 6 + ("postscript", "pcl5", "pclxl", "text")
# The printing application as the agent reads it (agent/printing_application.py), skewed as an
# office's are; "" (not known: PCL, raster, text jobs) is left out of the report, as the agent does.
_APPLICATIONS = ("Microsoft\u00ae Word",) * 5 + ("Microsoft\u00ae Excel",) * 3 + ("Mozilla Firefox",) * 2 + (
    "LibreOffice", "Writer", "Calc", "Chromium", "Skia/PDF", "cairo", "Acrobat Reader", "GPL Ghostscript", "", "", "")


def sample_jobs(n: int, *, seed: int = 1, users: int = 500, printers: int = 40, hosts: int = 8,
                start: datetime = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc),
                key_prefix: str = "job") -> Iterator[dict]:
    """`n` job reports as the agent would post them (JSON-ready dicts)."""
    rnd = random.Random(seed)
    user_names = [f"{rnd.choice('abcdefghijklmnoprstvw')}{rnd.choice(('smith', 'jones', 'martin', 'dupont', 'garcia', 'muller', 'rossi', 'khan', 'nguyen', 'silva'))}{i}" for i in range(users)]
    printer_names = [f"{rnd.choice(('hq', 'branch', 'lab', 'ops'))}-{rnd.choice(('laser', 'mfp', 'colour'))}-{i:02d}" for i in range(printers)]
    host_names = [f"printsrv{i:02d}" for i in range(hosts)]
    near = {u: (rnd.choice(printer_names), rnd.choice(printer_names)) for u in user_names}
    t = start
    for i in range(n):
        t += timedelta(seconds=rnd.expovariate(1 / 8))
        if t.hour >= 18 or t.weekday() >= 5:  # next working morning
            t = (t + timedelta(days=1 if t.weekday() < 4 or t.weekday() == 6 else 2)).replace(hour=8, minute=0)
            if t.weekday() >= 5:
                t += timedelta(days=7 - t.weekday())
        pages = max(1, int(rnd.lognormvariate(1.0, 1.0)))
        colour = 0 if rnd.random() < 0.7 else rnd.randint(0, pages)
        user = (user_names[min(users - 1, int(rnd.paretovariate(1.2)) - 1)] if rnd.random() < 0.3
                else rnd.choice(user_names))
        where = rnd.random()
        printer = near[user][0] if where < 0.85 else near[user][1] if where < 0.95 else rnd.choice(printer_names)
        yield {
            "job_key": f"{key_prefix}/{seed}/{i}",
            "user": user,
            "printer": printer,
            "client_host": rnd.choice(host_names),
            "document": " ".join(rnd.sample(_WORDS, rnd.randint(1, 3))) + rnd.choice(_EXT),
            "submitted_at": t.isoformat(),
            "pages": pages,
            "copies": 1 if rnd.random() < 0.85 else rnd.randint(2, 5),
            "colour_pages": colour,
            "duplex": rnd.random() < 0.5,
            "paper": rnd.choice(_PAPERS),
            "size": pages * rnd.randint(20_000, 120_000),
            "pdl": rnd.choice(_PDLS),
            # from the job's number, not `rnd`: the other figures stay what they were for a seed
            **({"application": app} if (app := _APPLICATIONS[(i * 5 + seed) % len(_APPLICATIONS)]) else {}),
        }
