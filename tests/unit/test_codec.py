from dataclasses import fields

import pytest
from datetime import datetime, timezone
from uuid import uuid4

from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import StoredEvent

from domain.jobs import PrintJob, job_id
from adapters.codec import CompactMapper, MsgpackTranscoder, decode_view, from_micros, to_micros


def mapper() -> CompactMapper:
    return CompactMapper(transcoder=MsgpackTranscoder())


def tracked(**overrides) -> PrintJob:
    fields_ = dict(user="alice", printer="hq-laser-01", client_host="printsrv01",
                   submitted_at=to_micros(datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)), pages=4, copies=2,
                   sheets=4, colour_pages=1, duplex=True, paper="A4", size=123_456, pdl="pdf", cost=16_000,
                   schedule=1, document="Quarterly Report.pdf")
    fields_.update(overrides)
    return PrintJob.track(job_id("srv", "k1"), **fields_)


def test_tracked_job_round_trips_with_every_field():
    job = tracked()
    original = job.collect_events()[0]
    stored = mapper().to_stored_event(original)
    assert stored.topic == "T"  # the one-character code of the most frequent event
    copy = mapper().to_domain_event(stored)
    for f in fields(original):
        assert getattr(copy, f.name) == getattr(original, f.name), f.name
    rebuilt = copy.mutate(None)
    assert (rebuilt.user, rebuilt.cost, rebuilt.document, rebuilt.version) == ("alice", 16_000, "Quarterly Report.pdf", 1)


def test_a_tracked_job_is_stored_compactly():
    stored = mapper().to_stored_event(tracked().collect_events()[0])
    # The library's default JSON mapper needs ~630 B for such a job (DESIGN.md §4).
    assert len(stored.state) + len(stored.topic) < 125


def test_micros_conversion_is_exact():
    dt = datetime(2026, 11, 25, 8, 40, 42, 123456, tzinfo=timezone.utc)
    assert from_micros(to_micros(dt)) == dt


class Thing(Aggregate):
    class Made(Aggregate.Created):
        name: str
        colour: str
        APPENDED_DEFAULTS = {"colour": "red"}

    @event(Made)
    def __init__(self, name: str, colour: str) -> None:
        self.name = name
        self.colour = colour

    @event("Renamed")
    def rename(self, name: str, reason: str) -> None:
        self.name = name


def _without_last_field(stored: StoredEvent) -> StoredEvent:
    values = MsgpackTranscoder().decode(stored.state)
    return StoredEvent(originator_id=stored.originator_id, originator_version=stored.originator_version,
                       topic=stored.topic, state=MsgpackTranscoder().encode(values[:-1]))


def test_events_stored_before_a_field_was_appended_take_its_declared_default():
    made = Thing(name="x", colour="blue").collect_events()[0]
    older = _without_last_field(mapper().to_stored_event(made))  # as if "colour" did not exist yet
    assert mapper().to_domain_event(older).colour == "red"


def test_a_missing_field_without_a_declared_default_is_refused():
    thing = Thing(name="x", colour="blue")
    thing.rename("y", "typo")
    renamed = thing.collect_events()[1]
    with pytest.raises(ValueError, match="lacks fields"):
        mapper().to_domain_event(_without_last_field(mapper().to_stored_event(renamed)))


def test_job_ids_are_stable_per_server_and_key():
    assert job_id("srv", "a/1") == job_id("srv", "a/1")
    assert job_id("srv", "a/1") != job_id("srv", "a/2")
    assert job_id("srv", "a/1") != job_id("other", "a/1")
    assert job_id("srv", "a/1") != uuid4()


def test_a_light_view_holds_the_same_values_as_the_full_event():
    from adapters.codec import decode_view

    original = tracked().collect_events()[0]
    stored = mapper().to_stored_event(original)
    view = decode_view(stored.topic, stored.state, stored.originator_id)
    assert view.event_class is PrintJob.Tracked
    assert view.timestamp == to_micros(original.timestamp)
    for name in ("user", "printer", "client_host", "submitted_at", "pages", "copies", "sheets", "colour_pages",
                 "duplex", "paper", "size", "pdl", "cost", "schedule", "document"):
        assert getattr(view, name) == getattr(original, name), name
    assert view.originator_id == original.originator_id


