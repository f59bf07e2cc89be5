"""A queue's abilities from its PPD, read once and cached until CUPS rewrites the PPD."""
import os

from agent.printer_abilities import CACHE_FILE, abilities, read_ppd

COLOUR_DUPLEX = """*PPD-Adobe: "4.3"
*ColorDevice: True
*OpenUI *Duplex/2-Sided Printing: PickOne
*Duplex None/Off: "<</Duplex false>>setpagedevice"
*Duplex DuplexNoTumble/Long-Edge (Portrait): "<</Duplex true/Tumble false>>setpagedevice"
*CloseUI: *Duplex
"""
MONO_SIMPLEX = """*PPD-Adobe: "4.3"
*ColorDevice: False
*cupsFilter2: "application/pdf application/pdf 0 -"
"""


def test_a_ppd_says_whether_the_device_prints_colour_and_both_sides(tmp_path):
    able, unable = tmp_path / "a.ppd", tmp_path / "b.ppd"
    able.write_text(COLOUR_DUPLEX)
    unable.write_text(MONO_SIMPLEX)
    assert (read_ppd(str(able)).colour, read_ppd(str(able)).duplex) == (True, True)
    assert (read_ppd(str(unable)).colour, read_ppd(str(unable)).duplex) == (False, False)


def test_the_answer_is_cached_per_queue_until_the_ppd_changes(tmp_path):
    ppd = tmp_path / "q.ppd"
    ppd.write_text(MONO_SIMPLEX)
    first = abilities("q", str(ppd), tmp_path)
    assert (first.colour, first.duplex) == (False, False) and (tmp_path / CACHE_FILE).exists()
    assert abilities("q", str(ppd), tmp_path).source.endswith("(cached)")
    ppd.write_text(COLOUR_DUPLEX)  # lpadmin rewrote it: other size, newer time
    os.utime(ppd, ns=(os.stat(ppd).st_atime_ns, os.stat(ppd).st_mtime_ns + 10**9))
    again = abilities("q", str(ppd), tmp_path)
    assert (again.colour, again.duplex) == (True, True) and not again.source.endswith("(cached)")


def test_no_ppd_or_a_broken_cache_is_taken_as_able_and_never_fails_the_job(tmp_path):
    assert abilities("raw", None, tmp_path).colour is True
    assert abilities("gone", str(tmp_path / "missing.ppd"), tmp_path).duplex is True
    (tmp_path / CACHE_FILE).write_text("[not a dict")
    ppd = tmp_path / "q.ppd"
    ppd.write_text(MONO_SIMPLEX)
    assert abilities("q", str(ppd), tmp_path).colour is False
