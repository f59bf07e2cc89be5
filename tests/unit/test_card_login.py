"""Logging in with a card number and PIN (commands.logins.LogInWithCard), on the in-memory event
store with a small in-memory throttle: who may log in, what counts as a failure, what is audited."""
from __future__ import annotations

from uuid import UUID

from adapters.pins import PinDigester
from commands.logins import CARD_THROTTLE_PREFIX, LogInWithCard
from domain.logins import LoginAttempt
from domain.users import LOCAL_SOURCE, User
from tests.unit.test_licensing_commands import Clock, licensing

T0 = 1_700_000_000_000_000
DIGEST = PinDigester(b"k" * 32)


class Throttle:
    """At most `limit` failures per key (the real one, adapters.throttle, is tested on both stores)."""

    def __init__(self, limit: int = 5) -> None:
        self.limit = limit
        self.failures: list[str] = []

    class Reservation:
        def __init__(self, retry_after: int, key: str = "") -> None:
            self.retry_after, self.key = retry_after, key

    def reserve(self, login: str, address: str):
        if self.failures.count(login) >= self.limit:
            return self.Reservation(60)
        self.failures.append(login)
        return self.Reservation(0, login)

    def release(self, reservation) -> None:
        self.failures.remove(reservation.key)

    def retry_after(self, login: str, address: str) -> int:
        return 60 if self.failures.count(login) >= self.limit else 0

    def succeeded(self, login: str) -> None:
        self.failures = [f for f in self.failures if f != login]


class Index:
    def __init__(self) -> None:
        self.cards: dict[str, str] = {}

    def card_holder(self, card: str) -> str | None:
        return self.cards.get(card)


def setup(role: str = "user", active: bool = True):
    lic = licensing(Clock())
    lic.install_trial()
    app = lic.app
    user = User.import_(source=LOCAL_SOURCE, login="kim", profile={}, now=T0, role=role)
    user.assign_card("CAFE01", T0, by="root")
    user.change_pin(DIGEST("482915"), T0, by="root")
    if not active:
        user.deactivate(T0, "left")
    app.save(user)
    index, throttle = Index(), Throttle()
    index.cards["CAFE01"] = str(user.id)
    return app, LogInWithCard(app, index, DIGEST, lic, throttle, Clock()), throttle


def outcomes(app) -> list[tuple[str, str]]:
    found = []
    for n in app.recorder.select_notifications(start=1, limit=1000):
        if "LoginAttempt" in n.topic:
            a: LoginAttempt = app.repository.get(n.originator_id)
            found.append((a.login, a.outcome))
    return found


def test_the_card_and_its_pin_log_in_as_its_holder_and_clear_the_cards_failures():
    app, log_in, throttle = setup()
    assert log_in(card="cafe01", pin="111111", remote_addr="10.0.0.1").outcome == "bad_credentials"
    result = log_in(card=" cafe01", pin="482915", remote_addr="10.0.0.1")
    assert (result.ok, result.login, result.role) == (True, "kim", "user")
    assert throttle.failures == []
    assert outcomes(app) == [("kim", "bad_credentials"), ("kim", "succeeded")]


def test_a_wrong_pin_an_unknown_card_and_garbage_all_answer_alike_and_count():
    _, log_in, throttle = setup()
    answers = [log_in(card=c, pin=p, remote_addr="10.0.0.1") for c, p in
               (("CAFE01", "000000"), ("BEEF99", "482915"), ("CA FE", "482915"), ("CAFE01", "12"), ("", ""))]
    assert {(r.outcome, r.message) for r in answers} == {("bad_credentials", "wrong card number or PIN")}
    assert [r.login for r in answers] == ["kim", "card", "card", "kim", "card"]  # never the card number
    assert sorted(throttle.failures) == sorted([CARD_THROTTLE_PREFIX + k for k in ("CAFE01", "BEEF99", "?", "CAFE01",
                                                                                  "?")])


def test_five_wrong_pins_then_even_the_right_one_is_throttled():
    _, log_in, _ = setup()
    assert [log_in(card="CAFE01", pin=f"00000{i}", remote_addr="10.0.0.1").outcome for i in range(5)] == \
        ["bad_credentials"] * 5
    result = log_in(card="CAFE01", pin="482915", remote_addr="10.0.0.1")
    assert (result.outcome, result.retry_after) == ("throttled", 60)


def test_an_inactive_holder_and_an_agent_are_refused_with_the_right_pin():
    _, log_in, _ = setup(active=False)
    assert log_in(card="CAFE01", pin="482915", remote_addr="10.0.0.1").outcome == "inactive"
    _, log_in, _ = setup(role="agent")
    assert log_in(card="CAFE01", pin="482915", remote_addr="10.0.0.1").outcome == "not_allowed"


def test_a_card_the_read_model_still_gives_to_someone_who_gave_it_up_logs_no_one_in():
    app, log_in, _ = setup()
    user = app.repository.get(UUID(log_in.index.cards["CAFE01"]))
    user.assign_card("", T0 + 1, by="root")
    app.save(user)
    assert log_in(card="CAFE01", pin="482915", remote_addr="10.0.0.1").outcome == "bad_credentials"
