"""Erasing a person (GDPR art. 17) without touching the event log: crypto-shredding.

1. Their key is deleted and the erasure recorded (adapters.personal_keys): the client hosts and
   document names of their jobs, sealed with that key when recorded, can never be read again,
   and every read of the log from now on shows them as "erased user #N".
2. The read models are brought in line: the person's row in the shared key table of logins is
   renamed "erased user #N" (its id kept, so every total stays where it was), the hosts only
   they printed from are renamed "erased host #ID", and the jobs read model is rebuilt from the
   log, where their names now read as erased; so are the licence seats and the login audit,
   where their login (stored as their person number) now reads "erased user #N", and the login
   throttle's failures counted against their login are deleted.
3. The freed pages are rewritten so that no old copy of a name is left in the database files:
   SQLite is checkpointed and VACUUMed; the PostgreSQL tables concerned are rewritten (VACUUM
   FULL). PostgreSQL's write-ahead log and any backup still hold older pages until they age
   out: see docs/audit-privacy.md.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence

import sqlalchemy as sa

from uuid import UUID

from adapters.personal_keys import PersonalKeys, SubjectKeys, erased_user
from adapters.throttle import forget_login, login_failures
from projections.follower import Follower
from projections.jobs import held_jobs, jobs
from projections.licence_seats import licence_seats
from projections.login_audit import login_audit
from projections.names import host_keys, user_keys
from projections.users import users

log = logging.getLogger("pageledger.privacy")


@dataclass(frozen=True)
class Erased:
    login_known: bool  # a key or a jobs row existed for the login
    number: int  # the N of "erased user #N"
    jobs: int  # jobs rows now showing the person as erased
    hosts: int  # hosts renamed


class UnknownPerson(LookupError):
    """Neither a key, a job, a login attempt nor a seat was ever recorded for the login: nothing
    to erase (and no erasure recorded, which would show a future user of that login as erased)."""


class ErasePerson:
    def __init__(self, keys: PersonalKeys, writer: sa.Engine, jobs_follower: Callable[[], Follower],
                 compact: Callable[[list[str]], None], clock: Callable[[], int],
                 users_follower: Callable[[], Follower] | None = None, subjects: SubjectKeys | None = None,
                 other_followers: Sequence[Callable[[], Follower]] = (),
                 revoke_tokens: Callable[[str], int] | None = None) -> None:
        self.keys = keys
        self.revoke_tokens = revoke_tokens  # login -> how many of the tokens acting for them it revoked
        self.other_followers = other_followers  # read models naming people by login (seats, login audit)
        self.writer = writer
        self.jobs_follower = jobs_follower
        self.users_follower = users_follower
        self.subjects = subjects if subjects is not None else SubjectKeys(keys)
        self.compact = compact
        self.clock = clock

    def __call__(self, login: str, progress: Callable[[int, int], None] | None = None) -> Erased:
        with self.writer.connect() as conn:
            known = conn.execute(sa.select(user_keys.c.id).where(user_keys.c.login == login)).scalar() is not None
            # ... or a login attempt or a seat (events stored before person numbers name them in clear).
            known = known or conn.execute(sa.select(login_audit.c.seq).where(login_audit.c.login == login)
                                          .limit(1)).first() is not None
            known = known or conn.execute(sa.select(licence_seats.c.login_key).where(
                licence_seats.c.login_key == login.strip().lower())).first() is not None
            # The person's User aggregates (one per directory source), whose login and profile
            # are sealed with their own keys.
            subjects = [UUID(u) for (u,) in conn.execute(sa.select(users.c.user_id).where(
                users.c.login_key == login.strip().lower()))]
        if not known and not subjects and not self.keys.knows(login):
            raise UnknownPerson(f"no job or key was ever recorded for {login!r}")
        if self.revoke_tokens is not None:
            # Before their key goes: the revocation is recorded while the token still names them.
            self.revoke_tokens(login)
        number, had_key = self.keys.erase(login, self.clock())
        had_key = bool(self.subjects.erase(subjects, number)) or had_key
        placeholder = erased_user(number)
        with self.writer.begin() as conn:
            uid = conn.execute(sa.select(user_keys.c.id).where(user_keys.c.login == login)).scalar()
            hosts = 0
            count = 0
            if uid is not None:
                conn.execute(user_keys.update().where(user_keys.c.id == uid).values(login=placeholder))
                count = int(conn.execute(sa.select(sa.func.count()).where(jobs.c.user_id == uid)).scalar())
                theirs = sa.select(jobs.c.host_id).where(jobs.c.user_id == uid).distinct()
                others = sa.select(jobs.c.host_id).where(jobs.c.user_id != uid).distinct()
                only_theirs = [h for (h,) in conn.execute(theirs.except_(others))]
                for host_id in only_theirs:
                    conn.execute(host_keys.update().where(host_keys.c.id == host_id)
                                 .values(name=f"erased host #{host_id}"))
                hosts = len(only_theirs)
            # The throttle's failures counted against their login (its own state, not a read model).
            forget_login(conn, login)
        self.keys.forget_cache()
        self.jobs_follower().rebuild(progress)
        if self.users_follower is not None and subjects:
            self.users_follower().rebuild(progress)  # their login and profile now read as erased
        rebuilt = []
        for follower in self.other_followers:
            f = follower()
            f.rebuild(progress)
            rebuilt.extend(t.name for p in f.projections for t in p.tables)
        if self.revoke_tokens is not None:
            # A token issued moments ago, not yet in the tokens read model before, is in it now,
            # rebuilt, under the placeholder: revoked too (the running projections apply it).
            self.revoke_tokens(placeholder)
        self.compact([jobs.name, held_jobs.name, user_keys.name, host_keys.name, users.name, login_failures.name,
                      *rebuilt])
        log.info("erased user #%d: their key is deleted, %d jobs and %d hosts show as erased", number, count, hosts,
                 extra={"erasure": number})
        return Erased(had_key or uid is not None, number, count, hosts)
