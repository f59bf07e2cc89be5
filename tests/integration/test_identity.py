"""Users, seats and licence notices on real stores (SQLite and PostgreSQL) and a real slapd."""
from __future__ import annotations

import json
import threading
from email import message_from_bytes

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message

from commands.track_jobs import parse_batch, track_jobs
from commands.users import set_user_active, sync_users
from domain.licence import DAY_US
from domain.users import user_id
from pageledger.identity import ldap_config_to_dict
from pageledger.directory import AttributeMap, LdapConfig
from projections.identity_tables import licence_seats, seat_denials, users
from projections.licence_seats import licence_summary
from projections.tables import JOB_DENIED, JOB_TRACKED, jobs
from slapd_harness import CONTRACTORS, SERVICE_DN, SERVICE_PASSWORD, STAFF, user_dn
from tests.conftest import free_port
from tools.sample_jobs import sample_jobs
from workers.licence_notices import SmtpSettings, send_denial_notice

T0 = 1_764_000_000 * 1_000_000


class Clock:
    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def identity(runtime):
    clock = Clock()
    ident = runtime.identity
    ident.clock = clock  # before licensing is first built, so it uses this clock
    ident.licensing.install_trial()
    return ident


def use_slapd(identity, server) -> None:
    config = LdapConfig(host="127.0.0.1", port=server.port, base_dns=(STAFF, CONTRACTORS), bind_dn=SERVICE_DN,
                        bind_password=SERVICE_PASSWORD, attributes=AttributeMap(card="employeeNumber", pin="pager"))
    identity.save_directory({"type": "ldap", "ldap": ldap_config_to_dict(config)})


def sync(runtime, identity):
    report = sync_users(runtime.app, identity.directory(), runtime.reader, identity.licensing, identity.pin_digest,
                        identity.clock)
    runtime.catch_up()
    return report


def rows(runtime, table, *where):
    with runtime.reader.connect() as conn:
        return conn.execute(sa.select(table).where(*where)).mappings().all()


@pytest.mark.ldap
def test_sync_imports_both_ous_reports_a_card_clash_and_follows_removals(runtime, identity, slapd):
    use_slapd(identity, slapd)
    report = sync(runtime, identity)
    assert sorted(report.imported) == ["alice", "bob", "carol", "dave", "o(dd)*name"]
    # bob and dave both carry card 1002 and PIN 5555 in the directory: reported, given to neither.
    assert {(c.field, c.logins) for c in report.clashes} == {("card", ("bob", "dave")), ("pin", ("bob", "dave"))}
    assert "5555" not in " ".join(c.describe() for c in report.clashes)
    by_login = {r["login"]: r for r in rows(runtime, users)}
    assert by_login["alice"]["card"] == "1001" and by_login["alice"]["full_name"] == "Alice Archer"
    assert by_login["bob"]["card"] == by_login["dave"]["card"] == ""
    assert by_login["alice"]["pin_digest"] and by_login["alice"]["pin_digest"] != "4321"

    # carol takes a seat by printing, then leaves the directory: deactivated, seat freed.
    track(runtime, identity, ["carol"])
    assert [r["login_key"] for r in rows(runtime, licence_seats)] == ["carol"]
    slapd.delete(user_dn("carol"))
    slapd.modify(user_dn("alice"), cn="Alice Abbott")
    report = sync(runtime, identity)
    assert report.deactivated == ["carol"] and report.updated == ["alice"] and not report.imported
    by_login = {r["login"]: r for r in rows(runtime, users)}
    assert not by_login["carol"]["active"] and by_login["carol"]["deactivated_reason"] == "left_directory"
    assert by_login["alice"]["full_name"] == "Alice Abbott"
    assert rows(runtime, licence_seats) == []
    # Nothing changed since: a second sync records nothing.
    head = runtime.app.recorder.max_notification_id()
    report = sync(runtime, identity)
    assert (report.imported, report.updated, report.deactivated) == ([], [], [])
    assert runtime.app.recorder.max_notification_id() == head
    # carol comes back: activated again.
    slapd.add_user("carol", CONTRACTORS, "Carol Cole", "carol-pw-4444", employeeNumber="2001")
    assert sync(runtime, identity).reactivated == ["carol"]


_batches = iter(range(1_000_000))


