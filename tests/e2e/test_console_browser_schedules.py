"""The console's job history, report schedules and audit verify in a real browser (Debian's
chromium, Playwright, `pageledger up` over HTTPS, reached as console.pageledger.test): a job's
page shows its state and its events; on a report's page "Schedule this report" opens the form with
its filters, a bad cron and a bad recipient are refused beside their fields, the fixed schedule is
listed and the API has it; the SMTP password saved alone and never shown back; "Verify the log" on Audit follows the background verification to its
result per check. Its own server, set up through the API (the wizard is
tests/e2e/test_console_browser.py's)."""
from __future__ import annotations

import re
import time

import pytest
import requests
from playwright.sync_api import expect

from tests.conftest import started_https_server
from tests.e2e.test_console_browser import (  # noqa: F401 - module-scoped fixtures, one browser for this module
    ADMIN, ADMIN_PW, USER, _axe, base, browser, log_in, new_page, post_job, shoot, shots, wait_for_job,
)

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = started_https_server(tmp_path_factory.mktemp("console-schedules"))
    # Over HTTPS (plain HTTP sends browsers there); its self-signed certificate is checked by
    # test_console_browser.py against the fingerprint `up` printed.
    setup = requests.post(f"https://127.0.0.1:{s.https_port}/Setup/NetworkSetup", json={
        "setup_code": s.setup_code, "network_type": "local", "licence_mode": "trial", "admin_login": ADMIN,
        "admin_password": ADMIN_PW}, timeout=30, verify=False)
    assert setup.status_code == 201, setup.text
    yield s
    s.stop()


def test_a_job_page_shows_its_state_and_history_then_a_report_is_scheduled_and_the_log_verified(server, browser, shots):
    post_job(server, document="Quarterly <plan>.pdf")
    job = wait_for_job(server, "Quarterly <plan>.pdf")
    page = new_page(browser)
    log_in(page, server, ADMIN, ADMIN_PW)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    page.goto(base(server) + f"/jobs/{job['job']}")
    expect(page.locator("dd.state")).to_have_text("tracked")
    history = page.get_by_role("region", name="Job history table")
    expect(history).to_contain_text("PrintJob.Tracked")
    expect(history).to_contain_text("Quarterly <plan>.pdf")  # escaped: shown as text
    shoot(page, shots, "job-history")
    page.goto(base(server) + "/jobs")
    page.get_by_label("State").select_option("printed")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("cell", name="No jobs.")).to_be_visible()

    page.goto(base(server) + "/reports/usage?printer=office-mfp")
    page.get_by_role("link", name="Schedule this report").click()
    expect(page.get_by_label("Printer (filter)")).to_have_value("office-mfp")
    page.get_by_label("Name").fill("weekly office")
    page.get_by_label("Format").select_option("xlsx")
    page.get_by_label("When (cron").fill("0 25 * * 1")
    page.get_by_label("Recipients").fill("boss@example.org, not-an-address")
    page.get_by_role("button", name="Save the schedule").click()
    expect(page.locator("#sched-cron-error")).to_contain_text("hour")
    expect(page.locator("#sched-recipients-error")).to_contain_text("not-an-address")
    expect(page.get_by_label("When (cron")).to_have_attribute("aria-invalid", "true")
    shoot(page, shots, "report-schedule-refused")
    listed = requests.get(server.url + "/api/v1/report-schedules", headers=server.headers(server.admin_token),
                          timeout=10).json()["schedules"]
    assert all(s["name"] != "weekly office" for s in listed)
    page.get_by_label("When (cron").fill("0 7 * * 1")
    page.get_by_label("Recipients").fill("boss@example.org, it@example.org")
    page.get_by_role("button", name="Save the schedule").click()
    expect(page.get_by_role("status")).to_have_text("Schedule saved.")
    expect(page.get_by_role("region", name="Scheduled reports table")).to_contain_text("weekly office")
    shoot(page, shots, "report-schedules")
    [saved] = [s for s in requests.get(server.url + "/api/v1/report-schedules",
                                       headers=server.headers(server.admin_token), timeout=10).json()["schedules"]
               if s["name"] == "weekly office"]
    assert (saved["report"], saved["format"], saved["cron"], saved["parameters"], saved["recipients"]) == (
        "usage", "xlsx", "0 7 * * 1", {"printer": "office-mfp"}, ["boss@example.org", "it@example.org"])

    # Settings → Mail: the SMTP password saved on its own, never shown back.
    page.goto(base(server) + "/admin/settings")
    password = page.locator("#setting-smtp_password")
    password.fill("smtp-Secret-42")
    password.press("Tab")  # change: field-level save
    expect(page.locator("#setting-smtp_password-status")).to_have_text("Saved.")
    expect(password).to_have_value("")
    expect(page.locator("#setting-smtp_password-state")).to_have_text("set")
    page.reload()
    assert "smtp-Secret-42" not in page.content()
    expect(page.locator("#setting-smtp_password-state")).to_have_text("set")
    settings = requests.get(server.url + "/api/v1/settings", headers=server.headers(server.admin_token),
                            timeout=10).json()["settings"]
    assert {s["name"]: s["value"] for s in settings}["smtp_password"] == "set"
    shoot(page, shots, "settings-mail")

    page.goto(base(server) + "/audit")
    expect(page.get_by_role("region", name="Admin changes table")).to_contain_text("smtp_password")
    assert "smtp-Secret-42" not in page.content()
    page.get_by_role("button", name="Verify the log").click()
    expect(page).to_have_url(re.compile(r"/audit/verify/[0-9a-f]{32}$"))
    expect(page.get_by_text("All verified")).to_be_visible(timeout=60_000)  # progress.js reloads when done
    checks = page.get_by_role("region", name="Verification checks")
    expect(checks.locator("tr", has_text="Event log seals").locator("td.result")).to_have_text("verified")
    expect(checks.locator("tr", has_text="Read model jobs").locator("td.result")).to_have_text("verified")
    shoot(page, shots, "audit-verify")


