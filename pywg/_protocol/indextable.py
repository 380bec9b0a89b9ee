"""Sender indices: random, unique u32s naming our half of a handshake or a keypair
(whitepaper 5.4.1; wireguard-go's indextable.go, the kernel's index_hashtable).

One table serves pending handshakes and keypairs alike, because a keypair takes over the
index of the handshake that made it, and an incoming message (response, cookie reply,
transport data) is routed by the index we gave the peer. Random indices keep an observer from
counting handshakes. The table is bounded; allocation tries a bounded number of candidates.
"""

from __future__ import annotations

import struct
from typing import Generic, TypeVar

from pywg._constants import INDEX_ALLOCATION_ATTEMPTS, INDEX_TABLE_MAX_ENTRIES
from pywg._protocol import crypto
from pywg._protocol.crypto import Rng
from pywg._protocol.errors import LocalProtocolError

__all__ = ["IndexTable"]

T = TypeVar("T")


class IndexTable(Generic[T]):
    """Maps each allocated index to a value of the caller's choosing."""

    def __init__(self, *, rng: Rng = crypto.random_bytes,
                 max_entries: int = INDEX_TABLE_MAX_ENTRIES) -> None:
        self._rng = rng
        self._max_entries = max_entries
        self._entries: dict[int, T] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, index: object) -> bool:
        return index in self._entries

    def allocate(self, value: T) -> int:
        """A fresh random index for `value`."""
        if len(self._entries) >= self._max_entries:
            raise LocalProtocolError("the index table is full")
        for _ in range(INDEX_ALLOCATION_ATTEMPTS):
            index: int = struct.unpack("<I", self._rng(4))[0]
            if index not in self._entries:
                self._entries[index] = value
                return index
        raise LocalProtocolError("the random source keeps repeating indices")

    def lookup(self, index: int) -> T | None:
        return self._entries.get(index)

    def replace(self, index: int, value: T) -> None:
        """Give an allocated index a new value (a handshake's index passes to its keypair)."""
        if index not in self._entries:
            raise LocalProtocolError(f"index {index:#010x} is not allocated")
        self._entries[index] = value

    def release(self, index: int) -> T | None:
        """Free an index; returns what it named (None if it was not allocated)."""
        return self._entries.pop(index, None)
