"""Kubelet events (Pulling, Created, Started, Killing, BackOff, Unhealthy, …).

Written in the background by one task, never blocking a pod worker; repeats of the same
(object, reason, message) are folded into one Event whose count goes up, as upstream's
recorder does.  The queue is bounded: under a storm the oldest are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from typing import Any

from k3py.client import Client, NotFound
from k3py.client.resources import EVENTS
from k3py.server.controllers.base import rfc3339

log = logging.getLogger("k3py.agent.events")
Obj = dict[str, Any]


class KubeletEvents:
    def __init__(self, client: Client, *, node: str, component: str = "kubelet", limit: int = 1000) -> None:
        self.client = client
        self.node = node
        self.component = component
        self._queue: asyncio.Queue[tuple[Obj, str, str, str, str]] = asyncio.Queue(limit)
        self._task: asyncio.Task[None] | None = None
        self._seen: dict[str, tuple[str, int]] = {}  # key -> (event name, count)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="kubelet-events")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def normal(self, obj: Obj, reason: str, message: str, *, field: str = "") -> None:
        self._put(obj, "Normal", reason, message, field)

    def warning(self, obj: Obj, reason: str, message: str, *, field: str = "") -> None:
        self._put(obj, "Warning", reason, message, field)

    def _put(self, obj: Obj, etype: str, reason: str, message: str, field: str) -> None:
        item = (obj, etype, reason, message, field)
        if self._queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
        self._queue.put_nowait(item)

    async def _run(self) -> None:
        while True:
            obj, etype, reason, message, field = await self._queue.get()
            try:
                await self._write(obj, etype, reason, message, field)
            except Exception as e:  # noqa: BLE001 - events are best effort
                log.debug("event not written: %s", e)

    async def _write(self, obj: Obj, etype: str, reason: str, message: str, field: str) -> None:
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or "default"
        key = hashlib.sha256(f"{meta.get('uid')}/{field}/{etype}/{reason}/{message}".encode()).hexdigest()
        now = time.time()
        seen = self._seen.get(key)
        if seen is not None:
            name, count = seen
            try:
                await self.client.patch(EVENTS, name, {"count": count + 1, "lastTimestamp": rfc3339(now)},
                                        namespace=ns, patch_type="merge")
                self._seen[key] = (name, count + 1)
                return
            except NotFound:
                pass
        ref: Obj = {"kind": obj.get("kind") or "Pod", "namespace": ns, "name": meta.get("name", ""),
                    "uid": meta.get("uid", ""), "apiVersion": obj.get("apiVersion") or "v1",
                    "resourceVersion": meta.get("resourceVersion", "")}
        if field:
            ref["fieldPath"] = f"spec.containers{{{field}}}"
        name = f"{meta.get('name', 'obj')}.{int(now * 1e9):x}"[:253]
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "type": etype,
            "source": {"component": self.component, "host": self.node},
            "firstTimestamp": rfc3339(now),
            "lastTimestamp": rfc3339(now),
            "eventTime": None,
            "count": 1,
            "reportingComponent": self.component,
            "reportingInstance": self.node,
        }
        await self.client.create(EVENTS, body)
        if len(self._seen) > 5000:
            self._seen.clear()
        self._seen[key] = (name, 1)
