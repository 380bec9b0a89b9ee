"""What a daemon logs with LOG_LEVEL=verbose in the foreground: never a key (any
implementation), and, for pywg, one line for each event that matters.

The events and the words a line must contain for each (case-insensitive; the exact
phrasing is pywg's own):
    handshake completed with a peer   "handshake" ... "complete" or "established"
    endpoint changed                  "endpoint"
    keys rotated                      "rotat" or "rekey"
    retries exhausted                 "give up", "gave up", "giving up" or "exhausted"
    malformed UAPI request refused    "uapi", "request" or "config" ... "refus", "reject",
                                      "invalid", "malformed" or "error"
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest

from pywg import _constants as C
from tests.harness import daemons, files, nat, topology, wait, wg
from tests.harness.daemons import Daemon
from tests.harness.impls import PYWG
from tests.harness.probes import ping
from tests.harness.skips import require_impls, require_root, require_tools
from tests.harness.topology import Topology
from tests.harness.transfer import transfer

SCALE = 0.025
FAR_NAT_PORT = 40102
SLACK_S = 3.0
EVENTS = {
    "handshake": r"handshake.*(complete|established)",
    "endpoint": r"endpoint",
    "rotated": r"rotat|rekey",
    "gave-up": r"give up|gave up|giving up|exhausted",
    "uapi": r"(uapi|request|config).*(refus|reject|invalid|malformed|error)",
}


@pytest.fixture(params=["wggo", "pywg"])
def logged(request: pytest.FixtureRequest) -> Iterator[Topology]:
    """Subject (side a, foreground, verbose) against wireguard-go."""
    require_root()
    require_tools("nft")
    impls = require_impls(request.param, "wggo")
    with files.workdir("logs") as work, topology.tunnel(
            (impls[0], impls[1]), "logs", work, foreground=True,
            env={"PYWG_TIMING_SCALE": str(SCALE)}, env_all={"LOG_LEVEL": "verbose"}) as t:
        yield t


class Log:
    """The subject's log, read from a mark: what the last action made it write."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.mark = 0

    def new_lines(self) -> list[str]:
        return self.daemon.log().splitlines()[self.mark:]

    def expect(self, event: str, timeout: float) -> None:
        """Wait (bounded) for a new line about `event`, then move the mark to the end."""
        if self.daemon.impl is PYWG:
            pattern = re.compile(EVENTS[event], re.IGNORECASE)
            wait.wait_for(lambda: any(pattern.search(x) for x in self.new_lines()),
                          f"a log line about {event!r}", timeout)
        self.mark = len(self.daemon.log().splitlines())


def _uapi_raw(d: Daemon, request: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(str(daemons.socket_path(d.ifname)))
        s.sendall(request)
        return s.recv(4096)


def test_log_lines_and_never_a_key(logged: Topology) -> None:
    subject, far = logged.a, logged.b
    pywg = subject.daemon.impl is PYWG
    scale = SCALE if pywg else 1.0
    psk = wg.genpsk()
    log = Log(subject.daemon)
    log.mark = len(subject.daemon.log().splitlines())

    logged.configure(psk=psk)
    ping(subject.ns, far.inner4)
    log.expect("handshake", 5 + SLACK_S)

    try:
        nat.rewrite_source_port(far.ns, far.port, FAR_NAT_PORT)
        ping(far.ns, subject.inner4)
        moved = f"{far.outer4}:{FAR_NAT_PORT}"
        assert subject.daemon.dump().peers[far.daemon.keys.public].endpoint == moved
        log.expect("endpoint", SLACK_S)
    finally:
        nat.undo(far.ns)
    ping(far.ns, subject.inner4)  # the subject learns the real endpoint back
    assert subject.daemon.dump().peers[far.daemon.keys.public].endpoint == far.endpoint(4)

    assert _uapi_raw(subject.daemon, b"set=1\nno_such_key=1\n\n").startswith(b"errno=-")
    log.expect("uapi", SLACK_S)

    if pywg:  # these two need the shortened protocol times
        seconds = C.REKEY_AFTER_TIME_S * scale * 1.5
        with transfer(subject.ns, far.ns, far.inner4, 1 << 20, seconds=seconds) as t:
            sent, received = t.finish(timeout=seconds + 60)
        assert received == sent
        log.expect("rotated", SLACK_S)

        far.daemon.wg("set", far.ifname, "peer", subject.daemon.keys.public, "remove")
        ping(subject.ns, far.inner4, count=1, check=False, deadline=1)
        log.expect("gave-up", (C.REKEY_ATTEMPT_TIME_S + 3 * C.REKEY_TIMEOUT_S) * scale + SLACK_S)

    text = subject.daemon.log()
    assert text.strip(), "nothing was logged at LOG_LEVEL=verbose"
    secrets = [subject.daemon.keys.private, subject.daemon.keys.public,
               far.daemon.keys.private, far.daemon.keys.public, psk]
    for key in secrets:
        for form in wg.key_forms(key):
            assert form not in text, "a key appears in the log"
