"""The web console in a real browser: Debian's chromium driven by Playwright, against `pageledger up`
over HTTPS with the self-signed certificate it makes on first start, reached by a host name that
is not localhost (console.pageledger.test, resolved by chromium to 127.0.0.2).

One server and one browser for the module; the tests run in order, as an admin would: the setup
wizard on a fresh install, a job in Job Accounting, a settings field saved alone, a user who may
not see what is not theirs, CSRF refused, logout ending the session, axe-core on every page, a held
job released from Secure Print, a secure queue's release settings set (and bad ones refused) on Printers,
a user's card number set and PIN reset (and bad ones refused) on Users.
Jobs are posted through /Services/jobs with the agent token, as the agent posts them (the CUPS
path itself is covered by tests/integration/test_agent_cups.py). Screenshots of every page land
in the test's tmp dir (and in $PAGELEDGER_CONSOLE_SHOTS when set, e.g. docs/console).
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

from tests.conftest import started_https_server

CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
HOST = "console.pageledger.test"
ADMIN, ADMIN_PW = "root", "root-pw-123"
USER, USER_PW = "carol", "carol-pw-12345"

from playwright.sync_api import Browser, Page, expect, sync_playwright

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("console-screenshots")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = started_https_server(tmp_path_factory.mktemp("console"))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Browser:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: ./run.sh test installs Debian's chromium")
    home = tmp_path_factory.mktemp("chromium-home")
    os.environ["XDG_CONFIG_HOME"] = str(home / "config")
    os.environ["XDG_CACHE_HOME"] = str(home / "cache")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
            "--no-first-run", f"--host-resolver-rules=MAP {HOST} 127.0.0.2"])
        yield b
        b.close()


def base(server) -> str:
    return f"https://{HOST}:{server.https_port}"


def new_page(browser: Browser, **kwargs) -> Page:
    # The certificate is self-signed: the test checks its fingerprint itself (test_https_...).
    context = browser.new_context(ignore_https_errors=True, **kwargs)
    return context.new_page()


def shoot(page: Page, shots: Path, name: str) -> None:
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    target = os.environ.get("PAGELEDGER_CONSOLE_SHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(shots / f"{name}.png", Path(target) / f"{name}.png")


def log_in(page: Page, server, login: str, password: str) -> None:
    page.goto(base(server) + "/Authentication/Login")
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def post_job(server, **fields) -> dict:
    job = {"job_key": f"console/{time.time_ns()}", "user": USER, "printer": "office-mfp", "client_host": "printsrv01",
           "document": "Budget 2027.pdf", "submitted_at": datetime.now(timezone.utc).isoformat(), "pages": 3,
           "copies": 2, "colour_pages": 0, "duplex": False, "paper": "A4", "size": 20480, "pdl": "pdf", **fields}
    r = requests.post(server.url + "/Services/jobs", json={"jobs": [job]}, headers=server.headers(server.agent_token),
                      timeout=30)  # plain HTTP, as an agent may post
    assert r.status_code == 200, r.text
    return r.json()["results"][0]


def wait_for_job(server, document: str, listing: str = "/api/v1/jobs") -> dict:
    """The job in `listing` once its projection applied it (a held job is on /api/v1/held-jobs,
    and so on Secure Print, once Held is applied): wait for that, not for a page's timeout."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        jobs = requests.get(server.url + listing, headers=server.headers(server.admin_token), timeout=10).json()
        found = [j for j in jobs["jobs"] if j["document"] == document]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"job {document!r} never reached {listing}")


def test_https_serves_the_self_signed_certificate_whose_fingerprint_the_console_printed(server):
    printed = re.search(r"SHA-256 fingerprint ([0-9A-F:]{95})", (server.workdir / "server.log").read_text())
    assert printed, "up did not print the certificate's fingerprint"
    pem = ssl.get_server_certificate(("127.0.0.2", server.https_port))
    from adapters.tls import fingerprint_of
    assert fingerprint_of(pem.encode()) == printed.group(1)
    # Plain HTTP: browsers go to HTTPS, the agent's /Services and health stay.
    r = requests.get(server.url + "/Authentication/Login", allow_redirects=False, timeout=10)
    assert r.status_code == 308 and r.headers["Location"] == f"https://127.0.0.1:{server.https_port}/Authentication/Login"
    assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
    assert requests.get(server.url + "/Services/policy", headers=server.headers(server.agent_token),
                        timeout=10).status_code == 200


