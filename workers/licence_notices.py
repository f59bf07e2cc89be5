"""The daily licence notice: one e-mail to the admins naming the users who were denied a seat.

At most one a day, whichever worker or node runs it: the notice is first recorded on the
Licence aggregate (DenialNoticeSent, checked against the aggregate's version), and only the
worker whose save succeeded sends the mail. If sending then fails, that day's notice is lost
rather than sent twice; the users are named again the next time they are denied.
"""
from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Callable

import sqlalchemy as sa
from eventsourcing.persistence import IntegrityError

from commands.application import PageLedger
from commands.licensing import Licensing
from domain.licence import DAY_US
from projections.licence_seats import denied_since

log = logging.getLogger("pageledger.notices")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    starttls: bool = False
    username: str = ""
    password: str = field(default="", repr=False)
    timeout: float = 15.0


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


def send_denial_notice(app: PageLedger, licensing: Licensing, reader: sa.Engine, smtp: SmtpSettings,
                       clock: Callable[[], int]) -> list[str]:
    """Send today's notice if users were denied since the last one. Returns who was named."""
    if not smtp.recipients:
        return []
    for _ in range(20):
        licence = licensing.get()
        if licence is None:
            return []
        with reader.connect() as conn:
            users = denied_since(conn, licence.last_notice_at)
        now = clock()
        if not licence.record_denial_notice(now // DAY_US, users, now):
            return []  # nobody to name, or today's notice has gone out already
        try:
            app.save(licence)
        except IntegrityError:
            continue  # the licence changed (a seat, or another worker's notice): look again
        break
    else:
        return []
    message = compose_notice(users, licence.seats, smtp.sender, smtp.recipients)
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout) as client:
            if smtp.starttls:
                client.starttls()
            if smtp.username:
                client.login(smtp.username, smtp.password)
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        log.error("licence notice naming %d users could not be sent via %s:%d: %s", len(users), smtp.host,
                  smtp.port, exc)
        return []
    log.info("licence notice sent to %d admins naming %d denied users", len(smtp.recipients), len(users))
    return users
