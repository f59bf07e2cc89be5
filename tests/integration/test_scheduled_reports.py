"""Scheduled reports: refused when badly defined, run when due — in-process and through rq on
the real Redis — and e-mailed to an SMTP server on loopback (aiosmtpd), attachment checked;
a failing run is retried, then recorded and reported to the admins."""
from __future__ import annotations

import csv
import io
import email
import ssl
import uuid
from datetime import datetime, timedelta, timezone
from email import policy

import pytest
import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from commands.report_schedules import ScheduleDefinition
from commands.validation import InvalidRequest
from domain.units import to_micros
from projections.report_schedules import list_schedules
from tests.conftest import free_port
from tests.report_data import expected, generate, seed

JOBS = generate()
NOW = to_micros(datetime(2026, 12, 1, 12, tzinfo=timezone.utc))
DEFINED = to_micros(datetime(2026, 11, 30, 12, tzinfo=timezone.utc))
REDIS_URL = "redis://127.0.0.1:6379/0"


class Inbox:
    """aiosmtpd handler: keeps each message; refuses the first `refuse` of them (451)."""

    def __init__(self, refuse: int = 0, refuse_to: str | None = None) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.refuse = refuse
        self.refuse_to = refuse_to
        self.tries = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.tries += 1
        if self.refuse > 0 or (self.refuse_to and self.refuse_to in envelope.rcpt_tos):
            self.refuse -= 1
            return "451 try again later"
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp():
    started = []

    def start(inbox: Inbox, **kwargs) -> int:
        port = free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        started.append(controller)
        return port

    yield start
    for c in started:
        c.stop()


@pytest.fixture
def rt(tmp_path):
    from pageledger.bootstrap import build_runtime
    from pageledger.settings import Settings

    def make(port: int = 25, **extra):
        settings = Settings.load(environ={}, database_url=f"sqlite:///{tmp_path / 'pageledger.db'}",
                                 data_dir=tmp_path / "var", smtp_host="127.0.0.1", smtp_port=port,
                                 admin_emails="boss@example.org", server_id=f"t-{uuid.uuid4().hex[:8]}", **extra)
        runtime = build_runtime(settings)
        made.append(runtime)
        return runtime

    made: list = []
    yield make
    for r in made:
        r.close()


def define(runtime, name="daily-usage", **change):
    runtime.clock = lambda: DEFINED
    d = dict(name=name, report="usage", parameters={"group_by": "printer"}, format="csv", cron="0 7 * * *",
             recipients=("ops@example.org",), period="previous-day")
    d.update(change)
    runtime.define_schedule(ScheduleDefinition(**d), by="admin")


@pytest.mark.parametrize("change,field", [
    ({"cron": "61 * * * *"}, "cron"),
    ({"cron": "every day"}, "cron"),
    ({"cron": "0 7 * * * *"}, "cron"),
    ({"recipients": ("not an address",)}, "recipients.0"),
    ({"recipients": ("ops@example.org", "a@b\r\nBcc: x@y.org")}, "recipients.1"),
    ({"recipients": ()}, "recipients"),
    ({"report": "no-such"}, "report"),
    ({"parameters": {"group_by": "planet"}}, "parameters.group_by"),
    ({"parameters": {"from": "2026-01-01"}}, "parameters.from"),
    ({"format": "docx"}, "format"),
    ({"period": "forever"}, "period"),
    ({"name": "../etc"}, "name"),
])
def test_a_bad_schedule_is_refused_when_defined_naming_the_field(rt, change, field):
    runtime = rt()
    with pytest.raises(InvalidRequest) as caught:
        define(runtime, **change)
    assert field in caught.value.errors
    runtime.catch_up()
    with runtime.reader.connect() as conn:
        assert list_schedules(conn) == []  # nothing was written


def test_a_due_report_is_emailed_in_process_with_its_attachment_once(rt, smtp):
    inbox = Inbox()
    runtime = rt(smtp(inbox))
    seed(runtime, JOBS)
    define(runtime)
    runtime.clock = lambda: NOW
    runtime.catch_up()
    runs = runtime.scheduled_runs(pauses=(0,))
    assert runs.tick() == [("daily-usage", "sent")]
    [message] = inbox.messages
    assert message["To"] == "ops@example.org" and "daily-usage" in message["Subject"]
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "usage-2026-11-30.csv"
    lines = list(csv.reader(io.StringIO(attachment.get_content().decode("utf-8-sig") if isinstance(
        attachment.get_content(), bytes) else attachment.get_content().lstrip("\ufeff"))))
    total = next(line for line in lines if line and line[0] == "total")
    header = next(line for line in lines if line and line[0] == "printer")
    want = expected(JOBS, to_micros(datetime(2026, 11, 30, tzinfo=timezone.utc)),
                    to_micros(datetime(2026, 12, 1, tzinfo=timezone.utc)))["all"]
    assert int(total[header.index("impressions")]) == want["impressions"]
    assert int(total[header.index("jobs")]) == want["jobs"]
    runtime.catch_up()
    assert runs.tick() == []  # not due again until tomorrow 07:00
    with runtime.reader.connect() as conn:
        [row] = list_schedules(conn)
    assert (row.last_outcome, row.last_attempts) == ("sent", 1)


