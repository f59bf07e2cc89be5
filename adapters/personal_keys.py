"""Per-person keys for the personal fields of print jobs, and crypto-shredding (GDPR art. 17).

A job's client host and document name are personal: when a job is recorded they are encrypted
with its user's own key (ChaCha20, 256-bit key) into the event's `document` field, and its
`client_host` field is left empty. The nonce is the job's id (a uuid5 of the client's job
key, unique, and never recorded twice: a re-post records nothing), so nothing is stored beside
the ciphertext: it is exactly as long as the two names (+2 bytes of framing). Integrity is the
seal chain's work (adapters.event_seals), so no tag is stored either.

Keys live in their own table beside the events (`<events>_keys`, created by the recorders),
one row per login. Erasing a person deletes their row: the ciphertexts in the log stay where
they are, immutable and sealed, and can never be read again. The erasure itself is kept in
`<events>_erasures` as a number and a SHA-256 of the login (never the login), so that every
later read of the log shows that person as "erased user #N".
"""
from __future__ import annotations

import hashlib
import os
from contextlib import AbstractContextManager, nullcontext
import threading
import time
from typing import Any, Iterable, Sequence
from uuid import UUID

import msgspec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

ERASED_HOST = "erased"
KEY_BYTES = 32
CACHE_SECONDS = 5.0  # how long a process trusts a key it read (an erasure is seen within this)
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(tuple[str, str]).decode


def erased_user(n: int) -> str:
    return f"erased user #{n}"


def login_digest(login: str) -> bytes:
    return hashlib.sha256(login.encode("utf-8")).digest()


def _stream(key: bytes, job_id: UUID, data: bytes) -> bytes:
    return Cipher(algorithms.ChaCha20(key, job_id.bytes), mode=None).encryptor().update(data)


def seal_fields(key: bytes, job_id: UUID, client_host: str, document: str) -> bytes:
    return _stream(key, job_id, _encode((client_host, document)))


def open_fields(key: bytes, job_id: UUID, sealed: bytes) -> tuple[str, str]:
    return _decode(_stream(key, job_id, bytes(sealed)))


def keys_table(events_table: str) -> str:
    return f"{events_table}_keys"


def erasures_table(events_table: str) -> str:
    return f"{events_table}_erasures"


def sqlite_create_statements(events_table: str) -> list[str]:
    return [f"CREATE TABLE IF NOT EXISTS {keys_table(events_table)} (login TEXT PRIMARY KEY, key BLOB NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {erasures_table(events_table)} (n INTEGER PRIMARY KEY, "
            "digest BLOB NOT NULL UNIQUE, at INTEGER NOT NULL)"]


def postgres_create_statements(schema: str, events_table: str) -> list[str]:
    return [f'CREATE TABLE IF NOT EXISTS "{schema}"."{keys_table(events_table)}" (login text PRIMARY KEY, '
            "key bytea NOT NULL)",
            f'CREATE TABLE IF NOT EXISTS "{schema}"."{erasures_table(events_table)}" (n bigserial PRIMARY KEY, '
            "digest bytea NOT NULL UNIQUE, at bigint NOT NULL)"]


