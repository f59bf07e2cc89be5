"""Secure release through the commands and the read models, on SQLite and PostgreSQL: a held job
is not charged until it prints, is priced where it printed, and every bad request names its
field and records nothing (but the audit of a wrong code)."""
from __future__ import annotations

import hashlib
import io
import itertools
import json

import msgspec
import pytest
import sqlalchemy as sa

from commands.job_reports import parse_batch
from commands.jobs import TrackJobs
from commands.printers import ReleaseSettings
from commands.release import Caller, CodeThrottled
from commands.validation import InvalidRequest
from domain.costs import CostSchedule
from domain.units import MICROS_PER_SECOND
from projections.held_jobs import expired_job_ids, release_orders, waiting_jobs
from projections.jobs import JobFilter, list_jobs
from projections.usage_daily import usage_totals
from tools.sample_jobs import sample_jobs

_keys = itertools.count()
ALICE = Caller("alice", admin=False, address="10.0.0.1")
BOB = Caller("bob", admin=False, address="10.0.0.2")
ADMIN = Caller("root", admin=True)


def held(runtime, n=1, *, printer="vault", user="alice", data=b"%PDF-1.7 held\n", **fields):
    """Track n jobs on a secure queue and upload their data: their ids and the outcomes."""
    jobs = [dict(j, job_key=f"held/{next(_keys)}", user=user, printer=printer, pages=2, copies=1, colour_pages=0, duplex=False, paper="A4",
                 **fields) for j in sample_jobs(n)]
    # Without the seat gate: licensing is not what these tests are about.
    track = TrackJobs(runtime.app, runtime.printers, codes=runtime.pin_digest, clock=runtime.clock)
    outcomes = track(parse_batch(json.dumps({"jobs": jobs}).encode()))
    for o in outcomes:
        body = data + o.job_key.encode()
        runtime.hold_job(o.job_id, io.BytesIO(body), sha256=hashlib.sha256(body).hexdigest(), size=len(body))
    runtime.catch_up()
    return [str(o.job_id) for o in outcomes], outcomes


def states(runtime, user=None):
    with runtime.reader.connect() as conn:
        rows, _ = list_jobs(conn, JobFilter(user=user, limit=1000))
    return sorted(r.status for r in rows)


def usage(runtime):
    with runtime.reader.connect() as conn:
        return {(t.key, t.jobs, t.cost) for t in usage_totals(conn, "printer")}


@pytest.fixture
def secure(runtime):
    runtime.set_cost_schedule("vault", CostSchedule(mono_page=500, colour_page=2500))
    runtime.set_cost_schedule("lobby", CostSchedule(mono_page=100, colour_page=900))
    for name in ("vault", "lobby", "annex"):
        runtime.set_secure_hold(name, True)
    runtime.set_release_settings("vault", ReleaseSettings(group="floor-2"))
    runtime.set_release_settings("lobby", ReleaseSettings(group="floor-2"))
    return runtime


def test_a_held_job_is_not_charged_until_printed_then_priced_where_it_printed(secure):
    rt = secure
    [job], [outcome] = held(rt)
    assert (outcome.decision, outcome.status) == ("hold", "tracked")
    assert states(rt) == ["held"] and usage(rt) == set()  # not in usage while held

    rt.release_jobs([job], ALICE, printer="lobby")  # pull printing: released at the other printer
    rt.catch_up()
    assert states(rt) == ["released"] and usage(rt) == set()
    with rt.reader.connect() as conn:
        [order] = release_orders(conn)
    assert (order.job_id, order.released_to, order.user) == (job, "lobby", "alice")

    rt.release_outcome.printed(order_id := msgspec.convert(job, type=__import__("uuid").UUID),
                               cups_job="cups:lobby-release:7:1700000000")
    rt.release_outcome.printed(order_id, cups_job="cups:lobby-release:7:1700000000")  # reported twice: once
    rt.catch_up()
    assert states(rt) == ["printed"]
    assert usage(rt) == {("lobby", 1, 2 * 100)}  # lobby's price, not vault's 2 x 500
    spool_dir = rt.settings.data_dir / "spool"
    assert not any(p.is_file() for p in spool_dir.glob("*/*"))  # its data is gone once printed


