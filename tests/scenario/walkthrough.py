"""`python -m tests.scenario.walkthrough`: two real pywg devices in one process, step by step.

Alice and Bob are each a complete pywg device (the driver and the C data plane, as the
daemon runs them), joined by the scenario suite's wire (tests/scenario/pair.py): their
TUNs are socketpairs and the wire is a UDP relay on loopback, so no root is needed. The
walkthrough sends packets into the TUNs and prints every datagram on the wire, with what
it is and what each side did with it. Times are scaled down 50 times, so that a timer the
protocol sets at 10 s fires after 0.2 s. `make demo` falls back to this without root.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from pywg._tools import keys
from tests.scenario.pair import Datagram, Pair, S, a_to_b, b_to_a, pair, scaled

__all__ = ["main"]

NAMES = {"a": "alice", "b": "bob"}


def describe(d: Datagram) -> str:
    sender, receiver = NAMES[d.way[0]], NAMES[d.way[-1]]
    head = f"{sender:>5} -> {receiver:<5} "
    if d.type == 1:
        return head + f"initiation  {len(d.data)} bytes, sender index {_le32(d.data, 4):#010x}"
    if d.type == 2:
        return head + (f"response    {len(d.data)} bytes, sender index {_le32(d.data, 4):#010x}"
                       f", receiver index {_le32(d.data, 8):#010x}")
    if d.type == 3:
        return head + f"cookie      {len(d.data)} bytes"
    counter = struct.unpack_from("<Q", d.data, 8)[0]
    what = "keepalive" if len(d.data) == 32 else "data"
    return head + f"{what:<11} {len(d.data)} bytes, counter {counter}"


def _le32(data: bytes, offset: int) -> int:
    return int(struct.unpack_from("<I", data, offset)[0])


class Story:
    def __init__(self, p: Pair) -> None:
        self.p = p
        self.shown = 0

    def wire(self, only: tuple[int, ...] = (1, 2, 3, 4)) -> None:
        """Print the datagrams (of the types in `only`) the wire carried since the last call."""
        for d in self.p.wire.log[self.shown:]:
            if d.type in only:
                say(describe(d))
        self.shown = len(self.p.wire.log)

    def until(self, condition: Callable[[], bool], what: str,
              only: tuple[int, ...] = (1, 2, 3, 4)) -> None:
        if not self.p.wait(condition):
            raise SystemExit(f"walkthrough: {what} did not happen")
        self.wire(only)


def say(text: str) -> None:
    print(f"  {text}")


def step(title: str) -> None:
    print(f"\n{title}")


def main() -> int:
    print("pywg walkthrough: two real pywg devices in one process (loopback only, no root)")
    timing = scaled(0.02)
    with pair(timing) as p:
        story = Story(p)
        alice, bob = p.a, p.b
        step("1. keys (X25519; the private keys never leave their device)")
        say(f"alice  public key {keys.to_base64(alice.public_key)}")
        say(f"bob    public key {keys.to_base64(bob.public_key)}")

        step("2. alice sends a packet to 10.0.0.2: it waits while a handshake (Noise_IKpsk2) "
             "makes keys")
        alice.send(a_to_b(b"hello bob"))
        story.until(lambda: len(bob.received) == 1, "the first packet")
        say(f"bob's TUN got {len(bob.received[0])} bytes: {bob.received[0][20:]!r}")
        say("bob keeps its new keys as 'next' until alice's data shows she has them too")

        step("3. bob answers with the confirmed keys")
        bob.send(b_to_a(b"hello alice"))
        story.until(lambda: len(alice.received) == 1, "the answer")
        say(f"alice's TUN got {len(alice.received[0])} bytes: {alice.received[0][20:]!r}")

        step("4. someone on the path resends alice's data packet")
        first = p.wire.sent("a>b", 4)[0]
        p.wire.send("a>b", first.data)
        story.until(lambda: bob.stats().drop_replay == 1, "the replay drop")
        say("bob dropped it: its counter is already in the replay window")

        step("5. a forged packet: one bit flipped in the ciphertext")
        forged = bytearray(first.data)
        forged[8] ^= 0x40
        forged[-1] ^= 1
        p.wire.send("a>b", bytes(forged))
        story.until(lambda: bob.stats().drop_decrypt == 1, "the forged drop")
        say("bob dropped it: the Poly1305 tag did not verify")

        step(f"6. bob's last packet went unanswered: alice sends a keepalive after "
             f"KEEPALIVE_TIMEOUT ({timing.keepalive_timeout_ns / S:.1f} s here)")
        story.until(lambda: bool(p.wire.sent("a>b", 4, size=32)), "the keepalive")

        step(f"7. keys are renewed by the initiator every REKEY_AFTER_TIME "
             f"({timing.rekey_after_time_ns / S:.1f} s here) while it sends")
        sent = len(bob.received)
        for i in range(int(timing.rekey_after_time_ns / S / 0.1) + 10):
            alice.send(a_to_b(b"tick %d" % i))
            sent += 1
            p.run_for(0.1)
            if len(p.wire.sent("b>a", 2)) > 1:
                break
        story.until(lambda: len(bob.received) == sent, "the rekey", only=(1, 2))
        say(f"(and {sent - 1} data packets with their keepalives, not shown)")
        say("alice sends with the new keys; the old ones stay as 'previous' for packets "
            "still in flight")
        say(f"bob's TUN got all {len(bob.received)} packets alice sent: none lost to the rekey")
    print("\ndone")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