def test_the_stored_shape_of_tracked_and_denied_jobs_is_unchanged():
    # Events are stored as arrays in field order: the order and the topics are the stored
    # format. Tracked and Denied share one definition of a job's facts (PrintJob.Recorded),
    # and must still store exactly what they stored before that.
    import dataclasses

    from adapters.codec import short_topic
    from domain.jobs import PrintJob

    facts = ["user", "printer", "client_host", "submitted_at", "pages", "copies", "sheets", "colour_pages",
             "duplex", "paper", "size", "pdl", "cost", "schedule"]
    envelope = ["originator_id", "originator_version", "timestamp", "originator_topic"]
    appended = ["paper_counts", "pages_known", "colour_known", "uncertain"]  # issue 19, at the end
    legacy = ["legacy_id", "billing_code"]  # for migrated jobs (tools/pa6_migrate), after them
    person = ["person"]  # whose key seals the personal fields, the login among them (adapters.personal_keys)
    application = ["application"]  # the printing application (issue 16), last
    assert [f.name for f in dataclasses.fields(PrintJob.Tracked)] == \
        envelope + facts + ["document"] + appended + legacy + person + application
    assert [f.name for f in dataclasses.fields(PrintJob.Denied)] == \
        envelope + facts + ["reason", "document"] + appended + person + application
    assert [f.name for f in dataclasses.fields(PrintJob.Secured)] == \
        envelope + facts + ["expires_at", "code_digest", "document"] + appended + application
    assert PrintJob.Tracked.APPENDED_DEFAULTS["person"] == PrintJob.Denied.APPENDED_DEFAULTS["person"] == 0
    assert (short_topic(PrintJob.Tracked), short_topic(PrintJob.Denied)) == ("PrintJob.Tracked", "PrintJob.Denied")


def test_a_job_stored_before_paper_counts_existed_still_decodes_with_their_defaults():
    import msgspec

    event = PrintJob.tracked(uuid4(), user="alice", printer="p", client_host="h", submitted_at=1, pages=3,
                             copies=1, sheets=3, colour_pages=1, duplex=False, paper="mixed", size=10, pdl="pdf",
                             cost=7, schedule=1, document="d", paper_counts={"A3": [1, 0], "A4": [2, 1]},
                             pages_known=True, colour_known=False, uncertain="encrypted")
    codec = mapper()
    stored = codec.to_stored_event(event)
    values = msgspec.msgpack.decode(stored.state)
    old = StoredEvent(stored.originator_id, stored.originator_version, stored.topic,
                      msgspec.msgpack.encode(values[:-8]))  # as stored before issue 19 (and 18, person, application)
    again = codec.to_domain_event(stored)
    before = codec.to_domain_event(old)
    assert (again.paper_counts, again.colour_known, again.uncertain) == ({"A3": [1, 0], "A4": [2, 1]}, False,
                                                                         "encrypted")
    assert (before.paper_counts, before.pages_known, before.colour_known, before.uncertain) == (None, True, True, "")
    assert before.pages == 3 and before.document == "d"


@pytest.mark.parametrize("make", ["tracked", "denied", "secured"])
def test_a_job_stored_before_its_application_was_appended_decodes_with_none_known(make):
    import msgspec

    extra = {"denied": {"reason": "no seat"}, "secured": {"expires_at": 9, "code_digest": ""}}.get(make, {})
    event = getattr(PrintJob, make)(uuid4(), user="alice", printer="p", client_host="h", submitted_at=1, pages=3,
                                    copies=1, sheets=3, colour_pages=1, duplex=False, paper="A4", size=10, pdl="pdf",
                                    cost=7, schedule=1, document="d", application="Own Reporting Tool", **extra)
    codec = mapper()
    stored = codec.to_stored_event(event)
    values = msgspec.msgpack.decode(stored.state)
    assert values[-1] == "Own Reporting Tool"
    old = StoredEvent(stored.originator_id, stored.originator_version, stored.topic,
                      msgspec.msgpack.encode(values[:-1]))  # as stored before the application was appended
    assert codec.to_domain_event(stored).application == "Own Reporting Tool"
    before = codec.to_domain_event(old)
    assert (before.application, before.document, before.pages) == ("", "d", 3)
    assert decode_view(old.topic, old.state, old.originator_id).application == ""
    assert decode_view(stored.topic, stored.state, stored.originator_id).application == "Own Reporting Tool"


