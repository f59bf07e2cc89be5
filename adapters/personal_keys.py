"""Per-person keys for the personal fields of print jobs, and crypto-shredding (GDPR art. 17).

A job's client host and document name are personal: when a job is recorded they are encrypted
with its user's own key (ChaCha20, 256-bit key) into the event's `document` field, and its
`client_host` field is left empty. The nonce is the job's id (a uuid5 of the client's job
key, unique, and never recorded twice: a re-post records nothing), so nothing is stored beside
the ciphertext: it is exactly as long as the two names (+2 bytes of framing). Integrity is the
seal chain's work (adapters.event_seals), so no tag is stored either.

The login is personal too. Since version 2 (`person` > 0 on PrintJob.Tracked and Denied) a
job's event carries no login: its `user` field is empty and `person` names a row of
`<events>_people` — a number, the person's key, the login sealed with that key (nonce: the
first 16 bytes of the row's digest of the login, never a job id: uuid5 ids carry version bits)
and that digest to find the row from a login. Erasing the person clears the row to just its number and
the erasure's number (`erased`): the key, the sealed login and the digest are gone, so neither
the login nor the names of any of their jobs can be read again, and every read shows "erased
user #N". The logins other events name (a secure job's owner, who released it, seats, login
attempts, admins' changes: PERSON_FIELDS below) are stored as that same person number by the
compact mapper. A row is found by a digest of the login keyed with the site's privacy key
(`<data_dir>/privacy.key`), or by its plain SHA-256 for rows made before that key.

Version 1 (events stored before: `user` = the login, `person` = 0) keeps working: their keys
are in `<events>_keys`, one row per login, and an erasure deletes that row too and records the
login's digest in `<events>_erasures` (never the login) so that their `user` reads as
"erased user #N". Both tables live beside the events, created by the recorders.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from contextlib import AbstractContextManager, nullcontext
import threading
import time
from typing import Any, Iterable, NamedTuple, Sequence
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
    """The plain SHA-256 of a login: how rows were found before the site's privacy key."""
    return hashlib.sha256(login.encode("utf-8")).digest()


def keyed_login_digest(secret: bytes, login: str) -> bytes:
    """HMAC-SHA-256 of a login under the site's privacy key (`<data_dir>/privacy.key`): a copy
    of the database alone cannot test a guessed login against it."""
    return hmac.new(secret, login.encode("utf-8"), hashlib.sha256).digest()


def card_digest(secret: bytes | None, card: str) -> bytes:
    """A card number as an unmatched swipe stores it: HMAC-SHA-256 under the site's privacy key,
    so the same card is recognised across swipes, but a copy of the database alone cannot test
    numbers against it. b"" without a privacy key (an in-memory store)."""
    return hmac.new(secret, b"card:" + card.encode("utf-8"), hashlib.sha256).digest()[:16] if secret else b""


def masked_card(card: str) -> str:
    """What an admin sees of a card number: its last 4 characters (`*1234`), only `*` for a
    number of fewer than 8 (its last 4 would be most of it), "" for none."""
    if not card:
        return ""
    return "*" + card[-4:] if len(card) >= 8 else "*"


def _stream(key: bytes, job_id: UUID, data: bytes) -> bytes:
    return _cipher(key, job_id.bytes, data)


def _cipher(key: bytes, nonce: bytes, data: bytes) -> bytes:
    """ChaCha20 of `data` with a 16-byte `nonce`: a 32-bit block counter (little-endian, its
    first 4 bytes) and 12 bytes of nonce. A random nonce's counter can start so near 2**32 that
    a few blocks run past it, which the library refuses (a job id starting ff ff ff ff with a
    65-byte host and document: about once in 4 × 10**9 jobs). The counter then wraps to 0 with
    the same 12 bytes, as the 32-bit counter of RFC 8439's ChaCha20 would: every other input is
    sealed to exactly the bytes it always was, and no block of keystream is used twice in one
    seal (that would take 2**32 blocks, 256 GiB)."""
    room = _room(nonce)
    if len(data) > room:
        return _cipher(key, nonce, data[:room]) + _cipher(key, b"\0\0\0\0" + nonce[4:], data[room:])
    return Cipher(algorithms.ChaCha20(key, nonce), mode=None).encryptor().update(data)