def test_silent_and_trickling_tls_clients_do_not_stop_https(server):
    """16 threads serve `up`: connections that never finish a TLS handshake must not hold them."""
    silent = [socket.create_connection(("127.0.0.1", server.https_port)) for _ in range(40)]
    try:
        for s in silent[:20]:
            s.send(b"\x16\x03\x01")  # the first bytes of a ClientHello, then nothing
        t0 = time.monotonic()
        r = requests.get(f"https://127.0.0.1:{server.https_port}/healthz", verify=False, timeout=15)
        print(f"healthz over HTTPS beside 40 silent or trickling TLS clients: {time.monotonic() - t0:.2f} s")
        assert r.status_code == 200 and time.monotonic() - t0 < 12
    finally:
        for s in silent:
            s.close()


def test_the_setup_wizard_from_a_fresh_install_ends_on_the_dashboard(server, browser, shots):
    page = new_page(browser)
    page.goto(f"http://{HOST}:{server.port}/Setup/NetworkSetup")  # plain HTTP: sent on to HTTPS
    assert page.url.startswith(f"https://{HOST}:{server.https_port}/")
    expect(page.get_by_label("Setup code")).to_be_visible()
    page.get_by_label("Setup code").fill(server.setup_code)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("group", name="Step 1: network type")).to_be_visible()
    shoot(page, shots, "setup-wizard")
    page.get_by_label("Local accounts (no directory)").check()
    page.get_by_role("button", name="Next: licence").click()
    expect(page.get_by_role("group", name="Step 2: licence")).to_be_visible()
    page.get_by_label("Activate online").check()
    page.get_by_role("button", name="Next: first administrator").click()  # a key and company are missing
    expect(page.get_by_role("alert")).to_contain_text("required to activate")
    page.get_by_label("15-day trial").check()
    page.get_by_role("button", name="Next: first administrator").click()
    expect(page.get_by_role("group", name="Step 3: first administrator")).to_be_visible()
    shoot(page, shots, "setup-wizard-step-3")
    page.locator("input[name=admin_login]").fill(ADMIN)
    page.locator("input[name=admin_password]").fill(ADMIN_PW)
    page.get_by_role("button", name="Finish setup").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    assert page.url == base(server) + "/"
    session = [c for c in page.context.cookies() if c["name"] == "pl_session"]
    assert session and session[0]["secure"] and session[0]["httpOnly"] and session[0]["sameSite"] == "Strict"
    # Once set up, the wizard sends a browser to the login page.
    page.goto(base(server) + "/Setup/NetworkSetup")
    assert page.url.startswith(base(server) + "/Authentication/Login")
    page.context.close()


def test_a_login_from_another_host_then_a_job_in_job_accounting_with_its_pages_and_cost(server, browser, shots):
    page = new_page(browser)
    log_in(page, server, ADMIN, ADMIN_PW)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    post_job(server, document="first job.pdf", pages=1, copies=1)  # the printer appears with the first job
    wait_for_job(server, "first job.pdf")
    page.goto(base(server) + "/printers")
    form = page.locator("section.printer", has_text="office-mfp").locator("form").first
    form.get_by_label("Mono page").fill("0.10")
    form.get_by_label("Colour page").fill("0.50")
    form.get_by_role("button", name="Save prices").click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    expect(page.get_by_text("0.1000 a mono page").or_(page.get_by_text("0.10 a mono page"))).to_be_visible()
    shoot(page, shots, "printers")
    time.sleep(2.1)  # the printer cache of the other worker keeps a schedule for 2 s
    post_job(server, document="=HYPERLINK(\"http://x\")report.pdf", pages=3, copies=2)
    job = wait_for_job(server, "=HYPERLINK(\"http://x\")report.pdf")
    assert job["cost"] in ("0.6", "0.60", "0.6000")
    page.goto(base(server) + "/jobs")
    row = page.locator("table.data tbody tr", has_text="report.pdf")
    expect(row).to_have_count(1)
    cells = row.locator("td")
    expect(cells.nth(5)).to_have_text("3")
    expect(cells.nth(6)).to_have_text("2")
    expect(cells.nth(7)).to_have_text(job["cost"])
    shoot(page, shots, "job-accounting")
    page.get_by_label("User").fill(USER)
    page.get_by_label("State").select_option("tracked")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.data tbody tr")).to_have_count(2)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    text = Path(download.value.path()).read_text()
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text  # never a live formula in a spreadsheet
    row = page.locator("table.data tbody tr", has_text="report.pdf")
    row.get_by_role("link").first.click()
    expect(page.get_by_role("heading", name=re.compile(r"Job \d+"))).to_be_visible()
    expect(page.locator("dl.details")).to_contain_text("office-mfp")
    shoot(page, shots, "job")
    page.goto(base(server) + "/")
    expect(page.locator(".card", has_text="Pages today")).to_contain_text("7")
    shoot(page, shots, "dashboard")
    page.context.close()


