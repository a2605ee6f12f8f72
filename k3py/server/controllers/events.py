"""Events as ``kubectl describe`` shows them: core/v1 Events written in the background.

``recorder.event(obj, "Normal", "SuccessfulCreate", "Created pod: web-abc12")`` returns
at once; one writer task per ``EventSink`` writes the Events.  Repeats of the same
(object, type, reason, message) within ``aggregate_window`` seconds bump ``count`` and
``lastTimestamp`` of the first Event instead of writing another, as client-go's
correlator does.  The queue is bounded: when a storm outruns the API the oldest pending
events are dropped (events are best-effort upstream too).  Nobody waits on events.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from k3py.client import Client, NotFound
from k3py.client.resources import EVENTS
from k3py.server.controllers.base import rfc3339

Obj = dict[str, Any]
log = logging.getLogger("k3py.events")


@dataclass(frozen=True, slots=True)
class _Pending:
    ref: Obj
    etype: str
    reason: str
    message: str
    at: float
    component: str
    host: str


def object_reference(obj: Obj) -> Obj:
    m = obj.get("metadata") or {}
    ref = {
        "apiVersion": obj.get("apiVersion", ""),
        "kind": obj.get("kind", ""),
        "namespace": m.get("namespace", ""),
        "name": m.get("name", ""),
        "uid": m.get("uid", ""),
        "resourceVersion": m.get("resourceVersion", ""),
    }
    return {k: v for k, v in ref.items() if v}


class EventSink:
    """The shared writer: a bounded queue and one task."""

    def __init__(
        self,
        client: Client,
        *,
        clock: Callable[[], float] = time.time,
        max_pending: int = 10_000,
        aggregate_window: float = 600.0,
    ) -> None:
        self.client = client
        self.clock = clock
        self.aggregate_window = aggregate_window
        self._pending: collections.deque[_Pending] = collections.deque(maxlen=max_pending)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._busy = False
        # (uid, type, reason, message) -> (event namespace, event name, count, first seen)
        self._seen: dict[tuple[str, str, str, str], tuple[str, str, int, float]] = {}
        self.written = 0

    def recorder(self, component: str, *, host: str = "") -> EventRecorder:
        return EventRecorder(self, component=component, host=host)

    def push(self, item: _Pending) -> None:
        self._pending.append(item)
        self._wake.set()
        if self._task is None:
            with contextlib.suppress(RuntimeError):  # no loop: nothing can be written
                self._task = asyncio.get_running_loop().create_task(self._run(), name="events")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def flush(self, wait: float = 5.0) -> None:
        """Wait until everything recorded so far is written (tests, shutdown)."""
        deadline = time.monotonic() + wait
        while (self._pending or self._busy) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                item = self._pending.popleft()
                self._busy = True
                try:
                    await self._write(item)
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # noqa: BLE001 - events are best-effort
                    log.debug("event %s not written: %s", item.reason, e)
                finally:
                    self._busy = False

    async def _write(self, p: _Pending) -> None:
        ns = p.ref.get("namespace") or "default"
        ident = p.ref.get("uid") or f"{ns}/{p.ref.get('kind')}/{p.ref.get('name')}"
        key = (ident, p.etype, p.reason, p.message)
        ts = rfc3339(p.at)
        seen = self._seen.get(key)
        if seen is not None and p.at - seen[3] < self.aggregate_window:
            ens, ename, count, first = seen
            with contextlib.suppress(NotFound):
                await self.client.patch(
                    EVENTS, ename, {"count": count + 1, "lastTimestamp": ts}, namespace=ens
                )
                self._seen[key] = (ens, ename, count + 1, first)
                self.written += 1
                return
        name = f"{p.ref.get('name', 'object')}.{secrets.token_hex(8)}"
        source: Obj = {"component": p.component}
        if p.host:
            source["host"] = p.host
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": p.ref,
            "reason": p.reason,
            "message": p.message,
            "type": p.etype,
            "source": source,
            "firstTimestamp": ts,
            "lastTimestamp": ts,
            "count": 1,
            "reportingComponent": p.component,
            "reportingInstance": p.host or p.component,
        }
        await self.client.create(EVENTS, body, namespace=ns)
        self.written += 1
        if len(self._seen) > 50_000:
            self._seen.clear()
        self._seen[key] = (ns, name, 1, p.at)


class EventRecorder:
    """What components hold: ``event(obj, type, reason, message)``, never blocking."""

    def __init__(self, sink: EventSink, *, component: str, host: str = "") -> None:
        self.sink = sink
        self.component = component
        self.host = host

    def for_component(self, component: str) -> EventRecorder:
        """The same sink under another source name (``kubectl describe`` shows
        ``From: replicaset-controller``, as upstream's per-controller recorders)."""
        return EventRecorder(self.sink, component=component, host=self.host)

    def event(self, obj: Obj, etype: str, reason: str, message: str) -> None:
        self.sink.push(
            _Pending(
                ref=object_reference(obj),
                etype=etype,
                reason=reason,
                message=message[:1024],
                at=self.sink.clock(),
                component=self.component,
                host=self.host,
            )  # fmt: skip
        )

    def normal(self, obj: Obj, reason: str, message: str) -> None:
        self.event(obj, "Normal", reason, message)

    def warning(self, obj: Obj, reason: str, message: str) -> None:
        self.event(obj, "Warning", reason, message)
