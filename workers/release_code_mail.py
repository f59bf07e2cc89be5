"""E-mails a generated release code to the job's owner, when they have an address.

Sent from a background thread: the agent's POST that produced the code is answered without
waiting for an SMTP server. The code is in the message only, never in a log line.
"""
from __future__ import annotations

import logging
import queue
import threading
from email.message import EmailMessage
from typing import Callable

from adapters.mail import MailNotSent, SmtpMailer

log = logging.getLogger("pageledger.release")


class ReleaseCodeMailer:
    def __init__(self, email_of: Callable[[str], str], mailer: SmtpMailer, max_waiting: int = 1000) -> None:
        self.email_of = email_of  # login -> e-mail address ("" for none)
        self.mailer = mailer
        self._queue: queue.Queue = queue.Queue(maxsize=max_waiting)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def __call__(self, user: str, code: str, printer: str, document: str) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="release-code-mail", daemon=True)
                self._thread.start()
        try:
            self._queue.put_nowait((user, code, printer, document))
        except queue.Full:
            log.warning("release code for a job of %s not e-mailed: too many waiting", user)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every queued message was tried (tests, shutdown)."""
        done = threading.Event()
        self._queue.put((None, None, None, done))
        done.wait(timeout)

    def _run(self) -> None:
        while True:
            user, code, printer, document = self._queue.get()
            if user is None:
                document.set()
                continue
            try:
                address = self.email_of(user)
                if not address:
                    continue
                message = EmailMessage()
                message["Subject"] = "PageLedger: the release code of your print job"
                message["From"] = self.mailer.sender
                message["To"] = address
                message.set_content(f"Your print job \"{document}\" is held on {printer}.\n\n"
                                    f"Release code: {code}\n\n"
                                    "Enter it at /release (or at the printer) to print the job.\n")
                self.mailer.send(message)
                log.info("release code e-mailed to %s", user)
            except MailNotSent as exc:
                log.warning("release code for a job of %s not e-mailed: %s", user, exc)
            except Exception:  # noqa: BLE001 - the mail thread must live on
                log.exception("release code e-mail failed")
