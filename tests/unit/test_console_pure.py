"""The console's pure parts: spreadsheet-safe CSV cells, where a login may send the browser,
what plain HTTP redirects, the dashboard chart, the self-signed certificate, escaping."""
from __future__ import annotations

import ssl
import stat

import falcon
import falcon.testing
import pytest

from adapters.tls import CertificateError, fingerprint_of, server_certificate, server_context
from api.console.dashboard import chart
from api.console.jobs import spreadsheet_safe
from api.console.render import Renderer
from api.login import safe_next
from api.transport import CSP, TransportSecurity


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=x", "\r=x", "=HYPERLINK(\"http://x\")"])
def test_a_cell_that_a_spreadsheet_would_run_is_kept_as_text(cell):
    assert spreadsheet_safe(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["Budget 2027.xlsx", "report = final", "1", ""])
def test_ordinary_cells_are_left_alone(cell):
    assert spreadsheet_safe(cell) == cell


@pytest.mark.parametrize("target,expected", [
    ("/jobs?user=a", "/jobs?user=a"), ("/", "/"), ("//evil.example/x", "/"), ("https://evil.example", "/"),
    ("/\\evil", "/"), ("jobs", "/"), ("/a\nb", "/"), (None, "/"), ("/" + "a" * 3000, "/"),
])
def test_a_login_sends_the_browser_back_only_to_a_path_of_this_server(target, expected):
    assert safe_next(target) == expected


class _Hello:
    public = True

    def on_get(self, req, resp, **_):
        resp.media = {"scheme": req.scheme}

    on_post = on_get


def _client(https_port):
    app = falcon.App(middleware=[TransportSecurity(https_port)])
    for path in ("/Authentication/Login", "/Services/jobs", "/healthz", "/api/v1/jobs"):
        app.add_route(path, _Hello())
    return falcon.testing.TestClient(app)


def test_plain_http_sends_browsers_to_https_and_keeps_serving_machines():
    c = _client(6321)
    r = c.simulate_get("/Authentication/Login", query_string="next=/jobs", headers={"Host": "print.example.org:6320"})
    assert r.status_code == 308 and r.headers["Location"] == "https://print.example.org:6321/Authentication/Login?next=/jobs"
    assert c.simulate_post("/Authentication/Login").status_code == 308  # the method is kept by 308
    assert c.simulate_post("/Services/jobs").status_code == 200
    assert c.simulate_get("/healthz").status_code == 200
    assert c.simulate_get("/api/v1/jobs", headers={"Authorization": "Bearer x"}).status_code == 200
    # A Host header that is no host name is not echoed into the redirect.
    r = c.simulate_get("/Authentication/Login", headers={"Host": "evil.example/<script>"})
    assert r.headers["Location"].startswith("https://localhost:6321/")
    assert _client(443).simulate_get("/Authentication/Login", headers={"Host": "h"}).headers["Location"] == \
        "https://h/Authentication/Login"


def test_without_https_nothing_is_redirected_and_every_answer_carries_the_security_headers():
    r = _client(None).simulate_get("/Authentication/Login")
    assert r.status_code == 200
    assert r.headers["Content-Security-Policy"] == CSP and "'unsafe-inline'" not in CSP
    assert "frame-ancestors 'none'" in CSP and r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_the_chart_has_a_bar_per_day_scaled_to_the_busiest():
    bars = chart({100: 50, 99: 25}, today=100)
    assert len(bars) == 30 and bars[-1].pages == 50 and bars[-1].height == 120 and bars[-2].height == 60
    assert bars[0].pages == 0 and bars[0].height == 0
    assert chart({}, today=5)[0].height == 0  # no division by zero on an empty month


def test_templates_escape_what_they_show():
    html = Renderer().html("message.html", None, title="<b>t</b>", message="<script>alert(1)</script>")
    assert "<script>alert" not in html and "&lt;script&gt;" in html and "&lt;b&gt;t&lt;/b&gt;" in html


def test_the_first_start_makes_a_self_signed_certificate_once_with_a_private_key(tmp_path):
    made = server_certificate(tmp_path, names=("print.example.org", "127.0.0.2"))
    assert made.created and made.self_signed
    assert stat.S_IMODE(made.key_file.stat().st_mode) == 0o600
    again = server_certificate(tmp_path)
    assert not again.created and again.fingerprint == made.fingerprint  # the same on every later start
    assert fingerprint_of(made.cert_file.read_bytes()) == made.fingerprint and len(made.fingerprint) == 95
    assert isinstance(server_context(made), ssl.SSLContext)


def test_an_admins_certificate_must_come_as_a_pair_that_fits(tmp_path):
    a = server_certificate(tmp_path / "a")
    b = server_certificate(tmp_path / "b")
    assert server_certificate(tmp_path, str(a.cert_file), str(a.key_file)).self_signed is False
    with pytest.raises(CertificateError, match="both"):
        server_certificate(tmp_path, str(a.cert_file), "")
    with pytest.raises(CertificateError):
        server_certificate(tmp_path, str(a.cert_file), str(b.key_file))
