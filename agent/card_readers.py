"""Network card readers: one card number per swipe, as a line over TCP, normalised per reader.

Common Ethernet readers in TCP mode send each card as a line of text. What that text holds
differs per reader model, so each reader has its own normalisation (the options PaperCut's
``card-no-regex``/``card-no-converter`` and SavaPage's ``card.number.format``/``first-byte``
expose), applied in this order:

1. white space and control characters around the line are dropped;
2. ``regex``: the number is the first group (or the whole match) of a search; no match is garbage;
3. ``strip_prefix`` / ``strip_suffix`` are removed, and an ``=checksum`` trailer is cut off;
4. ``format``: ``dec`` (decimal digits), ``hex`` (hex digits), or ``wiegand26`` (26 bits, as 26
   ``0``/``1`` characters or as a hex/decimal number: 1 parity bit, an 8-bit facility code, a
   16-bit card number, 1 parity bit; both parities are checked);
5. ``reverse_bytes``: the number's bytes in the other order (a reader sending LSB first);
6. ``output``: the normalised number as decimal (default) or upper-case hex; a Wiegand 26 card
   reads ``FFFCCCCC`` (facility code, 3 digits, then the card number, 5 digits).

The result is what the users' card numbers are compared with (User.CardAssigned).
"""
from __future__ import annotations

import logging
import re
import socket
import threading
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger("pageledger.card_readers")

MAX_LINE = 256
BACKOFF = (1, 2, 4, 8, 15, 30, 60)


class BadCardLine(ValueError):
    """The line holds no card number under this reader's format."""


@dataclass(frozen=True)
class CardFormat:
    format: str = "dec"  # dec | hex | wiegand26
    reverse_bytes: bool = False
    regex: str = ""
    strip_prefix: str = ""
    strip_suffix: str = ""
    output: str = "dec"  # dec | hex

    @classmethod
    def from_setting(cls, reader: dict) -> "CardFormat":
        return cls(format=str(reader.get("format", "dec")), reverse_bytes=bool(reader.get("reverse_bytes", False)),
                   regex=str(reader.get("regex", "")), strip_prefix=str(reader.get("strip_prefix", "")),
                   strip_suffix=str(reader.get("strip_suffix", "")), output=str(reader.get("output", "dec")))


def _reverse(value: int) -> int:
    length = max(1, (value.bit_length() + 7) // 8)
    return int.from_bytes(value.to_bytes(length, "big"), "little")


def _wiegand26(text: str) -> tuple[int, int]:
    if len(text) == 26 and set(text) <= {"0", "1"}:
        bits = int(text, 2)
    elif re.fullmatch(r"[0-9A-Fa-f]{1,7}", text):
        bits = int(text, 16)
    else:
        raise BadCardLine("not a Wiegand 26 frame (26 bits, or up to 7 hex digits)")
    if bits >> 26:
        raise BadCardLine("more than 26 bits")
    frame = f"{bits:026b}"
    if frame[:13].count("1") % 2 != 0 or frame[13:].count("1") % 2 != 1:
        raise BadCardLine("Wiegand 26 parity does not match")
    return int(frame[1:9], 2), int(frame[9:25], 2)


def normalise(line: str, fmt: CardFormat) -> str:
    """The card number in `line`, normalised; BadCardLine for an empty or garbage line."""
    text = "".join(ch for ch in line if ch.isprintable()).strip()
    if not text:
        raise BadCardLine("empty line")
    if len(text) > MAX_LINE:
        raise BadCardLine("line too long")
    if fmt.regex:
        match = re.search(fmt.regex, text)
        if match is None:
            raise BadCardLine("the reader's regex finds no card number")
        text = match.group(1) if match.groups() else match.group(0)
    if fmt.strip_prefix and text.startswith(fmt.strip_prefix):
        text = text[len(fmt.strip_prefix):]
    if fmt.strip_suffix and text.endswith(fmt.strip_suffix):
        text = text[: -len(fmt.strip_suffix)]
    text = text.split("=", 1)[0].strip()
    if fmt.format == "wiegand26":
        facility, card = _wiegand26(text)
        return f"{facility:03d}{card:05d}"
    if fmt.format == "hex":
        if not re.fullmatch(r"(0[xX])?[0-9A-Fa-f]{1,32}", text):
            raise BadCardLine("not a hex card number")
        value = int(text, 16)
    else:
        if not re.fullmatch(r"[0-9]{1,39}", text):
            raise BadCardLine("not a decimal card number")
        value = int(text)
    if fmt.reverse_bytes:
        value = _reverse(value)
    return f"{value:X}" if fmt.output == "hex" else str(value)


class CardReaderConnection:
    """Keeps a TCP connection to one reader and hands each line to `on_line`; reconnects with back-off."""

    def __init__(self, host: str, port: int, on_line: Callable[[str], None], *, timeout: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.on_line = on_line
        self.timeout = timeout
        self.connected = threading.Event()

    def run(self, stop: threading.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                with socket.create_connection((self.host, self.port), timeout=5) as sock:
                    sock.settimeout(1.0)
                    failures = 0
                    self.connected.set()
                    log.info("card reader %s:%d connected", self.host, self.port)
                    self._read(sock, stop)
                log.warning("card reader %s:%d closed the connection", self.host, self.port)
            except OSError as exc:
                log.warning("card reader %s:%d not reached (%s)", self.host, self.port, exc)
            self.connected.clear()
            pause = BACKOFF[min(failures, len(BACKOFF) - 1)]
            failures += 1
            stop.wait(pause)

    def _read(self, sock: socket.socket, stop: threading.Event) -> None:
        buffer = b""
        while not stop.is_set():
            try:
                chunk = sock.recv(4096)
            except socket.timeout:
                continue
            if not chunk:
                return
            buffer += chunk
            *lines, buffer = re.split(rb"\r\n|\r|\n", buffer)
            if len(buffer) > 4 * MAX_LINE:  # a reader that never ends its line: garbage
                lines.append(buffer)
                buffer = b""
            for raw in lines:
                self.on_line(raw.decode("latin-1"))