def _room(nonce: bytes) -> int:
    """The bytes ChaCha20 can seal from `nonce`'s block counter before it would pass 2**32."""
    return (0x1_0000_0000 - int.from_bytes(nonce[:4], "little")) * 64


def seal_login(key: bytes, login: str, digest: bytes | None = None) -> bytes:
    """The login sealed with its person's key; the nonce is the first 16 bytes of the row's
    `digest` (stored beside it, so `open_login` needs nothing else)."""
    return _cipher(key, (digest or login_digest(login))[:16], login.encode("utf-8"))


def open_login(key: bytes, digest: bytes, sealed: bytes) -> str:
    return _cipher(key, bytes(digest)[:16], bytes(sealed)).decode("utf-8")


class Person(NamedTuple):
    """What a job is sealed with: the person's number (the event's `person`) and key."""

    number: int
    key: bytes


def seal_fields(key: bytes, job_id: UUID, client_host: str, document: str) -> bytes:
    return _stream(key, job_id, _encode((client_host, document)))


class FieldSealer:
    """Seals the personal fields of many jobs, as `seal_fields` does, byte for byte: the cipher
    context of each key is built once and its nonce reset for each job, which costs about a
    sixth of building a context per job (most of a seal's time). Meant for one batch in one
    thread (a context is not shared between threads), then dropped with its keys."""

    def __init__(self) -> None:
        self._contexts: dict[bytes, Any] = {}

    def __call__(self, key: bytes, job_id: UUID, client_host: str, document: str) -> bytes:
        nonce = job_id.bytes
        data = _encode((client_host, document))
        if len(data) > _room(nonce):  # the block counter would wrap: `_cipher` does that
            return _cipher(key, nonce, data)
        context = self._contexts.get(key)
        if context is None:
            context = self._contexts[key] = Cipher(algorithms.ChaCha20(key, nonce), mode=None).encryptor()
        else:
            context.reset_nonce(nonce)
        return context.update(data)


def open_fields(key: bytes, job_id: UUID, sealed: bytes) -> tuple[str, str]:
    return _decode(_stream(key, job_id, bytes(sealed)))


def keys_table(events_table: str) -> str:
    return f"{events_table}_keys"


def erasures_table(events_table: str) -> str:
    return f"{events_table}_erasures"


def people_table(events_table: str) -> str:
    return f"{events_table}_people"


def sqlite_create_statements(events_table: str) -> list[str]:
    return [f"CREATE TABLE IF NOT EXISTS {keys_table(events_table)} (login TEXT PRIMARY KEY, key BLOB NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {erasures_table(events_table)} (n INTEGER PRIMARY KEY, "
            "digest BLOB NOT NULL UNIQUE, at INTEGER NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {people_table(events_table)} (person INTEGER PRIMARY KEY, "
            "digest BLOB UNIQUE, key BLOB, login BLOB, erased INTEGER)",
            subjects_sqlite_statement(events_table)]


def postgres_create_statements(schema: str, events_table: str) -> list[str]:
    return [f'CREATE TABLE IF NOT EXISTS "{schema}"."{keys_table(events_table)}" (login text PRIMARY KEY, '
            "key bytea NOT NULL)",
            f'CREATE TABLE IF NOT EXISTS "{schema}"."{erasures_table(events_table)}" (n bigserial PRIMARY KEY, '
            "digest bytea NOT NULL UNIQUE, at bigint NOT NULL)",
            f'CREATE TABLE IF NOT EXISTS "{schema}"."{people_table(events_table)}" (person bigserial PRIMARY KEY, '
            "digest bytea UNIQUE, key bytea, login bytea, erased bigint)",
            subjects_postgres_statement(schema, events_table)]


