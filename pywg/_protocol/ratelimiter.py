"""The per-source rate limit on handshake messages while under load (the kernel's
ratelimiter.c; wireguard-go's ratelimiter package).

A token bucket per source: IPv4 sources by address, IPv6 sources by /64 (one host can own a
whole /64). Tokens are kept in nanoseconds of credit: a packet costs 1/20 s and the bucket holds
at most 5 packets' worth, so a source gets a burst of 5 then 20 packets per second. The table
is bounded; entries idle for a second are collected lazily, which changes no answer because
after a second an entry's bucket would be full again anyway. A full table refuses new sources.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from pywg._constants import (
    RATELIMIT_GC_INTERVAL_S,
    RATELIMIT_IPV6_PREFIX_LEN,
    RATELIMIT_MAX_ENTRIES,
    RATELIMIT_PACKETS_BURSTABLE,
    RATELIMIT_PACKETS_PER_SECOND,
)
from pywg._protocol.endpoint import IPAddress

__all__ = ["RateLimiter"]

_NS_PER_S = 1_000_000_000


@dataclass(slots=True)
class _Bucket:
    tokens_ns: int
    last_ns: int


class RateLimiter:
    """`allow(ip, now_ns)` answers whether one more handshake from `ip` may be processed."""

    def __init__(self, *, packets_per_second: int = RATELIMIT_PACKETS_PER_SECOND,
                 burst: int = RATELIMIT_PACKETS_BURSTABLE,
                 max_entries: int = RATELIMIT_MAX_ENTRIES) -> None:
        self._packet_cost_ns = _NS_PER_S // packets_per_second
        self._max_tokens_ns = self._packet_cost_ns * burst
        self._max_entries = max_entries
        self._buckets: dict[bytes, _Bucket] = {}
        self._last_gc_ns: int | None = None

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, ip: IPAddress, now_ns: int) -> bool:
        self._collect_garbage(now_ns)
        key = _bucket_key(ip)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_entries:
                return False
            # A new source starts with a full bucket and spends one packet now.
            self._buckets[key] = _Bucket(self._max_tokens_ns - self._packet_cost_ns, now_ns)
            return True
        elapsed = max(0, now_ns - bucket.last_ns)
        bucket.tokens_ns = min(self._max_tokens_ns, bucket.tokens_ns + elapsed)
        bucket.last_ns = max(bucket.last_ns, now_ns)
        if bucket.tokens_ns < self._packet_cost_ns:
            return False
        bucket.tokens_ns -= self._packet_cost_ns
        return True

    def _collect_garbage(self, now_ns: int) -> None:
        interval = RATELIMIT_GC_INTERVAL_S * _NS_PER_S
        if self._last_gc_ns is not None and now_ns - self._last_gc_ns < interval:
            return
        self._last_gc_ns = now_ns
        # Only buckets that have refilled completely may go: forgetting them changes nothing.
        idle_ns = max(interval, self._max_tokens_ns)
        idle = [k for k, b in self._buckets.items() if now_ns - b.last_ns >= idle_ns]
        for key in idle:
            del self._buckets[key]


def _bucket_key(ip: IPAddress) -> bytes:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped.packed
        return ip.packed[:RATELIMIT_IPV6_PREFIX_LEN // 8]
    return ip.packed
