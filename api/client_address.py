"""Who is on the other end: the TCP peer, or, behind a trusted reverse proxy, its client.

X-Forwarded-For is anyone's to write, so it is believed only as far as it was written by
proxies the admin named (setting `trusted_proxies`): walking from the TCP peer leftwards
through the header, the first address that is not a trusted proxy is the client. With no
trusted proxies the header is ignored, and a client cannot pick its own throttle key.
"""
from __future__ import annotations

import ipaddress
from typing import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientAddress:
    """`ClientAddress(networks)(peer, forwarded_for)`: the client's address as a string."""

    def __init__(self, trusted: Sequence[Network] = ()) -> None:
        self.trusted = tuple(trusted)

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip.version == net.version and ip in net for net in self.trusted)

    def __call__(self, peer: str, forwarded_for: str | None) -> str:
        if not self.trusted or not forwarded_for or not self._is_trusted(peer):
            return peer
        client = peer
        for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return client  # not an address: the last proxy we trust is as far as we can see
            client = hop
            if not self._is_trusted(hop):
                return hop
        return client  # every hop is a proxy of ours: the left-most one