class PersonalKeys:
    """The keys table and the erasures, through the event store's own datastore."""

    def __init__(self, recorder: Any, writes_lock: AbstractContextManager = nullcontext(),
                 secret: bytes | None = None) -> None:
        self.recorder = recorder
        self.secret = secret  # the site's privacy key; None: plain SHA-256 digests (as before it)
        self.writes_lock = writes_lock  # PageLedger's SQLite write lock (adapters.stores.writes_lock)
        self.postgres = type(recorder).__module__.startswith(("eventsourcing.postgres", "adapters.pg_"))
        events = recorder.events_table_name
        if self.postgres:
            schema = recorder.datastore.schema
            self.keys = f'"{schema}"."{keys_table(events)}"'
            self.erasures = f'"{schema}"."{erasures_table(events)}"'
            self.people = f'"{schema}"."{people_table(events)}"'
        else:
            self.keys, self.erasures, self.people = keys_table(events), erasures_table(events), people_table(events)
        self.p = "%s" if self.postgres else "?"
        self._cache: dict[str, tuple[float, bytes | None]] = {}
        self._people_cache: dict[str, tuple[float, Person]] = {}  # login -> its person (writer's side)
        self._by_number: dict[int, tuple[float, tuple[str, bytes] | int]] = {}  # -> (login, key) or erasure
        self._erased: tuple[float, dict[bytes, int]] = (0.0, {})
        self._guard = threading.Lock()

    # --- digests of logins ---
    def digest(self, login: str) -> bytes:
        """The digest a new row of `login` is stored under."""
        return keyed_login_digest(self.secret, login) if self.secret else login_digest(login)

    def digests(self, login: str) -> tuple[bytes, ...]:
        """Every digest a row of `login` may be stored under: keyed, and plain SHA-256 (rows
        made before the privacy key)."""
        return (keyed_login_digest(self.secret, login), login_digest(login)) if self.secret else (login_digest(login),)

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
            # Sorted by the unique key: two writers inserting the same new logins then take their
            # row locks in the same order, and one waits for the other instead of deadlocking.
            new = sorted((n, os.urandom(KEY_BYTES)) for n in missing if n not in fresh)
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

    def people_for(self, logins: Iterable[str]) -> dict[str, Person]:
        """Each login's person (number and key), made now for a login that has none — also after
        an erasure: a person who prints again is a new person, with a new number."""
        wanted = list(dict.fromkeys(logins))
        now = time.monotonic()
        found = {n: c[1] for n in wanted if (c := self._people_cache.get(n)) and c[0] > now}
        missing = [n for n in wanted if n not in found]
        if missing:
            fresh = self._select_people(missing)
            new = [n for n in missing if n not in fresh]
            if new:
                rows = []
                for login in new:
                    key = os.urandom(KEY_BYTES)
                    digest = self.digest(login)
                    rows.append((digest, key, seal_login(key, login, digest)))
                # By digest, the unique key: concurrent batches with the same new logins lock their
                # rows in the same order (in any order, two such batches deadlocked: a 500).
                rows.sort(key=lambda row: row[0])
                self._run(f"INSERT INTO {self.people} (digest, key, login) VALUES ({self.p}, {self.p}, {self.p}) "
                          "ON CONFLICT (digest) DO NOTHING", rows, write=True, many=True)
                fresh = self._select_people(missing)  # another writer's row wins a race
            with self._guard:
                for login, person in fresh.items():
                    self._people_cache[login] = (now + CACHE_SECONDS, person)
            found.update(fresh)
        return found

    def _select_people(self, logins: Sequence[str]) -> dict[str, Person]:
        by_digest = {d: n for n in logins for d in reversed(self.digests(n))}  # the keyed digest wins
        digests = list(by_digest)
        found: dict[str, Person] = {}
        for i in range(0, len(digests), 500):
            part = digests[i:i + 500]
            rows = self._run(f"SELECT digest, person, key FROM {self.people} "
                             f"WHERE digest IN ({', '.join([self.p] * len(part))})", part)
            found.update({by_digest[bytes(d)]: Person(int(n), bytes(k)) for d, n, k in rows})
        return found

    def people_by_number(self, numbers: Iterable[int]) -> dict[int, tuple[str, bytes] | int]:
        """Each person's (login, key), or the number of their erasure when they were erased."""
        wanted = list(dict.fromkeys(numbers))
        now = time.monotonic()
        found = {n: c[1] for n in wanted if (c := self._by_number.get(n)) and c[0] > now}
        missing = [n for n in wanted if n not in found]
        for i in range(0, len(missing), 500):
            part = missing[i:i + 500]
            rows = self._run(f"SELECT person, digest, key, login, erased FROM {self.people} "
                             f"WHERE person IN ({', '.join([self.p] * len(part))})", part)
            fresh: dict[int, tuple[str, bytes] | int] = {}
            for number, digest, key, login, erased in rows:
                if key is None:
                    fresh[int(number)] = int(erased or 0)
                else:
                    fresh[int(number)] = (open_login(bytes(key), bytes(digest), bytes(login)), bytes(key))
            with self._guard:
                for n, v in fresh.items():
                    self._by_number[n] = (now + CACHE_SECONDS, v)
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

    def knows(self, login: str) -> bool:
        """Whether a key was ever made for `login` (and not erased)."""
        return bool(self.existing([login])) or bool(self._select_people([login]))

    def erased_numbers(self) -> dict[bytes, int]:
        """Digest (keyed, or SHA-256 before the privacy key) of each erased login -> its erasure number."""
        now = time.monotonic()
        if self._erased[0] > now:
            return self._erased[1]
        numbers = {bytes(d): int(n) for n, d in self._run(f"SELECT n, digest FROM {self.erasures}")}
        self._erased = (now + CACHE_SECONDS, numbers)
        return numbers

    def erase(self, login: str, now_us: int) -> tuple[int, bool]:
        """Delete `login`'s key and record the erasure; returns its number and whether a key
        was deleted (False: nothing was encrypted for that login)."""
        digests = self.digests(login)
        had = bool(self._run(f"DELETE FROM {self.keys} WHERE login = {self.p} RETURNING login", [login], write=True))
        earlier = self._run(f"SELECT n FROM {self.erasures} WHERE digest IN ({', '.join([self.p] * len(digests))})",
                            list(digests))
        if not earlier:
            self._run(f"INSERT INTO {self.erasures} (digest, at) VALUES ({self.p}, {self.p}) "
                      "ON CONFLICT (digest) DO NOTHING", [digests[0], now_us], write=True)
            earlier = self._run(f"SELECT n FROM {self.erasures} WHERE digest = {self.p}", [digests[0]])
        n = min(int(r[0]) for r in earlier)
        # The person's row keeps only its number and the erasure's: key, sealed login and digest
        # go. Logins are case-insensitive, and seats are recorded lower-cased: that spelling's
        # row is the same person's.
        spellings = list(dict.fromkeys([login, login.strip().lower()]))
        rows = [d for spelling in spellings for d in self.digests(spelling)]
        had = bool(self._run(f"UPDATE {self.people} SET digest = NULL, key = NULL, login = NULL, erased = {self.p} "
                             f"WHERE digest IN ({', '.join([self.p] * len(rows))}) RETURNING person",
                             [n, *rows], write=True)) or had
        with self._guard:
            self._cache.pop(login, None)
            self._people_cache.clear()
            self._by_number.clear()
            self._erased = (0.0, {})
        return int(n), had

    def forget_cache(self) -> None:
        with self._guard:
            self._cache.clear()
            self._people_cache.clear()
            self._by_number.clear()
            self._erased = (0.0, {})


