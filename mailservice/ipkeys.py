"""The key a per-address limit counts under: an IPv4 address, or the /64 network of an IPv6 address (pure).

One IPv6 subscriber line or VPS gets a whole /64 (RFC 6177): counting single addresses there would give one
client 2^64 fresh quotas (tryout F18). An IPv4-mapped IPv6 address counts as its IPv4 address.
"""

from __future__ import annotations

import ipaddress

__all__ = ["IPV6_PREFIX", "limit_key"]

IPV6_PREFIX = 64


def limit_key(ip: str) -> str:
    """``ip`` as the per-address limits count it; anything that is not an address is kept as it is."""
    try:
        address = ipaddress.ip_address(ip.strip().split("%", 1)[0])
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)
