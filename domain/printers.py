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

    @event("CardSwipeUnmatched")
    def record_unmatched_swipe(self, card: str, reason: str, at: int) -> None:
        """A swipe at this printer's reader that released nothing: an unknown card, nothing held,
        or a line that holds no card number (audited; the card number as the reader sent it)."""