def open_job_views(keys: PersonalKeys, views: Sequence[Any]) -> None:
    """Replace, in place, the sealed personal fields of job views or events by their clear
    values, or by the erased placeholders when their user's key is gone; and the login of an
    erased person by "erased user #N"."""
    if not views:
        return
    # Version 2: no login in the event, only the person's number (see the module docstring).
    pseudonymous = [v for v in views if getattr(v, "person", 0)]
    if pseudonymous:
        people = keys.people_by_number(v.person for v in pseudonymous)
        for v in pseudonymous:
            found = people.get(v.person)
            if isinstance(found, tuple):
                login, key = found
                host, document = open_fields(key, _uuid(v.originator_id), v.document)
            else:
                login, host, document = erased_user(found or 0), ERASED_HOST, ""
            _set(v, "user", login)
            _set(v, "client_host", host)
            _set(v, "document", document)
        views = [v for v in views if not getattr(v, "person", 0)]
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
            n = erased_number(keys, erased, v.user)
            if n is not None:
                _set(v, "user", erased_user(n))


def erased_number(keys: PersonalKeys, erased: dict[bytes, int], login: str) -> int | None:
    """The erasure number of a login stored in clear (events recorded before person numbers),
    or None."""
    for digest in keys.digests(login):
        n = erased.get(digest)
        if n is not None:
            return n
    return None


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


