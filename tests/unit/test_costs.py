import pytest

from domain.costs import CostSchedule, sheets_for
from domain.units import format_money, parse_money


def test_price_counts_every_copy_once_at_mono_and_colour_prices():
    s = CostSchedule(mono_page=500, colour_page=2500)
    # 4 impressions, 1 colour, 3 copies: (3*500 + 1*2500) * 3
    assert s.price(pages=4, colour_pages=1, copies=3, duplex=False, paper="A4") == 12_000


def test_paper_size_override_and_duplex_discount_round_half_up():
    s = CostSchedule(mono_page=500, colour_page=2500, by_paper={"A3": (1001, 5000)}, duplex_discount_pct=15)
    assert s.price(pages=1, colour_pages=0, copies=1, duplex=True, paper="A3") == 851  # 850.85 → 851
    assert s.price(pages=1, colour_pages=0, copies=1, duplex=False, paper="A3") == 1001
    assert s.price(pages=2, colour_pages=0, copies=1, duplex=True, paper="A4") == 850


def test_colour_pages_never_exceed_pages_in_pricing():
    s = CostSchedule(mono_page=1, colour_page=10)
    assert s.price(pages=2, colour_pages=5, copies=1, duplex=False, paper="A4") == 20


@pytest.mark.parametrize("pages,copies,duplex,sheets", [
    (1, 1, False, 1), (4, 3, False, 12), (4, 3, True, 6), (5, 2, True, 6), (0, 4, True, 0),
])
def test_sheets_apply_duplex_per_copy_and_copies_once(pages, copies, duplex, sheets):
    assert sheets_for(pages=pages, copies=copies, duplex=duplex) == sheets


def test_invalid_schedules_are_refused():
    with pytest.raises(ValueError):
        CostSchedule(mono_page=-1, colour_page=0)
    with pytest.raises(ValueError):
        CostSchedule(mono_page=1, colour_page=1, duplex_discount_pct=101)


def test_money_parses_and_formats_exactly():
    assert parse_money("0.05") == 500
    assert parse_money("12") == 120_000
    assert format_money(120_500) == "12.0500"
    assert format_money(-5) == "-0.0005"
    for bad in ("abc", "0.00001", "-1", "nan"):
        with pytest.raises(ValueError):
            parse_money(bad)


def test_a_new_schedule_prices_a_page_at_most_the_bound_but_a_stored_one_stays_readable():
    from domain.costs import MAX_PAGE_PRICE

    for prices in ({"mono_page": MAX_PAGE_PRICE + 1, "colour_page": 0},
                   {"mono_page": 0, "colour_page": MAX_PAGE_PRICE + 1},
                   {"mono_page": 0, "colour_page": 0, "by_paper": {"A3": (0, MAX_PAGE_PRICE + 1)}}):
        with pytest.raises(ValueError, match="at most"):
            CostSchedule(**prices)
    stored = {"mono_page": MAX_PAGE_PRICE * 10, "colour_page": 0, "by_paper": {}, "duplex_discount_pct": 0}
    assert CostSchedule.from_dict(stored).mono_page == MAX_PAGE_PRICE * 10


def test_the_dearest_largest_job_fits_bigint_money_thousands_of_times_and_its_sheets_an_integer():
    from domain.costs import MAX_IMPRESSIONS, MAX_PAGE_PRICE

    dearest = CostSchedule(mono_page=MAX_PAGE_PRICE, colour_page=MAX_PAGE_PRICE)
    cost = dearest.price(pages=MAX_IMPRESSIONS, colour_pages=MAX_IMPRESSIONS, copies=1, duplex=False, paper="A4")
    assert cost * 9_000 < 2 ** 63 - 1
    assert sheets_for(pages=MAX_IMPRESSIONS, copies=1, duplex=False) * 2_000 < 2 ** 31 - 1
