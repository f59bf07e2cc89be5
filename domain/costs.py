"""Pure pricing of print jobs.

Money is an int in 1/10,000 of the currency unit (so 0.05 is 500; see domain.units): exact,
compact in events, and summable without rounding drift.
"""
from __future__ import annotations

from dataclasses import InitVar, asdict, dataclass, field

# The bounds that keep every computed figure of a job inside its column (INTEGER sheets and
# pages, BIGINT money) with room for the usage sums: at most MAX_IMPRESSIONS impressions
# (pages × copies) a job, at most MAX_PAGE_PRICE a page (100,000 currency units: weak
# currencies included). Sheets then fit an INTEGER 2,147 times over and a job's cost (at most
# 10^15 units) a BIGINT 9,223 times over.
MAX_IMPRESSIONS = 1_000_000
MAX_PAGE_PRICE = 1_000_000_000  # 1/10,000 currency units


@dataclass(frozen=True)
class CostSchedule:
    """Prices per printed page (impression) for one printer, as in force from one version on."""

    mono_page: int
    colour_page: int
    # Per paper size overrides, e.g. {"A3": (2000, 10000)} as (mono, colour).
    by_paper: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Percentage taken off the whole job when it is printed duplex.
    duplex_discount_pct: int = 0
    # Stored schedules are read as they were recorded, even one priced above today's bound.
    bounded: InitVar[bool] = True

    def __post_init__(self, bounded: bool) -> None:
        if self.mono_page < 0 or self.colour_page < 0:
            raise ValueError("page prices cannot be negative")
        prices = (self.mono_page, self.colour_page, *(p for pair in self.by_paper.values() for p in pair))
        if bounded and max(prices) > MAX_PAGE_PRICE:
            raise ValueError(f"a page costs at most {MAX_PAGE_PRICE // 10_000:,} currency units")
        if not 0 <= self.duplex_discount_pct <= 100:
            raise ValueError("duplex discount must be between 0 and 100 percent")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["by_paper"] = {k: list(v) for k, v in self.by_paper.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "CostSchedule":
        return cls(
            mono_page=int(data["mono_page"]),
            colour_page=int(data["colour_page"]),
            by_paper={k: (int(v[0]), int(v[1])) for k, v in (data.get("by_paper") or {}).items()},
            duplex_discount_pct=int(data.get("duplex_discount_pct", 0)),
            bounded=False,
        )

    def price(self, *, pages: int, colour_pages: int, copies: int, duplex: bool, paper: str,
              paper_counts: dict[str, tuple[int, int]] | None = None) -> int:
        """Cost of a job: every impression of every copy at its paper size's mono or colour price.

        ``paper_counts`` (paper -> (impressions, colour impressions) per copy), when given,
        prices each size's pages at that size's rates; else every page is on ``paper``.
        """
        counts = paper_counts.items() if paper_counts else ((paper, (pages, colour_pages)),)
        per_copy = 0
        for size, (size_pages, size_colour) in counts:
            mono_price, colour_price = self.by_paper.get(size, (self.mono_page, self.colour_page))
            colour = min(size_colour, size_pages)
            per_copy += (size_pages - colour) * mono_price + colour * colour_price
        total = per_copy * copies
        if duplex and self.duplex_discount_pct:
            # Round half up to the nearest 1/10,000 unit.
            total = (total * (100 - self.duplex_discount_pct) + 50) // 100
        return total


def sheets_for(*, pages: int, copies: int, duplex: bool) -> int:
    """Sheets of paper: impressions per copy, two to a sheet when duplex, times copies (once)."""
    per_copy = (pages + 1) // 2 if duplex else pages
    return per_copy * copies


def job_cost(schedule: CostSchedule, *, pages: int, colour_pages: int, copies: int, duplex: bool, paper: str,
             paper_counts: dict | None, colour_known: bool, unknown_colour: str) -> int:
    """What a job costs on `schedule`, from its facts as stored (paper_counts paper ->
    [impressions, colour impressions] per copy): every page as colour when its colour is unknown
    and the site charges unknown colour as colour. Used when a job is tracked and when a held
    job prints (priced where it printed)."""
    as_colour = not colour_known and unknown_colour == "colour"
    counts = None if paper_counts is None else {
        name: (int(n), int(n) if as_colour else int(c)) for name, (n, c) in paper_counts.items()}
    return schedule.price(pages=pages, colour_pages=pages if as_colour else colour_pages, copies=copies,
                          duplex=duplex, paper=paper, paper_counts=counts)
