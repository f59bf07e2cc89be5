"""/ : the dashboard — today's jobs, pages and cost, seats used, and the last 30 days as a small
SVG chart drawn here on the server (no chart library, no script). A `user` goes to My jobs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import falcon
import sqlalchemy as sa

from api.console.render import READERS, EVERYONE, Renderer
from api.openapi import Operation
from domain.units import day_iso, day_of
from projections.held_jobs import waiting_count
from projections.licence_seats import licence_summary
from projections.usage_daily import usage_totals

CHART_DAYS = 30


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    height: float
    day: str
    pages: int


def chart(pages_by_day: dict[int, int], today: int, width: float = 600, height: float = 120) -> list[Bar]:
    """One bar per day of the last 30 (oldest first), scaled to the busiest."""
    days = range(today - CHART_DAYS + 1, today + 1)
    top = max([pages_by_day.get(d, 0) for d in days] + [1])
    step = width / CHART_DAYS
    bars = []
    for i, d in enumerate(days):
        pages = pages_by_day.get(d, 0)
        h = height * pages / top
        bars.append(Bar(x=i * step + 1, y=height - h, height=h, day=day_iso(d), pages=pages))
    return bars


class DashboardPage:
    page = True
    roles = EVERYONE
    openapi = {"get": Operation("The dashboard (HTML): today's jobs, pages and cost, seats used, the last 30 days",
                                responses={200: "The page", 303: "To the login page, or a user to My jobs"})}

    def __init__(self, renderer: Renderer, reader: sa.Engine, clock: Callable[[], int]) -> None:
        self.renderer = renderer
        self.reader = reader
        self.clock = clock

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.context.principal.role not in READERS:
            raise falcon.HTTPSeeOther("/my/jobs")
        now = self.clock()
        today = day_of(now)
        with self.reader.connect() as conn:
            days = {int(t.key): t for t in usage_totals(conn, "day", since_day=today - CHART_DAYS + 1)}
            licence = licence_summary(conn, now)
            held = waiting_count(conn)
        t = days.get(today)
        bars = chart({d: t.pages for d, t in days.items()}, today)
        self.renderer.page(resp, "dashboard.html", req, title="Dashboard", today=t, licence=licence, bars=bars, held=held,
                           month_pages=sum(x.pages for x in days.values()),
                           month_cost=sum(x.cost for x in days.values()))
