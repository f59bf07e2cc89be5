"""Colour in a PDF page's content, as its operators say: shared by the structural reader
(``pdf_structure``, no pypdf) and the pypdf path (``pdf``).

A painting colour is colour when it is RGB with unequal parts, or CMYK with unequal C, M and Y
under less than full black: a rich black (100 % K over some C, M, Y) prints black, and equal
C, M and Y print grey. Images, shadings and forms drawn in a colour space are not settled
here: their pixels may still be grey (``pdf`` has Ghostscript render them).
"""
from __future__ import annotations

from agent.lazy_pattern import LazyPattern

_NUM = rb"([-+]?(?:\d+\.?\d*|\.\d+))"
_RGB_OP = LazyPattern(_NUM + rb"\s+" + _NUM + rb"\s+" + _NUM + rb"\s+(?:rg|RG|sc|SC|scn|SCN)\b")
_CMYK_OP = LazyPattern(_NUM + rb"\s+" + _NUM + rb"\s+" + _NUM + rb"\s+" + _NUM + rb"\s+(?:k|K|sc|SC|scn|SCN)\b")
# Colour space families whose values are colours (a Separation or DeviceN is judged by its inks).
COLOUR_SPACES = {"DeviceRGB", "DeviceCMYK", "CalRGB", "Lab", "DeviceN", "Separation"}
GREY_INKS = {"Black", "All", "None"}


def has_colour_ops(content: bytes) -> bool:
    for match in _RGB_OP.finditer(content):
        r, g, b = (float(x) for x in match.groups())
        if not (r == g == b):
            return True
    for match in _CMYK_OP.finditer(content):
        c, m, y, k = (float(x) for x in match.groups())
        if not (c == m == y) and k < 1:
            return True
    return False
