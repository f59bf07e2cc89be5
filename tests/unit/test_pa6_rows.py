"""The PA6 migration's pure parts: the mapping file, the site's time zone, the row checks
(the fast path and the full checks must give the same answers), and batching by key."""
from __future__ import annotations

import random
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from domain.costs import CostSchedule
from tools.pa6_migrate.mapping import MappingError, load_mapping, parse_mapping
from tools.pa6_migrate.inspect import suggest_mapping
from tools.pa6_migrate.replay import _unsplit
from tools.pa6_migrate.rows import Bad, JobRows, Schedules, SiteZone
from tools.pa6_migrate.source import Column, Raw, Table, redacted

NOW = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp() * 1e6)


def utc_micros(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1_000_000)


# --- the site's zone ------------------------------------------------------------------------

def test_a_time_the_clocks_skipped_is_read_forward_or_set_aside():
    forward = SiteZone("Europe/Berlin")
    assert forward.to_micros(datetime(2021, 3, 28, 2, 30)) == utc_micros("2021-03-28T01:30:00+00:00")
    assert forward.gaps == 1
    with pytest.raises(Bad, match="does not exist"):
        SiteZone("Europe/Berlin", nonexistent="reject").to_micros(datetime(2021, 3, 28, 2, 30))


def test_a_time_the_clocks_repeated_is_read_as_the_chosen_occurrence():
    assert SiteZone("Europe/Berlin").to_micros(datetime(2021, 10, 31, 2, 30)) == utc_micros("2021-10-31T00:30:00+00:00")
    later = SiteZone("Europe/Berlin", ambiguous="later")
    assert later.to_micros(datetime(2021, 10, 31, 2, 30)) == utc_micros("2021-10-31T01:30:00+00:00")
    assert later.overlaps == 1


def test_ordinary_times_of_a_zone_with_half_hour_changes_are_exact():
    zone = SiteZone("Australia/Lord_Howe")  # summer time is +30 minutes
    for local in (datetime(2021, 1, 15, 12, 0), datetime(2021, 7, 15, 12, 0), datetime(2021, 4, 4, 1, 45)):
        expected = local.replace(tzinfo=zone.zone, fold=0).astimezone(timezone.utc)
        assert zone.to_micros(local) == int(expected.timestamp() * 1_000_000)


