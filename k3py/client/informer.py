"""Informers: a local, always-catching-up copy of one resource, with change callbacks.

    informer = Informer(transport, PODS, field_selector="spec.nodeName=node-1",
                        indexers={"node": by_field("spec", "nodeName")})
    informer.add_handler(on_add=..., on_update=..., on_delete=...)
    informer.start()
    await informer.wait_synced()
    pod = informer.get("web-0", namespace="default")       # a private copy

How it keeps up (client-go's reflector, in one task):

1. **List** every page (``limit``/``continue``, one consistent revision) and *replace* the
   cache with it: objects that appeared are ADDs, changed ones (another
   resourceVersion) UPDATEs, vanished ones DELETEs.  The first list marks it synced.
2. **Watch** from the list's resourceVersion, with bookmarks; each event updates the
   cache and then calls the handlers.  The resourceVersion of the last event (or
   bookmark) is remembered.
3. When the watch ends (server timeout, slow consumer cut off, broken connection), watch
   again from the remembered resourceVersion: no relist, nothing missed or repeated.
4. When the server answers **410 Gone** (the revision was compacted away), go back to 1.
   Other failures back off exponentially (``backoff_base`` … ``backoff_max``) and retry.

Handlers are called in event order from the informer's task, after the cache holds the
new state; they may be plain functions or coroutines, and should be quick (enqueue a
key, as controllers do).  A handler that raises is logged and does not stop the
informer.  Every handler receives its own copies of the objects.  Add handlers and
indexers before ``start()``.  ``stop()`` then ``start()`` resumes from the last
resourceVersion, with the cache kept.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from k3py.client.cache import Cache, IndexFunc, key_for, key_of
from k3py.client.errors import Gone
from k3py.client.interface import ListOptions, Transport, WatchEvent, WatchOptions
from k3py.client.resources import Resource

Obj = dict[str, Any]
log = logging.getLogger("k3py.client.informer")

__all__ = ["Handlers", "IndexFunc", "Informer"]


@dataclass(frozen=True)
class Handlers:
    on_add: Callable[[Obj], Any] | None = None
    on_update: Callable[[Obj, Obj], Any] | None = None  # (old, new)
    on_delete: Callable[[Obj], Any] | None = None  # the last state known
    readonly: bool = False  # promises not to mutate: shares one copy with other such handlers


class Informer:
    def __init__(
        self,
        transport: Transport,
        res: Resource,
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        indexers: dict[str, IndexFunc] | None = None,
        page_size: int = 500,
        watch_timeout: int | None = 300,
        backoff_base: float = 0.2,
        backoff_max: float = 30.0,
    ) -> None:
        self.transport = transport
        self.resource = res
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.cache = Cache(indexers)
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.resource_version = ""
        self.lists = 0  # completed lists (1 after sync; more after 410s)
        self._handlers: list[Handlers] = []
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ---- set-up and life cycle -------------------------------------------------

    def add_handler(
        self,
        *,
        on_add: Callable[[Obj], Any] | None = None,
        on_update: Callable[[Obj, Obj], Any] | None = None,
        on_delete: Callable[[Obj], Any] | None = None,
        readonly: bool = False,
    ) -> None:
        """``readonly=True`` promises the handler never mutates (or keeps and later
        mutates) the objects it is given: such handlers share one copy, which saves a
        decode per handler per event when many controllers watch one resource."""
        if self._task is not None:
            raise RuntimeError("add handlers before the informer starts")
        self._handlers.append(Handlers(on_add, on_update, on_delete, readonly))

    def add_indexer(self, name: str, fn: IndexFunc) -> None:
        self.cache.add_indexer(name, fn)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"informer-{self.resource}"
            )

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        """Wait for the first complete list (bound it with ``asyncio.timeout``)."""
        await self._synced.wait()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ---- reads (private copies) -----------------------------------------------

    def get(self, name: str, *, namespace: str = "") -> Obj | None:
        return self.cache.get(key_for(namespace=namespace, name=name))

    def list(self, namespace: str | None = None) -> list[Obj]:
        return self.cache.list(namespace)

    def by_index(self, index: str, value: str) -> builtins.list[Obj]:
        return self.cache.by_index(index, value)

    # ---- the loop ---------------------------------------------------------------

    async def _run(self) -> None:
        # Restarted after ``stop()``, it resumes from where it was (or relists on 410).
        need_list = not self.resource_version
        failures = 0
        while True:
            listed = need_list
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                await self._watch_once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Gone as e:
                log.info("informer %s: %s; listing again", self.resource, e.message)
                need_list = True
                if listed:  # gone right after a list: do not spin
                    failures += 1
                    await asyncio.sleep(self._backoff(failures))
            except Exception as e:  # noqa: BLE001 - keep following; report and back off
                failures += 1
                delay = self._backoff(failures)
                log.warning(
                    "informer %s: %s: %s; retrying in %.1fs",
                    self.resource,
                    type(e).__name__,
                    e,
                    delay,
                )
                await asyncio.sleep(delay)

    def _backoff(self, failures: int) -> float:
        return float(min(self.backoff_max, self.backoff_base * 2 ** (failures - 1)))

    async def _relist(self) -> None:
        items: list[Obj] = []
        token = ""
        while True:
            page = await self.transport.list(
                self.resource,
                namespace=self.namespace,
                opts=ListOptions(
                    label_selector=self.label_selector,
                    field_selector=self.field_selector,
                    limit=self.page_size,
                    continue_token=token,
                ),
            )
            items.extend(page.items)
            token = page.continue_token
            if not token:
                break
        await self._replace(items)
        self.resource_version = page.resource_version
        self.lists += 1
        self._synced.set()

    async def _replace(self, items: builtins.list[Obj]) -> None:
        fresh = {key_of(o): o for o in items}
        gone = [k for k in self.cache.keys() if k not in fresh]
        for key, obj in fresh.items():
            rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
            if key in self.cache and self.cache.resource_version(key) == rv:
                continue
            old = self.cache.put(key, obj)
            await self._notify(old, obj)
        for key in gone:
            old = self.cache.remove(key)
            if old is not None:
                await self._notify_delete(orjson.loads(old))

    async def _watch_once(self) -> None:
        opts = WatchOptions(
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            resource_version=self.resource_version,
            timeout_seconds=self.watch_timeout,
            allow_bookmarks=True,
        )
        stream = self.transport.watch(self.resource, namespace=self.namespace, opts=opts)
        try:
            async for ev in stream:
                await self._on_event(ev)
        finally:
            await stream.aclose()

    async def _on_event(self, ev: WatchEvent) -> None:
        if ev.type == "BOOKMARK":
            self.resource_version = ev.resource_version or self.resource_version
            return
        key = key_of(ev.object)
        if ev.type == "DELETED":
            self.cache.remove(key)
            await self._notify_delete(ev.object)
        else:
            old = self.cache.put(key, ev.object)
            await self._notify(old, ev.object)
        self.resource_version = ev.resource_version or self.resource_version

    # ---- handlers -----------------------------------------------------------------

    async def _notify(self, old_raw: bytes | None, new: Obj) -> None:
        copies = _copies(new, self._handlers)
        shared_old: Obj | None = None
        for h, obj in zip(self._handlers, copies, strict=True):
            if old_raw is None:
                if h.on_add is not None:
                    await _call(h.on_add, obj)
            elif h.on_update is not None:
                if h.readonly:
                    if shared_old is None:
                        shared_old = orjson.loads(old_raw)
                    old = shared_old
                else:
                    old = orjson.loads(old_raw)
                await _call(h.on_update, old, obj)

    async def _notify_delete(self, obj: Obj) -> None:
        for h, o in zip(self._handlers, _copies(obj, self._handlers), strict=True):
            if h.on_delete is not None:
                await _call(h.on_delete, o)


def _copies(obj: Obj, handlers: list[Handlers]) -> list[Obj]:
    """One object per handler: read-only handlers share ``obj`` (the informer owns it);
    every other handler gets its own decoded copy (the first of them may take ``obj``
    itself when no read-only handler shares it)."""
    n = len(handlers)
    if n <= 1:
        return [obj][:n]
    any_readonly = any(h.readonly for h in handlers)
    raw: bytes | None = None
    out: list[Obj] = []
    given = False
    for h in handlers:
        if h.readonly or (not any_readonly and not given):
            out.append(obj)
            given = True
            continue
        if raw is None:
            raw = orjson.dumps(obj)
        out.append(orjson.loads(raw))
    return out


async def _call(fn: Callable[..., Any], *args: Obj) -> None:
    try:
        result = fn(*args)
        if inspect.isawaitable(result):
            await result
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - one handler's bug must not stop the informer
        log.exception("informer handler %r failed", fn)
