"""The seed's acceptance test in a real browser, on a fresh install of its own: the setup wizard
(axe-core on each of its steps), then log in, print a job with `lp` through the REAL CUPS agent
(a private cupsd and ippeveprinter, the queue wrapped by `pageledger-agent install` against this
server's URL), see it in Job Accounting with its pages and cost, run the Usage report in the
browser and check its totals on the page (axe-core on the result page), and download the report
as CSV and XLSX through the browser and read them with csv and openpyxl.

Then the phone release page: /release at 360 x 740, logged in by card number and PIN (a wrong
PIN refused, then throttled like a wrong password), a held job released from it.

Same browser, helpers and artefacts as tests/e2e/test_console_browser.py (screenshots in the
test's tmp dir, and in $PAGELEDGER_CONSOLE_SHOTS when set).
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from openpyxl import load_workbook
from playwright.sync_api import expect

from tests import sample_documents as docs
from tests.conftest import started_https_server
from tests.e2e.test_console_browser import (_axe, base, browser, log_in, new_page, post_job, shoot,  # noqa: F401
                                            shots, wait_for_job)
from tests.integration.cups_harness import CupsHarness
from tests.integration.test_agent_cups import WrappedQueue

ADMIN, ADMIN_PW = "root", "root-pw-123"
PRINTED_BY = "dana"  # who prints with lp -U: the agent records the job under this name
MONO_PRICE = Decimal("0.05")

pytestmark = [pytest.mark.timeout(300), pytest.mark.cups]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = started_https_server(tmp_path_factory.mktemp("console-acceptance"))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def cups():
    harness = CupsHarness().start()
    yield harness
    harness.stop()


def test_the_setup_wizard_passes_axe_on_each_step(server, browser, shots):
    page = new_page(browser, bypass_csp=True)  # axe is injected as a script of its own
    page.goto(base(server) + "/Setup/NetworkSetup")
    expect(page.get_by_label("Setup code")).to_be_visible()
    checked = {"setup code": _axe(page)}
    shoot(page, shots, "setup-wizard-code")
    page.get_by_label("Setup code").fill(server.setup_code)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("group", name="Step 1: network type")).to_be_visible()
    checked["step 1"] = _axe(page)
    shoot(page, shots, "setup-wizard-step-1")
    page.get_by_label("Local accounts (no directory)").check()
    page.get_by_role("button", name="Next: licence").click()
    expect(page.get_by_role("group", name="Step 2: licence")).to_be_visible()
    checked["step 2"] = _axe(page)
    shoot(page, shots, "setup-wizard-step-2")
    page.get_by_label("Activate online").check()
    page.get_by_role("button", name="Next: first administrator").click()  # no key nor company: refused
    expect(page.get_by_role("alert")).to_contain_text("required to activate")
    checked["step 2 refused"] = _axe(page)
    page.get_by_label("15-day trial").check()
    page.get_by_role("button", name="Next: first administrator").click()
    expect(page.get_by_role("group", name="Step 3: first administrator")).to_be_visible()
    checked["step 3"] = _axe(page)
    shoot(page, shots, "setup-wizard-step-3")
    page.locator("input[name=admin_login]").fill(ADMIN)
    page.locator("input[name=admin_password]").fill(ADMIN_PW)
    page.get_by_role("button", name="Finish setup").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    assert {step: v for step, v in checked.items() if v} == {}
    page.context.close()


def test_acceptance_a_job_printed_through_cups_is_in_job_accounting_and_the_report_adds_it_up(
        server, browser, shots, cups, tmp_path):
    # The print server: a CUPS queue on the virtual printer, wrapped by the real agent, which
    # reports to this server over plain HTTP (its /Services), as a site may choose.
    queue = WrappedQueue(cups, tmp_path, "office-cups")
    installed = queue.install(server.url, server.agent_token)
    assert installed.returncode == 0, installed.stderr
    assert cups.device_uri("office-cups") == f"pageledger:{cups.printer_uri}"
    priced = subprocess.run([sys.executable, "-m", "pageledger.cli", "printers", "set-cost", "office-cups",
                             "--mono", str(MONO_PRICE), "--colour", "0.25"], cwd=server.workdir, env=server.env,
                            capture_output=True, text=True, timeout=60)
    assert priced.returncode == 0, priced.stderr

    page = new_page(browser, bypass_csp=True)
    log_in(page, server, ADMIN, ADMIN_PW)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    # Print: 3 mono pages, 2 copies, through lp, cupsd, pdftopdf and the agent's backend.
    _, state = queue.print(docs.pdf(tmp_path / "figures.pdf", 3), user=PRINTED_BY, title="Quarterly figures",
                           copies=2, options={"media": "iso_a4_210x297mm", "print-color-mode": "monochrome"})
    assert state["job-state"] == "completed", (state, cups.error_log()[-3000:])
    job = wait_for_job(server, "Quarterly figures")
    cost = MONO_PRICE * 3 * 2
    assert (job["user"], job["printer"], job["pages"], job["copies"]) == (PRINTED_BY, "office-cups", 3, 2)
    assert Decimal(job["cost"]) == cost

    # Job Accounting: the job, its pages and cost, as the browser shows them.
    page.get_by_role("link", name="Job Accounting").click()
    expect(page.get_by_role("heading", name="Job Accounting")).to_be_visible()
    row = page.locator("table.data tbody tr", has_text="Quarterly figures")
    expect(row).to_have_count(1)
    cells = row.locator("td")
    expect(row).to_contain_text(PRINTED_BY)
    expect(row).to_contain_text("office-cups")
    expect(cells.nth(5)).to_have_text("3")
    expect(cells.nth(6)).to_have_text("2")
    assert Decimal(cells.nth(7).inner_text()) == cost
    shoot(page, shots, "acceptance-job-accounting")

    # Run the Usage report by printer from the catalogue, and read its totals on the page.
    page.get_by_role("link", name="Reports").first.click()
    page.get_by_role("link", name="Usage", exact=True).click()
    page.get_by_label("Group by").select_option("printer")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("tr.total")).not_to_have_count(0)
    assert "group_by=printer" in page.url
    table = page.locator("table", has=page.locator("th", has_text="impressions")).first
    headers = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    by_printer = dict(zip(headers, [c.strip() for c in table.locator("tbody tr", has_text="office-cups")
                                    .first.locator("td").all_inner_texts()]))
    totals = dict(zip(headers, [c.strip() for c in table.locator("tr.total td").all_inner_texts()]))
    for shown in (by_printer, totals):
        assert int(shown["jobs"]) == 1 and int(shown["impressions"]) == 6 and int(shown["sheets"]) == 6, shown
        assert int(shown["mono_impressions"]) == 6 and int(shown["colour_impressions"]) == 0, shown
        assert Decimal(shown["cost"]) == cost, shown
    serious = _axe(page)
    assert serious == [], serious
    shoot(page, shots, "acceptance-report-usage")

    # The same report downloaded through the browser, as CSV and as XLSX, read by their readers.
    with page.expect_download() as got:
        page.locator("p.downloads").get_by_role("link", name="CSV").click()
    assert got.value.suggested_filename == "usage.csv"
    rows = list(csv.reader(io.StringIO(Path(got.value.path()).read_text(encoding="utf-8-sig"))))
    header_at = next(i for i, r in enumerate(rows) if r[:2] == ["printer", "jobs"])
    header = rows[header_at]
    data = dict(zip(header, rows[header_at + 1]))
    total = dict(zip(header, next(r for r in rows[header_at + 1:] if r and r[0] == "total")))
    assert data["printer"] == "office-cups"
    for figures in (data, total):
        assert (int(figures["jobs"]), int(figures["impressions"]), int(figures["sheets"])) == (1, 6, 6), figures
        assert Decimal(figures["cost"]) == cost, figures

    with page.expect_download() as got:
        page.locator("p.downloads").get_by_role("link", name="XLSX").click()
    assert got.value.suggested_filename == "usage.xlsx"
    book = load_workbook(io.BytesIO(Path(got.value.path()).read_bytes()), read_only=True)
    sheet = [list(r) for r in book["usage"].iter_rows(values_only=True)]
    header = [str(c) for c in sheet[1]]
    data, total = dict(zip(header, sheet[2])), dict(zip(header, sheet[-1]))
    assert data["printer"] == "office-cups" and total["printer"] == "total"
    for figures in (data, total):
        assert (figures["jobs"], figures["impressions"], figures["sheets"]) == (1, 6, 6), figures
        assert Decimal(str(figures["cost"])) == cost, figures
    book.close()
    page.context.close()


PHONE = {"width": 360, "height": 740}
HOLDER, HOLDER_PW, CARD, PIN = "erin", "erin-pw-12345", "E1B2C3", "739146"


def _cli(server, *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pageledger.cli", *args], cwd=server.workdir, env=server.env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def _card_login(page, card: str, pin: str) -> int:
    page.get_by_label("Card number", exact=True).fill(card)
    page.get_by_label("PIN", exact=True).fill(pin)
    with page.expect_response(lambda r: r.url.endswith("/release/login") and r.request.method == "POST") as answer:
        page.get_by_role("button", name="Log in with card").click()
    return answer.value.status


def test_a_held_job_is_released_from_release_on_a_phone_after_a_card_and_pin_login_and_wrong_pins_are_throttled(
        server, browser, shots):
    admin = server.headers(server.admin_token)
    r = requests.post(server.url + "/api/v1/users", json={"login": HOLDER, "password": HOLDER_PW, "role": "user"},
                      headers=admin, timeout=10)
    assert r.status_code == 201, r.text
    uid = r.json()["id"]
    for path, body in (("card", {"card": CARD}), ("pin", {"pin": PIN})):
        deadline = time.monotonic() + 10
        while True:  # the users read model may not have the new user yet: a card's holder is checked there
            r = requests.put(f"{server.url}/api/v1/users/{uid}/{path}", json=body, headers=admin, timeout=10)
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert r.status_code == 200, r.text
    # Two secure printers of one group; the job is sent to the first, the phone stands at the second.
    _cli(server, "printers", "set-cost", "phone-mfp", "--mono", "0.10", "--colour", "0.50")
    for name in ("phone-mfp", "phone-mfp-2"):
        _cli(server, "printers", "secure", name, "on")
        r = requests.put(f"{server.url}/api/v1/printers/{name}/release", json={"group": "floor-9"}, headers=admin,
                         timeout=10)
        assert r.status_code == 200, r.text
    deadline, result = time.monotonic() + 10, {}
    while time.monotonic() < deadline:  # each server process keeps a printer's settings 2 s
        result = post_job(server, user=HOLDER, printer="phone-mfp", document="Erin's boarding pass.pdf", pages=2,
                          copies=1, job_key=f"phone/{time.time_ns()}")
        if result["decision"] == "hold":
            break
        time.sleep(0.5)
    assert result["decision"] == "hold", result
    data = b"%PDF-1.4\n% boarding pass\n%%EOF\n"
    requests.put(f"{server.url}/Services/jobs/{result['job_id']}/spool", data=data, timeout=10,
                 headers={**server.headers(server.agent_token), "Content-Type": "application/octet-stream",
                          "X-Content-SHA256": hashlib.sha256(data).hexdigest()}).raise_for_status()
    held = wait_for_job(server, "Erin's boarding pass.pdf", listing="/api/v1/held-jobs")
    assert Decimal(held["cost"]) == Decimal("0.20")

    # The phone at phone-mfp-2 opens /release: its own login page, card and PIN or login and password.
    page = new_page(browser, bypass_csp=True, viewport=PHONE)
    page.goto(base(server) + "/release?printer=phone-mfp-2")
    assert page.url == base(server) + "/release/login?printer=phone-mfp-2"
    expect(page.get_by_role("heading", name="With your card and PIN")).to_be_visible()
    checked = {"/release/login": _axe(page)}
    assert page.evaluate("document.documentElement.scrollWidth") <= 380
    shoot(page, shots, "phone-release-login")
    assert _card_login(page, CARD, "000000") == 401  # a wrong PIN
    expect(page.get_by_role("alert")).to_have_text("wrong card number or PIN")
    checked["/release/login (refused)"] = _axe(page)
    assert not [c for c in page.context.cookies() if c["name"] == "pl_session"]
    assert _card_login(page, CARD.lower(), PIN) == 303  # a card is read in capitals
    expect(page.get_by_role("heading", name="Release your print jobs")).to_be_visible()
    assert page.url == base(server) + "/release?printer=phone-mfp-2"

    job = page.locator("li.held-job", has_text="Erin's boarding pass.pdf")
    expect(job).to_contain_text("phone-mfp · 2 page(s) · " + held["cost"])
    expect(page.get_by_label("Print on")).to_have_value("phone-mfp-2")  # the printer the phone stands at
    checked["/release"] = _axe(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 380
    shoot(page, shots, "phone-release")
    job.get_by_role("checkbox").check()
    page.get_by_role("button", name="Release").click()
    expect(page.get_by_role("status")).to_have_text("Released: collect the jobs at the printer.")
    expect(page.locator("li.held-job", has_text="Erin's boarding pass.pdf")).to_have_count(0)
    checked["/release (released)"] = _axe(page)
    shoot(page, shots, "phone-release-done")
    assert {p: v for p, v in checked.items() if v} == {}
    page.context.close()

    # The release is recorded: the job is released (not held), and its order goes to phone-mfp-2.
    jobs = requests.get(server.url + "/api/v1/jobs", headers=admin, timeout=10).json()["jobs"]
    assert [j["status"] for j in jobs if j["document"] == "Erin's boarding pass.pdf"] == ["released"]
    assert requests.get(server.url + "/api/v1/held-jobs", headers=admin, timeout=10).json()["jobs"] == []
    orders = requests.get(server.url + "/Services/releases", headers=server.headers(server.agent_token),
                          timeout=10).json()["orders"]
    assert [(o["job_id"], o["printer"], o["user"]) for o in orders] == [(held["job_id"], "phone-mfp-2", HOLDER)]

    # Wrong PINs are throttled like wrong passwords: after five, even the right PIN waits.
    page = new_page(browser, viewport=PHONE)
    page.goto(base(server) + "/release/login")
    assert [_card_login(page, CARD, f"11110{i}") for i in range(5)] == [401] * 5
    assert _card_login(page, CARD, PIN) == 429
    expect(page.get_by_role("alert")).to_have_text("too many failed attempts: try again later")
    assert not [c for c in page.context.cookies() if c["name"] == "pl_session"]
    # Logging in with the login and password still works, and lands on /release.
    page.get_by_label("Login", exact=True).fill(HOLDER)
    page.get_by_label("Password", exact=True).fill(HOLDER_PW)
    page.get_by_role("button", name="Log in with password").click()
    expect(page.get_by_text("No held jobs of yours.")).to_be_visible()
    page.context.close()
