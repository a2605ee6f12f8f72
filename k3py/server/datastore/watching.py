"""The watch hub: committed events fanned out to watchers, in revision order.

Guarantees
    * A watch yields batches of events for keys under its prefix, revisions strictly
      increasing, each revision > ``after_revision`` exactly once: no gap, no duplicate.
    * Publishing never waits for a watcher.  Each live watcher has a bounded buffer;
      when an event would overflow it, the buffer is dropped and the watcher's next
      ``__anext__`` raises :class:`WatchCutOff` with the last revision it delivered,
      from which the client resumes.  Other watchers and the writer are unaffected.
    * A watch from a revision the log no longer holds raises :class:`Compacted`.

Shape
    The committer calls ``publish`` once per committed batch (synchronously, in revision
    order).  The hub keeps the newest ``ring_size`` events in a ring addressed by
    revision (revisions are contiguous), and groups live watchers by prefix so a batch
    is filtered once per distinct prefix, not once per watcher.

    A watch starts *behind* (``after_revision`` below the hub's head) or *live*.  Behind,
    it is not registered at all: each ``__anext__`` reads the next chunk of history
    ``(cursor, head]`` — from the ring when it still covers the cursor, else from the
    log table — and advances its cursor.  When the cursor reaches the hub's head, the
    watch registers as live in the same synchronous step in which it compares the two,
    so no publish can fall between "caught up" and "registered": every later event is
    published to it.  That closes the classic resume race without locks or
    double-buffering, and a catching-up watcher holds no buffer, so it cannot be cut
    off for being slow while it replays; it simply replays until it keeps up.

    ``after_revision`` 0 means "from now" (the hub's head); an ``after_revision`` beyond
    the head registers live at once and skips events up to it.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Protocol

from k3py.server.datastore.types import Event, WatchCutOff


class LogReader(Protocol):
    async def __call__(
        self, *, prefix: str, after: int, upto: int, limit: int
    ) -> tuple[list[Event], int]:
        """The log's events in ``(after, upto]`` under ``prefix`` (at most ``limit``) and the
        revision scanned up to; raises Compacted when the log no longer holds them."""
        ...


class Ring:
    """The newest ``size`` events, addressed by revision."""

    def __init__(self, *, size: int, head: int) -> None:
        self._size = max(1, size)
        self._slots: list[Event | None] = [None] * self._size
        self.first = head + 1  # oldest revision held
        self.next = head + 1  # revision the next event carries

    def append(self, events: list[Event]) -> None:
        for e in events:
            if e.revision != self.next:  # a gap (recovery): restart the ring there
                self.first = self.next = e.revision
            self._slots[e.revision % self._size] = e
            self.next += 1
        self.first = max(self.first, self.next - self._size)

    def covers(self, after: int) -> bool:
        return self.first <= after + 1

    def read(self, *, prefix: str, after: int, upto: int, limit: int) -> tuple[list[Event], int]:
        """Events in ``(after, upto]`` under ``prefix`` (at most ``limit``) and the revision
        scanned up to.  The caller checks ``covers(after)`` first."""
        end = min(upto, self.next - 1)
        out: list[Event] = []
        rev = after
        while rev < end and len(out) < limit:
            rev += 1
            e = self._slots[rev % self._size]
            assert e is not None and e.revision == rev
            if e.key.startswith(prefix):
                out.append(e)
        return out, rev


class HubWatch:
    """One watcher; see the module notes.  Not for concurrent ``__anext__`` calls."""

    def __init__(self, *, hub: Hub, prefix: str, cursor: int, capacity: int) -> None:
        self.prefix = prefix
        self._hub = hub
        self._cursor = cursor  # every revision <= cursor was delivered or did not match
        self._floor = cursor  # live events at or below this are skipped
        self._capacity = capacity
        self._buffer: list[Event] = []
        self._waiter: asyncio.Future[None] | None = None
        self._live = False
        self._cut = False
        self._closed = False

    def __aiter__(self) -> HubWatch:
        return self

    async def __anext__(self) -> list[Event]:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._cut:
                raise WatchCutOff(self._cursor)
            if self._buffer:
                out, self._buffer = self._buffer, []
                self._cursor = out[-1].revision
                return out
            if not self._live:
                events = await self._catch_up()
                if events and not self._closed:
                    return events
                continue
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def close(self) -> None:
        self._end()
        self._hub.forget(self)

    def go_live_if_caught_up(self) -> bool:
        """Register for live events if every published revision has been read.  Synchronous:
        no publish can fall between the comparison and the registration."""
        if self._cursor < self._hub.head:
            return False
        self._live = True
        self._floor = self._cursor
        self._hub.register(self)
        return True

    async def _catch_up(self) -> list[Event]:
        if self.go_live_if_caught_up():
            return []
        events, scanned = await self._hub.history(
            prefix=self.prefix, after=self._cursor, upto=self._hub.head
        )
        self._cursor = scanned
        return events

    def deliver(self, events: list[Event]) -> bool:
        """Queue live events (already filtered by prefix); False when this overflowed."""
        if events[0].revision <= self._floor:
            events = [e for e in events if e.revision > self._floor]
            if not events:
                return True
        if len(self._buffer) + len(events) > self._capacity:
            self._cut = True
            self._buffer = []
            self._wake()
            return False
        self._buffer.extend(events)
        self._wake()
        return True

    def _end(self) -> None:
        self._closed = True
        self._buffer = []
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class Hub:
    def __init__(
        self,
        *,
        head: int,
        read_log: LogReader,
        ring_size: int = 4096,
        watch_buffer: int = 2048,
        chunk: int = 1000,
    ) -> None:
        self.head = head  # newest published revision
        self._ring = Ring(size=ring_size, head=head)
        self._read_log = read_log
        self._capacity = max(1, watch_buffer)
        self._chunk = chunk
        self._groups: dict[str, set[HubWatch]] = {}  # live watchers by prefix
        self._all: weakref.WeakSet[HubWatch] = weakref.WeakSet()

    def watch(self, prefix: str, *, after: int) -> HubWatch:
        w = HubWatch(hub=self, prefix=prefix, cursor=after or self.head, capacity=self._capacity)
        self._all.add(w)
        w.go_live_if_caught_up()
        return w

    def publish(self, events: list[Event]) -> None:
        if not events:
            return
        self._ring.append(events)
        self.head = events[-1].revision
        cut: list[HubWatch] = []
        for prefix, group in self._groups.items():
            matched = events if not prefix else [e for e in events if e.key.startswith(prefix)]
            if matched:
                cut += [w for w in group if not w.deliver(matched)]
        for w in cut:
            self.forget(w)

    async def history(self, *, prefix: str, after: int, upto: int) -> tuple[list[Event], int]:
        if self._ring.covers(after):
            return self._ring.read(prefix=prefix, after=after, upto=upto, limit=self._chunk)
        return await self._read_log(prefix=prefix, after=after, upto=upto, limit=self._chunk)

    def register(self, w: HubWatch) -> None:
        self._groups.setdefault(w.prefix, set()).add(w)

    def forget(self, w: HubWatch) -> None:
        group = self._groups.get(w.prefix)
        if group is not None:
            group.discard(w)
            if not group:
                del self._groups[w.prefix]

    def close(self) -> None:
        for w in list(self._all):
            w._end()
        self._groups.clear()

    def watcher_count(self) -> int:
        return sum(len(g) for g in self._groups.values())
