"""What a BGP message ExaBGP sent says, read from its bytes (RFC 4271, 4760).

ExaBGP hands sent UPDATEs and NOTIFICATIONs to the API as raw packets (``send {
packets; }``): decoding them into objects and JSON for us was a large share of its
work withdrawing 10,000 routes on SIGTERM (launcher fix 7). The announcer needs
little of them: the prefixes an UPDATE withdraws (every withdrawal must be on the
wire before the Cease), whether it is an End-of-RIB, and a NOTIFICATION's code,
subcode and RFC 8203 text. No session here negotiates ADD-PATH, so NLRIs carry no
path identifier.
"""

from __future__ import annotations

import ipaddress

from announcer.core.session import Notification

MP_UNREACH_NLRI = 15
EXTENDED_LENGTH = 0x10
_AFI = {1: "ipv4", 2: "ipv6"}
_SAFI = {1: "unicast", 2: "multicast"}
_SHUTDOWN = {(6, 2), (6, 4)}  # Cease/Administrative Shutdown and Reset carry RFC 8203 text


class MalformedPacket(ValueError):
    """The bytes are not the BGP message they claim to be."""


def update_sent(body: bytes) -> tuple[str, ...] | str:
    """The prefixes an UPDATE body withdraws, or the family of the End-of-RIB it is
    (RFC 4724 2)."""
    withdrawn_end = 2 + _u16(body, 0)
    attrs_end = withdrawn_end + 2 + _u16(body, withdrawn_end)
    if attrs_end > len(body):
        raise MalformedPacket("UPDATE lengths run past its end")
    withdrawn = _prefixes(body[2:withdrawn_end], 4)
    attrs = _attributes(body[withdrawn_end + 2 : attrs_end])
    unreach = attrs.get(MP_UNREACH_NLRI)
    if not withdrawn and attrs_end == len(body):
        if not attrs:
            return "ipv4 unicast"
        if unreach is not None and len(unreach) == 3 and len(attrs) == 1:
            return _family(unreach)
    if unreach is not None:
        if len(unreach) < 3:
            raise MalformedPacket("MP_UNREACH_NLRI shorter than its AFI and SAFI")
        withdrawn += _prefixes(unreach[3:], 16 if _u16(unreach, 0) == 2 else 4)
    return tuple(withdrawn)


def notification_sent(body: bytes) -> Notification:
    """A NOTIFICATION body: code, subcode and, for a shutdown, its RFC 8203 text."""
    if len(body) < 2:
        raise MalformedPacket("NOTIFICATION shorter than its code and subcode")
    code, subcode, data = body[0], body[1], body[2:]
    text = ""
    if (code, subcode) in _SHUTDOWN and data and data[0] == len(data) - 1:
        text = data[1:].decode(errors="replace")
    return Notification("sent", code, subcode, text)


def _attributes(data: bytes) -> dict[int, bytes]:
    """Path attributes by type code (each appears once in a valid UPDATE)."""
    out = {}
    i = 0
    while i < len(data):
        if i + 3 > len(data):
            raise MalformedPacket("attribute header runs past the attributes")
        flags, kind = data[i], data[i + 1]
        if flags & EXTENDED_LENGTH:
            length, start = _u16(data, i + 2), i + 4
        else:
            length, start = data[i + 2], i + 3
        if start + length > len(data):
            raise MalformedPacket("attribute runs past the attributes")
        out[kind] = data[start : start + length]
        i = start + length
    return out


def _prefixes(data: bytes, size: int) -> list[str]:
    """The prefixes packed in ``data`` (length in bits, then the bytes it needs)."""
    out = []
    i = 0
    while i < len(data):
        bits = data[i]
        end = i + 1 + (bits + 7) // 8
        if bits > size * 8 or end > len(data):
            raise MalformedPacket(f"prefix of {bits} bits does not fit")
        address = data[i + 1 : end] + bytes(size - (end - i - 1))
        if size == 4:
            out.append(f"{address[0]}.{address[1]}.{address[2]}.{address[3]}/{bits}")
        else:
            out.append(f"{ipaddress.IPv6Address(address)}/{bits}")
        i = end
    return out


def _family(unreach: bytes) -> str:
    afi, safi = _u16(unreach, 0), unreach[2]
    return f"{_AFI.get(afi, str(afi))} {_SAFI.get(safi, str(safi))}"


def _u16(data: bytes, at: int) -> int:
    if at + 2 > len(data):
        raise MalformedPacket("a length field runs past the end")
    return int.from_bytes(data[at : at + 2], "big")
