"""Informers over the in-process transport on an in-memory datastore: sync, live events,
selector transitions, indexes, resume after a stop, relist after 410 Gone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from k3py.client import CONFIGMAPS, PODS, Client, Informer, by_field, by_label
from tests.unit.conftest import Env

Obj = dict[str, Any]


def cm(name: str, *, ns: str = "default", **labels: str) -> Obj:
    return {"metadata": {"name": name, "namespace": ns, "labels": labels}, "data": {"k": name}}


def pod(name: str, *, node: str = "") -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name}, "spec": spec}


class Recorder:
    """Handlers that record ``(event, name)`` and let a test wait for a count."""

    def __init__(self, informer: Informer) -> None:
        self.events: list[tuple[str, str]] = []
        self.objects: list[Obj] = []
        self._changed = asyncio.Event()
        informer.add_handler(
            on_add=lambda o: self._record("add", o),
            on_update=lambda old, new: self._record("update", new, old),
            on_delete=lambda o: self._record("delete", o),
        )

    def _record(self, what: str, obj: Obj, old: Obj | None = None) -> None:
        self.events.append((what, obj["metadata"]["name"]))
        self.objects.append(obj)
        self._changed.set()

    async def wait_for(self, n: int) -> list[tuple[str, str]]:
        async with asyncio.timeout(5):
            while len(self.events) < n:
                self._changed.clear()
                await self._changed.wait()
        return self.events


@pytest.fixture
async def informers(env: Env) -> AsyncIterator[list[Informer]]:
    made: list[Informer] = []
    yield made
    for inf in made:
        await inf.stop()


def make(client: Client, made: list[Informer], res: Any = CONFIGMAPS, **kw: Any) -> Informer:
    inf = client.informer(res, **kw)
    made.append(inf)
    return inf


async def test_sync_lists_every_page_then_follows_changes(
    env: Env, informers: list[Informer]
) -> None:
    c = env.client
    for i in range(5):
        await c.create(CONFIGMAPS, cm(f"c{i}"))
    inf = make(c, informers, page_size=2)
    rec = Recorder(inf)
    inf.start()
    async with asyncio.timeout(5):
        await inf.wait_synced()
    assert sorted(o["metadata"]["name"] for o in inf.list()) == [f"c{i}" for i in range(5)]
    assert sorted(rec.events) == [("add", f"c{i}") for i in range(5)]

    await c.patch(CONFIGMAPS, "c1", {"data": {"k": "changed"}}, namespace="default")
    await c.delete(CONFIGMAPS, "c2", namespace="default")
    await c.create(CONFIGMAPS, cm("c9"))
    assert (await rec.wait_for(8))[5:] == [("update", "c1"), ("delete", "c2"), ("add", "c9")]
    got = inf.get("c1", namespace="default")
    assert got is not None and got["data"] == {"k": "changed"}
    assert inf.get("c2", namespace="default") is None
    assert inf.lists == 1


async def test_reads_and_handlers_get_private_copies(env: Env, informers: list[Informer]) -> None:
    c = env.client
    await c.create(CONFIGMAPS, cm("a"))
    inf = make(c, informers)
    seen: list[Obj] = []

    def vandal(o: Obj) -> None:
        o["data"]["k"] = "vandalized"

    inf.add_handler(on_add=vandal)
    inf.add_handler(on_add=seen.append)
    inf.start()
    async with asyncio.timeout(5):
        await inf.wait_synced()
    assert seen[0]["data"] == {"k": "a"}  # the first handler's change did not leak
    first = inf.get("a", namespace="default")
    assert first is not None
    first["data"]["k"] = "mine"
    again = inf.get("a", namespace="default")
    assert again is not None and again["data"] == {"k": "a"}


async def test_readonly_handlers_share_one_copy_and_mutators_get_their_own(
    env: Env, informers: list[Informer]
) -> None:
    c = env.client
    await c.create(CONFIGMAPS, cm("a"))
    inf = make(c, informers)
    shared: list[Obj] = []
    mutated: list[Obj] = []

    def vandal(o: Obj) -> None:
        o["data"]["k"] = "vandalized"
        mutated.append(o)

    inf.add_handler(on_add=shared.append, readonly=True)
    inf.add_handler(on_add=vandal)
    inf.add_handler(on_add=shared.append, readonly=True)
    inf.start()
    async with asyncio.timeout(5):
        await inf.wait_synced()
    assert len(shared) == 2 and shared[0] is shared[1]  # one decode for both
    assert shared[0]["data"] == {"k": "a"}  # the mutator had a copy of its own
    assert mutated[0] is not shared[0]


async def test_a_failing_handler_does_not_stop_the_informer(
    env: Env, informers: list[Informer]
) -> None:
    inf = make(env.client, informers)

    def broken(o: Obj) -> None:
        raise RuntimeError("handler bug")

    inf.add_handler(on_add=broken)
    rec = Recorder(inf)
    inf.start()
    async with asyncio.timeout(5):
        await inf.wait_synced()
    await env.client.create(CONFIGMAPS, cm("x"))
    await env.client.create(CONFIGMAPS, cm("y"))
    assert await rec.wait_for(2) == [("add", "x"), ("add", "y")]


async def test_label_selector_turns_relabels_into_adds_and_deletes(
    env: Env, informers: list[Informer]
) -> None:
    c = env.client
    await c.create(CONFIGMAPS, cm("web", app="web"))
    await c.create(CONFIGMAPS, cm("db", app="db"))
    inf = make(c, informers, label_selector="app=web")
    rec = Recorder(inf)
    inf.start()
    async with asyncio.timeout(5):
        await inf.wait_synced()
    assert rec.events == [("add", "web")]
    await c.patch(CONFIGMAPS, "web", {"metadata": {"labels": {"app": "other"}}})
    await c.patch(CONFIGMAPS, "db", {"metadata": {"labels": {"app": "web"}}})
    await c.patch(CONFIGMAPS, "db", {"data": {"k": "2"}})
    events = await rec.wait_for(4)
    assert events[1:] == [("delete", "web"), ("add", "db"), ("update", "db")]
    assert [o["metadata"]["name"] for o in inf.list()] == ["db"]


async def test_indexes_follow_updates(env: Env, informers: list[Informer]) -> None:
    c = env.client
    await c.create(PODS, pod("p1", node="n1"))
    await c.create(PODS, pod("p2", node="n1"))
    await c.create(PODS, pod("p3"))
    inf = make(c, informers, res=PODS, indexers={"node": by_field("spec", "nodeName")})
    inf.add_indexer("tier", by_label("tier"))
    rec = Recorder(inf)
    inf.start()
    async with asyncio.timeout(5):
        await inf.wait_synced()
    assert [p["metadata"]["name"] for p in inf.by_index("node", "n1")] == ["p1", "p2"]
    await c.delete(PODS, "p2", grace_period_seconds=0)
    await c.patch(PODS, "p3", {"metadata": {"labels": {"tier": "front"}}})
    await rec.wait_for(5)
    assert [p["metadata"]["name"] for p in inf.by_index("node", "n1")] == ["p1"]
    assert [p["metadata"]["name"] for p in inf.by_index("tier", "front")] == ["p3"]
    assert inf.cache.index_keys("namespace", "default") == ["default/p1", "default/p3"]


async def test_restart_resumes_from_the_last_revision_without_a_relist(
    env: Env, informers: list[Informer]
) -> None:
    c = env.client
    await c.create(CONFIGMAPS, cm("a"))
    await c.create(CONFIGMAPS, cm("b"))
    inf = make(c, informers)
    rec = Recorder(inf)
    inf.start()
    async with asyncio.timeout(5):
        await inf.wait_synced()
    await inf.stop()
    await c.delete(CONFIGMAPS, "a")
    await c.patch(CONFIGMAPS, "b", {"data": {"k": "new"}})
    await c.create(CONFIGMAPS, cm("c"))
    inf.start()
    events = await rec.wait_for(5)
    assert events[2:] == [("delete", "a"), ("update", "b"), ("add", "c")]
    assert inf.lists == 1


async def test_gone_after_compaction_relists_and_replays_the_difference(
    env: Env, informers: list[Informer]
) -> None:
    c = env.client
    for name in ("a", "b", "c"):
        await c.create(CONFIGMAPS, cm(name))
    inf = make(c, informers)
    rec = Recorder(inf)
    inf.start()
    async with asyncio.timeout(5):
        await inf.wait_synced()
    await inf.stop()
    stale = inf.resource_version
    await c.delete(CONFIGMAPS, "a")
    await c.patch(CONFIGMAPS, "b", {"data": {"k": "new"}})
    await c.create(CONFIGMAPS, cm("d"))
    await c.create(CONFIGMAPS, cm("other", ns="other"))
    assert await env.ds.compact() > int(stale)

    inf.start()
    events = await rec.wait_for(7)
    assert sorted(events[3:]) == [("add", "d"), ("add", "other"), ("delete", "a"), ("update", "b")]
    assert inf.lists == 2
    assert sorted(inf.cache.keys()) == ["default/b", "default/c", "default/d", "other/other"]
    # The informer watches again from the new list's revision.
    await c.delete(CONFIGMAPS, "c")
    assert (await rec.wait_for(8))[-1] == ("delete", "c")


async def test_watch_timeouts_rewatch_without_relisting(
    env: Env, informers: list[Informer]
) -> None:
    inf = make(env.client, informers, watch_timeout=1)
    rec = Recorder(inf)
    inf.start()
    async with asyncio.timeout(5):
        await inf.wait_synced()
    await asyncio.sleep(1.2)  # the first watch has ended by now
    await env.client.create(CONFIGMAPS, cm("late"))
    assert await rec.wait_for(1) == [("add", "late")]
    assert inf.lists == 1
