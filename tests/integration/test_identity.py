"""Users, seats and licence notices on real stores (SQLite and PostgreSQL) and a real slapd."""
from __future__ import annotations

import json
import threading
from email import message_from_bytes

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message

from commands.job_reports import parse_batch
from domain.units import MICROS_PER_DAY
from adapters.mail import SmtpMailer, SmtpSettings
from adapters.directory import AttributeMap, LdapConfig
from projections.licence_seats import licence_seats, seat_denials
from projections.users import users
from projections.licence_seats import licence_summary
from projections.jobs import JOB_DENIED, JOB_TRACKED, jobs
from slapd_harness import CONTRACTORS, SERVICE_DN, SERVICE_PASSWORD, STAFF, user_dn
from tests.conftest import free_port
from tools.sample_jobs import sample_jobs
from workers.licence_notices import SendDenialNotice

T0 = 1_764_000_000 * 1_000_000


class Clock:
    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock(runtime):
    """The runtime's clock, made a fake one before its licensing is built; a trial installed."""
    runtime.clock = Clock()
    runtime.licensing.install_trial()
    return runtime.clock


def use_slapd(runtime, server) -> None:
    config = LdapConfig(host="127.0.0.1", port=server.port, base_dns=(STAFF, CONTRACTORS), bind_dn=SERVICE_DN,
                        bind_password=SERVICE_PASSWORD, attributes=AttributeMap(card="employeeNumber", pin="pager"))
    runtime.directory_config.save("ldap", config)


def sync(runtime):
    report = runtime.sync_users()
    runtime.catch_up()
    return report


def rows(runtime, table, *where):
    with runtime.reader.connect() as conn:
        return conn.execute(sa.select(table).where(*where)).mappings().all()


@pytest.mark.ldap
def test_sync_imports_both_ous_reports_a_card_clash_and_follows_removals(runtime, clock, slapd):
    use_slapd(runtime, slapd)
    report = sync(runtime)
    assert sorted(report.imported) == ["alice", "bob", "carol", "dave", "o(dd)*name"]
    # bob and dave both carry card 1002 and PIN 5555 in the directory: reported, given to neither.
    assert {(c.field, c.logins) for c in report.clashes} == {("card", ("bob", "dave")), ("pin", ("bob", "dave"))}
    assert "5555" not in " ".join(c.describe() for c in report.clashes)
    by_login = {r["login"]: r for r in rows(runtime, users)}
    assert by_login["alice"]["card"] == "1001" and by_login["alice"]["full_name"] == "Alice Archer"
    assert by_login["bob"]["card"] == by_login["dave"]["card"] == ""
    assert by_login["alice"]["pin_digest"] and by_login["alice"]["pin_digest"] != "4321"

    # carol takes a seat by printing, then leaves the directory: deactivated, seat freed.
    track(runtime, ["carol"])
    assert [r["login_key"] for r in rows(runtime, licence_seats)] == ["carol"]
    slapd.delete(user_dn("carol"))
    slapd.modify(user_dn("alice"), cn="Alice Abbott")
    report = sync(runtime)
    assert report.deactivated == ["carol"] and report.updated == ["alice"] and not report.imported
    by_login = {r["login"]: r for r in rows(runtime, users)}
    assert not by_login["carol"]["active"] and by_login["carol"]["deactivated_reason"] == "left_directory"
    assert by_login["alice"]["full_name"] == "Alice Abbott"
    assert rows(runtime, licence_seats) == []
    # Nothing changed since: a second sync records nothing.
    head = runtime.app.recorder.max_notification_id()
    report = sync(runtime)
    assert (report.imported, report.updated, report.deactivated) == ([], [], [])
    assert runtime.app.recorder.max_notification_id() == head
    # carol comes back: activated again.
    slapd.add_user("carol", CONTRACTORS, "Carol Cole", "carol-pw-4444", employeeNumber="2001")
    assert sync(runtime).reactivated == ["carol"]


_batches = iter(range(1_000_000))


