"""Network addresses in a configuration: ``host:port``, IPv6 in brackets.

A host is an IPv4 or IPv6 literal or a DNS name; names are resolved when the
node dials, not when the file is read, so a configuration checks the same on
any machine.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

__all__ = ["DEFAULT_PEER_PORT", "PeerAddress", "parse_address", "validate_host"]

DEFAULT_PEER_PORT = 11625

_HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$"
)


@dataclass(frozen=True, slots=True)
class PeerAddress:
    """A TCP endpoint: a host name or IP literal, and a port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def validate_host(text: str) -> str:
    """Accept an IPv4/IPv6 literal or a DNS name; raise ValueError otherwise."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        if not _HOSTNAME_RE.match(text):
            raise ValueError(f"{text!r} is not a host name or IP address") from None
    return text


def parse_address(text: str, *, allow_port_zero: bool = False) -> PeerAddress:
    """Parse ``host:port`` (IPv6 as ``[::1]:11625``); raise ValueError if malformed."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"{text!r} is not host:port (IPv6 is written [::1]:{DEFAULT_PEER_PORT})")
        port_text = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{text!r}: {host!r} is not an IPv6 address") from None
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise ValueError(f"{text!r} is not host:port")
        if ":" in host:
            raise ValueError(f"{text!r}: write an IPv6 address in brackets, as [::1]:{DEFAULT_PEER_PORT}")
        validate_host(host)
    if not port_text.isascii() or not port_text.isdigit():
        raise ValueError(f"{text!r}: port {port_text!r} is not a number")
    port = int(port_text)
    low = 0 if allow_port_zero else 1
    if not low <= port <= 65535:
        raise ValueError(f"{text!r}: port {port} is out of range ({low}..65535)")
    return PeerAddress(host, port)