def _setting_changes(server, field: str) -> list[tuple]:
    from domain.site_settings import site_settings_id
    from pageledger.bootstrap import build_runtime
    from pageledger.settings import Settings

    rt = build_runtime(Settings.load(environ={}, data_dir=str(server.workdir / "var")), migrate=False)
    try:
        store = rt.app.repository.event_store
        return [(e.field, e.old, e.new, e.by) for e in store.get(site_settings_id(rt.app.server_id))
                if type(e).__name__ == "FieldChanged" and e.field == field]
    finally:
        rt.close()


def test_one_settings_field_saves_alone_with_its_event_and_a_stale_edit_shows_the_current_value(server, browser,
                                                                                                  shots):
    page = new_page(browser)
    log_in(page, server, ADMIN, ADMIN_PW)
    page.goto(base(server) + "/admin/settings")
    field = page.locator("[data-setting=document_names]")
    field.locator("select").select_option("mask")
    expect(field.locator(".status")).to_have_text("Saved.")
    assert _setting_changes(server, "document_names") == [("document_names", "keep", "mask", ADMIN)]
    assert _setting_changes(server, "timezone") == []  # nothing else was saved
    shoot(page, shots, "settings")
    # Another admin changes the time zone meanwhile; this page still shows UTC.
    r = requests.patch(server.url + "/api/v1/settings/timezone", json={"value": "Europe/Paris", "expected": "UTC"},
                       headers=server.headers(server.admin_token), timeout=10)
    assert r.status_code == 200, r.text
    tz = page.locator("[data-setting=timezone]")
    tz.locator("input").fill("Europe/Berlin")
    tz.locator("input").press("Tab")
    expect(tz.locator(".status")).to_contain_text("someone changed this setting meanwhile")
    expect(tz.locator("input")).to_have_value("Europe/Paris")
    assert [c[2] for c in _setting_changes(server, "timezone")] == ["Europe/Paris"]
    page.goto(base(server) + "/admin/licensing")
    expect(page.get_by_text("Seats allowed")).to_be_visible()
    expect(page.get_by_role("heading", name="Activate via File")).to_be_visible()
    shoot(page, shots, "licensing")
    page.context.close()
    # The module's server is shared: document names are masked from now on, which the later tests
    # (who look jobs up by their names) must not inherit.
    back = requests.patch(server.url + "/api/v1/settings/document_names", json={"value": "keep", "expected": "mask"},
                          headers=server.headers(server.admin_token), timeout=10)
    assert back.status_code == 200, back.text
    time.sleep(2.5)  # each server process reads the site settings through a 2 s cache (SiteSettingsReader)


