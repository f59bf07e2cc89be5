"""Rendering console pages: one Jinja2 environment (autoescape on), the navigation by role,
and the values every page shows (who is logged in, the session's CSRF token)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo

import falcon
from jinja2 import Environment, PackageLoader, StrictUndefined

from domain.units import format_money, from_micros


@dataclass(frozen=True)
class NavEntry:
    label: str
    href: str
    roles: tuple[str, ...]


ADMINS = ("admin",)
READERS = ("admin", "auditor")
EVERYONE = ("admin", "auditor", "user")

# One entry per page.
HOLDERS = ("admin", "user")  # who has held jobs to release (an auditor only reads)

NAV: tuple[NavEntry, ...] = (
    NavEntry("Dashboard", "/", READERS),
    NavEntry("Job Accounting", "/jobs", READERS),
    NavEntry("Secure Print", "/secure-print", HOLDERS),
    NavEntry("Users", "/users", READERS),
    NavEntry("Printers", "/printers", READERS),
    NavEntry("Reports", "/reports", EVERYONE),
    NavEntry("Settings", "/admin/settings", READERS),
    NavEntry("Licensing", "/admin/licensing", READERS),
    NavEntry("Audit", "/audit", READERS),
    NavEntry("My jobs", "/my/jobs", EVERYONE),
)


class Renderer:
    """`timezone` gives the site's time zone name (site setting `timezone`) when a page renders."""

    def __init__(self, timezone_name: Callable[[], str] = lambda: "UTC") -> None:
        self.env = Environment(loader=PackageLoader("api", "templates"), autoescape=True,
                               undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.env.filters["money"] = format_money
        self.env.filters["when"] = self._when
        self.env.filters["number"] = lambda n: f"{int(n):,}"
        self.timezone_name = timezone_name

    def _when(self, us: int) -> str:
        try:
            zone = ZoneInfo(self.timezone_name())
        except (KeyError, ValueError):
            zone = timezone.utc
        return from_micros(us).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")

    def html(self, template: str, req: falcon.Request | None = None, **values: Any) -> str:
        principal = getattr(req.context, "principal", None) if req is not None else None
        nav = [n for n in NAV if principal is not None and principal.role in n.roles]
        here = req.path if req is not None else ""
        return self.env.get_template(template).render(
            {"notice": "", "message": "", "link": None, "alert": False, **values},
            principal=principal, nav=nav, here=here, csrf=getattr(principal, "csrf", ""))

    def page(self, resp: falcon.Response, template: str, req: falcon.Request | None = None,
             status: str = falcon.HTTP_200, **values: Any) -> None:
        resp.status = status
        resp.content_type = falcon.MEDIA_HTML
        resp.text = self.html(template, req, **values)