# --- Users' own events: the login and the profile, sealed with a key per User aggregate ------
# A User's personal fields (login; full name, e-mail, department in `profile`) are sealed when
# the event is stored (adapters.codec.CompactMapper), with a key per User aggregate id kept in
# `<events>_subjects`, and opened when it is read (the mapper, the log reader). Erasing the
# person clears that key: their User events then read as "erased user #N" with an empty profile.
# Each sealed value is 16 random bytes of nonce followed by the ciphertext (User events are few:
# the bytes do not matter, and a random nonce needs neither the event's version nor its position).

PERSONAL_USER_FIELDS = {"User.Imported": ("login", "profile"), "User.ProfileChanged": ("profile",),
                        "User.Readded": ("profile",), "User.CardAssigned": ("card",)}
# Fields sealed as UTF-8 text (the others are msgpack); what an erased one reads as.
_TEXT_FIELDS = frozenset({"login", "card"})
_encode_any = msgspec.msgpack.Encoder().encode
_decode_profile = msgspec.msgpack.Decoder(dict[str, str]).decode


def subjects_table(events_table: str) -> str:
    return f"{events_table}_subjects"


def subjects_sqlite_statement(events_table: str) -> str:
    return (f"CREATE TABLE IF NOT EXISTS {subjects_table(events_table)} (subject BLOB PRIMARY KEY, key BLOB, "
            "erased INTEGER)")


def subjects_postgres_statement(schema: str, events_table: str) -> str:
    return (f'CREATE TABLE IF NOT EXISTS "{schema}"."{subjects_table(events_table)}" (subject uuid PRIMARY KEY, '
            "key bytea, erased bigint)")


def seal_value(key: bytes, name: str, value: Any) -> bytes:
    nonce = os.urandom(16)
    data = value.encode("utf-8") if name in _TEXT_FIELDS else _encode_any(value)
    return nonce + _cipher(key, nonce, data)


def open_value(key: bytes, name: str, sealed: bytes) -> Any:
    sealed = bytes(sealed)
    data = _cipher(key, sealed[:16], sealed[16:])
    return data.decode("utf-8") if name in _TEXT_FIELDS else _decode_profile(data)


