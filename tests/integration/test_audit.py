"""Audit and replay on both stores: the seals catch an edited, a deleted and an inserted event
(each done by SQL on the real database), verify rebuilds and compares the read models, usage as
of an instant leaves out what was recorded later, the event history API, the admin-change log,
and the document-name privacy setting."""
from __future__ import annotations

import csv
import glob
import io
import json
import os
import time
from datetime import datetime, timedelta, timezone

import falcon.testing
import pytest
import sqlalchemy as sa

from adapters import codec
from adapters.codec import topic_of
from adapters.event_seals import RawLog, check_seals
from adapters.personal_keys import erased_user
from api.app import create_app
from commands.job_reports import parse_batch
from commands.jobs import TrackJobs
from domain.units import to_micros
from projections.event_history import EventFilter
from projections.jobs import JobFilter, jobs, list_jobs
from tools.sample_jobs import sample_jobs

JAN = datetime(2026, 1, 20, 9, 0, tzinfo=timezone.utc)


def track(runtime, n, *, key_prefix, start=JAN, seed=1, users=5):
    reports = parse_batch(json.dumps({"jobs": list(sample_jobs(n, seed=seed, users=users, start=start,
                                                               key_prefix=key_prefix))}).encode())
    # No seat gate: these tests count jobs, not licences.
    return TrackJobs(runtime.app, runtime.printers, document_policy=runtime.document_policy,
                     personal=runtime.personal_keys)(reports)


def raw_sql(runtime, statement, params=()):
    """Run SQL on the event store's own tables, behind PageLedger's back, as a tamperer would."""
    recorder = runtime.app.recorder
    events, seals = RawLog(recorder)._names()
    statement = statement.format(events=events, seals=seals)
    if RawLog(recorder).postgres:
        with recorder.datastore.get_connection() as conn, conn.cursor() as cur:
            cur.execute(statement.replace("?", "%s"), params)
            conn.commit()
    else:
        with recorder.datastore.transaction(commit=True) as cur:
            cur.execute(statement, params)


def id_column(runtime):
    return "notification_id" if RawLog(runtime.app.recorder).postgres else "rowid"


def findings(runtime):
    return [(f.kind, f.notification_id) for f in check_seals(RawLog(runtime.app.recorder)).findings]


def a_job_event(runtime, nth=5):
    log = RawLog(runtime.app.recorder)
    return [r for r in log.events(0, 10_000) if topic_of(r[3]) == "PrintJob.Tracked"][nth]


def test_an_untouched_log_and_read_models_verify(runtime):
    track(runtime, 40, key_prefix="a")
    track(runtime, 3, key_prefix="b")
    runtime.catch_up()
    result = runtime.audit.verify()
    assert result.seals.findings == []
    assert result.seals.events == runtime.followers["jobs"].head()
    assert result.seals.seals >= 2 and len(result.seals.head_digest) == 32
    assert result.read_models.ok, [c.shown for c in result.read_models.checks]
    # Every table of the jobs projection is compared: the jobs rows and the savings report's sums.
    from projections.jobs import JobsProjection
    from projections.savings_daily import savings_daily
    with runtime.reader.connect() as conn:
        count = {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() for t in JobsProjection.tables}
    assert count["jobs"] == 43 and count[savings_daily.name] > 0
    assert {c.name: c.rows for c in result.read_models.checks}["jobs"] == sum(count.values())


def test_a_batch_whose_ids_are_not_consecutive_is_sealed_as_several_runs_that_verify(runtime):
    """A batch's ids are consecutive but for sequence gaps; where they are not, each run of
    consecutive ids gets a seal of its own (PostgreSQL computes them in the insert function,
    SQLite in Python). Forced here on PostgreSQL by a sequence that steps by 2."""
    track(runtime, 5, key_prefix="before")
    log = RawLog(runtime.app.recorder)
    seals_before = len(log.seals(0, 10_000))
    if log.postgres:
        step = ("DO $$ BEGIN EXECUTE 'ALTER SEQUENCE ' || pg_get_serial_sequence('{events}', 'notification_id') "
                "|| ' INCREMENT BY {by}'; END $$")
        raw_sql(runtime, step.replace("{by}", "2"))
        track(runtime, 4, key_prefix="gapped")
        raw_sql(runtime, step.replace("{by}", "1"))
        # One transaction, four jobs (and their printers' and users' first events), every id its own run.
        assert len(log.seals(0, 10_000)) - seals_before >= 4
    track(runtime, 3, key_prefix="after")
    report = check_seals(log)
    assert report.ok, report.findings
    assert report.events == len(log.events(0, 10_000))


def test_an_edited_event_is_named(runtime):
    track(runtime, 20, key_prefix="a")
    nid, _, _, _, state = a_job_event(runtime)
    edited = bytes(state).replace(b"\x01", b"\x02", 1) if b"\x01" in bytes(state) else bytes(state) + b"\x00"
    raw_sql(runtime, "UPDATE {events} SET state = ? WHERE " + id_column(runtime) + " = ?", (edited, nid))
    assert findings(runtime) == [("edited", nid)]


def test_a_deleted_event_is_named(runtime):
    track(runtime, 20, key_prefix="a")
    nid = a_job_event(runtime)[0]
    raw_sql(runtime, "DELETE FROM {events} WHERE " + id_column(runtime) + " = ?", (nid,))
    assert findings(runtime) == [("deleted", nid)]


def test_an_inserted_event_is_named(runtime):
    track(runtime, 20, key_prefix="a")
    nid, oid, version, topic, state = a_job_event(runtime)
    # A second event on the job, as if it had been recorded (a forged Denied would cost nothing).
    raw_sql(runtime, "INSERT INTO {events} (originator_id, originator_version, topic, state) "
                     "VALUES (?, ?, ?, ?)", (oid, version + 1, topic, bytes(state)))
    head = runtime.followers["jobs"].head()
    assert findings(runtime) == [("inserted", head)]


def test_a_deleted_seal_breaks_the_chain(runtime):
    track(runtime, 5, key_prefix="a")
    track(runtime, 5, key_prefix="b")
    track(runtime, 5, key_prefix="c")
    log = RawLog(runtime.app.recorder)
    middle = log.seals(-1, 10)[1]
    raw_sql(runtime, "DELETE FROM {seals} WHERE last_id = ?", (middle[0],))
    kinds = {k for k, _ in findings(runtime)}
    assert kinds == {"inserted", "seal"}


def test_verify_names_a_read_model_row_changed_behind_the_projection(runtime):
    track(runtime, 10, key_prefix="a")
    runtime.catch_up()
    with runtime.writer.begin() as conn:
        seq = conn.execute(sa.select(sa.func.min(jobs.c.seq))).scalar()
        conn.execute(jobs.update().where(jobs.c.seq == seq).values(cost=1))
    result = runtime.audit.verify()
    assert result.seals.ok and not result.read_models.ok
    [check] = [c for c in result.read_models.checks if c.name == "jobs"]
    assert check.differences == 1 and check.shown[0].kind == "different" and check.shown[0].key == (seq,)


