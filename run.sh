#!/usr/bin/env bash
# PageLedger's two commands:
#   ./run.sh up     install (into .venv) and run the whole server on this host (SQLite, no Redis needed)
#   ./run.sh test   install everything the tests need (apt, pip), start the services, run every test
# Needs Python 3.11+ and apt (run as root, or with sudo available, for the test services).
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

say() { printf '==> %s\n' "$*" >&2; }

apt_updated=""
apt_install() {
  # Installs the Debian packages among "$@" that are not installed yet.
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  if [ -z "$apt_updated" ]; then $SUDO apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_venv() {
  local extras=$1
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "PageLedger needs Python 3.11 or newer as '$PYTHON' (set PYTHON=...)" >&2; exit 1
  fi
  if [ ! -x .venv/bin/python ]; then
    say "creating the virtual environment .venv"
    "$PYTHON" -m venv .venv 2>/dev/null || { apt_install python3-venv; rm -rf .venv; "$PYTHON" -m venv .venv; }
  fi
  local stamp=".venv/.installed-${extras:-server}" spec="."
  [ -n "$extras" ] && spec=".[$extras]"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    say "installing PageLedger and its dependencies into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e "$spec"
    touch "$stamp"
  fi
}

ensure_postgres() {
  local host=127.0.0.1 port=5432
  if command -v pg_isready >/dev/null && pg_isready -q -h $host -p $port; then return 0; fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql
  fi
  local version; version=$(ls /etc/postgresql | sort -V | tail -n 1)
  local hba=/etc/postgresql/$version/main/pg_hba.conf
  # Tests connect as postgres over TCP on loopback without a password.
  if ! grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
    say "allowing passwordless PostgreSQL connections from 127.0.0.1 (test machine)"
    $SUDO sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  fi
  say "starting PostgreSQL $version"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || $SUDO pg_ctlcluster "$version" main restart
  for _ in $(seq 1 50); do pg_isready -q -h $host -p $port && return 0; sleep 0.2; done
  echo "PostgreSQL did not start on $host:$port" >&2; return 1
}

ensure_redis() {
  if command -v redis-cli >/dev/null && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return 0; fi
  apt_install redis-server redis-tools
  say "starting Redis on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "Redis did not start on 127.0.0.1:6379" >&2; return 1
}

ensure_test_packages() {
  # Real peers the tests talk to (DESIGN.md §6): CUPS with a virtual IPP printer (ippeveprinter
  # needs a D-Bus system bus; Ghostscript makes real PostScript/PCL test documents), OpenLDAP.
  # The tests start private instances of each on loopback ports; none is started here.
  apt_install postgresql-client procps \
    cups cups-client cups-bsd cups-ipp-utils cups-filters dbus ghostscript qpdf \
    slapd ldap-utils \
    unixodbc odbc-postgresql libsqliteodbc  # the PA6 migration reads legacy databases through these ODBC drivers
  # The web console's browser tests (tests/e2e/test_console_browser.py): Debian's chromium,
  # driven by the playwright package (never `playwright install`: no browser downloads).
  apt_install chromium
}

case "${1:-}" in
  up)
    shift
    ensure_venv ""
    exec .venv/bin/pageledger up "$@"
    ;;
  test)
    shift
    ensure_venv test
    ensure_test_packages
    ensure_postgres
    ensure_redis
    set +e
    if [ $# -eq 0 ]; then
      # The whole suite, as .ci/run calls it: every test file but the timed ones in two
      # processes, a file each at a time (pytest-xdist; most of the time is spent waiting on
      # cupsd, Chromium, PostgreSQL and the servers the tests start), then the timed ones alone.
      .venv/bin/python -m pytest -n "${PAGELEDGER_TEST_WORKERS:-2}" --dist loadfile -m "not timed"
      status=$?
      .venv/bin/python -m pytest -m timed
      timed=$?
      [ $status -eq 0 ] && status=$timed
    else
      .venv/bin/python -m pytest "$@"
      status=$?
    fi
    set -e
    # pytest exits 5 when it collected no test: that is a failure here, never a pass.
    exit $status
    ;;
  *)
    echo "usage: ./run.sh up [--port N] | ./run.sh test [pytest args]" >&2
    exit 2
    ;;
esac
