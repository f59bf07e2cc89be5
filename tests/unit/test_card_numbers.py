"""Card numbers as network readers send them, normalised per reader (agent.card_readers)."""
import pytest

from agent.card_readers import BadCardLine, CardFormat, normalise


def wiegand26(facility: int, card: int) -> str:
    body = f"{facility:08b}{card:016b}"
    even = "1" if body[:12].count("1") % 2 else "0"
    odd = "0" if body[12:].count("1") % 2 else "1"
    return even + body + odd


@pytest.mark.parametrize("line, fmt, expected", [
    ("0004567890\r\n", CardFormat(), "4567890"),
    ("  12345  ", CardFormat(), "12345"),
    ("00BC614E", CardFormat(format="hex"), "12345678"),
    ("0x00bc614e", CardFormat(format="hex"), "12345678"),
    ("4E61BC00", CardFormat(format="hex", reverse_bytes=True), "12345678"),  # LSB first
    ("12345678", CardFormat(output="hex"), "BC614E"),
    ("CARD:12345678=77", CardFormat(strip_prefix="CARD:"), "12345678"),  # =checksum trailer
    ("12345678#", CardFormat(strip_suffix="#"), "12345678"),
    ("ID[00123456]OK", CardFormat(regex=r"\[(\d+)\]"), "123456"),
    (wiegand26(123, 45678), CardFormat(format="wiegand26"), "12345678"),
    (f"{int(wiegand26(7, 1), 2):X}", CardFormat(format="wiegand26"), "00700001"),
])
def test_each_readers_format_gives_the_number_users_hold(line, fmt, expected):
    assert normalise(line, fmt) == expected


@pytest.mark.parametrize("line, fmt", [
    ("", CardFormat()), ("\r\n", CardFormat()), ("\x00\x01\x02", CardFormat()),
    ("12AB", CardFormat()), ("xyz", CardFormat(format="hex")), ("9" * 300, CardFormat()),
    ("ID[]", CardFormat(regex=r"\[(\d+)\]")),
    ("1" * 26, CardFormat(format="wiegand26")),  # parity does not match
    ("1" * 27, CardFormat(format="wiegand26")),
])
def test_empty_and_garbage_lines_hold_no_card(line, fmt):
    with pytest.raises(BadCardLine):
        normalise(line, fmt)