def test_the_cached_offsets_agree_with_zoneinfo_on_every_quarter_hour_around_changes():
    # The offsets are cached by local day: days that hold a change (also at midnight, as in
    # America/Santiago and Asia/Beirut) must still be read exactly, whichever day came first.
    for name in ("Europe/Berlin", "America/Santiago", "Asia/Beirut", "Australia/Lord_Howe"):
        zone = SiteZone(name)
        days = [datetime(2021, m, d) for m in range(1, 13) for d in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
                                                                          15, 24, 25, 26, 27, 28)]
        random.Random(7).shuffle(days)
        for day in days:
            for quarter in range(96):
                local = day.replace(hour=quarter // 4, minute=quarter % 4 * 15)
                # fold=0 is the defaults' reading: the earlier occurrence, and a skipped time forward
                offset = local.replace(tzinfo=zone.zone, fold=0).utcoffset()
                expected = int((local - datetime(1970, 1, 1) - offset).total_seconds() * 1_000_000)
                assert zone.to_micros(local) == expected, (name, local)


def test_an_unknown_zone_is_refused():
    with pytest.raises(ValueError, match="not a time zone"):
        SiteZone("Mars/Olympus")


def test_month_boundaries_are_local_midnights():
    zone = SiteZone("America/New_York")
    assert zone.month_starts(["2024-01"]) == [utc_micros("2024-01-01T05:00:00+00:00"),
                                              utc_micros("2024-02-01T05:00:00+00:00")]


# --- the mapping ----------------------------------------------------------------------------

def test_both_shipped_mappings_load():
    assert load_mapping("pa6-default").cost_schedules is not None
    flat = load_mapping("job-manager-export")
    assert flat.jobs.values["printer"].constant == "Job Manager export" and flat.jobs.has("unit_cost")


@pytest.mark.parametrize("text, words", [
    ("[users]\ntable = 'U'\nkey = 'id'\nlogin = 'l'\n", "[jobs] section is required"),
    ("[jobs]\ntable = 'J'\nkey = 'id'\n", "lacks"),
    ("[jobs]\ntable='J'\nkey='k'\nuser='u'\nprinter='p'\ntime='t'\ncopies='c'\ncost='x'\n", "exactly one of pages"),
    ("[jobs]\ntable='J'\nfrom='J'\nkey='k'\nuser='u'\nprinter='p'\ntime='t'\ncopies='c'\ncost='x'\npages='n'\n",
     "exactly one of table or from"),
    ("[jobs]\ntable='J'\nkey='k'\nuser='u'\nprinter='p'\ntime='t'\ncopies='c'\ncost='x'\npages='n'\nsize='s'\n",
     "unknown entries size"),
    ("[jobs]\ntable='J'\nkey={value=1}\nuser='u'\nprinter='p'\ntime='t'\ncopies='c'\ncost='x'\npages='n'\n",
     "key must be a column"),
    ("[jobs]\ntable='J'\nkey='k'\nuser=3\nprinter='p'\ntime='t'\ncopies='c'\ncost='x'\npages='n'\n", "user must be"),
    ("[jobs]\ntable='J'\nkey='k'\nuser='u'\nprinter='p'\ntime='t'\ncopies='c'\ncost='x'\npages='n'\n"
     "[rules]\ncost_tolerance='lots'\n", "cost_tolerance"),
])
def test_a_wrong_mapping_is_refused_naming_the_entry(tmp_path, text, words):
    path = tmp_path / "m.toml"
    path.write_text(text)
    with pytest.raises(MappingError, match=words.replace("[", r"\[").replace("]", r"\]")):
        load_mapping(str(path))


def test_identifiers_are_quoted_so_a_column_cannot_smuggle_sql():
    m = parse_mapping({"jobs": {"table": 'J"; DROP TABLE x; --', "key": "k", "user": 'u"x', "printer": "p",
                                "time": "t", "copies": "c", "cost": "x", "pages": "n"}})
    sql = m.jobs.select()
    assert 'FROM "J""; DROP TABLE x; --"' in sql and '"u""x" AS "user"' in sql


def test_passwords_never_leave_the_connection_string():
    assert redacted("DRIVER={X};SERVER=s;UID=sa;PWD=s3cret;") == "DRIVER={X};SERVER=s;UID=sa;PWD=***;"
    assert "hush" not in redacted("Driver=X;Password={hu;sh};Server=y")


def test_inspect_suggests_the_job_table_and_its_columns():
    cols = lambda *names: tuple(Column(n, "varchar", True) for n in names)  # noqa: E731
    text = suggest_mapping([Table("", "Users", cols("UserID", "LoginName", "FullName"), 10),
                            Table("", "Jobs", cols("JobID", "UserName", "Printer", "PrintDate", "Pages", "Copies",
                                                   "TotalCost"), 5000)])
    parsed = parse_mapping(__import__("tomllib").loads(text))
    assert parsed.jobs.source == '"Jobs"' and parsed.jobs.values["time"].sql == '"PrintDate"'


# --- the row checks -------------------------------------------------------------------------

def _rows(n: int, seed: int = 3) -> list[dict]:
    """Rows by mapped name, good and bad, in every type a driver returns."""
    rnd = random.Random(seed)
    names = (None, "alice", " bob", Raw(b"carol"), Raw(b"J\xfcrgen"), "", "d\x07ave", "x" * 300)
    docs = (None, "", "report.pdf", Raw(b"Caf\xe9"), "tab\there", "bell\x07", "y" * 2000)
    times = (datetime(2020, 5, 1, 9, 0), "2020-05-01 09:00:00", Raw(b"2020-05-01T09:00:00"), "05/01/2020 09:00",
             None, datetime(2030, 1, 1), datetime(1960, 1, 1), datetime(2021, 3, 28, 2, 30),
             "2020-05-01 09:00:00+02:00", "05/01/2020 09:00:00 AM")
    ints = (None, 0, 1, 2, 3, -1, 10**7, Decimal(2), "3", Raw(b"4"), 2.5, True)
    flags = (None, True, False, 0, 1, 2, "yes", "N", Raw(b"1"), "maybe")
    costs = (None, Decimal("0.1000"), Decimal("0.15"), 0.1, "0.10", Raw(b"0.2"), Decimal("-1"), "abc",
             Decimal("NaN"), 5, True, 1, 1.0)  # True == 1 == 1.0: a remembered amount must not answer for another type
    rates = (None, Decimal("0.0500"), 0.05, "0.05", Raw(b"x"))
    out = []
    for i in range(n):
        row = {"key": rnd.choice((i, i, i, str(i), None, Decimal(i), Raw(str(i).encode()))),
               "user": rnd.choice(names), "user_ref": rnd.choice((None, 7, 1)),
               "printer": rnd.choice(("q1", "q2", None, " q3")), "time": rnd.choice(times),
               "pages": rnd.choice(ints), "total_pages": rnd.choice(ints), "copies": rnd.choice(ints),
               "cost": rnd.choice(costs), "colour_pages": rnd.choice(ints), "colour": rnd.choice(flags),
               "duplex": rnd.choice(flags), "document": rnd.choice(docs),
               "client_host": rnd.choice(("pc1", None, Raw(b"pc2"), "")),
               "paper": rnd.choice(("A4", None, "A3", Raw(b"Letter"), "z" * 40)),
               "billing_code": rnd.choice((None, "P-1", "")), "unit_cost": rnd.choice(rates)}
        if rnd.random() < 0.7:  # a plain good row, with at most one value taken from the odd ones above
            pages, copies = rnd.choice((1, 2, 3, 10)), rnd.choice((1, 2))
            good = {"key": i, "user": "alice", "printer": "q1", "time": rnd.choice(times[:3]), "pages": pages,
                    "total_pages": pages * copies, "copies": copies, "colour_pages": 0, "colour": False,
                    "duplex": False, "document": "a.pdf", "client_host": "pc1", "paper": "A4",
                    "billing_code": "P-1", "unit_cost": Decimal("0.0500"),
                    "cost": Decimal(pages * copies * 500) / 10_000}
            if rnd.random() < 0.5:
                name = rnd.choice(list(good))
                good[name] = row[name]
            row.update(good)
        elif isinstance(row["total_pages"], int) and isinstance(row["unit_cost"], Decimal):
            row["cost"] = row["unit_cost"] * row["total_pages"]
        out.append(row)
    return out


@pytest.mark.parametrize("mapping", ["pa6-default", "job-manager-export"])
def test_the_fast_path_gives_the_full_checks_answer_for_every_row(mapping):
    m = load_mapping(mapping)
    schedules = Schedules()
    schedules.add("q1", [0], [CostSchedule(mono_page=500, colour_page=2500, duplex_discount_pct=10)], [1])
    parser = JobRows(m, SiteZone("Europe/Berlin"), NOW, schedules, duplicates={7})
    names = m.jobs.selected()
    accepted = fast_accepted = 0
    for values in _rows(12_000):
        row = tuple(values[n] for n in names)
        try:
            slow = parser.checked(row)._asdict()
        except Bad as exc:
            slow = str(exc)
        try:
            fast = parser.job(row)._asdict()
        except Bad as exc:
            fast = str(exc)
        assert fast == slow, row
        accepted += isinstance(slow, dict)
        fast_accepted += parser._fast(row) is not None if isinstance(slow, dict) else 0
    assert accepted > 2000 and fast_accepted > 0.8 * accepted, (accepted, fast_accepted)


def test_batches_never_split_the_rows_of_one_key():
    rows = [(k,) for k in (1, 2, 3, 3, 3, 4, 5, 5, 6)]
    batches = list(_unsplit(iter([rows[:4], rows[4:]]), lambda r: r[0], 2))
    assert [r for b in batches for r in b] == rows
    for a, b in zip(batches, batches[1:]):
        assert a[-1][0] != b[0][0]