def test_a_user_sees_only_their_own_jobs_and_no_admin_page(server, browser, shots):
    admin = new_page(browser)
    log_in(admin, server, ADMIN, ADMIN_PW)
    admin.goto(base(server) + "/users")
    admin.locator("input[name=login]").fill(USER)
    admin.locator("input[name=password]").fill(USER_PW)
    admin.locator("form.stack select[name=role]").select_option("user")
    admin.get_by_role("button", name="Add user").click()
    expect(admin.get_by_text("User added.")).to_be_visible()
    expect(admin.locator("table.data")).to_contain_text(USER)
    shoot(admin, shots, "users")
    post_job(server, user="dave", document="dave's payslips.pdf")
    other = wait_for_job(server, "dave's payslips.pdf")
    # Carol's earlier jobs were masked while document names were (the settings test); a new one is not.
    post_job(server, document="carol's report.pdf")
    wait_for_job(server, "carol's report.pdf")

    page = new_page(browser)
    log_in(page, server, USER, USER_PW)
    expect(page.get_by_role("heading", name="My jobs")).to_be_visible()  # a user lands on their own jobs
    expect(page.locator("table.data")).to_contain_text("report.pdf")
    expect(page.locator("table.data")).not_to_contain_text("payslips")
    shoot(page, shots, "my-jobs")
    for path in ("/users", "/admin/settings", "/printers"):
        response = page.goto(base(server) + path)
        assert response.status == 403, path
    assert page.goto(base(server) + f"/jobs/{other['job']}").status == 404
    assert "payslips" not in page.content()
    # The user's jobs page is bound to them whatever the filter says.
    page.goto(base(server) + "/my/jobs?user=dave")
    expect(page.locator("table.data")).not_to_contain_text("payslips")

    # Set Inactive by the admin: the user's session ends (within the users read model's few seconds).
    admin.goto(base(server) + "/users")
    admin.locator("tr", has_text=USER).get_by_role("button", name=re.compile("Set Inactive")).click()
    expect(admin.get_by_text("Saved.")).to_be_visible()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        page.goto(base(server) + "/my/jobs")
        if "/Authentication/Login" in page.url:
            break
        time.sleep(0.5)
    assert "/Authentication/Login" in page.url
    admin.context.close()
    page.context.close()


def test_csrf_is_refused_and_logout_ends_the_session_on_the_server(server, browser, shots):
    page = new_page(browser)
    log_in(page, server, ADMIN, ADMIN_PW)
    page.goto(base(server) + "/users")
    statuses = page.evaluate("""async () => {
        const form = await fetch('/users', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                                            body: 'login=mallory&password=mallory-pw-123&role=admin'});
        const wrong = await fetch('/users', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                                             body: 'csrf_token=forged&login=mallory&password=mallory-pw-123&role=admin'});
        const patch = await fetch('/api/v1/settings/timezone', {method: 'PATCH', headers: {'Content-Type': 'application/json'},
                                                                body: JSON.stringify({value: 'UTC'})});
        return [form.status, wrong.status, patch.status];
    }""")
    assert statuses == [403, 403, 403]
    page.goto(base(server) + "/users")
    expect(page.locator("table.data")).not_to_contain_text("mallory")
    cookie = next(c["value"] for c in page.context.cookies() if c["name"] == "pl_session")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    shoot(page, shots, "login")
    # A copy of the cookie is worth nothing now.
    r = requests.get(f"https://127.0.0.1:{server.https_port}/api/v1/users", cookies={"pl_session": cookie},
                     verify=False, timeout=10)
    assert r.status_code == 401 and r.json()["title"] == "Session expired"
    page.context.close()


PAGES = ("/", "/jobs", "/users", "/printers", "/admin/settings", "/admin/licensing", "/secure-print", "/reports",
         "/audit", "/my/jobs")


def test_every_page_passes_axe_with_no_serious_violation_and_works_360_px_wide(server, browser, shots):
    # axe is injected as a script of its own: the console's CSP (no inline script) stays on
    # for the pages; only the injection bypasses it.
    page = new_page(browser, bypass_csp=True, viewport={"width": 360, "height": 740})
    page.goto(base(server) + "/Authentication/Login")
    checked = {}
    checked["/Authentication/Login"] = _axe(page)
    log_in(page, server, ADMIN, ADMIN_PW)
    job_link = None
    for path in PAGES:
        page.goto(base(server) + path)
        checked[path] = _axe(page)
        if path == "/jobs":
            job_link = page.locator("table.data tbody tr a").first.get_attribute("href")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 380, f"{path} is {width}px wide at 360px"
        shoot(page, shots, "phone-" + (path.strip("/").replace("/", "-") or "dashboard"))
    page.goto(base(server) + job_link)
    checked[job_link] = _axe(page)
    serious = {p: v for p, v in checked.items() if v}
    assert serious == {}, serious
    page.context.close()


