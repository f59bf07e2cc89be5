"""Settings → Mail, in-process on both stores: the SMTP host, port, STARTTLS, login, password and
From address are site settings saved field by field (PATCH /api/v1/settings/{field}, what the
console's field-level save sends): one event per field with who, old and new; bad values refused
naming the field with nothing recorded; the password never shown back nor logged, only "set".
A scheduled report defined on the console's form is then mailed through exactly those settings
to a real SMTP server (aiosmtpd) that demands STARTTLS and a login."""
from __future__ import annotations

import logging
from urllib.parse import quote

from aiosmtpd.smtp import AuthResult

from tests.integration.test_console_pages import FORM, console, login, post_job, settled  # noqa: F401 - fixtures
from tests.integration.test_scheduled_reports import Inbox, smtp, tls_context  # noqa: F401 - fixtures

PASSWORD = "s3cret pass-<&>"


def patch(console, cookie, csrf, field, value, expected):
    return console.simulate_patch(f"/api/v1/settings/{field}", headers={**cookie, "X-CSRF-Token": csrf},
                                  json={"value": value, "expected": expected})


def test_smtp_settings_saved_field_by_field_mail_a_scheduled_report_and_never_show_the_password(
        console, runtime, smtp, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    logins = []

    def authenticate(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password == PASSWORD.encode(), session.ssl is not None))
        return AuthResult(success=auth_data.login == b"reports" and auth_data.password == PASSWORD.encode())

    inbox = Inbox()
    port = smtp(inbox, tls_context=tls_context(tmp_path), require_starttls=True, authenticator=authenticate,
                auth_require_tls=True)
    post_job(runtime, "uma", "a.pdf")
    admin, csrf = login(console, "root", "root-pw-123")
    page = console.simulate_get("/admin/settings", headers=admin).text
    assert 'id="setting-smtp_password" type="password" data-kind="password" data-expected="" value=""' in page
    assert "Mail (SMTP)" in page and 'id="setting-smtp_host"' in page and 'id="setting-smtp_starttls"' in page

    head = runtime.app.recorder.max_notification_id()
    for field, value, expected, words in (("smtp_port", 70000, 25, "between 1 and 65535"),
                                          ("smtp_host", "mail server!", "", "host name"),
                                          ("smtp_sender", "not an address", "", "e-mail address"),
                                          ("smtp_starttls", "yes", False, "true or false"),
                                          ("smtp_password", "pässword", "", "only ASCII")):
        r = patch(console, admin, csrf, field, value, expected)
        assert r.status_code == 400 and words in " ".join(r.json["errors"]["value"]), (field, r.json)
    assert runtime.app.recorder.max_notification_id() == head  # nothing recorded

    for field, value, expected in (("smtp_host", "127.0.0.1", ""), ("smtp_port", port, 25),
                                   ("smtp_starttls", True, False), ("smtp_username", "reports", ""),
                                   ("smtp_password", PASSWORD, ""), ("smtp_sender", "pageledger@example.com", "")):
        r = patch(console, admin, csrf, field, value, expected)
        assert r.status_code == 200, (field, r.json)
        assert r.json["value"] == ("set" if field == "smtp_password" else value)
    stale = patch(console, admin, csrf, "smtp_password", "other", "")  # made from "not set": refused
    assert stale.status_code == 409 and stale.json["errors"]["current"] == ["'set'"] and PASSWORD not in stale.text

    events = console.simulate_get("/api/v1/events", headers=admin,
                                  query_string="type=SiteSettings.FieldChanged").json["events"]
    smtp_events = [e["fields"] for e in events if e["fields"]["field"].startswith("smtp_")]
    assert [(f["field"], f["old"], f["new"], f["by"]) for f in smtp_events] == [
        ("smtp_host", "", "127.0.0.1", "root"), ("smtp_port", 25, port, "root"), ("smtp_starttls", False, True, "root"),
        ("smtp_username", "", "reports", "root"), ("smtp_password", "", "set", "root"),
        ("smtp_sender", "", "pageledger@example.com", "root")]
    shown = {s["name"]: s["value"] for s in console.simulate_get("/api/v1/settings", headers=admin).json["settings"]}
    assert shown["smtp_password"] == "set" and shown["smtp_host"] == "127.0.0.1"
    changes = console.simulate_get("/api/v1/audit/changes", headers=admin, query_string="area=settings").json
    assert [(c["old"], c["new"]) for c in changes["changes"] if c["field"] == "smtp_password"] == [("", "set")]
    # The event log holds the password sealed with the installation's key, never as typed.
    from adapters.event_seals import RawLog

    stored = b"".join(bytes(e[4]) for e in RawLog(runtime.app.recorder).events(0, 10**6))
    assert b"sealed:v1:" in stored and PASSWORD.encode() not in stored and b"s3cret" not in stored
    for path in ("/admin/settings", "/audit"):
        text = console.simulate_get(path, headers=admin).text
        assert PASSWORD not in text and "s3cret" not in text, path
    assert 'id="setting-smtp_password-state">set<' in console.simulate_get("/admin/settings", headers=admin).text

    # A scheduled report defined on the console's form, mailed through the settings above.
    r = console.simulate_post("/report-schedules", headers={**admin, **FORM}, body="&".join(
        f"{k}={quote(str(v))}" for k, v in {"csrf_token": csrf, "action": "define", "name": "daily", "report": "usage",
                                            "format": "csv", "cron": "0 7 * * *", "period": "last-7-days",
                                            "recipients": "ops@example.org"}.items()))
    assert r.status_code == 303, r.text
    settled(runtime)
    real_clock = runtime.clock
    runtime.clock = lambda: real_clock() + 2 * 86_400_000_000
    assert runtime.scheduled_runs(pauses=(0,)).tick() == [("daily", "sent")]
    [message] = inbox.messages
    assert message["From"] == "pageledger@example.com" and message["To"] == "ops@example.org"
    assert logins == [(b"reports", True, True)]
    assert PASSWORD not in caplog.text and "s3cret" not in caplog.text
    assert "setting smtp_password changed from '' to 'set' by root" in caplog.text