def test_bad_requests_name_the_field_and_record_nothing(secure):
    rt = secure
    [mine], _ = held(rt)
    [theirs], _ = held(rt, user="bob")
    [annexed], _ = held(rt, printer="annex")
    head = rt.app.recorder.max_notification_id()

    def refused(call, field):
        with pytest.raises(InvalidRequest) as caught:
            call()
        assert field in caught.value.errors, caught.value.errors
        return caught.value.errors[field]

    assert refused(lambda: rt.release_jobs(["00000000-0000-0000-0000-000000000001"], ALICE), "jobs.0")
    # someone else's job reads exactly like an unknown one
    assert refused(lambda: rt.release_jobs([theirs], ALICE), "jobs.0") == refused(
        lambda: rt.release_jobs(["00000000-0000-0000-0000-000000000001"], ALICE), "jobs.0")
    assert refused(lambda: rt.release_jobs(["garbage"], ALICE), "jobs.0") == ["not a job id"]
    assert refused(lambda: rt.release_jobs([mine], ALICE, printer="annex"), "printer")
    assert refused(lambda: rt.release_jobs([annexed], ALICE, printer="vault"), "printer")
    assert refused(lambda: rt.delete_jobs([theirs], ALICE), "jobs.0")
    assert rt.app.recorder.max_notification_id() == head  # nothing written

    rt.release_jobs([mine], ALICE)
    assert "already released" in refused(lambda: rt.release_jobs([mine], ALICE), "jobs.0")[0]
    rt.delete_jobs([theirs], ADMIN)  # admins may delete anyone's
    rt.catch_up()
    assert sorted(states(rt)) == ["deleted", "held", "released"]
    with rt.reader.connect() as conn:
        assert [j.user for j in waiting_jobs(conn, None)] == ["alice"]  # annex's
        assert waiting_jobs(conn, "bob") == []


def test_release_codes_in_all_three_modes_and_the_throttle(secure):
    rt = secure
    rt.set_release_settings("annex", ReleaseSettings(code_mode="generated", code_length=6))
    [generated], [outcome] = held(rt, printer="annex")
    code = outcome.release_code
    assert len(code) == 6 and code.isdigit() and code in outcome.message
    with pytest.raises(InvalidRequest) as wrong:
        rt.release_jobs([generated], ALICE, code="000000" if code != "000000" else "111111")
    assert list(wrong.value.errors) == ["code"]
    rt.release_jobs([generated], ALICE, code=code)

    rt.set_release_settings("annex", ReleaseSettings(code_mode="entered"))
    [entered], _ = held(rt, printer="annex", release_code="4711")
    with pytest.raises(InvalidRequest):
        rt.release_jobs([entered], ALICE)  # no code given
    rt.release_jobs([entered], ALICE, code="4711")

    rt.set_release_settings("annex", ReleaseSettings(code_mode="predefined"))
    rt.add_local_user(login="carol", password="a long password 1", role="user", profile={})
    rt.catch_up()
    from domain.users import LOCAL_SOURCE
    carol = rt.app.repository.get(rt.app.user_id(LOCAL_SOURCE, "carol"))
    carol.change_pin(rt.pin_digest("2468"), rt.clock())
    rt.app.save(carol)
    [own], _ = held(rt, printer="annex", user="carol")
    caller = Caller("carol", admin=False, address="10.9.9.9")
    # Four wrong codes, then the right one goes through (the throttle allows 5 failures).
    for _ in range(4):
        with pytest.raises(InvalidRequest):
            rt.release_jobs([own], caller, code="1357")
    rt.release_jobs([own], caller, code="2468")

    # A right code does not wipe the count: the fifth wrong one in the window is the last.
    [again], _ = held(rt, printer="annex", user="carol")
    with pytest.raises(InvalidRequest):
        rt.release_jobs([again], caller, code="9999")
    with pytest.raises(CodeThrottled) as throttled:
        rt.release_jobs([again], caller, code="2468")  # even the right code waits now
    assert throttled.value.retry_after > 0
    refusals = [n for n in rt.app.recorder.select_notifications(start=1, limit=100_000)
                if n.topic.endswith("ReleaseCodeRefused")]
    assert len(refusals) == 1 + 1 + 4 + 1  # every wrong or missing code is on record