class SubjectKeys:
    """The keys of Users' own events, by User aggregate id, through the event store's datastore
    (PersonalKeys' connection handling)."""

    def __init__(self, keys: PersonalKeys) -> None:
        self.keys = keys
        events = keys.recorder.events_table_name
        self.table = (f'"{keys.recorder.datastore.schema}"."{subjects_table(events)}"' if keys.postgres
                      else subjects_table(events))
        self._cache: dict[UUID, tuple[float, bytes | int]] = {}
        self._guard = threading.Lock()

    def _param(self, subject: UUID) -> Any:
        return subject if self.keys.postgres else subject.bytes

    def key_for(self, subject: UUID) -> bytes | int:
        """The subject's key, made now if it has none; the erasure's number if it was erased."""
        found = self.lookup(subject)
        if found is not None:
            return found
        p = self.keys.p
        self.keys._run(f"INSERT INTO {self.table} (subject, key) VALUES ({p}, {p}) ON CONFLICT (subject) DO NOTHING",
                       [self._param(subject), os.urandom(KEY_BYTES)], write=True)
        self._cache.pop(subject, None)
        found = self.lookup(subject)
        assert found is not None
        return found

    def keys_for(self, subjects: Iterable[UUID]) -> None:
        """Make, in one transaction, the keys that `subjects` lack, and cache every subject's
        key (or erasure), so that sealing a batch of User events (an import of hundreds of
        people) costs a query or two instead of a transaction each (`key_for` then finds them)."""
        wanted = list(dict.fromkeys(subjects))
        now = time.monotonic()
        missing = [s for s in wanted if not ((c := self._cache.get(s)) and c[0] > now)]
        if not missing:
            return
        found = self._select(missing)
        new = sorted(s for s in missing if s not in found)  # by the unique key: no deadlock between two writers
        if new:
            p = self.keys.p
            self.keys._run(f"INSERT INTO {self.table} (subject, key) VALUES ({p}, {p}) ON CONFLICT (subject) "
                           "DO NOTHING", [(self._param(s), os.urandom(KEY_BYTES)) for s in new], write=True, many=True)
            found.update(self._select(new))  # another writer's key wins a race
        with self._guard:
            for subject, value in found.items():
                self._cache[subject] = (now + CACHE_SECONDS, value)

    def _select(self, subjects: Sequence[UUID]) -> dict[UUID, bytes | int]:
        found: dict[UUID, bytes | int] = {}
        for i in range(0, len(subjects), 500):
            part = subjects[i:i + 500]
            rows = self.keys._run(f"SELECT subject, key, erased FROM {self.table} "
                                  f"WHERE subject IN ({', '.join([self.keys.p] * len(part))})",
                                  [self._param(s) for s in part])
            for subject, key, erased in rows:
                subject = _uuid(subject)
                found[subject] = bytes(key) if key is not None else int(erased or 0)
        return found

    def lookup(self, subject: UUID) -> bytes | int | None:
        now = time.monotonic()
        c = self._cache.get(subject)
        if c and c[0] > now:
            return c[1]
        rows = self.keys._run(f"SELECT key, erased FROM {self.table} WHERE subject = {self.keys.p}",
                              [self._param(subject)])
        if not rows:
            return None
        key, erased = rows[0]
        value: bytes | int = bytes(key) if key is not None else int(erased or 0)
        with self._guard:
            self._cache[subject] = (now + CACHE_SECONDS, value)
        return value

    def erase(self, subjects: Sequence[UUID], number: int) -> int:
        """Clear the keys of `subjects` (their erasure is `number`); how many had one."""
        p = self.keys.p
        cleared = 0
        for subject in subjects:
            cleared += len(self.keys._run(f"UPDATE {self.table} SET key = NULL, erased = {p} WHERE subject = {p} "
                                          "AND key IS NOT NULL RETURNING subject", [number, self._param(subject)],
                                          write=True))
        self.forget_cache()
        return cleared

    def forget_cache(self) -> None:
        with self._guard:
            self._cache.clear()

    # --- the mapper's and the log reader's side ---
    def seal(self, topic: str, subject: UUID, values: dict[str, Any]) -> None:
        """Seal, in place, the personal fields of one User event about to be stored."""
        key = self.key_for(subject)
        if isinstance(key, int):  # an erased person recorded again: kept unreadable
            key = os.urandom(KEY_BYTES)
        for name in PERSONAL_USER_FIELDS[topic]:
            if not isinstance(values.get(name), (bytes, bytearray)) and values[name] != "":  # "" clears a card
                values[name] = seal_value(key, name, values[name])

    def open(self, topic: str, subject: UUID, values: dict[str, Any]) -> None:
        """Open, in place, the sealed personal fields of one User event, or show them erased."""
        names = [n for n in PERSONAL_USER_FIELDS.get(topic, ()) if isinstance(values.get(n), (bytes, bytearray))]
        if not names:
            return
        key = self.lookup(subject)
        for name in names:
            if isinstance(key, bytes):
                values[name] = open_value(key, name, values[name])
            else:
                # An erased person's card reads as none: it no longer names them, nor logs anyone in.
                values[name] = erased_user(key or 0) if name == "login" else "" if name == "card" else {}


def open_user_views(subjects: SubjectKeys, topics_and_views: Sequence[tuple[str, Any]]) -> None:
    """Open the sealed personal fields of User event views in place (see SubjectKeys.open)."""
    for topic, view in topics_and_views:
        names = PERSONAL_USER_FIELDS.get(topic)
        if not names:
            continue
        values = {n: getattr(view, n) for n in names}
        subjects.open(topic, _uuid(view.originator_id), values)
        for n in names:
            _set(view, n, values[n])