def test_usage_as_of_leaves_out_events_recorded_later_even_about_earlier_prints(runtime):
    track(runtime, 30, key_prefix="a", start=JAN)
    time.sleep(0.01)
    instant = to_micros(datetime.now(timezone.utc))
    time.sleep(0.01)
    # Recorded after the instant, but printed before it (a late agent's outbox).
    track(runtime, 7, key_prefix="late", start=JAN - timedelta(days=3), seed=9)
    runtime.catch_up()
    then, read = runtime.audit.usage_as_of(instant, "user")
    now, _ = runtime.audit.usage_as_of(to_micros(datetime.now(timezone.utc)), "user")
    assert sum(t.jobs for t in then) == 30
    assert sum(t.jobs for t in now) == 37
    with runtime.reader.connect() as conn:
        live = conn.execute(sa.text("SELECT sum(jobs), sum(cost) FROM usage_daily")).one()
    assert (sum(t.jobs for t in now), sum(t.cost for t in now)) == tuple(int(v) for v in live)
    assert read >= 30
    client, tokens = client_and_tokens(runtime)
    at = datetime.fromtimestamp(instant / 1e6, timezone.utc).isoformat()
    r = client.simulate_get("/api/v1/audit/as-of", params={"at": at, "group_by": "printer"},
                            headers=bearer(tokens["auditor"]))
    assert r.status_code == 200, r.text
    assert sum(t["jobs"] for t in r.json["totals"]) == 30 and r.json["events_replayed"] >= 30
    for params, field in (({}, "at"), ({"at": "2026-01-31T23:59:59"}, "at"), ({"at": at, "report": "x"}, "report"),
                          ({"at": at, "group_by": "planet"}, "group_by")):
        bad = client.simulate_get("/api/v1/audit/as-of", params=params, headers=bearer(tokens["admin"]))
        assert bad.status_code == 400 and field in bad.json["errors"], (params, bad.text)
    assert client.simulate_get("/api/v1/audit/as-of", params={"at": at},
                               headers=bearer(tokens["user"])).status_code == 403
    # The event history by recorded time: only the late batch was recorded after the instant.
    late = client.simulate_get("/api/v1/events", params={"type": "PrintJob.Tracked", "from": at, "limit": "100"},
                               headers=bearer(tokens["auditor"])).json["events"]
    assert len(late) == 7 and all(e["fields"]["submitted_at"] < at for e in late)
    early = client.simulate_get("/api/v1/events", params={"type": "PrintJob.Tracked", "to": at, "limit": "100"},
                                headers=bearer(tokens["auditor"])).json["events"]
    assert len(early) == 30


def token(runtime, role, subject=""):
    secret = runtime.issue_token(name=f"t-{role}-{subject}", role=role, subject=subject)[1]
    runtime.catch_up()  # tokens are checked against their read model
    return secret


def client_and_tokens(runtime):
    tokens = {role: token(runtime, role, "nobody" if role == "user" else "") for role in ("admin", "auditor", "user")}
    return falcon.testing.TestClient(create_app(runtime)), tokens


def bearer(secret):
    return {"Authorization": f"Bearer {secret}"}


def test_the_event_history_api_decodes_filters_and_pages(runtime):
    track(runtime, 12, key_prefix="a")
    runtime.change_setting("timezone", "Europe/Paris", by="alice")
    runtime.catch_up()
    client, tokens = client_and_tokens(runtime)
    r = client.simulate_get("/api/v1/events", params={"type": "PrintJob.Tracked", "limit": "5"},
                            headers=bearer(tokens["auditor"]))
    assert r.status_code == 200, r.text
    page = r.json
    assert [e["type"] for e in page["events"]] == ["PrintJob.Tracked"] * 5
    first = page["events"][0]
    assert set(first["fields"]) >= {"user", "printer", "pages", "cost", "document"}
    assert first["fields"]["submitted_at"].startswith("2026-01-20")
    rest = client.simulate_get("/api/v1/events", params={"type": "PrintJob.Tracked", "limit": "100",
                                                         "cursor": str(page["next_cursor"])},
                               headers=bearer(tokens["admin"])).json
    assert len(rest["events"]) == 7 and rest["events"][0]["position"] > first["position"]
    changes = client.simulate_get("/api/v1/events", params={"type": "SiteSettings.FieldChanged"},
                                  headers=bearer(tokens["admin"])).json["events"]
    assert changes[-1]["fields"] == {"field": "timezone", "old": "UTC", "new": "Europe/Paris", "by": "alice"}
    # Tokens' secrets are digests in their events: never shown.
    issued = client.simulate_get("/api/v1/events", params={"type": "AccessToken.Issued"},
                                 headers=bearer(tokens["admin"])).json["events"]
    assert issued and all(e["fields"]["secret_hash"] == "[redacted]" for e in issued)
    one = client.simulate_get("/api/v1/events", params={"aggregate": first["aggregate"]},
                              headers=bearer(tokens["admin"])).json
    assert [e["position"] for e in one["events"]] == [first["position"]] and one["next_cursor"] is None
    # Users may not read the log.
    assert client.simulate_get("/api/v1/events", headers=bearer(tokens["user"])).status_code == 403