def track(runtime, identity, logins):
    """One job per login, through the seat gate; returns each login's outcome."""
    batch = [dict(j, user=login) for j, login in zip(sample_jobs(len(logins), key_prefix=f"b{next(_batches)}"),
                                                     logins)]
    reports = parse_batch(json.dumps({"jobs": batch}).encode())
    outcomes = track_jobs(runtime.app, reports, runtime.printers, gate=identity.licensing.gate_jobs)
    runtime.catch_up()
    return dict(zip(logins, outcomes))


def test_jobs_of_users_beyond_the_seats_are_denied_until_a_seat_is_freed(runtime, identity):
    outcomes = track(runtime, identity, [f"user{i}" for i in range(7)])
    assert [o.status for o in outcomes.values()] == ["tracked"] * 5 + ["denied"] * 2
    assert outcomes["user6"].decision == "deny" and "no licence seat" in outcomes["user6"].message
    statuses = sorted(r["status"] for r in rows(runtime, jobs))
    assert statuses == [JOB_TRACKED] * 5 + [JOB_DENIED] * 2
    with runtime.reader.connect() as conn:
        summary = licence_summary(conn, identity.clock())
    assert (summary["type"], summary["seats_allowed"], summary["seats_used"], summary["valid"]) == ("trial", 5, 5, True)
    assert sorted(r["login_key"] for r in rows(runtime, seat_denials)) == ["user5", "user6"]

    # The admin sets user0 Inactive: the seat goes to the next user who prints.
    identity.clock.now += 1
    from domain.users import User
    user0 = User.import_(source="local", login="user0", profile={}, now=identity.clock())
    runtime.app.save(user0)
    assert set_user_active(runtime.app, identity.licensing, user0.id, False, clock=identity.clock)
    runtime.catch_up()
    assert track(runtime, identity, ["user5"])["user5"].status == "tracked"
    # An Inactive user's jobs take no seat back: denied as inactive (not "no seat").
    assert track(runtime, identity, ["user0"])["user0"].message == "user inactive"
    assert set_user_active(runtime.app, identity.licensing, user0.id, True, clock=identity.clock)
    runtime.catch_up()
    assert "no licence seat" in track(runtime, identity, ["user0"])["user0"].message


def test_an_expired_trial_denies_every_job_unless_unlicensed_tracking_is_on(runtime, identity):
    identity.clock.now += 16 * DAY_US
    assert track(runtime, identity, ["alice"])["alice"].message == "licence expired"
    identity.licensing.set_track_unlicensed(True, by="admin")
    identity.clock.now += 1
    assert track(runtime, identity, ["alice"])["alice"].status == "tracked"
    runtime.catch_up()
    with runtime.reader.connect() as conn:
        summary = licence_summary(conn, identity.clock())
    assert summary["valid"] is False and summary["status"] == "unlicensed" and summary["track_unlicensed"]


class Inbox(Message):
    def __init__(self) -> None:
        super().__init__()
        self.messages = []

    def handle_message(self, message) -> None:
        self.messages.append(message)


def test_admins_get_at_most_one_notice_a_day_naming_the_denied_users(runtime, identity):
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        smtp = SmtpSettings(host="127.0.0.1", port=port, sender="pageledger@example.org",
                            recipients=("admin@example.org", "boss@example.org"))
        notify = lambda: send_denial_notice(runtime.app, identity.licensing, runtime.reader, smtp,  # noqa: E731
                                            identity.clock)
        assert notify() == []  # nobody denied: no mail
        track(runtime, identity, [f"u{i}" for i in range(5)] + ["<b>mallory</b>", "zed"])
        # Two workers racing for the same day's notice: exactly one mail.
        results = []
        workers = [threading.Thread(target=lambda: results.append(notify())) for _ in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert sorted(map(tuple, results)) == [(), ("<b>mallory</b>", "zed")]
        identity.clock.now += 3600 * 1_000_000
        track(runtime, identity, ["late"])
        assert notify() == []  # same day: no second notice
        identity.clock.now += DAY_US
        track(runtime, identity, ["later"])
        assert notify() == ["late", "later"]  # denied since the last notice, "late" included
        assert len(inbox.messages) == 2
        first = inbox.messages[0]
        assert first["To"] == "admin@example.org, boss@example.org"
        body = first.get_payload(decode=True).decode()
        assert "<b>mallory</b>" in body and "zed" in body and first.get_content_type() == "text/plain"
    finally:
        controller.stop()
