"""Offloads: the kernel features that let the data plane move many packets per system call.

Six of them, each of which a user can turn off (users of other implementations ask for
this when a path or a middlebox misbehaves):

  tun-tso      the kernel hands the TUN reader TCP super-packets (TUN_F_TSO4/6), which the
               data plane splits into MSS-sized segments before sealing
  tun-uso      the same for UDP (TUN_F_USO4/6, Linux 6.2 and later)
  tun-tcp-gro  received TCP segments of one flow are written to the TUN as one super-packet
  tun-udp-gro  the same for UDP datagrams of one flow (needs the kernel's USO)
  udp-gso      sealed datagrams to one peer leave in one UDP_SEGMENT send
  udp-gro      the socket hands over coalesced datagrams (UDP_GRO), split in place

With every TUN offload off the TUN is opened without IFF_VNET_HDR, exactly as before they
existed. `PYWG_DISABLE_OFFLOADS` (read by the daemon) names the ones to turn off, separated
by commas or spaces, or `all`.
"""

from __future__ import annotations

import enum
import re

__all__ = ["ALL", "ENV_DISABLE", "NAMES", "TUN_OFFLOADS", "Offload", "OffloadError",
           "names", "parse_disabled"]

ENV_DISABLE = "PYWG_DISABLE_OFFLOADS"


class OffloadError(ValueError):
    """An offload name that does not exist."""


class Offload(enum.Flag):
    NONE = 0
    TUN_TSO = enum.auto()
    TUN_USO = enum.auto()
    TUN_TCP_GRO = enum.auto()
    TUN_UDP_GRO = enum.auto()
    UDP_GSO = enum.auto()
    UDP_GRO = enum.auto()


NAMES: dict[str, Offload] = {
    "tun-tso": Offload.TUN_TSO,
    "tun-uso": Offload.TUN_USO,
    "tun-tcp-gro": Offload.TUN_TCP_GRO,
    "tun-udp-gro": Offload.TUN_UDP_GRO,
    "udp-gso": Offload.UDP_GSO,
    "udp-gro": Offload.UDP_GRO,
}
ALL = Offload.TUN_TSO | Offload.TUN_USO | Offload.TUN_TCP_GRO | Offload.TUN_UDP_GRO | \
    Offload.UDP_GSO | Offload.UDP_GRO
# Any of these needs the TUN's virtio header.
TUN_OFFLOADS = Offload.TUN_TSO | Offload.TUN_USO | Offload.TUN_TCP_GRO | Offload.TUN_UDP_GRO


def parse_disabled(text: str | None) -> Offload:
    """The offloads a PYWG_DISABLE_OFFLOADS value turns off ("" or None: none)."""
    disabled = Offload.NONE
    for word in re.split(r"[,\s]+", (text or "").strip().lower()):
        if not word:
            continue
        if word == "all":
            disabled |= ALL
        elif word in NAMES:
            disabled |= NAMES[word]
        else:
            known = ", ".join([*NAMES, "all"])
            raise OffloadError(f"unknown offload {word!r} in {ENV_DISABLE} (known: {known})")
    return disabled


def names(offloads: Offload) -> str:
    """The names of a set of offloads, for logs: "tun-tso, udp-gso" or "none"."""
    return ", ".join(name for name, flag in NAMES.items() if flag in offloads) or "none"