def test_the_new_pages_pass_axe_and_fit_360_px_and_a_report_run_shows_its_file(server, browser, shots):
    job = wait_for_job(server, "Quarterly <plan>.pdf")
    page = new_page(browser, bypass_csp=True, viewport={"width": 360, "height": 740})  # axe is injected
    log_in(page, server, ADMIN, ADMIN_PW)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    checked = {}

    def check(name: str) -> None:
        checked[name] = _axe(page)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 380, f"{name} is {width}px wide at 360px"

    page.goto(base(server) + f"/jobs/{job['job']}")
    check("job page")
    page.goto(base(server) + "/report-schedules")
    page.get_by_label("Name").fill("bad one")
    page.get_by_label("When (cron").fill("every day")
    page.get_by_label("Recipients").fill("nobody")
    page.get_by_role("button", name="Save the schedule").click()  # refused beside the fields
    expect(page.locator("#sched-cron-error")).to_be_visible()
    check("schedules, refused")
    page.goto(base(server) + "/reports/jobs")
    page.get_by_label("Run in the background as").select_option("csv")
    page.get_by_role("button", name="Run in the background").click()
    expect(page).to_have_url(re.compile(r"/report-runs/[0-9a-f]{32}$"))
    expect(page.get_by_role("link", name="Download the CSV")).to_be_visible(timeout=60_000)
    check("report run, done")
    shoot(page, shots, "phone-report-run")
    page.goto(base(server) + "/audit")
    page.get_by_role("button", name="Verify the log").click()
    expect(page.get_by_text("All verified")).to_be_visible(timeout=60_000)
    check("verify, done")
    serious = {p: v for p, v in checked.items() if v}
    assert serious == {}, serious
    page.context.close()