def test_a_failing_run_is_retried_then_recorded_and_reported_to_the_admins(rt, smtp):
    inbox = Inbox(refuse_to="ops@example.org")  # the report's recipient keeps failing; the admin's does not
    runtime = rt(smtp(inbox), schedule_attempts=3)
    define(runtime, format="pdf")
    runtime.clock = lambda: NOW
    runtime.catch_up()
    assert runtime.scheduled_runs(pauses=(0,)).tick() == [("daily-usage", "failed")]
    assert inbox.tries == 4  # three attempts, then the report to the admins
    [notice] = inbox.messages
    assert notice["To"] == "boss@example.org" and "could not be sent" in notice["Subject"]
    runtime.catch_up()
    with runtime.reader.connect() as conn:
        [row] = list_schedules(conn)
    assert (row.last_outcome, row.last_attempts) == ("failed", 3) and "451" in row.last_error


def test_a_retried_run_that_succeeds_is_sent_once(rt, smtp):
    inbox = Inbox(refuse=1)
    runtime = rt(smtp(inbox))
    define(runtime, format="xlsx")
    runtime.clock = lambda: NOW
    runtime.catch_up()
    assert runtime.scheduled_runs(pauses=(0,)).tick() == [("daily-usage", "sent")]
    assert len(inbox.messages) == 1 and inbox.tries == 2


def test_two_workers_run_a_due_report_once(rt, smtp):
    inbox = Inbox()
    runtime = rt(smtp(inbox))
    define(runtime)
    runtime.clock = lambda: NOW
    runtime.catch_up()
    first, second = runtime.scheduled_runs(pauses=(0,)), runtime.scheduled_runs(pauses=(0,))
    due = first.due(NOW)  # both see it due (the second has not seen the claim yet)
    assert second.due(NOW) == due
    assert first.tick() == [("daily-usage", "sent")]
    assert runtime.schedule_runs.claim("daily-usage", due[0][1]) is None
    assert len(inbox.messages) == 1