def _axe(page: Page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def test_a_held_job_is_released_from_secure_print_on_a_phone_and_reports_and_audit_show(server, browser, shots):
    import hashlib

    post_job(server, user=ADMIN, printer="secure-mfp", document="warm-up.pdf")
    wait_for_job(server, "warm-up.pdf")
    page = new_page(browser, viewport={"width": 360, "height": 740})
    log_in(page, server, ADMIN, ADMIN_PW)
    page.goto(base(server) + "/printers")
    page.get_by_role("button", name="Turn secure hold on for secure-mfp").click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    deadline, result = time.monotonic() + 10, {}
    while time.monotonic() < deadline:  # the printer cache may hold the old setting a moment
        result = post_job(server, user=ADMIN, printer="secure-mfp", document="Held contract.pdf",
                          job_key=f"held/{time.time_ns()}")
        if result["decision"] == "hold":
            break
        time.sleep(0.5)
    assert result["decision"] == "hold", result
    data = b"%PDF-1.4\n% held contract\n%%EOF\n"
    requests.put(f"{server.url}/Services/jobs/{result['job_id']}/spool", data=data, timeout=10,
                 headers={**server.headers(server.agent_token), "Content-Type": "application/octet-stream",
                          "X-Content-SHA256": hashlib.sha256(data).hexdigest()}).raise_for_status()
    wait_for_job(server, "Held contract.pdf", listing="/api/v1/held-jobs")
    page.goto(base(server) + "/secure-print")
    job = page.locator("li.held-job", has_text="Held contract.pdf")
    expect(job).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 380
    shoot(page, shots, "phone-secure-print")
    job.get_by_role("checkbox").check()
    page.get_by_role("button", name="Release").click()
    expect(page.get_by_text("Released: collect the jobs at the printer.")).to_be_visible()
    expect(page.locator("li.held-job", has_text="Held contract.pdf")).to_have_count(0)
    jobs = requests.get(server.url + "/api/v1/jobs", headers=server.headers(server.admin_token), timeout=10).json()
    assert "released" in [j["status"] for j in jobs["jobs"] if j["document"] == "Held contract.pdf"]
    page.context.close()

    desk = new_page(browser, viewport={"width": 1280, "height": 900})
    log_in(desk, server, ADMIN, ADMIN_PW)
    desk.goto(base(server) + "/secure-print")
    shoot(desk, shots, "secure-print")
    desk.goto(base(server) + "/reports")
    shoot(desk, shots, "reports")
    desk.goto(base(server) + "/reports/usage?group_by=printer")
    expect(desk.locator("tr.total")).not_to_have_count(0)
    shoot(desk, shots, "report-usage")
    desk.goto(base(server) + "/audit")
    expect(desk.get_by_role("heading", name="Admin changes")).to_be_visible()
    shoot(desk, shots, "audit")
    desk.context.close()


def test_a_queues_hold_time_code_mode_and_group_are_set_on_printers_and_a_bad_hold_time_refused_beside_it(
        server, browser, shots):
    page = new_page(browser, viewport={"width": 360, "height": 740})
    log_in(page, server, ADMIN, ADMIN_PW)
    page.goto(base(server) + "/printers")
    queue = page.locator("section.printer", has=page.get_by_role("heading", name="secure-mfp", exact=True))
    settings = queue.locator("form.queue", has_text="Release settings")
    for bad, said in (("0", "greater than or equal to 60"), ("soon", "Not a valid integer.")):
        settings.get_by_label("Hold time").fill(bad)
        settings.get_by_label("Printer group").fill("floor-2")
        with page.expect_response(lambda r: r.url.endswith("/printers") and r.request.method == "POST") as answer:
            settings.get_by_role("button", name="Save release settings").click()
        assert answer.value.status == 400
        field = settings.get_by_label("Hold time")
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(settings.locator(".field-error", has_text=said)).to_be_visible()
        expect(settings.get_by_label("Printer group")).to_have_value("floor-2")  # what was entered stays
    assert page.evaluate("document.documentElement.scrollWidth") <= 380
    settings.get_by_label("Hold time").fill("7200")
    settings.get_by_label("Release code").select_option("generated")
    settings.get_by_label("Code length").fill("8")
    settings.get_by_label("Printer group").fill("floor-2")
    settings.get_by_role("button", name="Save release settings").click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    expect(queue.locator(".queue-summary")).to_contain_text("Hold time: 7200 s")

    # The API reads the same settings (an empty PUT changes nothing and answers what is in force) ...
    r = requests.put(server.url + "/api/v1/printers/secure-mfp/release", json={},
                     headers=server.headers(server.admin_token), timeout=10)
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in ("hold_seconds", "code_mode", "code_length", "group")} == \
        {"hold_seconds": 7200, "code_mode": "generated", "code_length": 8, "group": "floor-2"}
    # ... and the next job on the queue is held two hours with an 8-digit code of its own.
    deadline, result, document = time.monotonic() + 10, {}, ""
    while time.monotonic() < deadline:  # the other worker's printer cache keeps the old settings 2 s
        document = f"Two hours {time.time_ns()}.pdf"
        result = post_job(server, user=ADMIN, printer="secure-mfp", document=document, job_key=f"held/{document}")
        if len(result.get("release_code", "")) == 8:
            break
        time.sleep(0.5)
    assert result["decision"] == "hold" and len(result["release_code"]) == 8, result
    held = wait_for_job(server, document, listing="/api/v1/held-jobs")
    waits = datetime.fromisoformat(held["expires_at"]) - datetime.fromisoformat(held["submitted_at"])
    assert abs(waits.total_seconds() - 7200) < 60, held
    page.context.close()


