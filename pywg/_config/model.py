"""The configuration model: what a device is configured to be, and changes to it.

Everything here is an immutable value. A DeviceConfig holds the device's private key,
listen port, fwmark and its peers in insertion order; a PeerConfig holds one peer's keys,
endpoint, persistent keepalive and allowed IPs (normalised as wg shows them: host bits
cleared, in the order they were inserted). A Change is a validated `set` transaction,
an ordered list of the operations the UAPI names; pywg/_config/apply.py applies it.

Keys compare in constant time, and the private and preshared keys never show in a repr.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import ClassVar, NamedTuple

from pywg._constants import NOISE_PUBLIC_KEY_LEN
from pywg._protocol.crypto import public_key as _x25519_public_key
from pywg._protocol.endpoint import Endpoint, IPAddress, format_ip, format_packed

__all__ = [
    "AddAllowedIP",
    "AllowedIP",
    "Change",
    "DeviceConfig",
    "DeviceOp",
    "Endpoint",
    "IPAddress",
    "Key",
    "PeerChange",
    "PeerConfig",
    "PeerOp",
    "PresharedKey",
    "PrivateKey",
    "PublicKey",
    "RemoveAllowedIP",
    "RemovePeer",
    "ReplaceAllowedIPs",
    "ReplacePeers",
    "SetEndpoint",
    "SetFwmark",
    "SetListenPort",
    "SetPersistentKeepalive",
    "SetPresharedKey",
    "SetPrivateKey",
    "UpdateOnly",
    "format_ip",
    "format_network",
]

class AllowedIP(NamedTuple):
    """An IP prefix as cryptokey routing keeps it: the family (4 or 6), the address packed
    (4 or 16 bytes, host bits cleared) and the prefix length. A tuple, not an
    ipaddress network: a gateway's configuration holds millions, and `wg setconf` parses
    them one by one, so both their size and their making count. `network` gives the
    ipaddress form for the tools that need its arithmetic."""

    family: int
    address: bytes
    cidr: int

    @property
    def version(self) -> int:
        return self.family

    @property
    def prefixlen(self) -> int:
        return self.cidr

    @property
    def network_address(self) -> IPAddress:
        return ipaddress.ip_address(self.address)

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network((self.address, self.cidr))

    def __str__(self) -> str:
        return f"{format_packed(self.address)}/{self.cidr}"

    @classmethod
    def of(cls, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> AllowedIP:
        return cls(network.version, network.network_address.packed, network.prefixlen)


def format_network(network: AllowedIP) -> str:
    return str(network)


class Key:
    """32 bytes of key material, compared in constant time."""

    __slots__ = ("_raw",)
    secret: ClassVar[bool] = False

    def __init__(self, raw: bytes) -> None:
        if len(raw) != NOISE_PUBLIC_KEY_LEN:
            raise ValueError(f"a key is {NOISE_PUBLIC_KEY_LEN} bytes, not {len(raw)}")
        self._raw = bytes(raw)

    @property
    def raw(self) -> bytes:
        return self._raw

    def hex(self) -> str:
        return self._raw.hex()

    def base64(self) -> str:
        return base64.b64encode(self._raw).decode("ascii")

    def is_zero(self) -> bool:
        return hmac.compare_digest(self._raw, bytes(NOISE_PUBLIC_KEY_LEN))

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Key)
        return hmac.compare_digest(self._raw, other._raw)

    def __hash__(self) -> int:
        # Public keys index every peer lookup: the bytes object keeps its hash once made,
        # and a gateway's million keys keep no int of their own. (Dict lookups compare
        # with __eq__, which is constant-time, after a hash match.)
        return hash(self._raw)

    def __repr__(self) -> str:
        shown = "<secret>" if self.secret else self.base64()
        return f"{type(self).__name__}({shown})"


class PublicKey(Key):
    __slots__ = ()


class PresharedKey(Key):
    __slots__ = ()
    secret = True


class PrivateKey(Key):
    """An X25519 private key, clamped on the way in as wireguard-go and the kernel do."""

    __slots__ = ()
    secret = True

    def __init__(self, raw: bytes) -> None:
        clamped = bytearray(raw)
        if len(clamped) == NOISE_PUBLIC_KEY_LEN:
            clamped[0] &= 248
            clamped[31] = (clamped[31] & 127) | 64
        super().__init__(bytes(clamped))

    def public_key(self) -> PublicKey:
        return PublicKey(_x25519_public_key(self.raw))


@dataclass(frozen=True, slots=True)
class PeerConfig:
    public_key: PublicKey
    preshared_key: PresharedKey | None = None
    endpoint: Endpoint | None = None
    persistent_keepalive_interval: int = 0
    allowed_ips: tuple[AllowedIP, ...] = ()


@dataclass(frozen=True)
class DeviceConfig:
    """A device's configuration; `peers` in insertion order, each public key at most once.

    An allowed IP belongs to at most one peer (inserting it for another peer moves it), so
    `allowed_ip_owners` maps each prefix to one public key. Both lookups are built on first
    use; apply() hands the state it makes the peer map it has already built. A device's
    state carries no allowed IPs: its data plane keeps them (see apply's AllowedIPsTable).
    """

    private_key: PrivateKey | None = None
    listen_port: int = 0
    fwmark: int = 0
    peers: tuple[PeerConfig, ...] = ()
    _public_key: PublicKey | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.private_key is not None:
            object.__setattr__(self, "_public_key", self.private_key.public_key())

    @property
    def public_key(self) -> PublicKey | None:
        """Ours, derived from the private key; None while there is none."""
        return self._public_key

    @cached_property
    def peer_map(self) -> MappingProxyType[PublicKey, PeerConfig]:
        return MappingProxyType({p.public_key: p for p in self.peers})

    @cached_property
    def allowed_ip_owners(self) -> MappingProxyType[AllowedIP, PublicKey]:
        return MappingProxyType({n: p.public_key for p in self.peers for n in p.allowed_ips})

    def peer(self, public_key: PublicKey) -> PeerConfig | None:
        return self.peer_map.get(public_key)

    def preset_lookups(self, peer_map: dict[PublicKey, PeerConfig]) -> None:
        """For apply() only: the lookup it built for this state (it must match `peers`)."""
        self.__dict__["peer_map"] = MappingProxyType(peer_map)


# The operations of a `set` transaction, in the UAPI's terms (protocol-notes.md §3).


@dataclass(frozen=True, slots=True)
class SetPrivateKey:
    key: PrivateKey | None  # None: all zeros on the wire, which clears it


@dataclass(frozen=True, slots=True)
class SetListenPort:
    port: int  # 0: a random port


@dataclass(frozen=True, slots=True)
class SetFwmark:
    fwmark: int  # 0: off


@dataclass(frozen=True, slots=True)
class ReplacePeers:
    pass


DeviceOp = SetPrivateKey | SetListenPort | SetFwmark | ReplacePeers


@dataclass(frozen=True, slots=True)
class UpdateOnly:
    pass


@dataclass(frozen=True, slots=True)
class RemovePeer:
    pass


@dataclass(frozen=True, slots=True)
class SetPresharedKey:
    key: PresharedKey | None  # None: all zeros, no preshared key


@dataclass(frozen=True, slots=True)
class SetEndpoint:
    endpoint: Endpoint


@dataclass(frozen=True, slots=True)
class SetPersistentKeepalive:
    interval: int  # seconds; 0: off


@dataclass(frozen=True, slots=True)
class ReplaceAllowedIPs:
    pass


@dataclass(frozen=True, slots=True)
class AddAllowedIP:
    network: AllowedIP


@dataclass(frozen=True, slots=True)
class RemoveAllowedIP:
    network: AllowedIP


PeerOp = (
    UpdateOnly
    | RemovePeer
    | SetPresharedKey
    | SetEndpoint
    | SetPersistentKeepalive
    | ReplaceAllowedIPs
    | AddAllowedIP
    | RemoveAllowedIP
)


@dataclass(frozen=True, slots=True)
class PeerChange:
    """The lines from one `public_key=` to the next, as operations in order."""

    public_key: PublicKey
    ops: tuple[PeerOp, ...] = ()


@dataclass(frozen=True, slots=True)
class Change:
    """A whole, validated `set` transaction: device operations, then peer sections."""

    device: tuple[DeviceOp, ...] = ()
    peers: tuple[PeerChange, ...] = ()

    def line_count(self) -> int:
        return len(self.device) + sum(1 + len(p.ops) for p in self.peers)