@pytest.mark.parametrize("params, field", [
    ({"type": "PrintJob.Nope"}, "type"), ({"type": "os:system"}, "type"), ({"limit": "0"}, "limit"),
    ({"cursor": "-1"}, "cursor"), ({"aggregate": "not-a-uuid"}, "aggregate"),
    ({"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "to"), ({"from": "yesterday"}, "from"),
])
def test_bad_event_queries_are_refused_naming_the_field(runtime, params, field):
    client, tokens = client_and_tokens(runtime)
    r = client.simulate_get("/api/v1/events", params=params, headers=bearer(tokens["admin"]))
    assert r.status_code == 400 and field in r.json["errors"], r.text


def test_a_job_history_is_its_owners_and_the_auditors(runtime):
    track(runtime, 3, key_prefix="a", users=1)
    runtime.catch_up()
    with runtime.reader.connect() as conn:
        [row, *_], _ = list_jobs(conn, JobFilter())
    client, tokens = client_and_tokens(runtime)
    r = client.simulate_get(f"/api/v1/jobs/{row.seq}/history", headers=bearer(tokens["auditor"]))
    assert r.status_code == 200, r.text
    assert [e["type"] for e in r.json["events"]] == ["PrintJob.Tracked"]
    assert r.json["events"][0]["fields"]["user"] == row.user
    owner = token(runtime, "user", row.user)
    assert client.simulate_get(f"/api/v1/jobs/{row.seq}/history", headers=bearer(owner)).status_code == 200
    assert client.simulate_get(f"/api/v1/jobs/{row.seq}/history", headers=bearer(tokens["user"])).status_code == 404
    for bad in ("0", "abc", "1e3", "99999999999999999999", "²"):
        assert client.simulate_get(f"/api/v1/jobs/{bad}/history",
                                   headers=bearer(tokens["admin"])).status_code == 400, bad
    assert client.simulate_get("/api/v1/jobs/999999/history", headers=bearer(tokens["admin"])).status_code == 404


def test_the_admin_change_log_says_who_changed_what_with_old_and_new(runtime):
    from domain.costs import CostSchedule

    track(runtime, 2, key_prefix="a")
    runtime.change_setting("document_names", "mask", by="alice")
    runtime.change_setting("document_names", "omit", by="bob")
    runtime.set_cost_schedule("office", CostSchedule(mono_page=500, colour_page=2500, duplex_discount_pct=10))
    runtime.set_cost_schedule("office", CostSchedule(mono_page=700, colour_page=2500, duplex_discount_pct=10))
    changes = list(runtime.audit.changes())
    settings = [(c.field, c.old, c.new, c.by) for c in changes if c.area == "settings"]
    assert settings == [("document_names", "keep", "mask", "alice"), ("document_names", "mask", "omit", "bob")]
    cost = [c for c in changes if c.area == "printers" and c.change == "Printer.CostScheduleChanged"]
    assert cost[-1].subject == "office" and cost[-1].old["mono_page"] == 500 and cost[-1].new["mono_page"] == 700
    client, tokens = client_and_tokens(runtime)
    r = client.simulate_get("/api/v1/audit/changes", params={"area": "settings"}, headers=bearer(tokens["auditor"]))
    assert r.status_code == 200 and [c["by"] for c in r.json["changes"]] == ["alice", "bob"]


def test_the_admin_change_log_holds_role_secure_hold_and_licence_changes(runtime):
    from projections.admin_changes import NOT_RECORDED

    carol = runtime.add_local_user(login="carol", password="carol-pw-4567", role="user", profile={})
    assert runtime.change_role(carol.id, "auditor", by="dave")
    runtime.set_secure_hold("vault", True, by="erin")
    runtime.set_secure_hold("vault", False)  # no author given: the log says so
    runtime.licensing.install_trial()
    runtime.licensing.set_track_unlicensed(True, by="alice")
    runtime.licensing.set_track_unlicensed(False, by="bob")
    changes = list(runtime.audit.changes())

    # The role change, old and new, and who made it.
    roles = [(c.subject, c.field, c.old, c.new, c.by) for c in changes if c.change == "User.RoleChanged"]
    assert roles == [("carol", "role", "user", "auditor", "dave")]
    # The secure hold, on and off, by erin and by nobody recorded. The first change's old value
    # is not known to the log: Printer.Registered does not carry `secure`.
    hold = [(c.area, c.subject, c.field, c.new, c.by) for c in changes if c.change == "Printer.SecureHoldChanged"]
    assert hold == [("printers", "vault", "secure", True, "erin"), ("printers", "vault", "secure", False,
                                                                      NOT_RECORDED)]
    assert [c.old for c in changes if c.change == "Printer.SecureHoldChanged"][1] is True
    # The licence: its installation, and the "track unlicensed users" switch with who flipped it.
    installed = {c.field: c.new for c in changes if c.change == "Licence.Installed"}
    assert installed["type"] == "trial" and installed["seats"] == 5
    switch = [(c.area, c.subject, c.old, c.new, c.by) for c in changes
              if c.change == "Licence.UnlicensedTrackingChanged"]
    assert switch[1:] == [("licence", "licence", True, False, "bob")]
    assert switch[0][3:] == (True, "alice")

    client, tokens = client_and_tokens(runtime)
    # Through the API, the author is the caller.
    r = client.simulate_put("/api/v1/printers/vault/release", json={"hold_seconds": 7200, "group": "floor-2"},
                            headers=bearer(tokens["admin"]))
    assert r.status_code == 200, r.text
    r = client.simulate_put(f"/api/v1/users/{carol.id}/role", json={"role": "user"}, headers=bearer(tokens["admin"]))
    assert r.status_code == 200, r.text
    # The admin token's subject is its name (t-admin-): its changes are recorded as its.
    by_api = {(c.change, c.field): c.by for c in runtime.audit.changes()
              if c.area != "tokens" and c.position > changes[-1].position}
    assert by_api == {("Printer.HoldTimeChanged", "seconds"): "t-admin-",
                      ("Printer.PrinterGroupChanged", "group"): "t-admin-",
                      ("User.RoleChanged", "role"): "t-admin-"}
    for area, change in (("users", "User.RoleChanged"), ("printers", "Printer.SecureHoldChanged"),
                         ("licence", "Licence.UnlicensedTrackingChanged")):
        r = client.simulate_get("/api/v1/audit/changes", params={"area": area}, headers=bearer(tokens["auditor"]))
        assert r.status_code == 200 and change in {c["change"] for c in r.json["changes"]}, area
    assert client.simulate_get("/api/v1/audit/changes", params={"area": "nope"},
                               headers=bearer(tokens["auditor"])).status_code == 400


def test_document_names_masked_at_ingest_and_in_the_rows_recorded_before(runtime):
    track(runtime, 6, key_prefix="a")
    runtime.catch_up()
    with runtime.reader.connect() as conn:
        before = {r.seq: r.document for r in list_jobs(conn, JobFilter())[0]}
    assert any(not d.startswith("*") for d in before.values())
    runtime.change_setting("document_names", "mask", by="alice")
    runtime.site_settings.invalidate()
    track(runtime, 4, key_prefix="b", seed=3)
    again = track(runtime, 4, key_prefix="b", seed=3)  # a re-post compares with what was recorded
    assert {o.status for o in again} == {"duplicate"}
    runtime.catch_up()
    with runtime.reader.connect() as conn:
        after = [r.document for r in list_jobs(conn, JobFilter())[0]]
    assert len(after) == 10 and all(d == "" or d.startswith("*") for d in after)
    # The names of the later jobs never entered the log.
    log = RawLog(runtime.app.recorder).events(0, 10_000)
    late = runtime.event_history.page(EventFilter(limit=1000, topics=("PrintJob.Tracked",)))[0][-4:]
    assert all(e.fields["document"].startswith("*") or e.fields["document"] == "" for e in late)
    assert len(log) > 10
    # A rebuild gives the same rows; verify agrees.
    assert runtime.audit.verify().ok
    client, tokens = client_and_tokens(runtime)
    owner = token(runtime, "user", list_jobs_user(runtime))
    r = client.simulate_get("/api/v1/me/jobs.csv", headers=bearer(owner))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows and all(row["document"] == "" or row["document"].startswith("*") for row in rows)
    assert {"impressions_per_copy", "impressions_total"} <= set(rows[0])


def list_jobs_user(runtime):
    with runtime.reader.connect() as conn:
        return list_jobs(conn, JobFilter(limit=1))[0][0].user


def cli(runtime, *args):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("PAGELEDGER_")}
    env["PYTHONPATH"] = str(__import__("pathlib").Path(__file__).resolve().parents[2])
    return subprocess.run([sys.executable, "-m", "pageledger.cli", "--database-url",
                           runtime.settings.resolved_database_url, "--data-dir", str(runtime.settings.data_dir), *args],
                          capture_output=True, text=True, timeout=120, env=env)


def test_the_cli_verifies_names_tampering_and_replays_as_of(runtime):
    track(runtime, 15, key_prefix="a")
    runtime.catch_up()
    ok = cli(runtime, "audit", "verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "all verified" in ok.stdout and "head digest" in ok.stdout
    as_of = cli(runtime, "audit", "as-of", "2099-01-01", "--group-by", "printer")
    assert as_of.returncode == 0, as_of.stderr
    total = as_of.stdout.strip().splitlines()[-1].split("\t")
    assert total[0] == "total" and total[1] == "15"
    assert "events" in as_of.stderr  # progress and what was replayed
    assert cli(runtime, "audit", "as-of", "yesterday").returncode == 2
    assert cli(runtime, "audit", "as-of", "2026-01-31T23:59:59").returncode == 2  # no offset
    nid = a_job_event(runtime)[0]
    raw_sql(runtime, "DELETE FROM {events} WHERE " + id_column(runtime) + " = ?", (nid,))
    bad = cli(runtime, "audit", "verify")
    assert bad.returncode == 1
    assert f"TAMPERED deleted: event {nid}" in bad.stdout and "NOT verified" in bad.stdout
    changes = cli(runtime, "audit", "changes", "--area", "settings")
    assert changes.returncode == 0 and changes.stdout.startswith("at\tarea")
    login = a_job_event(runtime, 0) and list_jobs_user(runtime)
    assert cli(runtime, "privacy", "erase", login).returncode == 2  # not confirmed: nothing erased
    erased = cli(runtime, "privacy", "erase", login, "--yes")
    assert erased.returncode == 0 and "erased user #1" in erased.stdout, erased.stderr


SECRET_HOST = "zedhost-unique-7731"
SECRET_DOCUMENT = "zed-secret-report-8842.pdf"


def database_bytes(runtime) -> bytes:
    """Every byte of the database as stored: the SQLite file and its WAL, or every relation
    file (tables, TOAST, indexes) of the PostgreSQL database, read from its data directory."""
    url = runtime.settings.resolved_database_url
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        return b"".join(open(p, "rb").read() for p in (path, path + "-wal") if os.path.exists(p))
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("CHECKPOINT"))
            base = conn.execute(sa.text("SHOW data_directory")).scalar()
            files = [f for (f,) in conn.execute(sa.text(
                "SELECT pg_relation_filepath(oid) FROM pg_class WHERE relkind IN ('r', 't', 'i', 'm') "
                "AND pg_relation_filepath(oid) IS NOT NULL"))]
    finally:
        engine.dispose()
    out = []
    for f in files:
        for path in [os.path.join(base, f), *sorted(glob.glob(os.path.join(base, f) + ".[0-9]*"))]:
            if os.path.exists(path):
                out.append(open(path, "rb").read())
    return b"".join(out)


SECRET_LOGIN = "zedlogin-5521"
SECRET_PROFILE = {"full_name": "Zebedee Quuxworth-Farnsby", "email": "zebedee.q7@example.org",
                  "department": "Dept-Zyx-448"}


def test_erasure_shreds_a_persons_names_keeps_the_totals_and_still_verifies(runtime):
    from domain.users import User
    from projections.users import users

    track(runtime, 30, key_prefix="a")
    # The person is a user too (an imported profile, changed later), and prints three jobs.
    person = User.import_(source="local", login=SECRET_LOGIN, now=to_micros(JAN),
                          profile={**SECRET_PROFILE, "email": "old-zebedee@example.org"})
    person.change_profile(SECRET_PROFILE, to_micros(JAN) + 1)
    runtime.app.save(person)
    reports = parse_batch(json.dumps({"jobs": [dict(next(iter(sample_jobs(1, key_prefix=f"z{i}"))),
                                                   user=SECRET_LOGIN, client_host=SECRET_HOST,
                                                   document=SECRET_DOCUMENT)
                                               for i in range(3)]}).encode())
    TrackJobs(runtime.app, runtime.printers, personal=runtime.personal_keys)(reports)
    runtime.catch_up()
    secrets = [SECRET_HOST, SECRET_DOCUMENT, SECRET_LOGIN, *SECRET_PROFILE.values(), "old-zebedee@example.org"]
    with runtime.reader.connect() as conn:
        zed = [r for r in list_jobs(conn, JobFilter(user=SECRET_LOGIN))[0]]
        totals = conn.execute(sa.text("SELECT sum(jobs), sum(pages), sum(sheets), sum(cost) FROM usage_daily")).one()
        count = conn.execute(sa.text("SELECT count(*), sum(cost) FROM jobs")).one()
        profile = conn.execute(sa.select(users.c.login, users.c.full_name, users.c.email, users.c.department)
                               .where(users.c.user_id == str(person.id))).one()
    assert [(r.client_host, r.document) for r in zed] == [(SECRET_HOST, SECRET_DOCUMENT)] * 3
    assert tuple(profile) == (SECRET_LOGIN, *SECRET_PROFILE.values())
    raw = database_bytes(runtime)
    assert SECRET_HOST.encode() in raw and SECRET_LOGIN.encode() in raw  # in the read models until erased
    # The log holds none of it in clear: names, hosts, the login and the profile are sealed.
    log = b"".join(bytes(e[4]) for e in RawLog(runtime.app.recorder).events(0, 10**6))
    assert [s for s in secrets if s.encode() in log] == []

    erased = runtime.erase_person(SECRET_LOGIN)
    assert erased.number == 1 and erased.jobs == 3 and erased.hosts == 1

    with runtime.reader.connect() as conn:
        after = list_jobs(conn, JobFilter(user="erased user #1"))[0]
        assert conn.execute(sa.text("SELECT sum(jobs), sum(pages), sum(sheets), sum(cost) FROM usage_daily")).one() \
            == totals
        assert conn.execute(sa.text("SELECT count(*), sum(cost) FROM jobs")).one() == count
        assert list_jobs(conn, JobFilter(user=SECRET_LOGIN))[0] == []
        assert tuple(conn.execute(sa.select(users.c.login, users.c.full_name, users.c.email, users.c.department)
                                  .where(users.c.user_id == str(person.id))).one()) == ("erased user #1", "", "", "")
    assert len(after) == 3 and all(r.document == "" and r.client_host == "erased" for r in after)
    assert [r.cost for r in after] == [r.cost for r in zed]
    raw = database_bytes(runtime)
    assert [s for s in secrets if s.encode() in raw] == []
    # The log is untouched: verify passes, and a rebuild shows the person as erased.
    result = runtime.audit.verify()
    assert result.ok, ([f.describe() for f in result.seals.findings], [c.shown for c in result.read_models.checks])
    history = runtime.event_history.of_job(after[0].seq)[1]
    assert history[0].fields["user"] == "erased user #1" and history[0].fields["document"] == ""
    assert runtime.app.repository.get(person.id).login == "erased user #1"


def test_erasure_renames_the_seat_history_as_it_renames_the_seats_and_still_verifies(runtime):
    """The licence's seat events name the person by number (adapters.personal_keys.PERSON_FIELDS):
    the seats held now (licence_seats) and every tenure of a seat (seat_tenures) are rebuilt from
    them by the erasure, so both then show "erased user #N", alike, and audit verify still finds
    every read model as a rebuild makes it."""
    from projections.licence_seats import licence_seats
    from projections.seat_tenures import seat_tenures

    runtime.licensing.install_trial()
    login = "zedseat-4410"
    lic = runtime.licensing.get()
    t = to_micros(JAN)
    lic.claim_seat(login, t)
    lic.release_seat(login, t + 1000, reason="inactive")
    lic.claim_seat(login, t + 2000)
    runtime.app.save(lic)
    reports = parse_batch(json.dumps({"jobs": [dict(next(iter(sample_jobs(1, key_prefix="s"))), user=login)]}).encode())
    TrackJobs(runtime.app, runtime.printers, personal=runtime.personal_keys)(reports)
    runtime.catch_up()

    def seat_rows():
        with runtime.reader.connect() as conn:
            return ([tuple(r) for r in conn.execute(sa.select(licence_seats))],
                    [tuple(r) for r in conn.execute(sa.select(seat_tenures).order_by(seat_tenures.c.taken_at))])

    before = seat_rows()
    assert before == ([(login, t + 2000)], [(login, t, t + 1000, "inactive"), (login, t + 2000, None, "")])
    erased = runtime.erase_person(login)
    assert erased.jobs == 1
    gone = erased_user(erased.number)
    assert seat_rows() == ([(gone, t + 2000)], [(gone, t, t + 1000, "inactive"), (gone, t + 2000, None, "")])
    result = runtime.audit.verify()
    assert result.ok, [c.shown for c in result.read_models.checks]
    assert {c.name for c in result.read_models.checks} >= {"licence_seats", "seat_tenures", "printer_errors"}


def test_seats_over_time_and_printers_in_error_as_of_an_instant_leave_out_later_events(runtime):
    """The licence usage and workflow reports rebuilt from the log into scratch tables give the
    live answer; as of an earlier instant they leave out the seat taken and the printer error
    recorded after it."""
    from commands.printer_status import PrinterObservation
    from projections.report_formats import report_json
    from projections.report_period import parse_parameters
    from projections.reports import CATALOGUE, run_report

    def now():
        return to_micros(datetime.now(timezone.utc))

    runtime.licensing.install_trial()
    runtime.licensing.claim_seat("ann")
    runtime.record_printer_states([PrinterObservation("hall", "stopped", ("paused",), "jam", now())])
    time.sleep(0.01)
    instant = now()
    time.sleep(0.01)
    runtime.licensing.claim_seat("bob")
    runtime.record_printer_states([PrinterObservation("hall", "idle", (), "", now()),
                                   PrinterObservation("lab", "idle", ("media-empty-error",), "", now())])
    runtime.catch_up()
    at = now()
    day = datetime.now(timezone.utc).date()
    raw = {"from": (day - timedelta(days=1)).isoformat(), "to": (day + timedelta(days=1)).isoformat()}
    for name in ("licence-usage", "workflow-issues"):
        p = parse_parameters(raw, site_timezone="UTC", now=at, allowed=CATALOGUE[name].parameters)
        live = report_json(run_report(runtime.reader, name, p, runtime.report_sources))
        rebuilt, _ = runtime.audit.report_as_of(at, name, p)
        assert report_json(rebuilt) == live, name
        then, _ = runtime.audit.report_as_of(instant, name, p)
        if name == "licence-usage":
            assert list(then.section("tenures").frame["user"]) == ["ann"]
            assert [s["rows"] for s in live["sections"] if s["name"] == "tenures"][0][1]["user"] == "bob"
        else:
            rows = then.section("printer_errors").frame
            assert list(rows["printer"]) == ["hall"] and rows["ended_at"].isna().all()
            assert [r["printer"] for s in live["sections"] if s["name"] == "printer_errors" for r in s["rows"]] == [
                "hall", "lab"]


QUOKKA = "quokkalogin-6613"  # lower case: seats are recorded under the lower-cased login
QUOKKA_ADDRESS = "10.66.13.77"  # where they logged in from
QUOKKA_CARD = "C0FFEE6613AB"  # their badge


def quokka_in_every_event_kind(rt) -> None:
    """QUOKKA, a local user, logs in (right and wrong password: LoginAttempt, SeatAssigned),
    holds jobs on a secure queue (Secured) and releases one (Released, Printed), gives a wrong
    code for another (ReleaseCodeRefused) and deletes it, is denied a seat, named in a denial
    notice and has their seat released (SeatDenied, DenialNoticeSent, SeatReleased); and as an
    admin changes a setting, a printer's cost schedule, secure hold and release settings, the
    licence's unlicensed tracking and a user's role (every admin `by`)."""
    import hashlib
    import io
    import uuid

    from commands.printers import ReleaseSettings
    from commands.release import Caller
    from commands.validation import InvalidRequest
    from domain.costs import CostSchedule
    from domain.users import LOCAL_SOURCE
    from projections.held_jobs import release_orders

    rt.licensing.install_trial()
    rt.add_local_user(login=QUOKKA, password="a long password 1", role="user", profile={})
    assert rt.set_card(rt.app.user_id(LOCAL_SOURCE, QUOKKA), QUOKKA_CARD, by="cli")  # sealed with their User's key
    assert rt.log_in(login=QUOKKA, password="a long password 1", remote_addr=QUOKKA_ADDRESS).outcome == "succeeded"
    assert rt.log_in(login=QUOKKA, password="wrong password", remote_addr="10.1.1.1").outcome != "succeeded"
    for name in ("vault", "annex"):
        rt.set_secure_hold(name, True, by=QUOKKA)
    rt.set_cost_schedule("vault", CostSchedule(mono_page=500, colour_page=2500), by=QUOKKA)
    rt.set_release_settings("annex", ReleaseSettings(code_mode="generated", code_length=6), by=QUOKKA)
    rt.change_setting("report_repeat_minutes", 15, by=QUOKKA)
    rt.licensing.set_track_unlicensed(True, by=QUOKKA)
    rt.add_local_user(login="someone-else", password="a long password 2", role="user", profile={})
    rt.change_role(rt.app.user_id(LOCAL_SOURCE, "someone-else"), "auditor", by=QUOKKA)

    jobs = [dict(j, job_key=f"quokka/{i}", user=QUOKKA, printer=printer, pages=2, copies=1, colour_pages=0,
                 duplex=False, paper="A4") for i, (j, printer) in enumerate(zip(sample_jobs(2), ("vault", "annex")))]
    outcomes = TrackJobs(rt.app, rt.printers, codes=rt.pin_digest, clock=rt.clock,
                         personal=rt.personal_keys)(parse_batch(json.dumps({"jobs": jobs}).encode()))
    for o in outcomes:
        body = b"%PDF-1.7 held\n" + o.job_key.encode()
        rt.hold_job(o.job_id, io.BytesIO(body), sha256=hashlib.sha256(body).hexdigest(), size=len(body))
    rt.catch_up()
    printed, refused = (str(o.job_id) for o in outcomes)
    caller = Caller(QUOKKA, admin=False, address=QUOKKA_ADDRESS)
    rt.release_jobs([printed], caller)
    rt.catch_up()
    with rt.reader.connect() as conn:
        [order] = release_orders(conn)
    assert order.user == QUOKKA
    rt.release_outcome.printed(uuid.UUID(printed), cups_job="cups:vault-release:7:1700000000")
    with pytest.raises(InvalidRequest):
        rt.release_jobs([refused], caller, code="000000" if outcomes[1].release_code != "000000" else "111111")
    rt.delete_jobs([refused], caller)

    licence = rt.licensing.get()
    licence._seat_denied(user=QUOKKA, reason="no seat left", at=rt.clock())  # as a full licence records it
    rt.app.save(licence)
    rt.licensing.record_denial_notice(lambda since: [QUOKKA])
    rt.licensing.release_seat(QUOKKA)
    rt.catch_up()


QUOKKA_TOPICS = {"LoginAttempt.Recorded", "User.CardAssigned", "Licence.SeatAssigned", "Licence.SeatDenied", "Licence.SeatReleased",
                 "Licence.DenialNoticeSent", "Licence.UnlicensedTrackingChanged", "PrintJob.Secured",
                 "PrintJob.Released", "PrintJob.Printed", "PrintJob.ReleaseCodeRefused", "PrintJob.Deleted",
                 "SiteSettings.FieldChanged", "Printer.CostScheduleChanged", "Printer.SecureHoldChanged",
                 "Printer.ReleaseCodeModeChanged", "User.RoleChanged"}


def test_erasure_leaves_no_login_in_any_event_that_named_the_person(runtime):
    rt = runtime
    track(rt, 30, key_prefix="a")
    quokka_in_every_event_kind(rt)
    log = list(RawLog(rt.app.recorder).events(0, 10**6))
    assert QUOKKA_TOPICS <= {e[3] for e in log}
    # The log holds neither their login nor the address they logged in from in clear ...
    assert [e[3] for e in log if any(secret.encode() in bytes(e[4]) for secret in (QUOKKA, QUOKKA_ADDRESS, QUOKKA_CARD))
            ] == []
    assert rt.card_holder(QUOKKA_CARD) == QUOKKA  # the users read model opens it
    # ... but every reader gets the login back: the admin-change log, the history, the read models.
    history = {h.type: h.fields for h in rt.event_history.page(EventFilter(limit=1000))[0]}
    assert history["LoginAttempt.Recorded"]["login"] == QUOKKA
    assert history["PrintJob.Released"]["by"] == QUOKKA and history["PrintJob.Printed"]["user"] == QUOKKA
    assert history["Licence.DenialNoticeSent"]["users"] == [QUOKKA]
    assert history["SiteSettings.FieldChanged"]["by"] == QUOKKA
    with rt.reader.connect() as conn:
        audit_rows = conn.execute(sa.text("SELECT login, remote_addr FROM login_audit ORDER BY seq")).all()
        totals = conn.execute(sa.text("SELECT sum(jobs), sum(pages), sum(sheets), sum(cost) FROM usage_daily")).one()
        count = conn.execute(sa.text("SELECT count(*), sum(cost) FROM jobs")).one()
    assert (QUOKKA, QUOKKA_ADDRESS) in [tuple(r) for r in audit_rows]
    assert QUOKKA.encode() in database_bytes(rt)  # in the read models until erased

    erased = rt.erase_person(QUOKKA)
    placeholder = f"erased user #{erased.number}"

    raw = database_bytes(rt)
    assert QUOKKA.encode() not in raw and QUOKKA_ADDRESS.encode() not in raw and QUOKKA_CARD.encode() not in raw
    assert rt.card_holder(QUOKKA_CARD) is None  # the card no longer names them, nor logs anyone in
    with rt.reader.connect() as conn:
        assert conn.execute(sa.text("SELECT sum(jobs), sum(pages), sum(sheets), sum(cost) FROM usage_daily")).one() \
            == totals
        assert conn.execute(sa.text("SELECT count(*), sum(cost) FROM jobs")).one() == count
        audit_rows = [tuple(r) for r in conn.execute(sa.text("SELECT login, remote_addr FROM login_audit"))]
        assert (placeholder, "erased") in audit_rows and not any(QUOKKA in r[0] for r in audit_rows)
        assert conn.execute(sa.text("SELECT count(*) FROM login_failures WHERE key LIKE :k"),
                            {"k": f"%{QUOKKA}%"}).scalar() == 0
    history = {h.type: h.fields for h in rt.event_history.page(EventFilter(limit=1000))[0]}
    for topic, name in [("LoginAttempt.Recorded", "login"), ("PrintJob.Released", "by"), ("PrintJob.Printed", "user"),
                        ("PrintJob.Deleted", "by"), ("Licence.SeatReleased", "user"),
                        ("SiteSettings.FieldChanged", "by"), ("User.RoleChanged", "by")]:
        assert history[topic][name] == placeholder, topic
    assert history["Licence.DenialNoticeSent"]["users"] == [placeholder]
    result = rt.audit.verify()
    assert result.ok, ([f.describe() for f in result.seals.findings], [c.shown for c in result.read_models.checks])


def test_logins_stored_in_clear_before_person_numbers_still_read_and_are_found_to_erase(runtime):
    import hashlib
    import stat
    import uuid

    from adapters.personal_keys import PersonalKeys
    from domain.logins import LoginAttempt

    rt = runtime
    # The digests that find a person's rows are keyed by the site's privacy key, made 0600.
    key_file = rt.settings.data_dir / "privacy.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and rt.app.privacy_secret == key_file.read_bytes()
    # A person whose row was made before that key (plain SHA-256 digest) is found, not made again.
    before = PersonalKeys(rt.app.recorder, secret=None).people_for(["wombat-7"])["wombat-7"]
    assert rt.personal_keys.people_for(["wombat-7"])["wombat-7"] == before
    assert rt.personal_keys.people_for(["numbat-8"])["numbat-8"].number != before.number

    # An event stored by the version before person numbers: the login in clear.
    people, rt.app.mapper.people = rt.app.mapper.people, None
    try:
        rt.app.save(LoginAttempt.record(uuid.uuid4(), login="oldstyle-3301", outcome="bad_credentials",
                                        remote_addr="10.3.3.1", at=rt.clock()))
    finally:
        rt.app.mapper.people = people
    rt.app.save(LoginAttempt.record(uuid.uuid4(), login="newstyle-3302", outcome="bad_credentials",
                                    remote_addr="10.3.3.2", at=rt.clock()))
    log = b"".join(bytes(e[4]) for e in RawLog(rt.app.recorder).events(0, 10**6))
    assert b"oldstyle-3301" in log and b"newstyle-3302" not in log
    rt.catch_up()
    with rt.reader.connect() as conn:
        rows = {tuple(r) for r in conn.execute(sa.text("SELECT login, remote_addr FROM login_audit"))}
    assert rows == {("oldstyle-3301", "10.3.3.1"), ("newstyle-3302", "10.3.3.2")}

    erased = rt.erase_person("oldstyle-3301")
    with rt.reader.connect() as conn:
        rows = {tuple(r) for r in conn.execute(sa.text("SELECT login, remote_addr FROM login_audit"))}
        # The erasure is recorded under the keyed digest, not the plain SHA-256 of the login.
        digests = {bytes(d) for (d,) in conn.execute(sa.text(f"SELECT digest FROM {rt.app.recorder.events_table_name}"
                                                             "_erasures"))}
    assert ("erased user #%d" % erased.number, "10.3.3.1") in rows  # an old event's address was never sealed
    assert hashlib.sha256(b"oldstyle-3301").digest() not in digests and len(digests) == 1
    history = [h.fields for h in rt.event_history.page(EventFilter(limit=100))[0] if h.type == "LoginAttempt.Recorded"]
    assert [h["login"] for h in history] == ["erased user #%d" % erased.number, "newstyle-3302"]
    assert rt.audit.verify().ok


def test_erasure_through_the_api_is_the_admins_and_refuses_bad_bodies(runtime):
    reports = parse_batch(json.dumps({"jobs": [dict(next(iter(sample_jobs(1, key_prefix="z"))), user="zed",
                                                   client_host=SECRET_HOST, document=SECRET_DOCUMENT)]}).encode())
    TrackJobs(runtime.app, runtime.printers, personal=runtime.personal_keys)(reports)
    runtime.catch_up()
    client, tokens = client_and_tokens(runtime)
    for body, field in (({"user": "zed"}, "confirm"), ({"user": "zed", "confirm": "zeb"}, "confirm"),
                        ({"user": "a\x00b", "confirm": "a\x00b"}, "user"), ({"user": "x" * 300, "confirm": "x"}, "user")):
        r = client.simulate_post("/api/v1/privacy/erasures", json=body, headers=bearer(tokens["admin"]))
        assert r.status_code == 400 and field in r.json["errors"], (body, r.text)
    assert client.simulate_post("/api/v1/privacy/erasures", json={"user": "zed", "confirm": "zed"},
                                headers=bearer(tokens["auditor"])).status_code == 403
    r = client.simulate_post("/api/v1/privacy/erasures", json={"user": "nobody-here", "confirm": "nobody-here"},
                             headers=bearer(tokens["admin"]))
    assert r.status_code == 404 and "user" in r.json["errors"]
    r = client.simulate_post("/api/v1/privacy/erasures", json={"user": "zed", "confirm": "zed"},
                             headers=bearer(tokens["admin"]))
    assert r.status_code == 200 and r.json == {"erased_as": "erased user #1", "jobs": 1, "hosts": 1, "known": True}
    with runtime.reader.connect() as conn:
        [row] = list_jobs(conn, JobFilter(user="erased user #1"))[0]
    assert (row.client_host, row.document) == ("erased", "")


def test_every_report_as_of_now_equals_the_live_report_and_leaves_out_later_events(runtime):
    """Each report of the catalogue, rebuilt from the log into scratch tables, gives the live
    report's answer; as of an earlier instant it leaves out the jobs recorded after it, even
    those about earlier prints."""
    from projections.report_formats import report_json
    from projections.report_period import parse_parameters
    from projections.reports import CATALOGUE, run_report

    track(runtime, 30, key_prefix="a", start=JAN)
    time.sleep(0.01)
    instant = to_micros(datetime.now(timezone.utc))
    time.sleep(0.01)
    track(runtime, 7, key_prefix="late", start=JAN - timedelta(days=3), seed=9)
    runtime.catch_up()
    now = to_micros(datetime.now(timezone.utc))
    raw = {"from": "2026-01-01", "to": "2026-01-31"}
    for name, spec in CATALOGUE.items():
        p = parse_parameters({k: v for k, v in raw.items() if k in spec.parameters}, site_timezone="UTC", now=now,
                             allowed=spec.parameters)
        live = report_json(run_report(runtime.reader, name, p, runtime.report_sources))
        rebuilt, read = runtime.audit.report_as_of(now, name, p)
        assert report_json(rebuilt) == live, name
        assert read >= 37
    p = parse_parameters(raw, site_timezone="UTC", now=now, allowed=CATALOGUE["user-printing-summary"].parameters)
    then, _ = runtime.audit.report_as_of(instant, "user-printing-summary", p)
    live = run_report(runtime.reader, "user-printing-summary", p, runtime.report_sources)
    assert then.sections[0].totals["jobs"] == 30 and live.sections[0].totals["jobs"] == 37

    client, tokens = client_and_tokens(runtime)
    at = datetime.fromtimestamp(instant / 1e6, timezone.utc).isoformat()
    r = client.simulate_get("/api/v1/audit/as-of/user-printing-summary", params={**raw, "at": at},
                            headers=bearer(tokens["auditor"]))
    assert r.status_code == 200, r.text
    assert r.json["sections"][0]["totals"]["jobs"] == 30 and r.json["events_replayed"] >= 30
    assert r.json["as_of"].startswith(at[:19])
    csv_answer = client.simulate_get("/api/v1/audit/as-of/savings", params={**raw, "at": at, "format": "csv"},
                                     headers=bearer(tokens["admin"]))
    assert csv_answer.status_code == 200 and csv_answer.headers["content-type"].startswith("text/csv")
    for params, field in (({**raw}, "at"), ({**raw, "at": "2026-01-31T23:59:59"}, "at"),
                          ({"at": at, "from": "2026-02-01", "to": "2026-01-01"}, "to"),
                          ({"at": at, "planet": "mars"}, "planet"), ({"at": at, "format": "docx"}, "format")):
        bad = client.simulate_get("/api/v1/audit/as-of/usage", params=params, headers=bearer(tokens["admin"]))
        assert bad.status_code == 400 and field in bad.json["errors"], (params, bad.text)
    assert client.simulate_get("/api/v1/audit/as-of/nonesuch", params={"at": at},
                               headers=bearer(tokens["admin"])).status_code == 404
    assert client.simulate_get("/api/v1/audit/as-of/usage", params={"at": at},
                               headers=bearer(tokens["user"])).status_code == 403

    as_json = cli(runtime, "audit", "as-of", at, "--report", "user-printing-summary", "--param", "from=2026-01-01",
                  "--param", "to=2026-01-31", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["sections"][0]["totals"]["jobs"] == 30
    assert "events replayed" in as_json.stderr
    as_csv = cli(runtime, "audit", "as-of", "2026-12-31", "--report", "savings", "--param", "from=2026-01-01")
    assert as_csv.returncode == 0 and as_csv.stdout, as_csv.stderr
    bad = cli(runtime, "audit", "as-of", at, "--report", "savings", "--param", "colour=purple")
    assert bad.returncode == 2 and "colour" in bad.stderr


def test_a_report_as_of_an_instant_uses_the_settings_and_cost_schedules_as_they_stood_then(runtime):
    """Settings and cost schedules changed after the instant (time zone, document-name privacy,
    repeat minutes, environmental factors, a printer's prices) leave the report as of the
    instant unchanged, though they change the live one."""
    from domain.costs import CostSchedule
    from projections.report_formats import report_json
    from projections.report_period import parse_parameters
    from projections.reports import CATALOGUE, run_report

    track(runtime, 30, key_prefix="a", start=JAN)
    runtime.change_setting("report_co2e_grams_per_sheet", 20.0, by="admin", expected=12.7)
    runtime.catch_up()
    time.sleep(0.01)
    instant = to_micros(datetime.now(timezone.utc))
    time.sleep(0.01)
    raw = {"from": "2026-01-01", "to": "2026-01-31"}
    names = ("environment", "savings", "printer-list", "workflow-issues", "habits", "jobs", "usage")
    params = {name: parse_parameters({k: v for k, v in raw.items() if k in CATALOGUE[name].parameters},
                                     site_timezone="UTC", now=instant, allowed=CATALOGUE[name].parameters)
              for name in names}
    first = {name: report_json(runtime.audit.report_as_of(instant, name, p)[0]) for name, p in params.items()}

    changes = {"timezone": "Asia/Tokyo", "document_names": "omit", "report_repeat_minutes": 600,
               "report_co2e_grams_per_sheet": 99.0, "report_sheets_per_tree": 10.0, "unknown_colour_charge": "mono"}
    for field, value in changes.items():
        runtime.change_setting(field, value, by="admin", expected=runtime.site_settings[field])
    with runtime.reader.connect() as conn:
        printers = [r[0] for r in conn.execute(sa.text("SELECT name FROM printer_keys ORDER BY name"))]
    before = {name: runtime.printers.schedule_of(name) for name in printers}
    for name in printers:
        runtime.set_cost_schedule(name, CostSchedule(mono_page=7777, colour_page=88888, duplex_discount_pct=50))
    runtime.site_settings.invalidate()
    runtime.printers.invalidate()
    runtime.catch_up()
    assert runtime.audit.settings_as_of(instant)["timezone"] == "UTC"
    assert runtime.audit.settings_as_of(instant)["report_co2e_grams_per_sheet"] == 20.0
    now = to_micros(datetime.now(timezone.utc))
    assert {k: runtime.audit.settings_as_of(now)[k] for k in changes} == changes
    for name, p in params.items():
        assert report_json(runtime.audit.report_as_of(instant, name, p)[0]) == first[name], name
    assert any(row["document"] for row in first["jobs"]["sections"][0]["rows"])  # names kept as of the instant
    # ... and the changes do change today's reports: the as-of ones are not blind to settings.
    p = parse_parameters(raw, site_timezone="UTC", now=now, allowed=CATALOGUE["environment"].parameters)
    live = report_json(run_report(runtime.reader, "environment", p, runtime.report_sources))
    then = report_json(runtime.audit.report_as_of(instant, "environment", p)[0])
    assert {f["setting"]: f["value"] for f in then["factors"]}["report_co2e_grams_per_sheet"] == 20.0
    assert {f["setting"]: f["value"] for f in live["factors"]}["report_co2e_grams_per_sheet"] == 99.0
    p = parse_parameters(raw, site_timezone="UTC", now=now, allowed=CATALOGUE["printer-list"].parameters)
    live = run_report(runtime.reader, "printer-list", p, runtime.report_sources).section("printers").frame
    then = runtime.audit.report_as_of(instant, "printer-list", p)[0].section("printers").frame
    assert set(live["mono_price"]) == {7777}
    assert list(then["mono_price"]) == [before[n].mono_page for n in then["printer"]]

    # The API and the CLI read dates in the time zone of the instant (UTC), not today's (Tokyo).
    client, tokens = client_and_tokens(runtime)
    at = datetime.fromtimestamp(instant / 1e6, timezone.utc).isoformat()
    r = client.simulate_get("/api/v1/audit/as-of/environment", params={**raw, "at": at},
                            headers=bearer(tokens["auditor"]))
    assert r.status_code == 200, r.text
    assert r.json["period"]["timezone"] == "UTC" and r.json["period"]["from"].startswith("2026-01-01T00:00:00")
    assert {f["setting"]: f["value"] for f in r.json["factors"]}["report_co2e_grams_per_sheet"] == 20.0
    as_json = cli(runtime, "audit", "as-of", at, "--report", "environment", "--param", "from=2026-01-01", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["period"]["timezone"] == "UTC"


def test_an_erasure_on_postgresql_waits_for_a_transaction_in_another_database_that_could_see_the_rows(
        pg_database_url, tmp_path):
    """VACUUM FULL keeps a row version that an open transaction anywhere on the server may
    still see: the erasure waits for such transactions before it rewrites the tables, so no
    copy of the names is left in the files."""
    import threading

    from pageledger.bootstrap import build_runtime
    from pageledger.settings import Settings
    from tests.conftest import PG_ADMIN_URL

    runtime = build_runtime(Settings.load(environ={}, database_url=pg_database_url, data_dir=tmp_path / "var"))
    try:
        reports = parse_batch(json.dumps({"jobs": [dict(next(iter(sample_jobs(1, key_prefix="w"))), user="zed",
                                                       client_host=SECRET_HOST, document=SECRET_DOCUMENT)]}).encode())
        TrackJobs(runtime.app, runtime.printers, personal=runtime.personal_keys)(reports)
        runtime.catch_up()
        other = sa.create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"))
        held_s = 3.0
        with other.connect() as conn:  # in the `postgres` database, not the site's
            conn.execute(sa.text("SELECT pg_current_xact_id()")).scalar()  # an open transaction with an xid
            ended = threading.Timer(held_s, conn.rollback)
            started = time.monotonic()
            ended.start()
            erased = runtime.erase_person("zed")
            took = time.monotonic() - started
            ended.join()
        other.dispose()
        assert erased.jobs == 1
        assert took >= held_s - 0.2, f"the erasure did not wait for the open transaction ({took:.1f}s)"
        raw = database_bytes(runtime)
        assert SECRET_HOST.encode() not in raw and SECRET_DOCUMENT.encode() not in raw
    finally:
        runtime.close()


def test_jobs_stored_spelt_out_before_the_topic_codes_read_filter_and_verify_beside_coded_ones(runtime, monkeypatch):
    """A database written before the one-character topic codes holds `PrintJob.Tracked` spelt
    out: those events and the coded ones ("T") after them project, filter by type, show their
    history and verify their seals alike (adapters.codec)."""
    with monkeypatch.context() as m:
        m.setattr(codec, "TOPIC_CODES", {})  # as stored before the codes existed
        track(runtime, 4, key_prefix="old")
    track(runtime, 3, key_prefix="new")
    stored = [r[3] for r in RawLog(runtime.app.recorder).events(0, 10_000) if topic_of(r[3]) == "PrintJob.Tracked"]
    assert stored == ["PrintJob.Tracked"] * 4 + ["T"] * 3
    runtime.catch_up()
    with runtime.reader.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar() == 7
    runtime.followers["jobs"].rebuild()
    with runtime.reader.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar() == 7
    result = runtime.audit.verify()
    assert result.seals.findings == [] and result.read_models.ok
    client, tokens = client_and_tokens(runtime)
    events = client.simulate_get("/api/v1/events", params={"type": "PrintJob.Tracked"},
                                 headers=bearer(tokens["auditor"])).json["events"]
    assert [e["type"] for e in events] == ["PrintJob.Tracked"] * 7
    both = client.simulate_get("/api/v1/events", params={"type": "PrintJob.Tracked,SiteSettings.FieldChanged"},
                               headers=bearer(tokens["auditor"])).json["events"]
    assert len(both) == 7
    with runtime.reader.connect() as conn:
        rows, _ = list_jobs(conn, JobFilter(limit=10, oldest_first=True))
    for row in (rows[0], rows[-1]):  # one of each spelling
        history = client.simulate_get(f"/api/v1/jobs/{row.seq}/history", headers=bearer(tokens["auditor"])).json
        assert [e["type"] for e in history["events"]] == ["PrintJob.Tracked"]


def test_closing_the_runtime_lets_a_background_verification_finish_before_its_engines_close(settings):
    """Without Redis a verification started from the console or the API runs in a thread of this
    process; closing the runtime (a server stopping, a test's teardown) waits for it instead of
    closing the database under it (on SQLite that crashed the whole process)."""
    from pageledger.bootstrap import build_runtime

    rt = build_runtime(settings)
    track(rt, 2000, key_prefix="c")
    rt.catch_up()
    run_id = rt.background_verifications.start(by="admin")
    rt.close()
    state = rt.background_verifications.load(run_id)
    assert state["state"] == "done", state
    assert state["result"]["ok"] is True
