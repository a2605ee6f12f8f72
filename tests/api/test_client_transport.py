"""k3py's own client, the same behavioural checks over both transports.

Each check is an ``async def check(t: Target)`` run twice: with the in-process transport
(on the server's event loop, through ``server.call``) and with the HTTPS transport (built
from the server's kubeconfig, on a loop of the test's own).  CRUD, conflicts and
preconditions, selectors and pages, watch resume and selector transitions, informers
(live events; 410 Gone → relist on a server that compacts), server-side apply, the
status subresource, pods/binding and pods/eviction.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from k3py.client import (
    CONFIGMAPS,
    NAMESPACES,
    PODS,
    AlreadyExists,
    BadRequest,
    Client,
    Conflict,
    EventStream,
    Gone,
    Informer,
    NotFound,
)
from k3py.client.https import HTTPSTransport
from tests.conftest import ServerHandle, server_config, start_server_thread, stop_server_thread

pytestmark = pytest.mark.timeout(120)

Obj = dict[str, Any]
T = TypeVar("T")
_ns_ids = itertools.count(1)


@dataclass
class Target:
    client: Client
    ns: str
    server: ServerHandle
    transport: str  # "inprocess" | "https"

    async def compact(self) -> int:
        """Compact the server's log (from either loop)."""
        fut = asyncio.run_coroutine_threadsafe(
            self.server.running.datastore.compact(), self.server.loop
        )
        return int(await asyncio.wrap_future(fut))


Check = Callable[[Target], Awaitable[T]]


async def _with_namespace(client: Client, server: ServerHandle, kind: str, check: Check[T]) -> T:
    ns = f"tr-{kind[:2]}-{os.getpid() % 10000}-{next(_ns_ids)}"
    await client.create(NAMESPACES, {"metadata": {"name": ns}})
    try:
        return await check(Target(client=client, ns=ns, server=server, transport=kind))
    finally:
        await client.delete(NAMESPACES, ns)


def run_check(server: ServerHandle, kind: str, check: Check[T]) -> T:
    if kind == "inprocess":

        async def inprocess() -> T:
            transport = server.running.transport.with_identity(
                user="system:kube-scheduler", field_manager="transport-test"
            )
            return await _with_namespace(Client(transport), server, kind, check)

        result: T = server.call(inprocess())
        return result

    async def https() -> T:
        async with Client.from_kubeconfig(server.kubeconfig, field_manager="transport-test") as c:
            assert isinstance(c.transport, HTTPSTransport)
            return await _with_namespace(c, server, kind, check)

    return asyncio.run(https())


@pytest.fixture(params=["inprocess", "https"])
def run(request: pytest.FixtureRequest, server: ServerHandle) -> Callable[[Check[Any]], Any]:
    return lambda check: run_check(server, request.param, check)


def cm(name: str, *, labels: dict[str, str] | None = None, **data: str) -> Obj:
    meta: Obj = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"metadata": meta, "data": data}


def pod(name: str) -> Obj:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def names(items: list[Obj]) -> list[str]:
    return [o["metadata"]["name"] for o in items]


async def collect(stream: EventStream, n: int) -> list[tuple[str, str]]:
    """The first ``n`` events as (type, name); the stream is closed afterwards."""
    out: list[tuple[str, str]] = []
    try:
        async with asyncio.timeout(10):
            async for ev in stream:
                out.append((ev.type, ev.object["metadata"]["name"]))
                if len(out) == n:
                    break
    finally:
        await stream.aclose()
    return out


class Recorder:
    def __init__(self, informer: Informer) -> None:
        self.events: list[tuple[str, str]] = []
        self._changed = asyncio.Event()
        informer.add_handler(
            on_add=lambda o: self._add("add", o),
            on_update=lambda _old, new: self._add("update", new),
            on_delete=lambda o: self._add("delete", o),
        )

    def _add(self, what: str, obj: Obj) -> None:
        self.events.append((what, obj["metadata"]["name"]))
        self._changed.set()

    async def wait_for(self, n: int) -> list[tuple[str, str]]:
        async with asyncio.timeout(10):
            while len(self.events) < n:
                self._changed.clear()
                await self._changed.wait()
        return self.events