def track(runtime, logins):
    """One job per login, through the seat gate; returns each login's outcome."""
    batch = [dict(j, user=login) for j, login in zip(sample_jobs(len(logins), key_prefix=f"b{next(_batches)}"),
                                                     logins)]
    reports = parse_batch(json.dumps({"jobs": batch}).encode())
    outcomes = runtime.track_jobs(reports)
    runtime.catch_up()
    return dict(zip(logins, outcomes))


def test_jobs_of_users_beyond_the_seats_are_denied_until_a_seat_is_freed(runtime, clock):
    outcomes = track(runtime, [f"user{i}" for i in range(7)])
    assert [o.status for o in outcomes.values()] == ["tracked"] * 5 + ["denied"] * 2
    assert outcomes["user6"].decision == "deny" and "no licence seat" in outcomes["user6"].message
    statuses = sorted(r["status"] for r in rows(runtime, jobs))
    assert statuses == [JOB_TRACKED] * 5 + [JOB_DENIED] * 2
    with runtime.reader.connect() as conn:
        summary = licence_summary(conn, clock())
    assert (summary.type, summary.seats_allowed, summary.seats_used, summary.valid) == ("trial", 5, 5, True)
    assert sorted(r["login_key"] for r in rows(runtime, seat_denials)) == ["user5", "user6"]

    # The admin sets user0 Inactive: the seat goes to the next user who prints.
    clock.now += 1
    from domain.users import User
    user0 = User.import_(source="local", login="user0", profile={}, now=clock())
    runtime.app.save(user0)
    assert runtime.set_user_active(user0.id, False)
    runtime.catch_up()
    assert track(runtime, ["user5"])["user5"].status == "tracked"
    # An Inactive user's jobs take no seat back: denied as inactive (not "no seat").
    assert track(runtime, ["user0"])["user0"].message == "user inactive"
    assert runtime.set_user_active(user0.id, True)
    runtime.catch_up()
    assert "no licence seat" in track(runtime, ["user0"])["user0"].message


def test_an_expired_trial_denies_every_job_unless_unlicensed_tracking_is_on(runtime, clock):
    clock.now += 16 * MICROS_PER_DAY
    assert track(runtime, ["alice"])["alice"].message == "licence expired"
    runtime.licensing.set_track_unlicensed(True, by="admin")
    clock.now += 1
    assert track(runtime, ["alice"])["alice"].status == "tracked"
    runtime.catch_up()
    with runtime.reader.connect() as conn:
        summary = licence_summary(conn, clock())
    assert summary.valid is False and summary.track_unlicensed


class Inbox(Message):
    def __init__(self) -> None:
        super().__init__()
        self.messages = []

    def handle_message(self, message) -> None:
        self.messages.append(message)


