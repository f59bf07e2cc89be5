"""The eventsourcing Application that holds every PageLedger aggregate."""
from __future__ import annotations

from eventsourcing.application import Application
from eventsourcing.persistence import Mapper

from pageledger.codec import CompactMapper, MsgpackTranscoder


class PageLedger(Application):
    """Saves and loads aggregates; its event store is the record of truth."""

    name = "pageledger"

    def __init__(self, env: dict[str, str], server_id: str = "pageledger") -> None:
        super().__init__(env=env)
        self.server_id = server_id

    def construct_mapper(self) -> Mapper:
        return self.factory.mapper(transcoder=MsgpackTranscoder(), mapper_class=CompactMapper)