def test_expiry_is_a_query_and_expired_jobs_are_never_charged(secure):
    rt = secure
    rt.set_release_settings("vault", ReleaseSettings(hold_seconds=60))
    ids, _ = held(rt, 3)
    with rt.reader.connect() as conn:
        assert expired_job_ids(conn, rt.clock()) == []
        due = expired_job_ids(conn, rt.clock() + 61 * MICROS_PER_SECOND)
    assert sorted(due) == sorted(ids)
    assert rt.expire_jobs(due) == 3
    assert rt.expire_jobs(due) == 0  # expiring again records nothing
    rt.catch_up()
    assert states(rt) == ["expired"] * 3 and usage(rt) == set()
    assert not any(p.is_file() for p in (rt.settings.data_dir / "spool").glob("*/*"))
    with rt.reader.connect() as conn:
        count = conn.execute(sa.text("select count(*) from held_jobs where status = 6")).scalar()
    assert count == 3


def test_the_sweep_removes_only_spool_files_no_waiting_job_needs(secure):
    import os
    import time

    from workers.release_housekeeping import sweep_orphaned_spools

    rt = secure
    [kept], _ = held(rt, data=b"kept data")
    [gone], _ = held(rt, data=b"printed data")
    rt.release_jobs([gone], ALICE)
    rt.release_outcome.printed(__import__("uuid").UUID(gone), cups_job="c/q/1@1")
    orphan = b"left behind by a crash"
    digest = hashlib.sha256(orphan).hexdigest()
    rt.spool.write(io.BytesIO(orphan), sha256=digest, size=len(orphan))
    fresh = b"just uploaded, not projected yet"
    fresh_digest = hashlib.sha256(fresh).hexdigest()
    rt.spool.write(io.BytesIO(fresh), sha256=fresh_digest, size=len(fresh))
    hour_ago = time.time() - 7200
    for d, _ in list(rt.spool.stored()):
        if d != fresh_digest:
            os.utime(rt.spool.path(d), (hour_ago, hour_ago))
    rt.catch_up()
    report = sweep_orphaned_spools(rt.reader, rt.spool)
    assert (report.removed, report.bytes_removed) == (1, len(orphan))
    left = {d for d, _ in rt.spool.stored()}
    assert digest not in left and fresh_digest in left and len(left) == 2  # the held job's and the fresh one


def test_wrong_codes_are_counted_across_two_web_workers(secure, settings):
    """Two runtimes on one database stand for two web workers (or nodes): one count."""
    from pageledger.bootstrap import build_runtime

    rt = secure
    rt.set_release_settings("annex", ReleaseSettings(code_mode="entered"))
    [job], _ = held(rt, printer="annex", release_code="1234")
    other = build_runtime(settings, migrate=False)
    try:
        for n in range(5):
            with pytest.raises(InvalidRequest):
                (rt if n % 2 else other).release_jobs([job], ALICE, code=f"99{n:02d}")
        for worker in (rt, other):
            with pytest.raises(CodeThrottled):
                worker.release_jobs([job], ALICE, code="1234")
    finally:
        other.close()


def test_a_generated_code_is_emailed_to_its_owner_when_they_have_an_address(secure, caplog):
    from aiosmtpd.controller import Controller

    from adapters.mail import SmtpMailer, SmtpSettings
    from tests.conftest import free_port
    from tests.integration.test_identity import Inbox
    from workers.release_code_mail import ReleaseCodeMailer

    rt = secure
    rt.set_release_settings("annex", ReleaseSettings(code_mode="generated", code_length=8))
    rt.add_local_user(login="gina", password="a long password 1", role="user", profile={"email": "gina@example.org"})
    rt.catch_up()
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mailer = ReleaseCodeMailer(rt.email_of, SmtpMailer(SmtpSettings("127.0.0.1", port, "pl@example.org", ())))
        track = TrackJobs(rt.app, rt.printers, codes=rt.pin_digest, clock=rt.clock, tell_code=mailer)
        jobs = [dict(j, job_key=f"mail/{i}", user=user, printer="annex", document="Budget <2027>")
                for i, (j, user) in enumerate(zip(sample_jobs(2), ("gina", "nobody-with-mail")))]
        with caplog.at_level("INFO"):
            outcomes = track(parse_batch(json.dumps({"jobs": jobs}).encode()))
            mailer.drain()
    finally:
        controller.stop()
    [message] = inbox.messages
    assert message["To"] == "gina@example.org"
    assert outcomes[0].release_code in message.get_payload() and "Budget <2027>" in message.get_payload()
    assert all(o.release_code not in r.getMessage() for o in outcomes for r in caplog.records)  # never logged
