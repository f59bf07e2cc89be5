"""Licensing use cases: install a trial, activate (online or by file), claim and free seats,
record the daily denial notice. The one module that writes the Licence aggregate.

Every decision is made by the one Licence aggregate and saved with optimistic concurrency:
two requests (or two servers) that both read version N and both decide to assign a seat
cannot both save version N+1. The loser gets IntegrityError, reloads, and decides again with
the winner's seat counted — which is how the seat count can never exceed the licence.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from eventsourcing.application import AggregateNotFoundError, Repository
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from adapters.clock import system_clock
from adapters.event_store import PageLedger
from adapters.licence_keys import (
    ActivationServiceError, HostIdentity, LicenceRefused, VerifiedLicence, decode_key, fetch_online_licence,
    same_company, verify_licence,
)
from commands.conflicts import retry_on_conflict
from domain.licence import (
    ACTIVATED_BY_FILE, ACTIVATED_ONLINE, JOB_TRACKING, SEAT_HELD, Licence, LicenceError, SeatDecision,
    licence_id,
)
from domain.units import day_of, iso

log = logging.getLogger("pageledger.licence")

# A seat holder is only ever un-seated by an admin; caching "already holds a seat" for a few
# seconds keeps the hot path (every tracked job) from reloading the licence each time.
HELD_CACHE_SECONDS = 5.0


class NotInstalled(LicenceError):
    """No licence yet: the setup wizard has not been completed."""


class NoActivationService(ActivationServiceError):
    """This server has no online activation service configured: a licence file is the way."""


@dataclass(frozen=True)
class JobGate:
    """What job tracking should do with one user's job."""

    track: bool  # record it as tracked (else as denied)
    reason: str = ""  # why it was denied, or why it was tracked although unlicensed
    unlicensed: bool = False  # tracked although the user holds no seat ("track unlicensed users")


