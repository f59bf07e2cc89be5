"""Printer: a print queue PageLedger accounts for, and the cost schedule in force on it."""
from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.costs import CostSchedule

DEFAULT_HOLD_SECONDS = 4 * 3600
MAX_HOLD_SECONDS = 30 * 24 * 3600
# Release-code modes of a secure queue: none (logging in is enough), the user's own PIN
# (predefined, stored hashed), generated when the job arrives, or entered with the job
# (`lp -o release-code=...`).
CODE_NONE = "none"
CODE_PREDEFINED = "predefined"
CODE_GENERATED = "generated"
CODE_ENTERED = "entered"
CODE_MODES = (CODE_NONE, CODE_PREDEFINED, CODE_GENERATED, CODE_ENTERED)
DEFAULT_CODE_LENGTH = 6


RELEASE_SUFFIX = "-release"


def release_queue_name(queue: str) -> str:
    """The raw, unshared CUPS queue the agent install creates beside a secure queue."""
    return f"{queue}{RELEASE_SUFFIX}"


def printer_id(server_id: str, name: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"pageledger:{server_id}:printer:{name.lower()}")


class Printer(Aggregate):
    """A print queue. Registered the first time a job for it is tracked, or by an admin."""

    @event("Registered")
    def __init__(self, name: str, schedule: dict) -> None:
        self.name = name
        self.schedule = CostSchedule.from_dict(schedule)
        self.schedule_version = 1
        self.secure = False
        self.hold_seconds = DEFAULT_HOLD_SECONDS
        self.code_mode = CODE_NONE
        self.code_length = DEFAULT_CODE_LENGTH
        self.group = ""
        self.card_reader: dict = {}

    @classmethod
    def register(cls, printer_id: UUID, name: str, schedule: CostSchedule) -> "Printer":
        return cls._create(cls.Registered, id=printer_id, name=name, schedule=schedule.to_dict())

    # An admin's changes name their author (`by`: the login, or "cli"). It was appended to each
    # of these events: those stored before it say "" (not recorded).

    class CostScheduleChanged(Aggregate.Event):
        schedule: dict
        by: str = ""

        APPENDED_DEFAULTS = {"by": ""}

    @event(CostScheduleChanged)
    def change_cost_schedule(self, schedule: dict, by: str = "") -> None:
        self.schedule = CostSchedule.from_dict(schedule)
        self.schedule_version += 1

    class SecureHoldChanged(Aggregate.Event):
        secure: bool
        by: str = ""

        APPENDED_DEFAULTS = {"by": ""}

    @event(SecureHoldChanged)
    def change_secure_hold(self, secure: bool, by: str = "") -> None:
        self.secure = secure

    class HoldTimeChanged(Aggregate.Event):
        seconds: int
        by: str = ""

        APPENDED_DEFAULTS = {"by": ""}

    @event(HoldTimeChanged)
    def change_hold_time(self, seconds: int, by: str = "") -> None:
        self.hold_seconds = seconds

    class ReleaseCodeModeChanged(Aggregate.Event):
        mode: str
        length: int
        by: str = ""

        APPENDED_DEFAULTS = {"by": ""}

    @event(ReleaseCodeModeChanged)
    def change_release_code_mode(self, mode: str, length: int, by: str = "") -> None:
        self.code_mode = mode
        self.code_length = length

    class PrinterGroupChanged(Aggregate.Event):
        group: str
        by: str = ""

        APPENDED_DEFAULTS = {"by": ""}

    @event(PrinterGroupChanged)
    def change_group(self, group: str, by: str = "") -> None:
        """Printers of one group release each other's jobs (pull printing); "" for none."""
        self.group = group

    class CardReaderAssociated(Aggregate.Event):
        reader: dict
        by: str = ""

        APPENDED_DEFAULTS = {"by": ""}

    @event(CardReaderAssociated)
    def associate_card_reader(self, reader: dict, by: str = "") -> None:
        """{host, port, format...} of the network card reader at this printer; {} for none."""
        self.card_reader = dict(reader)

    class CardSwipeUnmatched(Aggregate.Event):
        """`card` is the number masked (its last 4 characters: `*1234`) and `card_digest` its
        keyed digest (adapters.personal_keys.card_digest) since they were appended; events stored before hold
        the number as the reader sent it. `user`: the holder of a known card with nothing to
        release ("" otherwise), stored as their person number."""

        card: str
        reason: str
        at: int
        card_digest: bytes = b""
        user: str = ""

        APPENDED_DEFAULTS = {"card_digest": b"", "user": ""}

    @event(CardSwipeUnmatched)
    def record_unmatched_swipe(self, card: str, reason: str, at: int, card_digest: bytes = b"",
                               user: str = "") -> None:
        """A swipe at this printer's reader that released nothing: an unknown card, nothing held,
        or a line that holds no card number (audited)."""


def printer_status_id(server_id: str, name: str) -> UUID:
    """The id of one CUPS queue's PrinterStatus (queue names are case-insensitive in CUPS)."""
    return uuid5(NAMESPACE_URL, f"pageledger:{server_id}:printer-status:{name.lower()}")


def is_error_state(state: str, reasons: tuple[str, ...] | list[str]) -> bool:
    """A printer CUPS has stopped, or one that reports an error reason (``media-empty-error``);
    warnings and reports (``toner-low-warning``) are not errors."""
    return state == "stopped" or any(r.endswith("-error") for r in reasons)


class PrinterStatus(Aggregate):
    """What the release service saw of a CUPS printer: when it went into error, with which
    reasons and message, and when it came out. Only changes are events: a printer that stays
    in error with the same reasons and message records nothing more. Each event names the
    printer, so a projection needs no other event to place it."""

    @event("Registered")
    def __init__(self, name: str) -> None:
        self.name = name
        self.in_error = False
        self.reasons: tuple[str, ...] = ()
        self.message = ""
        self.last_at = 0  # µs of the last change recorded

    @classmethod
    def register(cls, status_id: UUID, name: str) -> "PrinterStatus":
        return cls._create(cls.Registered, id=status_id, name=name)

    def observe(self, *, in_error: bool, reasons: list[str], message: str, at: int) -> bool:
        """Record what was seen at `at` (µs) if it is news; False when nothing changed. A report
        older than the last change recorded (a late retry from the agent) is not news either."""
        if at < self.last_at:
            return False
        if in_error:
            if self.in_error and tuple(reasons) == self.reasons and message == self.message:
                return False
            self._error_seen(printer=self.name, reasons=list(reasons), message=message, at=at)
            return True
        if not self.in_error:
            return False
        self._error_cleared(printer=self.name, at=at)
        return True

    @event("ErrorSeen")
    def _error_seen(self, printer: str, reasons: list, message: str, at: int) -> None:
        self.in_error = True
        self.reasons = tuple(reasons)
        self.message = message
        self.last_at = at

    @event("ErrorCleared")
    def _error_cleared(self, printer: str, at: int) -> None:
        self.in_error = False
        self.reasons = ()
        self.message = ""
        self.last_at = at