class PersonalKeys:
    """The keys table and the erasures, through the event store's own datastore."""

    def __init__(self, recorder: Any, writes_lock: AbstractContextManager = nullcontext()) -> None:
        self.recorder = recorder
        self.writes_lock = writes_lock  # PageLedger's SQLite write lock (adapters.stores.writes_lock)
        self.postgres = type(recorder).__module__.startswith(("eventsourcing.postgres", "adapters.pg_"))
        events = recorder.events_table_name
        if self.postgres:
            schema = recorder.datastore.schema
            self.keys = f'"{schema}"."{keys_table(events)}"'
            self.erasures = f'"{schema}"."{erasures_table(events)}"'
        else:
            self.keys, self.erasures = keys_table(events), erasures_table(events)
        self.p = "%s" if self.postgres else "?"
        self._cache: dict[str, tuple[float, bytes | None]] = {}
        self._erased: tuple[float, dict[bytes, int]] = (0.0, {})
        self._guard = threading.Lock()

    # --- raw access ---
    def _run(self, sql: str, params: Sequence[Any] = (), *, write: bool = False, many: bool = False) -> list[tuple]:
        if self.postgres:
            from psycopg.rows import tuple_row

            with self.recorder.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
                if many:
                    cur.executemany(sql, params)
                else:
                    cur.execute(sql, params)
                rows = cur.fetchall() if cur.description else []
                if write:
                    conn.commit()
                return rows
        with self.writes_lock if write else nullcontext(), self.recorder.datastore.transaction(commit=write) as cur:
            if many:
                cur.executemany(sql, params)
                return []
            cur.execute(sql, params)
            return [tuple(r) for r in cur.fetchall()]

    def _select_keys(self, logins: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for i in range(0, len(logins), 500):
            part = logins[i:i + 500]
            rows = self._run(f"SELECT login, key FROM {self.keys} WHERE login IN ({', '.join([self.p] * len(part))})",
                             part)
            found.update({login: bytes(key) for login, key in rows})
        return found

    # --- the writer's side: a key for every user of a batch ---
    def keys_for(self, logins: Iterable[str]) -> dict[str, bytes]:
        """Each login's key, made now for a login that has none (also after an erasure: a person
        who prints again is a new start)."""
        wanted = list(dict.fromkeys(logins))
        now = time.monotonic()
        found = {n: k for n in wanted if (c := self._cache.get(n)) and c[0] > now and (k := c[1]) is not None}
        missing = [n for n in wanted if n not in found]
        if missing:
            fresh = self._select_keys(missing)
            new = [(n, os.urandom(KEY_BYTES)) for n in missing if n not in fresh]
            if new:
                conflict = "ON CONFLICT (login) DO NOTHING"
                self._run(f"INSERT INTO {self.keys} (login, key) VALUES ({self.p}, {self.p}) {conflict}", new,
                          write=True, many=True)
                fresh = self._select_keys(missing)  # another writer's key wins a race
            with self._guard:
                for n in missing:
                    self._cache[n] = (now + CACHE_SECONDS, fresh.get(n))
            found.update(fresh)
        return found

    # --- the readers' side ---
    def existing(self, logins: Iterable[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(logins))
        now = time.monotonic()
        found: dict[str, bytes] = {}
        missing = []
        for n in wanted:
            c = self._cache.get(n)
            if c and c[0] > now:
                if c[1] is not None:
                    found[n] = c[1]
            else:
                missing.append(n)
        if missing:
            fresh = self._select_keys(missing)
            with self._guard:
                for n in missing:
                    self._cache[n] = (now + CACHE_SECONDS, fresh.get(n))
            found.update(fresh)
        return found

    def erased_numbers(self) -> dict[bytes, int]:
        """SHA-256 of each erased login -> its erasure number."""
        now = time.monotonic()
        if self._erased[0] > now:
            return self._erased[1]
        numbers = {bytes(d): int(n) for n, d in self._run(f"SELECT n, digest FROM {self.erasures}")}
        self._erased = (now + CACHE_SECONDS, numbers)
        return numbers

    def erase(self, login: str, now_us: int) -> tuple[int, bool]:
        """Delete `login`'s key and record the erasure; returns its number and whether a key
        was deleted (False: nothing was encrypted for that login)."""
        digest = login_digest(login)
        had = bool(self._run(f"DELETE FROM {self.keys} WHERE login = {self.p} RETURNING login", [login], write=True))
        self._run(f"INSERT INTO {self.erasures} (digest, at) VALUES ({self.p}, {self.p}) "
                  "ON CONFLICT (digest) DO NOTHING", [digest, now_us], write=True)
        [(n,)] = self._run(f"SELECT n FROM {self.erasures} WHERE digest = {self.p}", [digest])
        with self._guard:
            self._cache.pop(login, None)
            self._erased = (0.0, {})
        return int(n), had

    def forget_cache(self) -> None:
        with self._guard:
            self._cache.clear()
            self._erased = (0.0, {})


def open_job_views(keys: PersonalKeys, views: Sequence[Any]) -> None:
    """Replace, in place, the sealed personal fields of job views or events by their clear
    values, or by the erased placeholders when their user's key is gone; and the login of an
    erased person by "erased user #N"."""
    if not views:
        return
    sealed = [v for v in views if isinstance(getattr(v, "document", None), (bytes, bytearray))]
    erased = keys.erased_numbers()
    if sealed:
        found = keys.existing({v.user for v in sealed})
        for v in sealed:
            key = found.get(v.user)
            if key is None:
                host, document = ERASED_HOST, ""
            else:
                host, document = open_fields(key, _uuid(v.originator_id), v.document)
            _set(v, "client_host", host)
            _set(v, "document", document)
    if erased:
        for v in views:
            n = erased.get(login_digest(v.user))
            if n is not None:
                _set(v, "user", erased_user(n))


def _uuid(value: Any) -> UUID:
    if isinstance(value, UUID):
        return value
    if isinstance(value, (bytes, bytearray)):
        return UUID(bytes=bytes(value))
    return UUID(str(value))


def _set(obj: Any, name: str, value: Any) -> None:
    try:
        setattr(obj, name, value)
    except (AttributeError, TypeError):  # a frozen domain event
        obj.__dict__[name] = value