def tls_context(tmp_path) -> ssl.SSLContext:
    """A self-signed certificate for 127.0.0.1, for an SMTP server that offers STARTTLS."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(datetime.now(timezone.utc) - timedelta(days=1))
            .not_valid_after(datetime.now(timezone.utc) + timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    return context


def test_smtp_with_starttls_and_login(rt, smtp, tmp_path):
    context = tls_context(tmp_path)
    logins = []

    def authenticate(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, session.ssl is not None))
        return AuthResult(success=auth_data.login == b"reports" and auth_data.password == b"s3cret")

    inbox = Inbox()
    port = smtp(inbox, tls_context=context, require_starttls=True, authenticator=authenticate, auth_require_tls=True)
    runtime = rt(port, smtp_starttls=1, smtp_username="reports", smtp_password="s3cret")
    define(runtime, format="html")
    runtime.clock = lambda: NOW
    runtime.catch_up()
    assert runtime.scheduled_runs(pauses=(0,)).tick() == [("daily-usage", "sent")]
    assert logins == [(b"reports", True)] and len(inbox.messages) == 1


def test_a_scheduled_report_through_rq_on_the_real_redis(rt, smtp):
    from pageledger import worker

    connection = redis.Redis.from_url(REDIS_URL)
    connection.ping()
    inbox = Inbox()
    runtime = rt(smtp(inbox), redis_url=REDIS_URL, schedule_tick_seconds=60)
    seed(runtime, JOBS[:50])
    runtime.clock = lambda: to_micros(datetime.now(timezone.utc)) - 3 * 60_000_000
    runtime.define_schedule(ScheduleDefinition("every-minute", "usage", {}, "csv", "* * * * *",
                                               ("ops@example.org",), "last-7-days"), by="admin")
    runtime.catch_up()
    try:
        assert worker.run_worker(runtime.settings, burst=True) == 0
    finally:
        from rq import Queue
        Queue(worker.queue_name(runtime.settings), connection=connection).delete(delete_jobs=True)
    [message] = inbox.messages
    assert [a.get_filename() for a in message.iter_attachments()][0].startswith("usage-")
    runtime.catch_up()
    with runtime.reader.connect() as conn:
        rows = {r.name: r for r in list_schedules(conn)}
    assert rows["every-minute"].last_outcome == "sent"
    assert {"licence-notice", "user-sync"} <= set(rows)  # the daily tasks are on the same schedule


def test_schedules_over_http_are_refused_naming_the_field_and_listed_with_their_last_run(rt):
    import falcon.testing
    from api.app import create_app

    runtime = rt()
    _, admin = runtime.issue_token(name="sched-admin", role="admin")
    runtime.catch_up()
    client = falcon.testing.TestClient(create_app(runtime))
    headers = {"Authorization": f"Bearer {admin}"}
    good = {"report": "savings", "cron": "0 7 1 * *", "recipients": ["ops@example.org"], "period": "previous-month"}
    for change, field in (({"cron": "0 25 * * *"}, "cron"), ({"recipients": ["x"]}, "recipients.0"),
                          ({"report": "nope"}, "report"), ({"parameters": {"colour": "sepia"}}, "parameters.colour")):
        r = client.simulate_put("/api/v1/report-schedules/monthly", json={**good, **change}, headers=headers)
        assert r.status_code == 400 and field in r.json["errors"], r.text
    assert client.simulate_put("/api/v1/report-schedules/monthly", json=good, headers=headers).status_code == 204
    runtime.catch_up()
    [s] = client.simulate_get("/api/v1/report-schedules", headers=headers).json["schedules"]
    assert (s["name"], s["cron"], s["last_due"], s["defined_by"]) == ("monthly", "0 7 1 * *", None, "sched-admin")
    assert client.simulate_delete("/api/v1/report-schedules/monthly", headers=headers).status_code == 204
    assert client.simulate_delete("/api/v1/report-schedules/monthly", headers=headers).status_code == 404


def _wait_done(client, url, headers, timeout=60.0):
    import time
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.simulate_get(url, headers=headers).json
        seen.append(state["progress"])
        if state["state"] in ("done", "failed"):
            return state, seen
        time.sleep(0.05)
    raise AssertionError(f"the run did not finish: {seen[-5:]}")


@pytest.mark.parametrize("with_redis", [False, True], ids=["in-process", "rq"])
def test_a_long_report_runs_in_the_background_with_progress_to_poll(rt, with_redis):
    import falcon.testing
    from api.app import create_app
    from pageledger import worker

    runtime = rt(**({"redis_url": REDIS_URL} if with_redis else {}))
    seed(runtime, JOBS)
    runtime.clock = lambda: NOW
    _, admin = runtime.issue_token(name="bg-admin", role="admin")
    _, ann = runtime.issue_token(name="ann-bg", role="user", subject="ann")
    _, bob = runtime.issue_token(name="bob-bg", role="user", subject="bob")
    runtime.catch_up()
    client = falcon.testing.TestClient(create_app(runtime))
    admin_h, ann_h, bob_h = ({"Authorization": f"Bearer {t}"} for t in (admin, ann, bob))
    bad = client.simulate_post("/api/v1/reports/jobs/runs", params={"format": "json"}, headers=admin_h)
    assert bad.status_code == 400 and "format" in bad.json["errors"]
    r = client.simulate_post("/api/v1/reports/jobs/runs", params={"from": "2026-11-27", "to": "2026-12-01",
                                                                  "format": "csv"}, headers=ann_h)
    assert r.status_code == 202, r.text
    url = r.headers["location"]
    if with_redis:  # the worker runs what is queued, then exits (rq needs the main thread for its signals)
        assert client.simulate_get(url, headers=ann_h).json["state"] == "queued"
        assert worker.run_worker(runtime.settings, burst=True) == 0
    state, seen = _wait_done(client, url, ann_h)
    assert state["state"] == "done", state
    since, until = (to_micros(datetime(2026, 11, d, tzinfo=timezone.utc)) for d in (27, 30))
    until += 2 * 86_400_000_000  # `to` a date includes that day: up to 2026-12-02T00:00Z
    assert state["rows_total"] == sum(1 for j in JOBS if j.user == "ann" and since <= j.at < until)  # her own jobs
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert client.simulate_get(url, headers=bob_h).status_code == 404  # another user's run
    body = client.simulate_get(state["file_url"], headers=ann_h)
    assert body.status_code == 200 and body.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(body.content.decode("utf-8-sig"))))
    assert sum(1 for row in rows if len(row) > 2 and row[2] == "ann") == state["rows_total"]
    if with_redis:
        from rq import Queue
        Queue(worker.queue_name(runtime.settings), connection=redis.Redis.from_url(REDIS_URL)).delete(delete_jobs=True)
