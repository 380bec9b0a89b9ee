"""The sans-I/O WireGuard protocol core.

Nothing in this package opens a socket, starts a thread or reads a clock: callers pass
bytes, the monotonic time (`now_ns`) and, where the protocol needs it, the wall-clock time
(`wall_ns`, only for TAI64N timestamps) in, and get bytes and actions back. Randomness is
injectable (`rng`) so tests are reproducible.
"""