def test_a_job_stored_before_legacy_id_was_appended_reads_as_an_agents_job():
    # A Tracked event stored without the appended fields decodes with their defaults ("": not migrated).
    from uuid import uuid4

    import msgspec
    from eventsourcing.persistence import StoredEvent

    from adapters.codec import CompactMapper, MsgpackTranscoder, decode_view
    from domain.jobs import PrintJob

    old_state = msgspec.msgpack.encode([1_700_000_000_000_000, "alice", "q1", "pc", 1_700_000_000_000_000, 2, 1, 2, 0,
                                        False, "A4", 10, "pdf", 1000, 1, "report.pdf"])
    stored = StoredEvent(originator_id=uuid4(), originator_version=1, topic="PrintJob.Tracked", state=old_state)
    event = CompactMapper(transcoder=MsgpackTranscoder()).to_domain_event(stored)
    assert (event.document, event.legacy_id, event.billing_code) == ("report.pdf", "", "")
    view = decode_view("PrintJob.Tracked", old_state)
    assert (view.document, view.legacy_id, view.billing_code) == ("report.pdf", "", "")
    assert isinstance(event, PrintJob.Tracked)


def test_admin_changes_stored_before_their_author_was_appended_decode_with_none_recorded():
    # Printer and role changes gained `by` at the end; events stored without it read as "".
    from uuid import uuid4

    import msgspec
    from eventsourcing.persistence import StoredEvent

    from adapters.codec import CompactMapper, MsgpackTranscoder

    codec = CompactMapper(transcoder=MsgpackTranscoder())
    old = {"Printer.SecureHoldChanged": [1_700_000_000_000_000, True],
           "Printer.HoldTimeChanged": [1_700_000_000_000_000, 3600],
           "Printer.ReleaseCodeModeChanged": [1_700_000_000_000_000, "random", 6],
           "Printer.PrinterGroupChanged": [1_700_000_000_000_000, "floor-2"],
           "Printer.CardReaderAssociated": [1_700_000_000_000_000, {"host": "10.0.0.9"}],
           "Printer.CostScheduleChanged": [1_700_000_000_000_000, {"mono_page": 500}],
           "User.RoleChanged": [1_700_000_000_000_000, 1_700_000_000_000_000, "auditor"]}
    for topic, values in old.items():
        stored = StoredEvent(originator_id=uuid4(), originator_version=2, topic=topic,
                             state=msgspec.msgpack.encode(values))
        event = codec.to_domain_event(stored)
        assert event.by == "", topic
        again = codec.to_stored_event(event)
        assert msgspec.msgpack.decode(again.state) == values + [""], topic


def test_a_job_stored_with_its_login_reads_with_it_and_no_person():
    # Events stored before the person number (version 1) carry the login in `user`: they decode
    # with person 0, which is what sends the log reader to the per-login key.
    import msgspec
    from eventsourcing.persistence import StoredEvent

    from domain.jobs import PrintJob

    event = PrintJob.tracked(uuid4(), user="", person=42, printer="p", client_host="", submitted_at=1, pages=3,
                             copies=1, sheets=3, colour_pages=1, duplex=False, paper="A4", size=10, pdl="pdf",
                             cost=7, schedule=1, document=b"sealed")
    codec = mapper()
    stored = codec.to_stored_event(event)
    values = msgspec.msgpack.decode(stored.state)
    assert values[-2:] == [42, ""] and values[1] == ""  # person, then the application
    values[1] = "alice"
    old = StoredEvent(stored.originator_id, stored.originator_version, stored.topic,
                      msgspec.msgpack.encode(values[:-2]))
    before = codec.to_domain_event(old)
    assert (before.user, before.person, before.document) == ("alice", 0, b"sealed")
    assert codec.to_domain_event(stored).person == 42