def test_admins_get_at_most_one_notice_a_day_naming_the_denied_users(runtime, clock):
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        smtp = SmtpSettings(host="127.0.0.1", port=port, sender="pageledger@example.org",
                            recipients=("admin@example.org", "boss@example.org"))
        notify = SendDenialNotice(runtime.licensing, runtime.denied_since, SmtpMailer(smtp))
        assert notify() == []  # nobody denied: no mail
        track(runtime, [f"u{i}" for i in range(5)] + ["<b>mallory</b>", "zed"])
        # Two workers racing for the same day's notice: exactly one mail.
        results = []
        workers = [threading.Thread(target=lambda: results.append(notify())) for _ in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert sorted(map(tuple, results)) == [(), ("<b>mallory</b>", "zed")]
        clock.now += 3600 * 1_000_000
        track(runtime, ["late"])
        assert notify() == []  # same day: no second notice
        clock.now += MICROS_PER_DAY
        track(runtime, ["later"])
        assert notify() == ["late", "later"]  # denied since the last notice, "late" included
        assert len(inbox.messages) == 2
        first = inbox.messages[0]
        assert first["To"] == "admin@example.org, boss@example.org"
        body = first.get_payload(decode=True).decode()
        assert "<b>mallory</b>" in body and "zed" in body and first.get_content_type() == "text/plain"
    finally:
        controller.stop()


def test_a_sync_of_local_accounts_deactivates_nobody_and_says_there_is_nothing_to_sync(runtime, clock):
    runtime.add_local_user(login="root", password="root-pw-123", role="admin", profile={})
    runtime.add_local_user(login="kim", password="kim-pw-4567", role="user", profile={"full_name": "Kim K"})
    runtime.catch_up()
    head = runtime.app.recorder.max_notification_id()
    report = sync(runtime)
    assert (report.imported, report.deactivated) == ([], [])
    assert report.kept == []
    assert "local accounts" in report.summary() and "nothing to import or deactivate" in report.summary()
    assert runtime.app.recorder.max_notification_id() == head  # nothing written
    assert {r["login"]: r["active"] for r in rows(runtime, users)} == {"root": True, "kim": True}
    assert runtime.log_in(login="root", password="root-pw-123", remote_addr="127.0.0.1").ok


def make_admin(runtime, source, login):
    from domain.users import User

    user: User = runtime.app.repository.get(runtime.app.user_id(source, login))
    user.change_role("admin", runtime.clock())
    runtime.app.save(user)
    runtime.catch_up()


@pytest.mark.ldap
def test_a_sync_keeps_the_last_active_admin_who_left_the_directory_and_warns(runtime, clock, slapd, caplog):
    use_slapd(runtime, slapd)
    sync(runtime)
    make_admin(runtime, "ldap", "alice")
    make_admin(runtime, "ldap", "carol")
    slapd.delete(user_dn("alice"))
    slapd.delete(user_dn("carol"))
    with caplog.at_level("WARNING", logger="pageledger.users"):
        report = sync(runtime)
    # alice goes (carol is still an admin then); carol, the last active admin, stays.
    assert report.deactivated == ["alice"] and report.kept == ["carol"]
    assert "1 kept active" in report.summary()
    assert any("carol" in w and "last active admin" in w for w in report.warnings())
    assert any("carol" in r.getMessage() and "last active admin" in r.getMessage() for r in caplog.records)
    by_login = {r["login"]: r for r in rows(runtime, users)}
    assert not by_login["alice"]["active"] and by_login["carol"]["active"]
    # Once another admin exists, the next sync lets carol go.
    make_admin(runtime, "ldap", "bob")
    report = sync(runtime)
    assert report.deactivated == ["carol"] and report.kept == []


def test_an_inactive_local_account_with_the_right_password_is_told_it_is_inactive(runtime, clock):
    from domain.logins import BAD_CREDENTIALS, INACTIVE

    kim = runtime.add_local_user(login="kim", password="kim-pw-4567", role="user", profile={})
    runtime.set_user_active(kim.id, False)
    runtime.catch_up()
    right = runtime.log_in(login="kim", password="kim-pw-4567", remote_addr="10.0.0.1")
    assert (right.outcome, right.message) == (INACTIVE, "this account is inactive")
    # Without the password nothing tells an inactive account from a wrong or unknown login.
    for login, password in (("kim", "wrong-pw-000"), ("nobody", "kim-pw-4567")):
        wrong = runtime.log_in(login=login, password=password, remote_addr="10.0.0.1")
        assert (wrong.outcome, wrong.message) == (BAD_CREDENTIALS, "wrong login or password")


@pytest.mark.ldap
def test_an_inactive_directory_user_with_the_right_password_is_told_it_is_inactive(runtime, clock, slapd_server):
    from domain.logins import BAD_CREDENTIALS, INACTIVE

    use_slapd(runtime, slapd_server)
    sync(runtime)
    runtime.set_user_active(runtime.app.user_id("ldap", "bob"), False)
    runtime.catch_up()
    right = runtime.log_in(login="bob", password="bob-pw-22", remote_addr="10.0.0.2")
    assert (right.outcome, right.message) == (INACTIVE, "this account is inactive")
    wrong = runtime.log_in(login="bob", password="bob-pw-xx", remote_addr="10.0.0.2")
    assert (wrong.outcome, wrong.message) == (BAD_CREDENTIALS, "wrong login or password")


def test_a_removed_local_account_cannot_log_in_frees_its_seat_and_can_be_added_again(runtime, clock):
    from commands.users import NoSuchUser
    from projections.users import list_users

    runtime.add_local_user(login="root", password="root-pw-123", role="admin", profile={})
    kim = runtime.add_local_user(login="kim", password="kim-pw-4567", role="user", profile={"full_name": "Kim K"})
    assert runtime.log_in(login="kim", password="kim-pw-4567", remote_addr="10.0.0.3").ok  # takes a seat
    runtime.catch_up()
    assert [r["login_key"] for r in rows(runtime, licence_seats)] == ["kim"]

    runtime.remove_user(kim.id)
    runtime.catch_up()
    assert rows(runtime, licence_seats) == []
    with runtime.reader.connect() as conn:
        assert [u.login for u in list_users(conn)] == ["root"]
    assert runtime.log_in(login="kim", password="kim-pw-4567", remote_addr="10.0.0.3").outcome == "bad_credentials"
    assert track(runtime, ["kim"])["kim"].message == "user inactive"  # no seat taken back by printing
    with pytest.raises(NoSuchUser):
        runtime.remove_user(kim.id)
    with pytest.raises(NoSuchUser):
        runtime.change_password(kim.id, "another-pw-1")

    again = runtime.add_local_user(login="kim", password="kim-pw-new1", role="auditor", profile={})
    runtime.catch_up()
    assert again.id == kim.id
    result = runtime.log_in(login="kim", password="kim-pw-new1", remote_addr="10.0.0.3")
    assert (result.ok, result.role) == (True, "auditor")
    by_login = {r["login"]: r for r in rows(runtime, users)}
    assert (by_login["kim"]["active"], by_login["kim"]["full_name"], by_login["kim"]["has_password"]) == (
        True, "", True)
    from domain.users import UserError
    with pytest.raises(UserError, match="already exists"):
        runtime.add_local_user(login="KIM", password="kim-pw-new2", role="user", profile={})


def test_the_last_active_admin_cannot_be_removed_demoted_or_deactivated(runtime, clock):
    from commands.users import LastActiveAdmin

    root = runtime.add_local_user(login="root", password="root-pw-123", role="admin", profile={})
    kim = runtime.add_local_user(login="kim", password="kim-pw-4567", role="user", profile={})
    runtime.catch_up()
    head = runtime.app.recorder.max_notification_id()
    for change in (lambda: runtime.remove_user(root.id), lambda: runtime.change_role(root.id, "auditor"),
                   lambda: runtime.set_user_active(root.id, False)):
        with pytest.raises(LastActiveAdmin, match="root is the last active admin"):
            change()
    assert runtime.app.recorder.max_notification_id() == head  # nothing written
    assert runtime.change_role(root.id, "admin") is False  # no change is no demotion

    # An Inactive admin does not count; an Active one does.
    assert runtime.change_role(kim.id, "admin")
    runtime.catch_up()
    assert runtime.set_user_active(kim.id, False)
    runtime.catch_up()
    with pytest.raises(LastActiveAdmin):
        runtime.change_role(root.id, "user")
    assert runtime.set_user_active(kim.id, True)
    runtime.catch_up()
    assert runtime.change_role(root.id, "user")
    runtime.catch_up()
    with pytest.raises(LastActiveAdmin, match="kim is the last active admin"):
        runtime.remove_user(kim.id)
    runtime.change_password(root.id, "root-pw-456")
    assert runtime.log_in(login="root", password="root-pw-456", remote_addr="10.0.0.4").role == "user"


def test_no_local_account_is_added_where_users_come_from_a_directory(runtime, clock):
    from commands.users import NoLocalAccounts

    runtime.directory_config.save("ldap", LdapConfig(host="127.0.0.1", port=9, base_dns=(STAFF,), timeout=1))
    with pytest.raises(NoLocalAccounts, match="come from its directory 'ldap'"):
        runtime.add_local_user(login="kim", password="kim-pw-4567", role="admin", profile={})
    assert runtime.app.recorder.max_notification_id() == 1  # the trial licence only