# --- Logins in other events: stored as person numbers ----------------------------------------
# Events other than a job's record name people too: a secure job's owner, who released or
# deleted a job, whose seat was assigned, who tried to log in, which admin changed a setting.
# The compact mapper (adapters.codec) stores each such login as the number of its person (the
# row of `<events>_people` that jobs use, made on first use) and reads it back as the login, or
# as "erased user #N" once the person is erased. Fields that are personal but not a login (a
# login attempt's remote address) are sealed with the person's key. Events stored before hold
# the login in clear (a str): read as they are, or as "erased user #N" if it was erased.

PERSON_FIELDS: dict[str, tuple[str, ...]] = {
    "PrintJob.Secured": ("user",), "PrintJob.Printed": ("user",),
    "PrintJob.Released": ("by",), "PrintJob.Deleted": ("by",), "PrintJob.ReleaseCodeRefused": ("by",),
    "Licence.SeatAssigned": ("user",), "Licence.SeatReleased": ("user",), "Licence.SeatDenied": ("user",),
    "Licence.DenialNoticeSent": ("users",), "Licence.UnlicensedTrackingChanged": ("by",),
    "LoginAttempt.Recorded": ("login",),
    "SiteSettings.FieldChanged": ("by",),
    "Printer.CostScheduleChanged": ("by",), "Printer.SecureHoldChanged": ("by",), "Printer.HoldTimeChanged": ("by",),
    "Printer.ReleaseCodeModeChanged": ("by",), "Printer.PrinterGroupChanged": ("by",),
    "Printer.CardReaderAssociated": ("by",),
    "User.CardAssigned": ("by",), "User.PinChanged": ("by",), "User.RoleChanged": ("by",),
    "ReportSchedule.Removed": ("by",),
    "Installation.SetupCompleted": ("admin",),
    # A token's subject: the login it acts for, or its own name for a token that acts for no one.
    "AccessToken.Issued": ("subject",),
    # The holder of a known card swiped with nothing to release.
    "Printer.CardSwipeUnmatched": ("user",),
    # The users whose addresses a schedule mails ("" for an address of no known user).
    "ReportSchedule.Defined": ("by", "recipient_users"), "ReportSchedule.Redefined": ("by", "recipient_users"),
}
# Personal fields that are not logins, sealed with the key of the person named in another field.
# A list is sealed element by element with the key of the person at the same index of the other
# field (a list too); an element whose person is "" (no known user) stays as it is.
SEALED_WITH_PERSON: dict[str, dict[str, str]] = {
    "LoginAttempt.Recorded": {"remote_addr": "login"},
    "AccessToken.Issued": {"name": "subject"},
    "ReportSchedule.Defined": {"recipients": "recipient_users"},
    "ReportSchedule.Redefined": {"recipients": "recipient_users"},
}
# What a sealed field reads as once its person is erased (ERASED_HOST for the others): an erased
# recipient's address is empty, and is mailed no more.
ERASED_AS: dict[str, str] = {"recipients": ""}
# Authors that are no person: kept as they are.
NOT_A_PERSON = frozenset({"", "cli"})


def _logins_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value not in NOT_A_PERSON else []
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str) and v not in NOT_A_PERSON]
    return []


def logins_to_store(topic: str, values: dict[str, Any]) -> list[str]:
    """The logins an event about to be stored names (to look their people up in one go)."""
    return [login for name in PERSON_FIELDS.get(topic, ()) for login in _logins_in(values.get(name))]


