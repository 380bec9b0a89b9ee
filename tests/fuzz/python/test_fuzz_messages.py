"""Fuzzing the handshake messages (types 1-3) as Python parses and consumes them:
pywg._protocol.messages and pywg._protocol.handshake.HandshakeCore.

Properties, for any datagram:
- messages.parse returns a message or raises MessageError; what it parses it writes back
  byte for byte, and what any message writes it parses back to that message;
- HandshakeCore.receive never raises: it returns actions, exactly one Drop when it refuses;
- a mutated message is never taken (no session, no response, no cookie) unless what Noise
  or the cookie's AEAD authenticates is unchanged: every byte but the sender index (which
  Noise does not cover) and the macs (which the data plane checks, not this core).
"""

from __future__ import annotations

import hashlib
import random
import struct

from hypothesis import example, given
from hypothesis import strategies as st
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt

from pywg._protocol import crypto, messages
from pywg._protocol.errors import MessageError
from pywg._protocol.handshake import (
    CookieConsumed,
    Drop,
    InstallSession,
    SendHandshakeResponse,
    UpdateEndpoint,
)
from tests.fuzz.python.common import fuzz_settings, target
from tests.fuzz.python.inputs import mutated
from tests.support.handshake import Side

S = 1_000_000_000
WALL = 1_700_000_000 * S
_U32 = st.integers(0, 2**32 - 1)


def _bytes(n: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=n, max_size=n)


_MESSAGES = st.one_of(
    st.builds(messages.MessageInitiation, _U32, _bytes(32), _bytes(48), _bytes(28), _bytes(16),
              _bytes(16)),
    st.builds(messages.MessageResponse, _U32, _U32, _bytes(32), _bytes(16), _bytes(16),
              _bytes(16)),
    st.builds(messages.MessageCookieReply, _U32, _bytes(24), _bytes(32)),
    st.builds(messages.MessageTransport, _U32, st.integers(0, 2**64 - 1),
              st.binary(min_size=16, max_size=64)),
)


def _cookie_reply(sent: bytes, maker_public: bytes) -> bytes:
    """The cookie reply the receiver of `sent` makes under load (whitepaper 5.4.7), made
    here with libsodium and hashlib, not with pywg."""
    key = hashlib.blake2s(b"cookie--" + maker_public).digest()
    nonce = bytes(range(24))
    mac1 = sent[-32:-16]
    sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(bytes(16), mac1, nonce, key)
    return struct.pack("<II", 3, struct.unpack_from("<I", sent, 4)[0]) + nonce + sealed


class _World:
    """Peers A and B that know each other, and one message of each type between them."""

    def __init__(self) -> None:
        rng = random.Random(7).randbytes
        self.a = Side(crypto.generate_private_key(rng), rng)
        self.b = Side(crypto.generate_private_key(rng), rng)
        assert self.a.public_key is not None and self.b.public_key is not None
        self.a.add_peer(self.b.public_key)
        self.b.add_peer(self.a.public_key)
        self.now = S
        self.initiation = self.a.initiation(self.b.public_key, self.now, WALL)
        self.cookie = _cookie_reply(self.initiation, self.b.public_key)
        accepted = self.b.receive(self.initiation, self.now)
        assert isinstance(accepted[2], SendHandshakeResponse)
        self.response = accepted[2].packet
        self.now += S


_SEEDS = [_World()]
_SAMPLES = [_SEEDS[0].initiation, _SEEDS[0].response, _SEEDS[0].cookie]


@target("py-messages")
@fuzz_settings
@given(st.one_of(mutated(_SAMPLES, 4), st.binary(max_size=200), _MESSAGES.map(
    lambda m: m.to_bytes())))
@example(b"\x01\x00\x00\x00")
def test_parse_round_trips_or_refuses(data: bytes) -> None:
    try:
        message = messages.parse(data)
    except MessageError:
        return
    assert message.to_bytes() == data
    assert messages.message_type(data) == data[0]


@target("py-message-fields")
@fuzz_settings
@given(_MESSAGES)
def test_messages_written_parse_back(message: messages.Message) -> None:
    assert messages.parse(message.to_bytes()) == message


def _authenticated(data: bytes, sample: bytes) -> bool:
    """Whether `data` equals `sample` where it matters to the core (see the module doc): not
    in the indices, which Noise does not cover (the data plane routes by the receiver's)."""
    start = {1: 8, 2: 12, 3: 8}[sample[0]]
    end = len(sample) - (32 if sample[0] in (1, 2) else 0)
    return len(data) == len(sample) and data[:4] == sample[:4] and data[start:end] == \
        sample[start:end]


@st.composite
def _deliveries(draw: st.DrawFn) -> tuple[int, bytes]:
    which = draw(st.integers(0, 2))
    return which, draw(st.one_of(mutated([_SAMPLES[which]], 4), st.binary(max_size=160)))


@target("py-handshake")
@fuzz_settings
@given(_deliveries())
@example((0, _SAMPLES[0]))
@example((1, _SAMPLES[1]))
@example((2, _SAMPLES[2]))
def test_receive_never_raises_and_takes_only_authentic_messages(
        delivery: tuple[int, bytes]) -> None:
    which, data = delivery
    world = _World()  # fresh state: each datagram meets a handshake awaiting it
    sample = (world.initiation, world.response, world.cookie)[which]
    receivers = {0: world.b, 1: world.a, 2: world.a}
    for side in (receivers[which], world.a, world.b):
        actions = side.receive(data, world.now)
        assert actions, "no action"
        drops = [a for a in actions if isinstance(a, Drop)]
        assert not drops or len(actions) == 1
        taken = any(isinstance(a, InstallSession | SendHandshakeResponse | CookieConsumed |
                                  UpdateEndpoint) for a in actions)
        if taken:
            assert _authenticated(data, sample), (which, data.hex())
