"""The receive-side replay window over transport counters (RFC 6479), pure Python.

This is the reference that csrc/replay.c is tested against. A keypair accepts each counter
at most once, and only while it is no more than COUNTER_WINDOW_SIZE (8128) behind the
highest counter accepted so far, so that reordering on the path costs nothing and replays
are refused. RFC 6479 keeps the window as a ring of 64-bit words: sliding forward only
zeroes the words it moves over, never shifts a bitmap. The ring holds one word more than
the window needs, because the word the highest counter lives in is only partly in use.

Call `validate_counter` only for packets whose authentication tag verified: otherwise a
forged counter could slide the window and make genuine packets look old. Not safe for
concurrent use.
"""

from __future__ import annotations

from pywg._constants import COUNTER_BITS_TOTAL, COUNTER_WINDOW_SIZE, REJECT_AFTER_MESSAGES

__all__ = ["ReplayFilter"]

_WORD_BITS = 64
_RING_WORDS = COUNTER_BITS_TOTAL // _WORD_BITS


class ReplayFilter:
    """The counters seen on one keypair; a new filter has seen none."""

    __slots__ = ("_greatest", "_ring")

    def __init__(self) -> None:
        self._greatest: int | None = None  # the highest counter accepted
        self._ring = [0] * _RING_WORDS

    def validate_counter(self, counter: int, limit: int = REJECT_AFTER_MESSAGES) -> bool:
        """Accept `counter` (and remember it) if it is new, in the window and below `limit`."""
        if not 0 <= counter < limit:
            return False
        if self._greatest is None or counter > self._greatest:
            self._slide_to(counter)
        elif self._greatest - counter > COUNTER_WINDOW_SIZE:
            return False
        word, bit = divmod(counter, _WORD_BITS)
        word %= _RING_WORDS
        mask = 1 << bit
        seen = self._ring[word] & mask
        self._ring[word] |= mask
        return not seen

    def _slide_to(self, counter: int) -> None:
        # Zero the words between the old top word (exclusive) and the new one (inclusive);
        # past a full turn of the ring every word is stale, so one turn is enough.
        if self._greatest is not None:
            old_word = self._greatest // _WORD_BITS
            new_word = counter // _WORD_BITS
            for word in range(old_word + 1, min(new_word, old_word + _RING_WORDS) + 1):
                self._ring[word % _RING_WORDS] = 0
        self._greatest = counter