def test_the_two_frequent_job_events_are_stored_as_codes_and_their_old_spellings_still_read():
    from adapters.codec import decode_view, stored_spellings, topic_of

    codec = mapper()
    tracked_event = tracked().collect_events()[0]
    denied_event = PrintJob.denied(uuid4(), reason="no seat", user="bob", printer="p", client_host="h",
                                   submitted_at=1, pages=1, copies=1, sheets=1, colour_pages=0, duplex=False,
                                   paper="A4", size=1, pdl="pdf", cost=0, schedule=1, document="d")
    for event, code, spelt in ((tracked_event, "T", "PrintJob.Tracked"), (denied_event, "D", "PrintJob.Denied")):
        stored = codec.to_stored_event(event)
        assert stored.topic == code
        assert topic_of(code) == topic_of(spelt) == spelt
        # A database written before the codes holds the same state under the long spelling.
        old = StoredEvent(stored.originator_id, stored.originator_version, spelt, stored.state)
        for one in (stored, old):
            again = codec.to_domain_event(one)
            assert type(again) is type(event) and again.document == event.document
            assert decode_view(one.topic, one.state).event_class is type(event)
    # Any other event keeps its short topic; a filter on topics matches both spellings.
    assert topic_of("Printer.Registered") == "Printer.Registered"
    assert stored_spellings(["PrintJob.Tracked", "Printer.Registered", "PrintJob.Denied"]) == (
        "PrintJob.Tracked", "T", "Printer.Registered", "PrintJob.Denied", "D")


def test_the_codes_collide_with_no_topic():
    from adapters.codec import TOPIC_CODES, domain_event_topics, short_topic

    assert TOPIC_CODES == {short_topic(PrintJob.Tracked): "T", short_topic(PrintJob.Denied): "D"}
    assert len(set(TOPIC_CODES.values())) == len(TOPIC_CODES)
    assert not set(TOPIC_CODES.values()) & domain_event_topics()
    assert all(len(code) == 1 and "." not in code and ":" not in code for code in TOPIC_CODES.values())


# --- Logins in events are stored as person numbers (adapters.personal_keys.PERSON_FIELDS) -------

# Fields that name a person and are NOT person numbers, each with the reason.
_NOT_PERSON_NUMBERS = {
    ("PrintJob.Recorded", "user"): "never stored (the base of Tracked, Denied and Secured)",
    ("PrintJob.Tracked", "user"): "empty since `person` (the number) was appended",
    ("PrintJob.Denied", "user"): "empty since `person` (the number) was appended",
    ("User.Imported", "login"): "sealed with the User's own key (PERSONAL_USER_FIELDS)",
}


def test_every_event_field_that_names_a_person_is_a_person_number_or_said_why_not():
    from adapters.codec import _shape, domain_event_topics, resolve_short_topic
    from adapters.personal_keys import PERSON_FIELDS

    naming = {"user", "users", "login", "by", "admin", "subject", "recipient_users"}
    found = {(t, n) for t in domain_event_topics() for n in _shape(resolve_short_topic(t)).names if n in naming}
    numbered = {(t, n) for t, names in PERSON_FIELDS.items() for n in names}
    assert found - numbered == set(_NOT_PERSON_NUMBERS)
    assert numbered <= found  # no stale entry


class _People:
    """The people table in memory: what adapters.personal_keys.PersonalKeys answers."""

    def __init__(self) -> None:
        from adapters.personal_keys import Person

        self.Person = Person
        self.rows: dict[str, object] = {}
        self.by_number: dict[int, object] = {}

    def people_for(self, logins):
        for login in logins:
            if login not in self.rows:
                person = self.Person(len(self.rows) + 1, bytes(range(32)) if login == "alice" else bytes(32))
                self.rows[login] = person
                self.by_number[person.number] = (login, person.key)
        return {login: self.rows[login] for login in logins}

    def people_by_number(self, numbers):
        return {n: self.by_number[n] for n in numbers if n in self.by_number}

    def erased_numbers(self):
        return {}

    def digests(self, login):
        return ()


