"""Pure pricing of print jobs.

Money is an int in 1/10,000 of the currency unit (so 0.05 is 500; see domain.units): exact,
compact in events, and summable without rounding drift.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class CostSchedule:
    """Prices per printed page (impression) for one printer, as in force from one version on."""

    mono_page: int
    colour_page: int
    # Per paper size overrides, e.g. {"A3": (2000, 10000)} as (mono, colour).
    by_paper: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Percentage taken off the whole job when it is printed duplex.
    duplex_discount_pct: int = 0

    def __post_init__(self) -> None:
        if self.mono_page < 0 or self.colour_page < 0:
            raise ValueError("page prices cannot be negative")
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
        )

    def price(self, *, pages: int, colour_pages: int, copies: int, duplex: bool, paper: str) -> int:
        """Cost of a job: every impression of every copy at its paper size's mono or colour price."""
        mono_price, colour_price = self.by_paper.get(paper, (self.mono_page, self.colour_page))
        colour = min(colour_pages, pages)
        per_copy = (pages - colour) * mono_price + colour * colour_price
        total = per_copy * copies
        if duplex and self.duplex_discount_pct:
            # Round half up to the nearest 1/10,000 unit.
            total = (total * (100 - self.duplex_discount_pct) + 50) // 100
        return total


def sheets_for(*, pages: int, copies: int, duplex: bool) -> int:
    """Sheets of paper: impressions per copy, two to a sheet when duplex, times copies (once)."""
    per_copy = (pages + 1) // 2 if duplex else pages
    return per_copy * copies
