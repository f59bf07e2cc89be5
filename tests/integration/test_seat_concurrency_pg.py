"""Many first-time users at once, on several servers sharing one PostgreSQL: seats never exceed."""
from __future__ import annotations

import logging
import uuid
import threading

import sqlalchemy as sa

from commands.licensing import Licensing
from domain.licence import SUITE
from pageledger.bootstrap import build_runtime
from adapters.licence_keys import HostIdentity, decode_key
from pageledger.settings import Settings
from projections.licence_seats import licence_seats
from tests.conftest import PG_ADMIN_URL
from tools.licence_issuer import issue_key, issue_licence, make_key_pair

SERVERS = 6
USERS_PER_SERVER = 15
SEATS = 25
HERE = HostIdentity("printsrv1", "00:11:22:33:44:55")


def test_concurrent_first_time_users_on_postgresql_never_exceed_the_seats(pg_admin, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="pageledger.commands")
    DB = f"pl_test_seats_{uuid.uuid4().hex[:12]}"  # its own database: test runs may overlap
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{DB}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + DB
    runtimes = [build_runtime(Settings.load(environ={}, database_url=url, data_dir=tmp_path / f"node{i}"))
                for i in range(SERVERS)]
    try:
        issuer = make_key_pair()
        key = issue_key(issuer, type=SUITE, seats=SEATS, expires_at=0, company="Acme")
        document = issue_licence(issuer, decode_key(key, issuer.public_key()), host=HERE.host, mac=HERE.mac,
                                 method="file", issued_at=0)
        nodes = [Licensing(rt.app, public_key=issuer.public_key(), identity=HERE) for rt in runtimes]
        nodes[0].activate_file(document, "Acme")

        barrier = threading.Barrier(SERVERS * USERS_PER_SERVER)
        granted: list[str] = []
        errors: list[BaseException] = []

        def first_job(node: Licensing, login: str) -> None:
            try:
                barrier.wait()
                if node.gate_jobs([login])[login].track:
                    granted.append(login)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=first_job, args=(nodes[n], f"user{n}-{u}"))
                   for n in range(SERVERS) for u in range(USERS_PER_SERVER)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors[:3]
        assert len(granted) == SEATS
        # The servers really did collide (and retried), or this test proves nothing.
        assert any("another writer saved first" in r.getMessage() for r in caplog.records)
        licence = nodes[-1].get()
        assert licence.seats_used == SEATS and set(licence.seated) == set(granted)
        # The stored facts agree: exactly SEATS SeatAssigned events, and the projection shows them.
        with runtimes[0].reader.connect() as conn:
            assigned = conn.execute(sa.text(
                "SELECT count(*) FROM pageledger_events WHERE topic = 'Licence.SeatAssigned'")).scalar()
        assert assigned == SEATS
        runtimes[0].catch_up()
        with runtimes[0].reader.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(licence_seats)).scalar() == SEATS
    finally:
        for rt in runtimes:
            rt.close()
        with pg_admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)'))