def store_people(keys: PersonalKeys, topic: str, values: dict[str, Any]) -> None:
    """Replace, in place, the logins of one event about to be stored by their person numbers,
    and seal its other personal fields with that person's key."""
    names = PERSON_FIELDS[topic]
    logins = [login for name in names for login in _logins_in(values.get(name))]
    if not logins:
        return
    people = keys.people_for(logins)
    for name, person_field in SEALED_WITH_PERSON.get(topic, {}).items():
        login, value = values.get(person_field), values.get(name)
        if isinstance(login, str) and login in people and isinstance(value, str):
            values[name] = seal_text(people[login].key, value)
        elif isinstance(login, (list, tuple)) and isinstance(value, (list, tuple)):
            values[name] = [seal_text(people[who].key, v) if isinstance(who, str) and who in people
                            and isinstance(v, str) else v for who, v in zip(login, value)] + list(value[len(login):])
    for name in names:
        value = values.get(name)
        if isinstance(value, str):
            if value not in NOT_A_PERSON:
                values[name] = people[value].number
        elif isinstance(value, (list, tuple)):
            values[name] = [people[v].number if isinstance(v, str) and v not in NOT_A_PERSON else v for v in value]


def stored_numbers(topic: str, values: Any) -> list[int]:
    """The person numbers of one stored event (a dict of values or a view)."""
    found = []
    for name in PERSON_FIELDS.get(topic, ()):
        value = values.get(name) if isinstance(values, dict) else getattr(values, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(v for v in value if isinstance(v, int) and not isinstance(v, bool))
    return found


def open_people(keys: PersonalKeys, topics_and_values: Sequence[tuple[str, Any]]) -> None:
    """Replace, in place, the person numbers of stored events (dicts of values or views) by
    their logins, or "erased user #N"; open the fields sealed with their key, or show them as
    erased; and show a login stored in clear (events stored before) as erased if it was."""
    chosen = [(t, v) for t, v in topics_and_values if t in PERSON_FIELDS]
    if not chosen:
        return
    numbers = [n for t, v in chosen for n in stored_numbers(t, v)]
    people = keys.people_by_number(numbers) if numbers else {}
    erased = keys.erased_numbers()
    for topic, view in chosen:
        is_dict = isinstance(view, dict)
        for name, person_field in SEALED_WITH_PERSON.get(topic, {}).items():
            sealed = view.get(name) if is_dict else getattr(view, name, None)
            who = view.get(person_field) if is_dict else getattr(view, person_field, None)
            if isinstance(sealed, (bytes, bytearray)):
                _put(view, is_dict, name, _open_sealed(people, who, name, sealed))
            elif isinstance(sealed, (list, tuple)) and isinstance(who, (list, tuple)):
                _put(view, is_dict, name, [_open_sealed(people, p, name, v) if isinstance(v, (bytes, bytearray))
                                           else v for p, v in zip(who, sealed)] + list(sealed[len(who):]))
        for name in PERSON_FIELDS[topic]:
            value = view.get(name) if is_dict else getattr(view, name, None)
            if isinstance(value, (list, tuple)):
                _put(view, is_dict, name, [_login_of(keys, people, erased, v) for v in value])
            else:
                shown = _login_of(keys, people, erased, value)
                if shown is not value:
                    _put(view, is_dict, name, shown)


def _open_sealed(people: dict, number: Any, name: str, sealed: bytes) -> str:
    found = people.get(number) if isinstance(number, int) and not isinstance(number, bool) else None
    return open_text(found[1], sealed) if isinstance(found, tuple) else ERASED_AS.get(name, ERASED_HOST)


def _login_of(keys: PersonalKeys, people: dict, erased: dict[bytes, int], value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        found = people.get(value)
        return found[0] if isinstance(found, tuple) else erased_user(found or 0)
    if erased and isinstance(value, str) and value not in NOT_A_PERSON:
        n = erased_number(keys, erased, value)
        return value if n is None else erased_user(n)
    return value


def _put(view: Any, is_dict: bool, name: str, value: Any) -> None:
    if is_dict:
        view[name] = value
    else:
        _set(view, name, value)


def seal_text(key: bytes, text: str) -> bytes:
    """16 random bytes of nonce and the text sealed with `key` (such fields are few)."""
    nonce = os.urandom(16)
    return nonce + _cipher(key, nonce, text.encode("utf-8"))


def open_text(key: bytes, sealed: bytes) -> str:
    sealed = bytes(sealed)
    return _cipher(key, sealed[:16], sealed[16:]).decode("utf-8")
