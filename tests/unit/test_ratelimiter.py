"""The per-source token bucket: 20 packets/s, a burst of 5, IPv6 per /64, bounded table."""

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from pywg._protocol.ratelimiter import RateLimiter

S = 1_000_000_000
ip = ipaddress.ip_address


def _burst(limiter, address, now, n=10):
    return sum(limiter.allow(address, now) for _ in range(n))


def test_burst_of_five_then_twenty_per_second():
    limiter = RateLimiter()
    assert _burst(limiter, ip("192.0.2.1"), 0) == 5
    assert not limiter.allow(ip("192.0.2.1"), S // 20 - 1)
    assert limiter.allow(ip("192.0.2.1"), S // 20)  # one packet's worth refilled
    assert not limiter.allow(ip("192.0.2.1"), S // 20)
    # Over one second of steady flood: the refilled burst, then 20 per second.
    allowed = sum(limiter.allow(ip("192.0.2.1"), S + t * S // 200) for t in range(200))
    assert 5 + 19 <= allowed <= 5 + 20
    # After a quiet spell the burst is back, never more.
    assert _burst(limiter, ip("192.0.2.1"), 10 * S) == 5


def test_sources_are_independent_and_ipv6_goes_by_64():
    limiter = RateLimiter()
    assert _burst(limiter, ip("192.0.2.1"), 0) == 5
    assert _burst(limiter, ip("192.0.2.2"), 0) == 5
    assert _burst(limiter, ip("2001:db8:1:2::1"), 0) == 5
    assert _burst(limiter, ip("2001:db8:1:2:ffff::9"), 0) == 0  # same /64
    assert _burst(limiter, ip("2001:db8:1:3::1"), 0) == 5
    assert _burst(limiter, ip("::ffff:192.0.2.2"), 0) == 0  # mapped IPv4 is that IPv4


def test_table_is_bounded_and_collected():
    limiter = RateLimiter(max_entries=3)
    for i in range(3):
        assert limiter.allow(ip(f"192.0.2.{i}"), 0)
    assert not limiter.allow(ip("192.0.2.99"), 0)  # full: a new source is refused
    assert len(limiter) == 3
    assert limiter.allow(ip("192.0.2.99"), 2 * S)  # idle entries were collected
    assert len(limiter) == 1


@settings(max_examples=50)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 20 * S)), max_size=60))
def test_never_more_than_the_bucket_allows(events):
    # Whatever the arrival pattern, a source gets at most 5 + 20 * elapsed seconds.
    limiter = RateLimiter()
    events.sort(key=lambda e: e[1])
    counts: dict[int, list[int]] = {}
    for source, now in events:
        if limiter.allow(ip(f"198.51.100.{source}"), now):
            counts.setdefault(source, []).append(now)
    for times in counts.values():
        for i, start in enumerate(times):
            later = [t for t in times[i:] if t - start <= S]
            assert len(later) <= 5 + 20