class Licensing:
    """The installation's licence, as commands: one instance per process, shared by threads."""

    def __init__(self, app: PageLedger, *, public_key: Ed25519PublicKey, identity: HostIdentity,
                 clock: Callable[[], int] = system_clock, activation_url: str = "",
                 fetch: Callable[..., str] = fetch_online_licence,
                 inactive: Callable[[list[str]], set[str]] = lambda logins: set()) -> None:
        self.app = app
        self.public_key = public_key
        self.identity = identity
        self.clock = clock
        self.activation_url = activation_url
        self._fetch = fetch
        # Which of these logins an admin set Inactive (read model: lower-cased logins). Their
        # jobs take no seat — freeing it is the point of Inactive — and are denied (or, with
        # "track unlicensed users", tracked as unlicensed).
        self._inactive = inactive
        self.id = licence_id(app.server_id)
        # The licence is read on every batch of jobs with a new user, and its history grows
        # with each seat decision: a repository of its own keeps it in memory and reads only
        # the events saved since (by any node), instead of replaying all of them each time.
        self._licences = Repository(app.events, cache_maxsize=2, fastforward=True, deepcopy_from_cache=True)
        self._held: dict[str, float] = {}
        self._denied: dict[str, tuple[float, SeatDecision]] = {}  # refused a moment ago
        self._active_seen: dict[str, tuple[float, bool]] = {}  # login -> (until, inactive)
        self._held_lock = threading.Lock()
        # The licence as last loaded, read-only, for batches whose users all hold seats: their
        # jobs then need only the terms (type, expiry), not a fresh load of the licence.
        self._terms: tuple[float, Licence] | None = None

    # --- reading ----------------------------------------------------------------------------

    def get(self) -> Licence | None:
        """The licence as stored now (a private copy the caller may change and save)."""
        try:
            return self._licences.get(self.id)
        except AggregateNotFoundError:
            return None

    def _require(self) -> Licence:
        licence = self.get()
        if licence is None:
            raise NotInstalled("no licence is installed yet: complete the setup wizard")
        return licence

    # --- installing and activating ----------------------------------------------------------

    def install_trial(self) -> Licence:
        """Start the 15-day, 5-user trial. Only once: a trial cannot be restarted."""
        if self.get() is not None:
            raise LicenceError("a licence is already installed; a trial can only be started once")
        licence = Licence.install_trial(self.id, now=self.clock())
        try:
            self.app.save(licence)
        except IntegrityError:
            raise LicenceError("a licence is already installed; a trial can only be started once") from None
        log.info("trial licence installed: %d seats until %s", licence.seats, iso(licence.expires_at))
        return licence

    def prepared_trial(self) -> Licence:
        """The trial licence, not yet saved (the setup wizard saves it with the installation)."""
        return Licence.install_trial(self.id, now=self.clock())

    def check_key(self, key: str, company: str) -> None:
        """Refuse a mistyped or foreign key, or the wrong company, before contacting anyone."""
        terms = decode_key(key, self.public_key)
        if not same_company(terms.company, company):
            raise LicenceRefused(f"this key was sold to another company than {company!r}: "
                                 "enter the company name exactly as on your order")

    def activate_online(self, key: str, company: str) -> VerifiedLicence:
        """Send the key and company to the activation service and apply the licence it returns."""
        licence = self.verify_online(key, company)
        self._apply(licence)
        return licence

    def activate_file(self, document: str | bytes, company: str) -> VerifiedLicence:
        """"Activate via File": apply a licence file made for this host and MAC, with no network."""
        licence = self.verify_file(document, company)
        self._apply(licence)
        return licence

    def verify_online(self, key: str, company: str) -> VerifiedLicence:
        """Ask the activation service for this server's licence and check it; nothing is saved."""
        if not self.activation_url:
            raise NoActivationService("no activation service is configured: activate via file instead")
        self.check_key(key, company)
        document = self._fetch(self.activation_url, key=key, company=company, identity=self.identity)
        licence = verify_licence(document, self.public_key, company=company, identity=self.identity,
                                 now=self.clock())
        if licence.method != ACTIVATED_ONLINE:
            raise LicenceRefused("the activation service answered with a licence not issued online")
        return licence

    def verify_file(self, document: str | bytes, company: str) -> VerifiedLicence:
        return verify_licence(document, self.public_key, company=company, identity=self.identity, now=self.clock())

    def prepared(self, verified: VerifiedLicence) -> Licence:
        """The licence aggregate with `verified` applied, not yet saved (the caller saves it)."""
        now = self.clock()
        licence = self.get()
        if licence is None:
            licence = Licence.install(self.id, type=verified.type, seats=verified.seats,
                                      expires_at=verified.expires_at, now=now)
        method = ACTIVATED_ONLINE if verified.method == ACTIVATED_ONLINE else ACTIVATED_BY_FILE
        licence.activate(key=verified.key, company=verified.company, method=method, host=verified.host,
                         mac=verified.mac, type=verified.type, seats=verified.seats,
                         expires_at=verified.expires_at, now=now)
        return licence

    def _apply(self, verified: VerifiedLicence) -> None:
        def attempt() -> None:
            self._terms = None
            self.app.save(self.prepared(verified))

        retry_on_conflict(attempt, what="save the activation")
        log.info("licence activated (%s): %s, %d seats until %s, key id %s", verified.method, verified.type,
                 verified.seats, iso(verified.expires_at) or "never", verified.key_id)

    def set_track_unlicensed(self, enabled: bool, by: str) -> None:
        self._modify(lambda lic: lic.set_track_unlicensed(enabled, by=by, now=self.clock()))

    # --- seats ------------------------------------------------------------------------------

    def claim_seat(self, login: str) -> SeatDecision:
        """Give `login` a seat if they have none and one is free; retried on concurrent saves."""
        key = login.strip().lower()
        if self._recently_held(key):
            return SeatDecision(SEAT_HELD)

        def attempt() -> tuple[Licence, SeatDecision, bool]:
            licence = self._require()
            version = licence.version
            decision = licence.claim_seat(login, self.clock())
            if licence.version == version:  # nothing to record: the seat was already held
                return licence, decision, False
            self.app.save(licence)
            return licence, decision, True

        licence, decision, recorded = retry_on_conflict(attempt, what=f"decide a seat for {key}")
        if decision.granted:
            self._remember_held(key)
        elif recorded:
            log.warning("seat denied to %s (%s): %d of %d seats in use", key, decision.reason,
                        licence.seats_used, licence.seats)
        return decision

    def forget_held(self, login: str) -> None:
        """Drop the cached "holds a seat" for `login` (their seat was just released)."""
        with self._held_lock:
            self._held.pop(login.strip().lower(), None)
            self._active_seen.pop(login.strip().lower(), None)
            self._denied.clear()  # the freed seat may go to any of them

    def release_seat(self, login: str, reason: str = "inactive") -> bool:
        self.forget_held(login)
        released: list[bool] = []
        self._modify(lambda lic: released.append(lic.release_seat(login, self.clock(), reason)))
        return bool(released and released[-1])

    def save_releasing_seat(self, user: Aggregate, login: str, reason: str) -> None:
        """Save `user`'s pending change together with the release of `login`'s seat, in one
        transaction (both or neither). A version conflict raises IntegrityError: the caller
        reloads the user and decides again (commands.conflicts)."""
        licence = self.get()
        if licence is not None:
            licence.release_seat(login, self.clock(), reason)
        self._terms = None
        self.app.save(user, *([licence] if licence is not None else []))
        self.forget_held(login)

    def record_denial_notice(self, denied_since: Callable[[int], list[str]]) -> tuple[list[str], int] | None:
        """Record today's notice of the users denied a seat since the last one (at most one a
        day, whichever worker or node asks). Returns who to name and the seats, or None when
        there is nobody to name or today's notice has gone out already."""
        def attempt() -> tuple[list[str], int] | None:
            licence = self.get()
            if licence is None:
                return None
            users = denied_since(licence.last_notice_at)
            now = self.clock()
            if not licence.record_denial_notice(day_of(now), users, now):
                return None
            self.app.save(licence)
            return users, licence.seats

        return retry_on_conflict(attempt, what="record the denial notice")

    def gate_job(self, login: str) -> JobGate:
        return self.gate_jobs([login])[login]

    def gate_jobs(self, logins: Iterable[str]) -> dict[str, JobGate]:
        """Seat check of job tracking, for every user of a batch in one licence decision.

        A job is tracked only for a user holding (or now taking) a seat. Without one — no
        seat left, the licence expired, or a licence type without job tracking — it is denied,
        unless the admin enabled "track unlicensed users" (then tracked, marked unlicensed).
        Users known to hold a seat cost nothing; the others cost one load and at most one
        save of the licence per batch (retried on a concurrent save).
        """
        wanted = list(dict.fromkeys(logins))
        keys = {login: login.strip().lower() for login in wanted}
        inactive = self._inactive_among(set(keys.values()))
        if inactive:
            licence = self.get()
            if licence is None:
                return {login: JobGate(track=False, reason="no licence installed") for login in wanted}
            gates = {login: self._unlicensed(licence, "user inactive") for login in wanted if keys[login] in inactive}
            rest = [login for login in wanted if keys[login] not in inactive]
            return {**gates, **(self.gate_jobs(rest) if rest else {})}
        cached = self._terms
        if cached is not None and cached[0] > time.monotonic():
            # Every user decided a moment ago (seated, or refused for want of a seat): answer
            # from memory. A seat freed on another node reaches a refused user within seconds.
            licence, now = cached[1], self.clock()
            known = {login: self._recent_decision(keys[login]) for login in wanted}
            if licence.allows(JOB_TRACKING, now) and all(d is not None for d in known.values()):
                return {login: (JobGate(track=True) if d.granted
                                else self._unlicensed(licence, f"no licence seat ({d.reason})"))
                        for login, d in known.items()}

        def attempt() -> dict[str, JobGate]:
            licence = self.get()
            if licence is None:
                return {login: JobGate(track=False, reason="no licence installed") for login in wanted}
            now = self.clock()
            if not licence.allows(JOB_TRACKING, now):
                reason = ("licence expired" if not licence.is_valid(now)
                          else f"{licence.type} licence has no job tracking")
                return {login: self._unlicensed(licence, reason) for login in wanted}
            version = licence.version
            decisions = {login: (SeatDecision(SEAT_HELD) if self._recently_held(keys[login])
                                 else licence.claim_seat(login, now)) for login in wanted}
            if licence.version != version:
                self.app.save(licence)
            self._terms = (time.monotonic() + HELD_CACHE_SECONDS, licence)
            gates = {}
            for login, decision in decisions.items():
                if decision.granted:
                    self._remember_held(keys[login])
                    gates[login] = JobGate(track=True)
                else:
                    self._remember_denied(keys[login], decision)
                    gates[login] = self._unlicensed(licence, f"no licence seat ({decision.reason})")
            return gates

        return retry_on_conflict(attempt, what="decide seats for a batch of jobs")

    @staticmethod
    def _unlicensed(licence: Licence, reason: str) -> JobGate:
        if licence.track_unlicensed:
            return JobGate(track=True, reason=reason, unlicensed=True)
        return JobGate(track=False, reason=reason)

    # --- internals --------------------------------------------------------------------------

    def _modify(self, change: Callable[[Licence], object]) -> None:
        with self._held_lock:
            self._denied.clear()

        def attempt() -> None:
            self._terms = None
            licence = self._require()
            change(licence)
            self.app.save(licence)

        retry_on_conflict(attempt, what="save the licence")

    def _inactive_among(self, keys: set[str]) -> set[str]:
        """The Inactive ones among `keys`, asking the read model only about those not seen lately."""
        now = time.monotonic()
        with self._held_lock:
            known = {k: v for k in keys if (v := self._active_seen.get(k)) is not None and v[0] > now}
        unknown = sorted(keys - known.keys())
        found = self._inactive(unknown) if unknown else set()
        with self._held_lock:
            if len(self._active_seen) > 100_000:
                self._active_seen.clear()
            for k in unknown:
                self._active_seen[k] = (now + HELD_CACHE_SECONDS, k in found)
        return found | {k for k, (_, inactive) in known.items() if inactive}

    def _recent_decision(self, key: str) -> SeatDecision | None:
        if self._recently_held(key):
            return SeatDecision(SEAT_HELD)
        with self._held_lock:
            hit = self._denied.get(key)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def _remember_denied(self, key: str, decision: SeatDecision) -> None:
        with self._held_lock:
            if len(self._denied) > 100_000:
                self._denied.clear()
            self._denied[key] = (time.monotonic() + HELD_CACHE_SECONDS, decision)

    def _recently_held(self, key: str) -> bool:
        with self._held_lock:
            until = self._held.get(key)
            return until is not None and until > time.monotonic()

    def _remember_held(self, key: str) -> None:
        with self._held_lock:
            if len(self._held) > 100_000:
                self._held.clear()
            self._held[key] = time.monotonic() + HELD_CACHE_SECONDS

