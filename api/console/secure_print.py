"""Secure Print (/secure-print): the caller's held jobs (an admin's are everyone's, a user's their
own) with pages and cost; release the ticked ones at their queue or another printer of its group,
or delete them. The same query (api.release.held_jobs_of) and handlers (ReleaseJobs, DeleteJobs
through api.release.release_or_delete) as /api/v1/held-jobs and /release, so the page refuses what
the API refuses, with the same words, shown beside the form."""
from __future__ import annotations

from dataclasses import dataclass

import falcon
import sqlalchemy as sa

from api.console.forms import Progress, caught_up
from api.console.render import HOLDERS, Renderer
from api.openapi import Operation
from api.release import caller_of, held_jobs_of, release_or_delete
from commands.printers import PrinterCache
from commands.release import DeleteJobs, ReleaseJobs
from commands.validation import InvalidRequest
from projections.held_jobs import HeldJob
from projections.jobs import printer_names

MAX_SHOWN = 200
DONE = {"released": "Released: collect the jobs at the printer.", "deleted": "Deleted."}


def release_targets(reader: sa.Engine, printers: PrinterCache, jobs: list[HeldJob],
                    also: tuple[str, ...] = ()) -> list[str]:
    """Printers the held `jobs` may print on besides their own queues: the secure printers of
    their queues' groups (pull printing; ReleaseJobs refuses any other). `also`: names to consider
    besides the printers that have had jobs (the printer a phone came from)."""
    queues = sorted({j.printer for j in jobs})
    found, _ = printers.for_names(queues) if queues else ({}, [])
    groups = {p.group for p in found.values() if p.group}
    if not groups:
        return []
    with reader.connect() as conn:
        names = printer_names(conn)[:500]
    others, _ = printers.for_names(sorted(set(names) | set(also)))
    return sorted({p.name for p in others.values() if p.secure and p.group in groups} - set(queues))


@dataclass(frozen=True)
class HeldJobsChoice:
    """What a held-jobs form posted: the ticked jobs, the action, the printer and the code."""

    action: str
    picked: tuple[str, ...]
    printer: str
    code: str


class HeldJobsPage:
    """A page of held jobs whose form releases or deletes the ticked ones (Secure Print, and
    /release for a phone): one parsing of the form and one call of api.release.release_or_delete."""

    page = True
    form_csrf = True
    roles = HOLDERS

    def __init__(self, renderer: Renderer, reader: sa.Engine, printers: PrinterCache, release_jobs: ReleaseJobs,
                 delete_jobs: DeleteJobs, progress: Progress) -> None:
        self.renderer = renderer
        self.reader = reader
        self.printers = printers
        self.release_jobs = release_jobs
        self.delete_jobs = delete_jobs
        self.progress = progress

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._show(req, resp)

    def _show(self, req: falcon.Request, resp: falcon.Response, status: str = falcon.HTTP_200,
              errors: dict | None = None, picked: tuple[str, ...] = (), chosen: str = "") -> None:
        raise NotImplementedError

    def _release_or_delete(self, req: falcon.Request, resp: falcon.Response) -> HeldJobsChoice | None:
        """Do what the form asks; None when it was refused (the page is shown with the reason)."""
        media = req.get_media(default_when_empty={}) or {}
        media = media if isinstance(media, dict) else {}
        picked = media.get("job", [])
        picked = [picked] if isinstance(picked, str) else [p for p in picked if isinstance(p, str)]

        def one(name: str) -> str:
            value = media.get(name, "")
            return (value[-1] if isinstance(value, list) else str(value)).strip()[:255]

        choice = HeldJobsChoice(one("action"), tuple(picked), one("printer"), one("code"))
        try:
            if not picked:
                raise InvalidRequest({"jobs": ["tick at least one job"]})
            release_or_delete(self.release_jobs, self.delete_jobs, choice.action, picked, caller_of(req),
                              choice.printer or None, choice.code or None)
        except InvalidRequest as exc:
            self._show(req, resp, falcon.HTTP_400, exc.errors, choice.picked, choice.printer)
            return None
        caught_up(self.progress, ("jobs",))
        return choice


class SecurePrintPage(HeldJobsPage):
    openapi = {"get": Operation("Secure Print (HTML): your held jobs (admins: everyone's) with pages and cost",
                                responses={200: "The page", 303: "To login"}),
               "post": Operation("Release or delete the ticked held jobs (HTML form with csrf_token): action="
                                 "release|delete, job=... (repeated), printer (optional, of the queue's group), code",
                                 responses={303: "Done: back to the list", 400: "Refused (another user's job, a "
                                            "wrong code, a printer outside the group): shown beside the form",
                                            403: "CSRF token missing or wrong", 429: "Too many wrong codes"})}

    def _show(self, req: falcon.Request, resp: falcon.Response, status: str = falcon.HTTP_200,
              errors: dict | None = None, picked: tuple[str, ...] = (), chosen: str = "") -> None:
        jobs = held_jobs_of(self.reader, caller_of(req), limit=MAX_SHOWN)
        targets = release_targets(self.reader, self.printers, jobs)
        self.renderer.page(resp, "secure_print.html", req, status=status, title="Secure Print", jobs=jobs,
                           targets=targets, chosen_printer="", errors=errors or {}, picked=set(picked),
                           total_pages=sum(j.pages * j.copies for j in jobs), total_cost=sum(j.cost for j in jobs),
                           notice=DONE.get(req.get_param("done") or "", ""))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        choice = self._release_or_delete(req, resp)
        if choice is not None:
            raise falcon.HTTPSeeOther("/secure-print?done=" + ("released" if choice.action == "release"
                                                               else "deleted"))