def test_a_login_attempt_stores_a_person_number_and_a_sealed_address_and_reads_back_or_as_erased():
    from domain.logins import LoginAttempt

    people = _People()
    m = mapper()
    m.people = people
    attempt = LoginAttempt.record(uuid4(), login="alice", outcome="succeeded", remote_addr="192.0.2.77", at=1)
    event = attempt.collect_events()[0]
    stored = m.to_stored_event(event)
    assert b"alice" not in stored.state and b"192.0.2.77" not in stored.state
    back = m.to_domain_event(stored)
    assert (back.login, back.remote_addr, back.outcome) == ("alice", "192.0.2.77", "succeeded")
    people.by_number[1] = 7  # erased: the row keeps only the erasure's number
    back = m.to_domain_event(stored)
    assert (back.login, back.remote_addr) == ("erased user #7", "erased")


def test_a_tokens_subject_is_a_person_number_and_its_name_is_sealed_with_their_key():
    from domain.tokens import AccessToken

    people = _People()
    m = mapper()
    m.people = people
    token = AccessToken.issue(uuid4(), name="alice-laptop-token", role="user", subject="alice", secret_hash=b"h" * 32)
    stored = m.to_stored_event(token.collect_events()[0])
    assert b"alice" not in stored.state
    back = m.to_domain_event(stored)
    assert (back.subject, back.name, back.role) == ("alice", "alice-laptop-token", "user")
    people.by_number[1] = 4  # erased
    back = m.to_domain_event(stored)
    assert (back.subject, back.name) == ("erased user #4", "erased")


def test_a_schedules_user_addresses_are_sealed_with_their_keys_and_read_as_empty_once_erased():
    from domain.report_schedules import ReportSchedule

    people = _People()
    m = mapper()
    m.people = people
    schedule = ReportSchedule.define(uuid4(), name="monthly", report="usage", parameters={}, format="csv",
                                     cron="0 6 1 * *", recipients=["alice.q@example.org", "desk@example.org"],
                                     period="previous-month", by="cli", at=1, recipient_users=("alice", ""))
    schedule.redefine(report="usage", parameters={}, format="pdf", cron="0 6 1 * *",
                      recipients=["desk@example.org", "alice.q@example.org"], period="previous-month", by="cli",
                      at=2, recipient_users=("", "alice"))
    stored = [m.to_stored_event(e) for e in schedule.collect_events()]
    assert all(b"alice" not in s.state for s in stored)
    assert all(b"desk@example.org" in s.state for s in stored)  # no known user's: the admin's configuration
    back = [m.to_domain_event(s) for s in stored]
    assert back[0].recipients == ["alice.q@example.org", "desk@example.org"]
    assert back[1].recipients == ["desk@example.org", "alice.q@example.org"]
    assert list(back[1].recipient_users) == ["", "alice"]
    people.by_number[1] = 2  # alice erased
    back = [m.to_domain_event(s) for s in stored]
    assert back[0].recipients == ["", "desk@example.org"] and back[1].recipients == ["desk@example.org", ""]
    assert list(back[0].recipient_users) == ["erased user #2", ""]


def test_an_unmatched_swipe_keeps_a_masked_card_and_the_holder_as_a_person_number():
    from adapters.personal_keys import card_digest, masked_card
    from domain.printers import Printer

    assert masked_card("04A1B2C3D4E5") == "*D4E5" and masked_card("1234567") == "*" and masked_card("") == ""
    assert card_digest(b"k" * 32, "04A1B2C3D4E5") != card_digest(b"j" * 32, "04A1B2C3D4E5")
    assert len(card_digest(b"k" * 32, "04A1B2C3D4E5")) == 16 and card_digest(None, "1") == b""
    people = _People()
    m = mapper()
    m.people = people
    from domain.costs import CostSchedule

    printer = Printer.register(uuid4(), "q1", CostSchedule(mono_page=100, colour_page=500))
    printer.collect_events()
    printer.record_unmatched_swipe(card=masked_card("04A1B2C3D4E5"), reason="nothing to release", at=2,
                                   card_digest=card_digest(b"k" * 32, "04A1B2C3D4E5"), user="alice")
    stored = m.to_stored_event(printer.collect_events()[0])
    assert b"alice" not in stored.state and b"04A1B2C3" not in stored.state
    assert m.to_domain_event(stored).user == "alice"