# ---- the checks ---------------------------------------------------------------------


def test_crud(run: Callable[[Check[None]], None]) -> None:
    async def check(t: Target) -> None:
        c, ns = t.client, t.ns
        made = await c.create(CONFIGMAPS, cm("a", k="1"), namespace=ns)
        meta = made["metadata"]
        assert meta["namespace"] == ns and meta["uid"] and made["kind"] == "ConfigMap"
        assert [m["manager"] for m in meta["managedFields"]] == ["transport-test"]
        got = await c.get(CONFIGMAPS, "a", namespace=ns)
        assert got == made
        got["data"]["k"] = "2"
        updated = await c.update(CONFIGMAPS, got)
        assert updated["data"] == {"k": "2"}
        assert int(updated["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
        assert names((await c.list(CONFIGMAPS, namespace=ns)).items) == ["a"]
        with pytest.raises(AlreadyExists):
            await c.create(CONFIGMAPS, cm("a"), namespace=ns)
        assert await c.delete(CONFIGMAPS, "a", namespace=ns) is None
        with pytest.raises(NotFound):
            await c.get(CONFIGMAPS, "a", namespace=ns)
        with pytest.raises(NotFound):
            await c.delete(CONFIGMAPS, "a", namespace=ns)
        assert await c.get_or_none(CONFIGMAPS, "a", namespace=ns) is None

        dry = await c.create(CONFIGMAPS, cm("dry"), namespace=ns, dry_run=True)
        assert dry["metadata"]["name"] == "dry"
        assert await c.get_or_none(CONFIGMAPS, "dry", namespace=ns) is None
        generated = await c.create(CONFIGMAPS, {"metadata": {"generateName": "gen-"}}, namespace=ns)
        assert generated["metadata"]["name"].startswith("gen-")

        # A finalizer holds a deletion: the object stays, marked, until it is removed.
        await c.create(
            CONFIGMAPS, {"metadata": {"name": "f", "finalizers": ["x.io/f"]}}, namespace=ns
        )
        pending = await c.delete(CONFIGMAPS, "f", namespace=ns)
        assert pending is not None and pending["metadata"]["deletionTimestamp"]
        await c.patch(CONFIGMAPS, "f", {"metadata": {"finalizers": None}}, namespace=ns)
        assert await c.get_or_none(CONFIGMAPS, "f", namespace=ns) is None

    run(check)


def test_conflicts_and_preconditions(run: Callable[[Check[None]], None]) -> None:
    async def check(t: Target) -> None:
        c, ns = t.client, t.ns
        first = await c.create(CONFIGMAPS, cm("a", k="1"), namespace=ns)
        stale = first["metadata"]["resourceVersion"]
        await c.update(CONFIGMAPS, {**first, "data": {"k": "2"}})
        with pytest.raises(Conflict) as lost:
            await c.update(CONFIGMAPS, {**first, "data": {"k": "3"}})
        assert lost.value.code == 409 and lost.value.reason == "Conflict"
        assert "the object has been modified" in lost.value.message
        with pytest.raises(Conflict):
            patch = {"metadata": {"resourceVersion": stale}, "data": {"k": "4"}}
            await c.patch(CONFIGMAPS, "a", patch, namespace=ns)
        with pytest.raises(Conflict):
            await c.delete(CONFIGMAPS, "a", namespace=ns, preconditions_resource_version=stale)
        with pytest.raises(Conflict):
            await c.delete(CONFIGMAPS, "a", namespace=ns, preconditions_uid="not-the-uid")
        assert (await c.get(CONFIGMAPS, "a", namespace=ns))["data"] == {"k": "2"}
        await c.delete(CONFIGMAPS, "a", namespace=ns, preconditions_uid=first["metadata"]["uid"])

    run(check)


def test_selectors_and_pages(run: Callable[[Check[None]], None]) -> None:
    async def check(t: Target) -> None:
        c, ns = t.client, t.ns
        for i, app in enumerate(["web", "web", "db", "cache", "web"]):
            await c.create(
                CONFIGMAPS, cm(f"c{i}", labels={"app": app, "tier": str(i % 2)}), namespace=ns
            )

        async def listed(*, label_selector: str = "", field_selector: str = "") -> list[str]:
            page = await c.list(
                CONFIGMAPS,
                namespace=ns,
                label_selector=label_selector,
                field_selector=field_selector,
            )
            return names(page.items)

        assert await listed(label_selector="app=web") == ["c0", "c1", "c4"]
        assert await listed(label_selector="app in (db,cache),tier=0") == ["c2"]
        assert await listed(label_selector="app!=web") == ["c2", "c3"]
        assert await listed(label_selector="app=web", field_selector="metadata.name!=c1") == [
            "c0",
            "c4",
        ]
        assert await listed(field_selector="metadata.name=c3") == ["c3"]
        with pytest.raises(BadRequest):
            await listed(label_selector="app in (")

        first = await c.list(CONFIGMAPS, namespace=ns, limit=2)
        assert names(first.items) == ["c0", "c1"] and first.continue_token
        second = await c.list(
            CONFIGMAPS, namespace=ns, limit=2, continue_token=first.continue_token
        )
        assert names(second.items) == ["c2", "c3"]
        assert second.resource_version == first.resource_version
        everything = await c.list_all(CONFIGMAPS, namespace=ns, page_size=2)
        assert names(everything.items) == [f"c{i}" for i in range(5)]
        assert all(o["kind"] == "ConfigMap" for o in everything.items)
        across = await c.list(CONFIGMAPS, label_selector="app=db")  # all namespaces
        assert (ns, "c2") in [
            (o["metadata"]["namespace"], o["metadata"]["name"]) for o in across.items
        ]

    run(check)


def test_watch_resumes_and_filters(run: Callable[[Check[None]], None]) -> None:
    async def check(t: Target) -> None:
        c, ns = t.client, t.ns
        made = await c.create(CONFIGMAPS, cm("w", labels={"app": "a"}), namespace=ns)
        rv = made["metadata"]["resourceVersion"]
        await c.patch(CONFIGMAPS, "w", {"data": {"k": "1"}}, namespace=ns)
        await c.patch(CONFIGMAPS, "w", {"metadata": {"labels": {"app": "b"}}}, namespace=ns)
        await c.patch(CONFIGMAPS, "w", {"metadata": {"labels": {"app": "a"}}}, namespace=ns)
        await c.delete(CONFIGMAPS, "w", namespace=ns)
        await c.create(CONFIGMAPS, cm("last"), namespace=ns)

        everything = c.watch(CONFIGMAPS, namespace=ns, resource_version=rv, timeout_seconds=10)
        assert await collect(everything, 5) == [
            ("MODIFIED", "w"),
            ("MODIFIED", "w"),
            ("MODIFIED", "w"),
            ("DELETED", "w"),
            ("ADDED", "last"),
        ]
        selected = c.watch(
            CONFIGMAPS,
            namespace=ns,
            label_selector="app=a",
            resource_version=rv,
            timeout_seconds=10,
        )
        assert await collect(selected, 4) == [
            ("MODIFIED", "w"),
            ("DELETED", "w"),  # relabelled away
            ("ADDED", "w"),  # and back
            ("DELETED", "w"),
        ]
        fresh = c.watch(CONFIGMAPS, namespace=ns, timeout_seconds=10)  # from now, with a list
        assert await collect(fresh, 1) == [("ADDED", "last")]

        # An object above aiohttp's line limit still arrives whole.
        big = "x" * 300_000
        base = (await c.list(CONFIGMAPS, namespace=ns)).resource_version
        await c.create(CONFIGMAPS, cm("big", k=big), namespace=ns)
        stream = c.watch(CONFIGMAPS, namespace=ns, resource_version=base, timeout_seconds=10)
        try:
            ev = await stream.__anext__()
        finally:
            await stream.aclose()
        assert ev.type == "ADDED" and ev.object["data"]["k"] == big

    run(check)


def test_informer_follows_changes(run: Callable[[Check[None]], None]) -> None:
    async def check(t: Target) -> None:
        c, ns = t.client, t.ns
        await c.create(CONFIGMAPS, cm("a", labels={"app": "x"}), namespace=ns)
        await c.create(CONFIGMAPS, cm("skip", labels={"app": "y"}), namespace=ns)
        inf = c.informer(CONFIGMAPS, namespace=ns, label_selector="app=x", page_size=1)
        rec = Recorder(inf)
        inf.start()
        try:
            async with asyncio.timeout(10):
                await inf.wait_synced()
            await c.create(CONFIGMAPS, cm("b", labels={"app": "x"}), namespace=ns)
            await c.patch(CONFIGMAPS, "a", {"data": {"k": "v"}}, namespace=ns)
            await c.patch(CONFIGMAPS, "skip", {"metadata": {"labels": {"app": "x"}}}, namespace=ns)
            await c.delete(CONFIGMAPS, "b", namespace=ns)
            assert await rec.wait_for(5) == [
                ("add", "a"),
                ("add", "b"),
                ("update", "a"),
                ("add", "skip"),
                ("delete", "b"),
            ]
            assert sorted(names(inf.list())) == ["a", "skip"]
            assert inf.lists == 1
        finally:
            await inf.stop()

    run(check)


def test_server_side_apply(run: Callable[[Check[None]], None]) -> None:
    async def check(t: Target) -> None:
        c, ns = t.client, t.ns
        mine = {"metadata": {"name": "s", "namespace": ns}, "data": {"a": "1"}}
        made = await c.apply(CONFIGMAPS, mine, field_manager="alice")
        entries = made["metadata"]["managedFields"]
        assert [(m["manager"], m["operation"]) for m in entries] == [("alice", "Apply")]
        theirs = {"metadata": {"name": "s", "namespace": ns}, "data": {"a": "2", "b": "2"}}
        with pytest.raises(Conflict) as clash:
            await c.apply(CONFIGMAPS, theirs, field_manager="bob")
        assert "conflict" in clash.value.message.lower()
        assert any(".data.a" in cause.get("field", "") for cause in clash.value.causes)
        forced = await c.apply(CONFIGMAPS, theirs, field_manager="bob", force=True)
        assert forced["data"] == {"a": "2", "b": "2"}
        assert {m["manager"] for m in forced["metadata"]["managedFields"]} == {"bob"}
        # alice no longer owns anything; dropping a field bob owns leaves it alone.
        again = await c.apply(
            CONFIGMAPS, {"metadata": {"name": "s", "namespace": ns}}, field_manager="alice"
        )
        assert again["data"] == {"a": "2", "b": "2"}

    run(check)


def test_status_subresource(run: Callable[[Check[None]], None]) -> None:
    async def check(t: Target) -> None:
        c, ns = t.client, t.ns
        made = await c.create(PODS, pod("p"), namespace=ns)
        made["status"]["message"] = "via status"
        made["metadata"].setdefault("labels", {})["ignored"] = "by-status"
        after = await c.update_status(PODS, made)
        assert after["status"]["message"] == "via status"
        assert "ignored" not in (after["metadata"].get("labels") or {})
        after["status"]["message"] = "via main"
        after["metadata"]["labels"] = {"kept": "yes"}
        main = await c.update(PODS, after)
        assert main["status"]["message"] == "via status"  # the main resource ignores status
        assert main["metadata"]["labels"] == {"kept": "yes"}
        patched = await c.patch(
            PODS, "p", {"status": {"reason": "Patched"}}, namespace=ns, subresource="status"
        )
        assert patched["status"]["reason"] == "Patched"
        status = await c.get(PODS, "p", namespace=ns, subresource="status")
        assert status["status"]["message"] == "via status"

    run(check)


def test_pod_binding(run: Callable[[Check[None]], None]) -> None:
    async def check(t: Target) -> None:
        c, ns = t.client, t.ns
        await c.create(PODS, pod("b"), namespace=ns)
        await c.bind(namespace=ns, pod="b", node="node-1")
        bound = await c.get(PODS, "b", namespace=ns)
        assert bound["spec"]["nodeName"] == "node-1"
        scheduled = [x for x in bound["status"]["conditions"] if x["type"] == "PodScheduled"]
        assert [x["status"] for x in scheduled] == ["True"]
        with pytest.raises(Conflict, match="already assigned"):
            await c.bind(namespace=ns, pod="b", node="node-2")
        with pytest.raises(NotFound):
            await c.bind(namespace=ns, pod="missing", node="node-1")

    run(check)


def test_pod_eviction(run: Callable[[Check[None]], None]) -> None:
    async def check(t: Target) -> None:
        c, ns = t.client, t.ns
        await c.create(PODS, pod("e"), namespace=ns)
        await c.evict(namespace=ns, pod="e")
        assert await c.get_or_none(PODS, "e", namespace=ns) is None  # never scheduled: at once
        with pytest.raises(NotFound):
            await c.evict(namespace=ns, pod="e")

    run(check)


# ---- 410 Gone: a server whose log keeps only the newest few revisions ---------------------


@pytest.fixture(scope="module")
def compacting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    data: Path = tmp_path_factory.mktemp("k3py-transport-compact")
    h = start_server_thread(
        server_config(data, retention_revisions=3, retention_seconds=0, compaction_interval=0)
    )
    yield h
    stop_server_thread(h)


@pytest.mark.parametrize("kind", ["inprocess", "https"])
def test_gone_after_compaction_and_the_informer_relists(
    compacting: ServerHandle, kind: str
) -> None:
    async def check(t: Target) -> None:
        c, ns = t.client, t.ns
        for name in ("a", "b", "c"):
            await c.create(CONFIGMAPS, cm(name), namespace=ns)
        inf = c.informer(CONFIGMAPS, namespace=ns)
        rec = Recorder(inf)
        inf.start()
        async with asyncio.timeout(10):
            await inf.wait_synced()
        await inf.stop()
        stale = inf.resource_version
        await c.delete(CONFIGMAPS, "a", namespace=ns)
        await c.patch(CONFIGMAPS, "b", {"data": {"k": "new"}}, namespace=ns)
        await c.create(CONFIGMAPS, cm("d"), namespace=ns)
        for i in range(4):
            await c.patch(CONFIGMAPS, "d", {"data": {"i": str(i)}}, namespace=ns)
        assert await t.compact() > int(stale)

        with pytest.raises(Gone) as gone:
            await collect(c.watch(CONFIGMAPS, namespace=ns, resource_version=stale), 1)
        assert gone.value.code == 410 and gone.value.reason == "Expired"

        inf.start()  # resumes from ``stale``: 410, so it lists again
        try:
            events = await rec.wait_for(6)
            assert sorted(events[3:]) == [("add", "d"), ("delete", "a"), ("update", "b")]
            assert inf.lists == 2
            assert sorted(names(inf.list())) == ["b", "c", "d"]
            await c.delete(CONFIGMAPS, "c", namespace=ns)
            assert (await rec.wait_for(7))[-1] == ("delete", "c")
        finally:
            await inf.stop()

    run_check(compacting, kind, check)


# ---- what only the in-process transport promises ---------------------------------------


def test_inprocess_objects_are_private(server: ServerHandle) -> None:
    async def check(t: Target) -> None:
        c, ns = t.client, t.ns
        body = cm("p", k="v")
        made = await c.create(CONFIGMAPS, body, namespace=ns)
        assert body == cm("p", k="v")  # the caller's dict is untouched
        made["data"]["k"] = "mutated"
        listed = await c.list(CONFIGMAPS, namespace=ns)
        listed.items[0]["data"]["k"] = "mutated too"
        assert (await c.get(CONFIGMAPS, "p", namespace=ns))["data"] == {"k": "v"}
        assert isinstance((await c.get(CONFIGMAPS, "p", namespace=ns)), dict)
        assert t.server.running.transport.user == "system:admin"
        assert c.transport.user == "system:kube-scheduler"  # type: ignore[attr-defined]

    run_check(server, "inprocess", check)
