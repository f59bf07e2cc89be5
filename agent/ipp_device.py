"""Ask an IPP printer what it can print: one Get-Printer-Attributes (RFC 8011) for
``color-supported`` and ``sides-supported``.

A raw queue has no PPD, so CUPS never described its device; when the queue's device URI is
``ipp://`` or ``ipps://`` (``http``/``https`` too) the printer itself can tell. The request is
encoded here (a few dozen bytes) and sent with ``agent.http_exchange``, so that asking costs a
job no import of an IPP library; it is asked once per queue and cached (``printer_abilities``).
"""
from __future__ import annotations

import struct

from agent import http_exchange

GET_PRINTER_ATTRIBUTES = 0x000B
_OPERATION_GROUP, _END = 0x01, 0x03
_BOOLEAN, _KEYWORD, _URI, _CHARSET, _LANGUAGE = 0x22, 0x44, 0x45, 0x47, 0x48
_SCHEMES = {"ipp": ("http", 631), "ipps": ("https", 631), "http": ("http", 80), "https": ("https", 443)}


class NotAnIppDevice(ValueError):
    """The device URI is not one an IPP request can be sent to (socket://, lpd://, usb:// ...)."""


def _attribute(tag: int, name: str, value: bytes) -> bytes:
    name_bytes = name.encode("ascii")
    return struct.pack(">BH", tag, len(name_bytes)) + name_bytes + struct.pack(">H", len(value)) + value


def request(printer_uri: str, request_id: int = 1) -> bytes:
    """The Get-Printer-Attributes request asking for colour and sides."""
    return (struct.pack(">BBHI", 2, 0, GET_PRINTER_ATTRIBUTES, request_id) + bytes([_OPERATION_GROUP])
            + _attribute(_CHARSET, "attributes-charset", b"utf-8")
            + _attribute(_LANGUAGE, "attributes-natural-language", b"en")
            + _attribute(_URI, "printer-uri", printer_uri.encode("utf-8"))
            + _attribute(_KEYWORD, "requested-attributes", b"color-supported")
            + _attribute(_KEYWORD, "", b"sides-supported")
            + bytes([_END]))


def parse_response(data: bytes) -> dict[str, list]:
    """The attributes of an IPP response (booleans as bool, other values as text); raises
    ValueError for a malformed one or an unsuccessful status."""
    if len(data) < 9:
        raise ValueError("IPP response too short")
    status = struct.unpack(">H", data[2:4])[0]
    if status >= 0x0100:
        raise ValueError(f"IPP status 0x{status:04x}")
    attributes: dict[str, list] = {}
    position, name = 8, ""
    while position < len(data):
        tag = data[position]
        position += 1
        if tag == _END:
            return attributes
        if tag < 0x10:  # the start of another attribute group
            continue
        if position + 2 > len(data):
            raise ValueError("IPP response cut short")
        name_length = struct.unpack(">H", data[position:position + 2])[0]
        position += 2
        if name_length:
            name = data[position:position + name_length].decode("utf-8", "replace")
        position += name_length
        if position + 2 > len(data):
            raise ValueError("IPP response cut short")
        value_length = struct.unpack(">H", data[position:position + 2])[0]
        position += 2
        value = data[position:position + value_length]
        if len(value) != value_length:
            raise ValueError("IPP response cut short")
        position += value_length
        attributes.setdefault(name, []).append(
            value == b"\x01" if tag == _BOOLEAN else value.decode("utf-8", "replace"))
    raise ValueError("IPP response has no end-of-attributes tag")


def ask(device_uri: str, timeout: float = 2.0) -> tuple[bool | None, bool | None]:
    """(prints colour, prints both sides) as the printer at ``device_uri`` says; None for what it
    does not say. Raises NotAnIppDevice for a URI that is not IPP, OSError/ValueError when the
    printer cannot be asked or answers badly."""
    scheme, sep, rest = device_uri.partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        raise NotAnIppDevice(f"{scheme or device_uri}: not an IPP device URI")
    transport, default_port = _SCHEMES[scheme.lower()]
    rest = rest.split("?", 1)[0]
    url = http_exchange.split_url(f"{transport}://{rest}")
    if url.port is None:
        url = url._replace(port=default_port)
    printer_uri = f"{scheme.lower()}://{rest}"
    status, body = http_exchange.exchange(url, "POST", url.path or "/", request(printer_uri),
                                          {"Content-Type": "application/ipp"}, timeout)
    if status != 200:
        raise ValueError(f"HTTP {status} from the printer")
    attributes = parse_response(body)
    colour = attributes.get("color-supported")
    sides = attributes.get("sides-supported")
    return (bool(colour[0]) if colour else None,
            any(str(side).startswith("two-sided") for side in sides) if sides else None)