def test_an_author_that_is_no_person_and_a_login_stored_in_clear_are_kept():
    from domain.site_settings import SiteSettings

    m = mapper()
    m.people = _People()
    settings = SiteSettings.create(uuid4())
    settings.change("report_repeat_minutes", 15, 10, by="cli")
    settings.change("report_repeat_minutes", 20, 15, by="bob")
    _, by_cli, by_bob = [m.to_stored_event(e) for e in settings.collect_events()]
    assert b"cli" in by_cli.state and b"bob" not in by_bob.state
    assert (m.to_domain_event(by_cli).by, m.to_domain_event(by_bob).by) == ("cli", "bob")
    stored_before = mapper().to_stored_event(SiteSettings.FieldChanged(  # the version before: `by` in clear
        originator_id=uuid4(), originator_version=2, timestamp=datetime.now(timezone.utc), field="f", old=1, new=2,
        by="carol"))
    assert m.to_domain_event(stored_before).by == "carol"


@pytest.mark.parametrize("make", ["tracked", "denied", "secured"])
def test_a_known_application_is_stored_as_its_number_and_read_back_as_its_name(make):
    import msgspec

    from adapters.codec import APPLICATION_CODES

    extra = {"denied": {"reason": "no seat"}, "secured": {"expires_at": 9, "code_digest": ""}}.get(make, {})

    def event(application: str):
        return getattr(PrintJob, make)(uuid4(), user="alice", printer="p", client_host="h", submitted_at=1, pages=3,
                                       copies=1, sheets=3, colour_pages=1, duplex=False, paper="A4", size=10,
                                       pdl="pdf", cost=7, schedule=1, document="d", application=application, **extra)

    codec = mapper()
    known, other = codec.to_stored_event(event("Microsoft® Word")), codec.to_stored_event(event("Dr. Own App"))
    assert msgspec.msgpack.decode(known.state)[-1] == APPLICATION_CODES.index("Microsoft® Word") + 1
    assert msgspec.msgpack.decode(other.state)[-1] == "Dr. Own App"  # any other name: as it is
    # A number takes one byte, as an empty name does; a name, its UTF-8 bytes and one of length.
    assert len(other.state) - len(known.state) == len("Dr. Own App".encode())
    assert len(codec.to_stored_event(event("")).state) == len(known.state)
    for stored, name in ((known, "Microsoft® Word"), (other, "Dr. Own App")):
        assert codec.to_domain_event(stored).application == name
        assert decode_view(stored.topic, stored.state, stored.originator_id).application == name
    # The same event stored under its long topic (a database written before the topic codes).
    long = StoredEvent(known.originator_id, known.originator_version, f"PrintJob.{make.capitalize()}", known.state)
    assert codec.to_domain_event(long).application == "Microsoft® Word"
    assert decode_view(long.topic, long.state).application == "Microsoft® Word"


def test_the_application_numbers_are_append_only_and_unique():
    # A stored number names its application for ever: the first names keep their positions.
    from adapters.codec import APPLICATION_CODES, application_name

    assert APPLICATION_CODES[:4] == ("Microsoft® Word", "Microsoft® Excel", "Microsoft® PowerPoint",
                                     "Microsoft® Outlook")
    assert len(set(APPLICATION_CODES)) == len(APPLICATION_CODES)
    assert all(0 < len(name) <= 64 and name == name.strip() for name in APPLICATION_CODES)
    assert application_name(0) == application_name(len(APPLICATION_CODES) + 1) == ""
    assert application_name("cairo") == "cairo"


def test_every_application_number_names_a_name_the_agent_can_send():
    # The agent cleans names (versions cut off): a listed name it would never send saves nothing.
    from adapters.codec import APPLICATION_CODES
    from agent.printing_application import clean_name

    assert [name for name in APPLICATION_CODES if clean_name(name) != name] == []
    assert "Microsoft® Word for Microsoft" in APPLICATION_CODES  # "... for Microsoft 365", cleaned
