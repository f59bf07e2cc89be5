"""Sending mail through an SMTP server (smtplib): how notices reach the admins."""
from __future__ import annotations

import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Callable


class MailNotSent(RuntimeError):
    pass


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


class SmtpMailer:
    """`settings` may be a function giving the SMTP settings in force when a message is sent (an
    admin can change them in the console while the server runs)."""

    def __init__(self, settings: SmtpSettings | Callable[[], SmtpSettings]) -> None:
        self._settings = settings

    @property
    def settings(self) -> SmtpSettings:
        return self._settings() if callable(self._settings) else self._settings

    @property
    def sender(self) -> str:
        return self.settings.sender

    @property
    def recipients(self) -> tuple[str, ...]:
        return self.settings.recipients

    def send(self, message: EmailMessage) -> None:
        s = self.settings
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout) as client:
                if s.starttls:
                    client.starttls()
                if s.username:
                    client.login(s.username, s.password)
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailNotSent(f"via {s.host}:{s.port}: {exc}") from exc
