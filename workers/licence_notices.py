"""The daily licence notice: one e-mail to the admins naming the users who were denied a seat.

At most one a day, whichever worker or node runs it: the notice is first recorded on the
Licence aggregate (DenialNoticeSent, through commands.licensing, checked against the
aggregate's version), and only the worker whose save succeeded sends the mail. If sending
then fails, that day's notice is lost rather than sent twice; the users are named again the
next time they are denied.
"""
from __future__ import annotations

import logging
from email.message import EmailMessage
from typing import Callable, Protocol

from adapters.mail import MailNotSent
from commands.licensing import Licensing

log = logging.getLogger("pageledger.notices")


class Mailer(Protocol):
    sender: str
    recipients: tuple[str, ...]

    def send(self, message: EmailMessage) -> None: ...


def compose_notice(users: list[str], seats: int, sender: str, recipients: tuple[str, ...]) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = f"PageLedger: {len(users)} user(s) denied a licence seat"
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    lines = [
        f"All {seats} licence seats are in use, so these users were denied (their jobs were not",
        "tracked, or they could not log in):",
        "",
        *(f"  - {u}" for u in users),
        "",
        "Free seats by setting users who no longer print to Inactive, or add seats to the licence",
        "(Administration > Settings > Licensing). You can also enable \"track unlicensed users\".",
    ]
    msg.set_content("\n".join(lines))
    return msg


class SendDenialNotice:
    """Send today's notice if users were denied since the last one. Returns who was named."""

    def __init__(self, licensing: Licensing, denied_since: Callable[[int], list[str]], mailer: Mailer) -> None:
        self.licensing = licensing
        self.denied_since = denied_since  # logins denied after a time in µs (projections.licence_seats)
        self.mailer = mailer

    def __call__(self) -> list[str]:
        if not self.mailer.recipients:
            return []
        recorded = self.licensing.record_denial_notice(self.denied_since)
        if recorded is None:
            return []  # nobody to name, or today's notice has gone out already
        users, seats = recorded
        try:
            self.mailer.send(compose_notice(users, seats, self.mailer.sender, self.mailer.recipients))
        except MailNotSent as exc:
            log.error("the licence notice naming %d users could not be sent %s", len(users), exc)
            return []
        log.info("licence notice sent to %d admins naming %d denied users", len(self.mailer.recipients), len(users))
        return users
