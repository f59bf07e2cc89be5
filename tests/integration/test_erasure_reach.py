"""Erasure reaches what is personal but not a login, on both stores: a token's subject and name,
a user's address among a scheduled report's recipients, card numbers swiped at a reader, and the
User's own aggregate id. Each test uses the feature first (a token authenticates, a schedule mails
the person through a real SMTP server on loopback, a card swipe releases, a user is found by
login), erases the person, and then finds no byte of the value in the database files."""
from __future__ import annotations

import email
from email import policy
from uuid import UUID

import falcon.testing
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from adapters.codec import topic_of
from adapters.event_seals import RawLog
from api.app import create_app
from commands.report_schedules import ScheduleDefinition
from domain.users import LOCAL_SOURCE, User, user_id
from projections.access_tokens import list_tokens
from projections.report_schedules import list_schedules
from tests.conftest import free_port
from tests.integration.test_audit import bearer, database_bytes
from tests.integration.test_user_cards_pins import held

LOGIN = "zedquokka-8817"
EMAIL = "zed.quokka.8817@example.org"
TOKEN_NAME = "zed-laptop-token-6613"
CARD = "C0FFEE77123456"  # as the reader sends it (hex, upper case)
OTHER_CARD = "BADC0DE9988776"  # swiped at the reader, never anybody's


def add_zed(runtime):
    runtime.add_local_user(login=LOGIN, password="a long password 1", role="user",
                           profile={"full_name": "Zed Quokka", "email": EMAIL, "department": ""})
    runtime.catch_up()
    return runtime.app.user_id(LOCAL_SOURCE, LOGIN)


def not_in_database(runtime, *values: str | bytes) -> list:
    raw = database_bytes(runtime)
    return [v for v in values if (v.encode() if isinstance(v, str) else v) in raw]


def in_log(runtime, value: str) -> bool:
    return any(value.encode() in bytes(e[4]) for e in RawLog(runtime.app.recorder).events(0, 10**6))


def test_an_erased_persons_token_no_longer_names_them_nor_authenticates(runtime):
    add_zed(runtime)
    token_id, secret = runtime.issue_token(name=TOKEN_NAME, role="user", subject=LOGIN)
    runtime.catch_up()
    client = falcon.testing.TestClient(create_app(runtime))
    assert client.simulate_get("/api/v1/me/jobs.csv", headers=bearer(secret)).status_code == 200
    assert not in_log(runtime, LOGIN) and not in_log(runtime, TOKEN_NAME)  # sealed from the start
    with runtime.reader.connect() as conn:
        [record] = [t for t in list_tokens(conn) if t.token_id == str(token_id)]
    assert (record.subject, record.name) == (LOGIN, TOKEN_NAME)

    erased = runtime.erase_person(LOGIN)
    placeholder = f"erased user #{erased.number}"
    with runtime.reader.connect() as conn:
        [record] = [t for t in list_tokens(conn) if t.token_id == str(token_id)]
    assert (record.subject, record.name, record.revoked) == (placeholder, "erased", True)
    token = runtime.app.repository.get(token_id)
    assert (token.subject, token.name, token.revoked) == (placeholder, "erased", True)
    fresh = falcon.testing.TestClient(create_app(runtime))
    assert fresh.simulate_get("/api/v1/me/jobs.csv", headers=bearer(secret)).status_code == 401
    assert not_in_database(runtime, LOGIN, TOKEN_NAME) == []
    # A rebuild gives the same rows.
    result = runtime.audit.verify()
    assert result.ok, [c.shown for c in result.read_models.checks]


class Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((list(envelope.rcpt_tos),
                              email.message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


@pytest.fixture
def smtp_inbox():
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def test_an_erased_users_address_leaves_the_schedule_which_still_mails_the_others(runtime, smtp_inbox):
    from datetime import datetime, timezone

    from domain.units import to_micros

    inbox, port = smtp_inbox
    add_zed(runtime)
    runtime.change_setting("smtp_host", "127.0.0.1", by="cli")
    runtime.change_setting("smtp_port", port, by="cli")
    defined = to_micros(datetime(2026, 11, 30, 12, tzinfo=timezone.utc))
    runtime.clock = lambda: defined
    runtime.define_schedule(ScheduleDefinition(
        name="daily-usage", report="usage", parameters={"group_by": "printer"}, format="csv", cron="0 7 * * *",
        recipients=(EMAIL.upper(), "ops-desk@example.org"), period="previous-day"), by="cli")
    runtime.catch_up()
    assert not in_log(runtime, EMAIL) and not in_log(runtime, EMAIL.upper())
    assert in_log(runtime, "ops-desk@example.org")  # no user's: the admin's configuration, kept as it is
    runtime.clock = lambda: to_micros(datetime(2026, 12, 1, 12, tzinfo=timezone.utc))
    runs = runtime.scheduled_runs(pauses=(0,))
    assert runs.tick() == [("daily-usage", "sent")]
    [(to, message)] = inbox.messages
    assert sorted(to) == sorted([EMAIL.upper(), "ops-desk@example.org"]) and "daily-usage" in message["Subject"]

    runtime.erase_person(LOGIN)
    with runtime.reader.connect() as conn:
        [row] = list_schedules(conn)
    assert row.recipients == ["ops-desk@example.org"]
    assert not_in_database(runtime, EMAIL, EMAIL.upper(), LOGIN) == []
    runtime.clock = lambda: to_micros(datetime(2026, 12, 2, 12, tzinfo=timezone.utc))
    runtime.catch_up()
    assert runtime.scheduled_runs(pauses=(0,)).tick() == [("daily-usage", "sent")]
    assert inbox.messages[1][0] == ["ops-desk@example.org"]  # the erased person is mailed no more
    result = runtime.audit.verify()
    assert result.ok, [c.shown for c in result.read_models.checks]


def test_swiped_card_numbers_are_never_stored_and_nothing_links_an_erased_holder_to_them(runtime):
    runtime.licensing.install_trial()
    runtime.set_secure_hold("vault", True)
    zed = add_zed(runtime)
    assert runtime.swipe_card("vault", CARD).outcome == "unknown card"  # before it is anybody's
    assert runtime.swipe_card("vault", OTHER_CARD).outcome == "unknown card"
    assert runtime.set_card(zed, CARD, by="cli") is True
    runtime.catch_up()
    assert runtime.swipe_card("vault", CARD).outcome == "nothing to release"
    job = held(runtime, LOGIN)
    outcome = runtime.swipe_card("vault", CARD)
    assert (outcome.outcome, list(outcome.jobs)) == ("released", [job])
    assert not in_log(runtime, CARD) and not in_log(runtime, OTHER_CARD) and not in_log(runtime, LOGIN)
    swipes = [runtime.app.mapper.to_domain_event(s) for s in
              runtime.app.recorder.select_notifications(start=1, limit=100_000)
              if topic_of(s.topic) == "Printer.CardSwipeUnmatched"]
    assert [(s.card, s.reason, s.user) for s in swipes] == [
        ("*3456", "unknown card", ""), ("*8776", "unknown card", ""), ("*3456", "nothing to release", LOGIN)]
    assert swipes[0].card_digest == swipes[2].card_digest != swipes[1].card_digest  # the same card, recognised
    assert len(swipes[0].card_digest) == 16

    runtime.erase_person(LOGIN)
    assert not_in_database(runtime, CARD, OTHER_CARD, LOGIN) == []
    assert runtime.app.mapper.to_domain_event(next(
        s for s in runtime.app.recorder.select_notifications(start=1, limit=100_000)
        if topic_of(s.topic) == "Printer.CardSwipeUnmatched" and runtime.app.mapper.to_domain_event(s).reason
        == "nothing to release")).user.startswith("erased user #")


def test_a_new_users_id_is_keyed_and_an_older_users_uuid5_id_is_still_found(runtime):
    runtime.licensing.install_trial()
    zed = add_zed(runtime)
    assert zed.version == 8 and zed != user_id(LOCAL_SOURCE, LOGIN)
    assert runtime.app.user_id(LOCAL_SOURCE, LOGIN.upper()) == zed
    assert runtime.app.repository.get(zed).login == LOGIN
    assert runtime.log_in(login=LOGIN, password="a long password 1", remote_addr="127.0.0.1").ok
    # A user created before keyed ids (the uuid5 of the login) is found by it, and changed in place.
    older = User.import_(source=LOCAL_SOURCE, login="olderuser", profile={}, now=1)
    runtime.app.save(older)
    assert older.id == user_id(LOCAL_SOURCE, "olderuser")
    assert runtime.app.user_id(LOCAL_SOURCE, "olderuser") == older.id
    runtime.catch_up()
    assert runtime.set_card(runtime.app.user_id(LOCAL_SOURCE, "olderuser"), "0A1B2C", by="cli") is True
    assert runtime.app.repository.get(older.id).card == "0A1B2C"

    guessed = user_id(LOCAL_SOURCE, LOGIN)
    runtime.erase_person(LOGIN)
    # Neither the login nor the id a guess of it gives can be found in the database.
    assert not_in_database(runtime, LOGIN, guessed.bytes, str(guessed), guessed.hex) == []
    with runtime.reader.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM users WHERE user_id = :u"),
                            {"u": str(zed)}).scalar() == 1
    assert runtime.app.repository.get(UUID(str(zed))).login.startswith("erased user #")
