"""Bounded, thread-safe queues with a named overload policy, and a fan-out bus built on them.

Nothing in streamser waits on a slow consumer: every queue has a fixed capacity and an
:class:`Overflow` policy saying what is lost when it is full, and a counter of what was lost.

- :class:`BoundedQueue` — one producer side that never blocks, consumers that may block.
- :class:`Bus` — publish one item to any number of named subscriptions, each its own queue.
"""

from __future__ import annotations

import enum
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["BoundedQueue", "Bus", "Overflow", "QueueStats"]

T = TypeVar("T")


class Overflow(enum.Enum):
    """What a full queue does with a new item."""

    DROP_OLDEST = "drop-oldest"
    """Discard the oldest queued item to make room (consumers see the most recent history)."""
    DROP_NEWEST = "drop-newest"
    """Discard the new item (consumers see a contiguous prefix)."""


@dataclass(frozen=True)
class QueueStats:
    """Counters of one queue: items offered, items dropped by the policy, items queued now."""

    name: str
    policy: str
    capacity: int
    put: int
    dropped: int
    queued: int


class BoundedQueue(Generic[T]):
    """A bounded FIFO whose :meth:`put` never blocks.

    ``put`` may be called from any thread, including the PortAudio callback (it takes a lock for a
    few instructions and allocates nothing beyond the deque node). ``get`` may block with a
    timeout; ``drain`` returns everything queued without blocking.
    """

    def __init__(self, name: str, capacity: int, policy: Overflow,
                 on_put: Callable[[], None] | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"queue {name!r}: capacity must be >= 1, got {capacity}")
        self.name = name
        self.capacity = capacity
        self.policy = policy
        self._items: deque[T] = deque()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._put = 0
        self._dropped = 0
        self._closed = False
        self._on_put = on_put
        self.subscriber: str | None = None
        """The subscriber's name when this queue is a :class:`Bus` subscription."""

    def put(self, item: T) -> bool:
        """Offer ``item``; return False when the policy dropped an item (this or the oldest).

        Calls ``on_put`` (if given) after queueing, outside the lock: it must not block
        (e.g. ``loop.call_soon_threadsafe``).
        """
        with self._cond:
            self._put += 1
            kept = True
            if len(self._items) >= self.capacity:
                self._dropped += 1
                kept = False
                if self.policy is Overflow.DROP_NEWEST:
                    return False
                self._items.popleft()
            self._items.append(item)
            self._cond.notify()
        if self._on_put is not None:
            self._on_put()
        return kept

    def put_wait(self, item: T, timeout: float) -> bool:
        """Producer-paced put for sources that may wait (files read as fast as possible).

        Waits up to ``timeout`` seconds for room; returns False (nothing queued) on timeout or
        when the queue is closed. Never call it from an audio callback.
        """
        with self._cond:
            if len(self._items) >= self.capacity and not self._closed:
                self._not_full.wait_for(
                    lambda: len(self._items) < self.capacity or self._closed, timeout
                )
            if self._closed or len(self._items) >= self.capacity:
                return False
            self._put += 1
            self._items.append(item)
            self._cond.notify()
            return True

    def get(self, timeout: float | None = None) -> T | None:
        """Return the oldest item, waiting up to ``timeout`` seconds; None on timeout or close."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            if self._items:
                item = self._items.popleft()
                self._not_full.notify()
                return item
            return None

    def drain(self) -> list[T]:
        """Return and remove every queued item, oldest first, without blocking."""
        with self._cond:
            items = list(self._items)
            self._items.clear()
            self._not_full.notify_all()
            return items

    def close(self) -> None:
        """Wake every waiting consumer; later ``get`` calls return queued items, then None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            self._not_full.notify_all()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def stats(self) -> QueueStats:
        """A consistent snapshot of the counters."""
        with self._cond:
            return QueueStats(
                self.name,
                self.policy.value,
                self.capacity,
                self._put,
                self._dropped,
                len(self._items),
            )


class Bus(Generic[T]):
    """Fan-out: every published item goes to every subscription's own bounded queue.

    A slow subscriber loses its own oldest items (by its policy) and never delays the publisher
    or the other subscribers. Thread-safe.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._subs: dict[int, BoundedQueue[T]] = {}
        self._lock = threading.Lock()
        self._next_id = 0
        self._published = 0
        self._gone_dropped: dict[str, int] = {}

    def subscribe(
        self,
        name: str,
        capacity: int = 256,
        policy: Overflow = Overflow.DROP_OLDEST,
        on_put: Callable[[], None] | None = None,
    ) -> BoundedQueue[T]:
        """Add a subscription and return its queue; pass it to :meth:`unsubscribe` when done.

        ``on_put`` is called on the publisher's thread after each item is queued; it must not
        block.
        """
        queue: BoundedQueue[T] = BoundedQueue(f"{self.name}/{name}", capacity, policy, on_put)
        queue.subscriber = name
        with self._lock:
            self._subs[self._next_id] = queue
            self._next_id += 1
        return queue

    def unsubscribe(self, queue: BoundedQueue[T]) -> None:
        """Remove a subscription (harmless if already removed) and close its queue."""
        with self._lock:
            for key, sub in list(self._subs.items()):
                if sub is queue:
                    del self._subs[key]
                    self._remember(sub)
        queue.close()

    def _remember(self, sub: BoundedQueue[T]) -> None:
        """Keep a removed subscription's drop count (lock held)."""
        name = sub.subscriber or sub.name
        self._gone_dropped[name] = self._gone_dropped.get(name, 0) + sub.stats().dropped

    def publish(self, item: T) -> None:
        """Offer ``item`` to every subscription; never blocks."""
        with self._lock:
            subs = list(self._subs.values())
            self._published += 1
        for sub in subs:
            sub.put(item)

    def close(self) -> None:
        """Close every subscription queue (consumers wake up and see the end)."""
        with self._lock:
            subs = list(self._subs.values())
            self._subs.clear()
            for sub in subs:
                self._remember(sub)
        for sub in subs:
            sub.close()

    @property
    def published(self) -> int:
        """How many items were published."""
        return self._published

    def __iter__(self) -> Iterator[BoundedQueue[T]]:
        with self._lock:
            return iter(list(self._subs.values()))

    def stats(self) -> list[QueueStats]:
        """Counters of every live subscription."""
        return [sub.stats() for sub in self]

    def dropped(self) -> dict[str, int]:
        """Items each subscriber's queue dropped, by subscriber name, including subscriptions
        that were removed or closed since (nothing lost goes uncounted)."""
        with self._lock:
            out = dict(self._gone_dropped)
            live = list(self._subs.values())
        for sub in live:
            name = sub.subscriber or sub.name
            out[name] = out.get(name, 0) + sub.stats().dropped
        return out
