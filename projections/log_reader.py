"""Reads the event log for projections: only id, topic, originator and state, as plain rows.

The library's `select_notifications()` builds a Notification object and parses a UUID for
every row, and the mapper then builds a full domain event: together more than the projection's
own database work (measured: reading and decoding 100k jobs took longer than writing them).
This reads the library's own events table, through the library's own datastore (its
connection pool and transactions), and decodes each row into a light view (adapters.codec).
The compact mapper stores neither cipher nor compression, so the state is decoded as stored.
"""
from __future__ import annotations

from typing import Any, Sequence

from eventsourcing.application import Application

from adapters.codec import EventView, decode_view, short_topic, stored_spellings, topic_of
from adapters.personal_keys import (PERSON_FIELDS, PERSONAL_USER_FIELDS, PersonalKeys, SubjectKeys, open_job_views,
                                    open_people, open_user_views)
from domain.jobs import PrintJob

JOB_TOPICS = frozenset({short_topic(PrintJob.Tracked), short_topic(PrintJob.Denied),
                        short_topic(PrintJob.Secured)})


class LogReader:
    def __init__(self, app: Application) -> None:
        self.recorder = app.recorder
        self.table = self.recorder.events_table_name
        self.postgres = type(self.recorder).__module__.startswith(("eventsourcing.postgres", "adapters.pg_"))
        if getattr(app.mapper, "cipher", None) or getattr(app.mapper, "compressor", None):
            raise ValueError("LogReader reads plain stored state; this application encrypts or compresses it")
        self.personal = PersonalKeys(self.recorder, secret=getattr(app, "privacy_secret", None))
        self.subjects = SubjectKeys(self.personal)

    def read(self, after: int, limit: int, topics: Sequence[str] = ()) -> list[tuple[int, str, EventView]]:
        """Up to `limit` events after notification id `after`, optionally of `topics` only (short
        topics; each row comes with its short topic, however it is stored: adapters.codec)."""
        rows = self._rows(after, limit, stored_spellings(topics))
        decoded = [(nid, topic_of(topic), decode_view(topic, bytes(state), originator))
                   for nid, topic, originator, state in rows]
        # The logins other events name are stored as person numbers (first: a secure job's
        # fields are then opened with its owner's login).
        open_people(self.personal, [(topic, view) for _, topic, view in decoded if topic in PERSON_FIELDS])
        # A job's personal fields are sealed with its user's key: projections get them opened,
        # or as erased when the key is gone (adapters.personal_keys).
        open_job_views(self.personal, [view for _, topic, view in decoded if topic in JOB_TOPICS])
        # So are Users' login and profile, with the User's own key.
        open_user_views(self.subjects, [(topic, view) for _, topic, view in decoded if topic in PERSONAL_USER_FIELDS])
        return decoded

    def _rows(self, after: int, limit: int, topics: Sequence[str]) -> list[tuple[int, str, Any, bytes]]:
        if self.postgres:
            from psycopg.rows import tuple_row
            from psycopg.sql import SQL, Identifier

            sql = SQL("SELECT notification_id, topic, originator_id, state FROM {schema}.{table} "
                      "WHERE notification_id > %s {topic_filter} ORDER BY notification_id LIMIT %s").format(
                schema=Identifier(self.recorder.datastore.schema), table=Identifier(self.table),
                topic_filter=SQL("AND topic = ANY(%s)") if topics else SQL(""))
            params: list[Any] = [after, *([list(topics)] if topics else []), limit]
            with self.recorder.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
                cur.execute(sql, params, prepare=True)
                return cur.fetchall()
        topic_filter = f"AND topic IN ({','.join('?' * len(topics))}) " if topics else ""
        sql = (f"SELECT rowid, topic, originator_id, state FROM {self.table} "
               f"WHERE rowid > ? {topic_filter}ORDER BY rowid LIMIT ?")
        with self.recorder.datastore.transaction(commit=False) as cur:
            cur.execute(sql, [after, *topics, limit])
            return [tuple(row) for row in cur.fetchall()]

    def head(self) -> int:
        return int(self.recorder.max_notification_id() or 0)
