"""What is particular to the in-process transport: nothing shared with the caller, server
errors translated (and chained), the write pipeline's checks, watch endings."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from k3py.client import (
    CONFIGMAPS,
    NODES,
    PODS,
    AlreadyExists,
    BadRequest,
    Gone,
    Invalid,
    MethodNotAllowed,
    NotFound,
    Resource,
    WatchEvent,
)
from k3py.server import errors as server_errors
from tests.unit.conftest import Env

Obj = dict[str, Any]


async def test_objects_in_and_out_are_never_shared(env: Env) -> None:
    c = env.client
    mine: Obj = {"metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}}
    created = await c.create(CONFIGMAPS, mine)
    assert mine == {"metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}}
    created["data"]["k"] = "changed"
    mine["data"]["k"] = "changed too"
    patch = {"data": {"extra": "1"}, "metadata": {"labels": {"y": "2"}}}
    patched = await c.patch(CONFIGMAPS, "a", patch)
    patched["metadata"]["labels"]["y"] = "mutated"
    assert patch == {"data": {"extra": "1"}, "metadata": {"labels": {"y": "2"}}}
    got = await c.get(CONFIGMAPS, "a")
    assert got["data"] == {"k": "v", "extra": "1"}
    assert got["metadata"]["labels"] == {"x": "1", "y": "2"}
    got["data"].clear()
    listed = await c.list(CONFIGMAPS, namespace="default")
    assert listed.items[0]["data"] == {"k": "v", "extra": "1"}


async def test_server_errors_become_client_errors_chained_to_the_cause(env: Env) -> None:
    c = env.client
    with pytest.raises(NotFound) as nf:
        await c.get(CONFIGMAPS, "missing")
    assert nf.value.code == 404 and isinstance(nf.value.__cause__, server_errors.APIError)
    assert nf.value.status["details"] == {"name": "missing", "kind": "configmaps"}
    await c.create(CONFIGMAPS, {"metadata": {"name": "a"}})
    with pytest.raises(AlreadyExists):
        await c.create(CONFIGMAPS, {"metadata": {"name": "a"}})
    with pytest.raises(Invalid) as inv:
        await c.create(CONFIGMAPS, {"metadata": {"name": "Not_A_Name"}})
    assert inv.value.causes[0]["field"] == "metadata.name"
    with pytest.raises(NotFound):  # the namespace does not exist (admission)
        await c.create(CONFIGMAPS, {"metadata": {"name": "a", "namespace": "nowhere"}})
    with pytest.raises(NotFound):  # not served at all
        await c.get(Resource("example.com", "v1", "widgets", "Widget"), "w")
    with pytest.raises(MethodNotAllowed):
        await c.transport.create_subresource(
            PODS,
            {},
            namespace="default",
            name="p",
            subresource="exec",
            opts=c._wopts(field_manager="", dry_run=False),
        )


async def test_bodies_are_checked_as_the_http_handlers_check_them(env: Env) -> None:
    c = env.client
    with pytest.raises(BadRequest, match="does not match the expected kind"):
        await c.create(CONFIGMAPS, {"kind": "Secret", "metadata": {"name": "a"}})
    with pytest.raises(BadRequest, match="namespace of the provided object"):
        await c.create(
            CONFIGMAPS, {"metadata": {"name": "a", "namespace": "other"}}, namespace="default"
        )
    with pytest.raises(BadRequest):  # a wrong type is refused whatever fieldValidation says
        await c.create(CONFIGMAPS, {"metadata": {"name": "a"}, "data": {"k": 1}})
    strict = type(c)(c.transport, field_validation="Strict")
    with pytest.raises(BadRequest, match="unknown field"):
        await strict.create(CONFIGMAPS, {"metadata": {"name": "a"}, "bogus": 1})
    made = await c.create(CONFIGMAPS, {"metadata": {"name": "a"}, "bogus": 1})  # Warn: dropped
    assert "bogus" not in made
    with pytest.raises(BadRequest, match="not JSON"):
        await c.create(CONFIGMAPS, {"metadata": {"name": "b"}, "data": {"k": object()}})


async def test_identity_and_field_manager_reach_the_store(env: Env) -> None:
    scheduler = env.transport.with_identity(
        user="system:kube-scheduler", field_manager="k3py-scheduler"
    )
    assert scheduler.user == "system:kube-scheduler" and scheduler.groups == ()
    node = await type(env.client)(scheduler).create(
        NODES, {"metadata": {"name": "n1", "labels": {"zone": "a"}}}
    )
    assert [m["manager"] for m in node["metadata"]["managedFields"]] == ["k3py-scheduler"]
    assert "namespace" not in node["metadata"]


async def test_watch_from_a_compacted_revision_is_gone(env: Env) -> None:
    c = env.client
    first = await c.create(CONFIGMAPS, {"metadata": {"name": "a"}})
    for i in range(3):
        await c.patch(CONFIGMAPS, "a", {"data": {"i": str(i)}})
    await env.ds.compact()
    stream = c.watch(CONFIGMAPS, resource_version=first["metadata"]["resourceVersion"])
    with pytest.raises(Gone) as gone:
        await stream.__anext__()
    assert gone.value.code == 410 and gone.value.reason == "Expired"
    with pytest.raises(BadRequest):
        await c.watch(CONFIGMAPS, resource_version="x").__anext__()


async def test_watch_ends_at_its_timeout_and_sends_bookmarks_when_idle(env: Env) -> None:
    t = env.transport
    t.bookmark_interval = 0.05
    c = env.client
    made = await c.create(CONFIGMAPS, {"metadata": {"name": "a"}})
    events: list[WatchEvent] = []
    stream = c.watch(CONFIGMAPS, timeout_seconds=1, allow_bookmarks=True)
    async with asyncio.timeout(5):
        async for ev in stream:  # ends by itself after about a second
            events.append(ev)
    assert events[0].type == "ADDED" and events[0].object["metadata"]["name"] == "a"
    bookmarks = [e for e in events if e.type == "BOOKMARK"]
    assert bookmarks and bookmarks[0].resource_version == made["metadata"]["resourceVersion"]
    assert bookmarks[0].object["kind"] == "ConfigMap"


async def test_closing_a_watch_releases_the_hub_watcher(env: Env) -> None:
    hub = env.ds._hub  # noqa: SLF001 - the count of live watchers is what is checked
    assert hub is not None
    before = hub.watcher_count()
    stream = env.client.watch(CONFIGMAPS, resource_version="0")
    task = asyncio.create_task(stream.__anext__())
    await env.client.create(CONFIGMAPS, {"metadata": {"name": "a"}})
    ev = await asyncio.wait_for(task, 5)
    assert ev.type == "ADDED"
    assert hub.watcher_count() == before + 1
    await stream.aclose()
    assert hub.watcher_count() == before
