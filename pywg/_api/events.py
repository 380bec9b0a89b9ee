"""Peer events for an embedding application: handshakes, new endpoints, peers gone stale.

Theory of operation. The driver tells a sink (pywg._driver.peer_events) when a peer completes
a handshake or is heard from a new address. The Dispatcher is that sink while anybody
listens, and only then: with no subscriber the driver has no sink and pays nothing. It does
not call the application from inside the driver's work (an application may well change the
device from a callback); it queues each event and delivers the queue on the next turn of
the loop, to every callback and every `async for` stream.

"Stale" is `pywg status`'s word: a peer whose latest handshake is older than
STATUS_ONLINE_S (REJECT_AFTER_TIME: its session's keys are no longer valid, so it has not
been heard from lately). A StaleWatch keeps, for peers that completed a handshake while
somebody listened (or shortly before), when that handshake was, in a heap ordered by when
it turns stale; one loop timer serves the earliest. A newer handshake makes the older entry
moot. A peer that was removed does not go stale.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from pywg._constants import API_EVENT_QUEUE_LEN, NSEC_PER_SEC
from pywg._protocol.endpoint import Endpoint

__all__ = [
    "Dispatcher",
    "EndpointChanged",
    "EventStream",
    "HandshakeCompleted",
    "PeerEvent",
    "PeerStale",
    "StaleWatch",
    "Subscription",
]


@dataclass(frozen=True, slots=True)
class HandshakeCompleted:
    """A session with the peer was confirmed; `time` is Unix time, as `last_handshake`."""

    public_key: bytes
    time: float


@dataclass(frozen=True, slots=True)
class EndpointChanged:
    """The peer was heard from a new address (a handshake or data from there), which the
    device now sends to. Not raised for endpoints the application sets itself."""

    public_key: bytes
    endpoint: Endpoint


@dataclass(frozen=True, slots=True)
class PeerStale:
    """No handshake with the peer for `stale_after` seconds (180 by default, as `pywg
    status` calls it stale) since the one at `last_handshake` (Unix time)."""

    public_key: bytes
    last_handshake: float


PeerEvent = HandshakeCompleted | EndpointChanged | PeerStale
Callback = Callable[[PeerEvent], object]


class Subscription:
    """A callback's subscription; `close()` (or leaving `with`) ends it."""

    def __init__(self, callback: Callback, dispatcher: Dispatcher) -> None:
        self.callback = callback
        self._dispatcher: Dispatcher | None = dispatcher

    @property
    def active(self) -> bool:
        return self._dispatcher is not None

    def close(self) -> None:
        dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is not None:
            dispatcher.leave(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class EventStream:
    """Events as an async iterator, in order. It ends after `close()` (or leaving `async
    with`) or when the device closes, once the events already queued have been read. A
    reader that falls more than `maxlen` events behind loses the oldest; `dropped` counts
    them."""

    def __init__(self, dispatcher: Dispatcher, maxlen: int = API_EVENT_QUEUE_LEN) -> None:
        self._dispatcher: Dispatcher | None = dispatcher
        self._queue: deque[PeerEvent] = deque()
        self._maxlen = maxlen
        self._waiter: asyncio.Future[None] | None = None
        self.dropped = 0

    def put(self, event: PeerEvent) -> None:
        if len(self._queue) >= self._maxlen:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(event)
        self._wake()

    def close(self) -> None:
        dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is not None:
            dispatcher.leave(self)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> PeerEvent:
        while not self._queue:
            if self._dispatcher is None:
                raise StopAsyncIteration
            if self._waiter is not None:
                raise RuntimeError("another task is already reading this event stream")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()


class StaleWatch:
    """When each recently handshaken peer turns stale; see the module doc."""

    def __init__(self, after_s: float, on_stale: Callable[[bytes, int], None]) -> None:
        self._after_s = after_s
        self._on_stale = on_stale  # (public key, wall-clock ns of its last handshake)
        self._latest: dict[bytes, int] = {}  # public key -> its latest handshake (wall ns)
        self._heap: list[tuple[float, int, bytes]] = []  # (loop time it turns stale, ns, key)
        self._timer: asyncio.TimerHandle | None = None

    def handshake(self, public_key: bytes, wall_ns: int) -> None:
        """Called on the loop. A handshake already older than `after_s` is not watched."""
        loop = asyncio.get_running_loop()
        age_s = max(0, time.time_ns() - wall_ns) / NSEC_PER_SEC
        if age_s >= self._after_s:
            return
        self._latest[public_key] = wall_ns
        heapq.heappush(self._heap, (loop.time() + self._after_s - age_s, wall_ns, public_key))
        if self._heap[0][1:] == (wall_ns, public_key):
            self._arm(loop)

    def clear(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._latest.clear()
        self._heap.clear()

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._heap:
            self._timer = loop.call_at(self._heap[0][0], self._due, loop)

    def _due(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time()
        while self._heap and self._heap[0][0] <= now:
            _, wall_ns, key = heapq.heappop(self._heap)
            if self._latest.get(key) == wall_ns:  # no newer handshake since
                del self._latest[key]
                self._on_stale(key, wall_ns)
        self._arm(loop)


class Dispatcher:
    """The driver's event sink while anybody listens; see the module doc.

    `attach(on)` is called with True when the first listener comes and False when the
    last one goes: the device then sets or clears the driver's sink (and seeds `watch`).
    `is_peer` says whether a public key is still one of the device's peers.
    """

    def __init__(self, stale_after_s: float, attach: Callable[[bool], None],
                 is_peer: Callable[[bytes], bool]) -> None:
        self.watch = StaleWatch(stale_after_s, self._stale)
        self._attach = attach
        self._is_peer = is_peer
        self._subscriptions: list[Subscription] = []
        self._streams: list[EventStream] = []
        self._pending: list[PeerEvent] = []
        self._flush: asyncio.Handle | None = None

    # ---- listeners ----------------------------------------------------------------------

    def subscribe(self, callback: Callback) -> Subscription:
        first = not self.listening
        subscription = Subscription(callback, self)
        self._subscriptions.append(subscription)
        if first:
            self._attach(True)
        return subscription

    def stream(self, maxlen: int = API_EVENT_QUEUE_LEN) -> EventStream:
        first = not self.listening
        stream = EventStream(self, maxlen)
        self._streams.append(stream)
        if first:
            self._attach(True)
        return stream

    def leave(self, member: Subscription | EventStream) -> None:
        if isinstance(member, Subscription) and member in self._subscriptions:
            self._subscriptions.remove(member)
        elif isinstance(member, EventStream) and member in self._streams:
            self._streams.remove(member)
        if not self.listening:
            self._attach(False)
            self.watch.clear()
            self._pending.clear()

    @property
    def listening(self) -> bool:
        return bool(self._subscriptions or self._streams)

    def close(self) -> None:
        """The device is closing: callbacks end, streams end once read."""
        for subscription in list(self._subscriptions):
            subscription.close()
        for stream in list(self._streams):
            stream.close()

    # ---- the driver's sink (pywg._driver.peer_events.PeerEventSink) ----------------------

    def handshake_completed(self, public_key: bytes, wall_ns: int) -> None:
        self._queue(HandshakeCompleted(public_key, wall_ns / NSEC_PER_SEC))
        self.watch.handshake(public_key, wall_ns)

    def endpoint_changed(self, public_key: bytes, endpoint: Endpoint) -> None:
        self._queue(EndpointChanged(public_key, endpoint))

    def _stale(self, public_key: bytes, wall_ns: int) -> None:
        if self._is_peer(public_key):
            self._queue(PeerStale(public_key, wall_ns / NSEC_PER_SEC))

    # ---- delivery -----------------------------------------------------------------------

    def _queue(self, event: PeerEvent) -> None:
        self._pending.append(event)
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_soon(self._deliver)

    def _deliver(self) -> None:
        self._flush = None
        events, self._pending = self._pending, []
        for event in events:
            for subscription in list(self._subscriptions):
                if subscription.active:
                    _call(subscription, event)
            for stream in list(self._streams):
                stream.put(event)


def _call(subscription: Subscription, event: PeerEvent) -> None:
    # One application callback that fails must not keep the event from the others: its
    # exception goes to the loop's handler, as an exception in any loop callback does.
    try:
        subscription.callback(event)
    except Exception as e:
        asyncio.get_running_loop().call_exception_handler({
            "message": f"pywg: a peer-event callback failed on {type(event).__name__}",
            "exception": e,
        })