def test_an_admin_sets_a_card_and_resets_a_pin_on_users_at_360_px_and_bad_ones_are_refused_beside_them(
        server, browser, shots):
    admin = server.headers(server.admin_token)
    r = requests.post(server.url + "/api/v1/users", json={"login": "pat", "password": "pat-pw-12345", "role": "user"},
                      headers=admin, timeout=10)
    assert r.status_code == 201, r.text

    def pat() -> dict | None:
        users = requests.get(server.url + "/api/v1/users", headers=admin, timeout=10).json()["users"]
        return next((u for u in users if u["login"] == "pat"), None)

    deadline = time.monotonic() + 10
    while pat() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    page = new_page(browser, viewport={"width": 360, "height": 740})
    log_in(page, server, ADMIN, ADMIN_PW)
    page.goto(base(server) + "/users")
    row = page.locator("tr", has=page.get_by_role("cell", name="pat", exact=True))
    card = row.get_by_label("Card number of pat")
    card.fill("CA FE")
    with page.expect_response(lambda r: "/card" in r.url and r.request.method == "POST") as answer:
        row.get_by_role("button", name="Set card of pat").click()
    assert answer.value.status == 400
    row = page.locator("tr", has=page.get_by_role("cell", name="pat", exact=True))
    expect(row.get_by_label("Card number of pat")).to_have_attribute("aria-invalid", "true")
    expect(row.locator(".field-error", has_text="letters and digits only")).to_be_visible()
    expect(row.get_by_label("Card number of pat")).to_have_value("CA FE")  # what was entered stays
    assert page.evaluate("document.documentElement.scrollWidth") <= 380
    row.get_by_label("Card number of pat").fill("CAFE01")
    row.get_by_role("button", name="Set card of pat").click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    assert pat()["card"] == "CAFE01"

    row = page.locator("tr", has=page.get_by_role("cell", name="pat", exact=True))
    row.get_by_label("New PIN of pat").fill("12")
    with page.expect_response(lambda r: "/pin" in r.url and r.request.method == "POST") as answer:
        row.get_by_role("button", name="Reset PIN of pat").click()
    assert answer.value.status == 400
    row = page.locator("tr", has=page.get_by_role("cell", name="pat", exact=True))
    expect(row.locator(".field-error", has_text="4 to 12 digits")).to_be_visible()
    row.get_by_role("button", name="Reset PIN of pat").click()  # empty: one is generated
    notice = page.get_by_role("status")
    expect(notice).to_contain_text("New PIN for pat:")
    pin = re.search(r"New PIN for pat: (\d{6})\.", notice.inner_text()).group(1)
    shoot(page, shots, "phone-users-pin")
    assert pat()["has_pin"] is True
    page.goto(base(server) + "/users")
    assert pin not in page.content()  # shown once
    page.context.close()
