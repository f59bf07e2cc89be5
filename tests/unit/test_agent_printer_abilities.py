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
    # A raw queue whose device cannot be asked: colour not known (neither assumed colour nor grey).
    assert abilities("raw", None, tmp_path).colour is None
    assert abilities("raw", None, tmp_path, "socket://10.0.0.9:9100").colour is None
    assert abilities("raw", None, tmp_path, "socket://10.0.0.9:9100").duplex is True
    # cupsd names a PPD for every queue: a raw queue's does not exist.
    assert abilities("gone", str(tmp_path / "missing.ppd"), tmp_path).colour is None
    assert abilities("gone", str(tmp_path / "missing.ppd"), tmp_path).duplex is True
    (tmp_path / CACHE_FILE).write_text("[not a dict")
    ppd = tmp_path / "q.ppd"
    ppd.write_text(MONO_SIMPLEX)
    assert abilities("q", str(ppd), tmp_path).colour is False


def test_an_ipp_request_and_answer_are_encoded_as_rfc_8011_says():
    from agent.ipp_device import parse_response, request

    sent = request("ipp://localhost:631/ipp/print", request_id=7)
    assert sent[:8] == b"\x02\x00\x00\x0b\x00\x00\x00\x07" and sent.endswith(b"\x03")
    assert b"\x45\x00\x0bprinter-uri\x00\x1dipp://localhost:631/ipp/print" in sent
    answer = (b"\x02\x00\x00\x00\x00\x00\x00\x07\x01\x04"
              b"\x22\x00\x0fcolor-supported\x00\x01\x00"
              b"\x44\x00\x0fsides-supported\x00\x09one-sided"
              b"\x44\x00\x00\x00\x13two-sided-long-edge\x03")
    assert parse_response(answer) == {"color-supported": [False], "sides-supported": ["one-sided", "two-sided-long-edge"]}
    import pytest

    with pytest.raises(ValueError):
        parse_response(answer[:30])  # cut short
    with pytest.raises(ValueError):
        parse_response(b"\x02\x00\x04\x06\x00\x00\x00\x07\x03")  # client-error-not-found
