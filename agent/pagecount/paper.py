"""Naming paper sizes from their dimensions or from PWG self-describing media names."""
from __future__ import annotations

from agent.lazy_pattern import LazyPattern

POINTS_PER_MM = 72 / 25.4

# Name -> (short side, long side) in millimetres.
PAPER_SIZES_MM: dict[str, tuple[float, float]] = {
    "A3": (297.0, 420.0),
    "A4": (210.0, 297.0),
    "A5": (148.0, 210.0),
    "A6": (105.0, 148.0),
    "B4": (250.0, 353.0),
    "B5": (176.0, 250.0),
    "JIS-B4": (257.0, 364.0),
    "JIS-B5": (182.0, 257.0),
    "Letter": (215.9, 279.4),
    "Legal": (215.9, 355.6),
    "Tabloid": (279.4, 431.8),
    "Executive": (184.15, 266.7),
    "Statement": (139.7, 215.9),
    "Envelope-DL": (110.0, 220.0),
    "Envelope-C5": (162.0, 229.0),
    "Envelope-10": (104.775, 241.3),
}

# Tolerance covers rounding of sizes to whole points or pixels.
TOLERANCE_MM = 2.5

_PWG_NAME = LazyPattern(r"^[a-z0-9]+_[a-z0-9.\-]+_(\d+(?:\.\d+)?)x(\d+(?:\.\d+)?)(mm|in)$")
_PPD_NAMES = {name.lower(): name for name in PAPER_SIZES_MM}
_PPD_NAMES.update({"ledger": "Tabloid", "11x17": "Tabloid", "env10": "Envelope-10",
                   "envdl": "Envelope-DL", "envc5": "Envelope-C5", "dl": "Envelope-DL"})


def paper_from_mm(width_mm: float, height_mm: float) -> str:
    """The name of the paper size with these dimensions (either orientation), or "unknown"."""
    short, long_ = sorted((width_mm, height_mm))
    for name, (s, l) in PAPER_SIZES_MM.items():
        if abs(short - s) <= TOLERANCE_MM and abs(long_ - l) <= TOLERANCE_MM:
            return name
    return "unknown"


def paper_from_points(width_pt: float, height_pt: float) -> str:
    return paper_from_mm(width_pt / POINTS_PER_MM, height_pt / POINTS_PER_MM)


def paper_from_media_name(media: str) -> str:
    """Paper name from a PWG media name (``iso_a4_210x297mm``) or a PPD one (``A4``, ``Letter``)."""
    media = media.strip()
    if not media:
        return "unknown"
    match = _PWG_NAME.match(media.lower())
    if match:
        width, height, unit = float(match.group(1)), float(match.group(2)), match.group(3)
        scale = 25.4 if unit == "in" else 1.0
        return paper_from_mm(width * scale, height * scale)
    return _PPD_NAMES.get(media.lower().split(".")[0], "unknown")
