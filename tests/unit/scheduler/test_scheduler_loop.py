"""The Scheduler controller's own logic with a fake client: handlers feed the queue and
cache, a decision assumes and binds in the background, a failed binding forgets the
assumption and re-queues, an unschedulable pod gets the event and the condition patch."""

from __future__ import annotations

import asyncio
from typing import Any

from k3py.client import ServerError
from k3py.server.controllers.base import Context, Timings
from k3py.server.scheduler import Scheduler
from tests.unit.scheduler.helpers import node, pod


class FakeClient:
    def __init__(self) -> None:
        self.binds: list[tuple[str, str, str]] = []
        self.patches: list[tuple[str, Any]] = []
        self.fail_binds = 0

    async def bind(self, *, namespace: str, pod: str, node: str) -> None:
        await asyncio.sleep(0)
        if self.fail_binds:
            self.fail_binds -= 1
            raise ServerError({"code": 500, "reason": "InternalError", "message": "boom"})
        self.binds.append((namespace, pod, node))

    async def patch(self, res: Any, name: str, body: Any, **kw: Any) -> dict[str, Any]:
        self.patches.append((name, body))
        return {}


class FakeRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def normal(self, obj: dict[str, Any], reason: str, msg: str) -> None:
        self.events.append(("Normal", reason, msg))

    def warning(self, obj: dict[str, Any], reason: str, msg: str) -> None:
        self.events.append(("Warning", reason, msg))


def make() -> tuple[Scheduler, FakeClient, FakeRecorder]:
    client, rec = FakeClient(), FakeRecorder()
    ctx = Context(client=client, informers=None, recorder=rec, timings=Timings())  # type: ignore[arg-type]
    return Scheduler(ctx), client, rec


async def drain(s: Scheduler) -> None:
    for _ in range(20):
        await asyncio.sleep(0)
    while s._side:  # noqa: SLF001
        await asyncio.gather(*list(s._side), return_exceptions=True)  # noqa: SLF001


async def test_schedule_bind_and_event() -> None:
    s, client, rec = make()
    s._node_set(node("n1"))  # noqa: SLF001
    body = pod(name="web")
    s._pod_added(body)  # noqa: SLF001
    qp = s.sq.pop_ready()
    assert qp is not None
    await s._binds.acquire()  # noqa: SLF001 - the loop holds one slot per binding
    assert s.schedule_one(qp)
    assert s.cache.is_assumed(qp.pod.uid) and len(s.sq) == 0
    await drain(s)
    assert client.binds == [("default", "web", "n1")]
    assert ("Normal", "Scheduled", "Successfully assigned default/web to n1") in rec.events
    body["spec"]["nodeName"] = "n1"
    s._pod_updated(body, body)  # noqa: SLF001 - the informer sees the binding
    assert not s.cache.is_assumed(qp.pod.uid)
    assert s.cache.pod_node(qp.pod.uid) == "n1"


async def test_failed_bind_forgets_and_requeues() -> None:
    s, client, rec = make()
    s._node_set(node("n1", cpu="1"))  # noqa: SLF001
    client.fail_binds = 1
    s._pod_added(pod(name="web", cpu="1"))  # noqa: SLF001
    qp = s.sq.pop_ready()
    assert qp is not None
    await s._binds.acquire()  # noqa: SLF001
    s.schedule_one(qp)
    assert s.cache.nodes["n1"].req_cpu == 1000
    await drain(s)
    assert s.cache.nodes["n1"].req_cpu == 0
    assert qp.where == "backoff"
    assert any(e[1] == "FailedScheduling" and "Binding rejected" in e[2] for e in rec.events)


async def test_unschedulable_event_and_condition() -> None:
    s, client, rec = make()
    s._node_set(node("n1", cpu="1"))  # noqa: SLF001
    s._pod_added(pod(name="big", cpu="2"))  # noqa: SLF001
    qp = s.sq.pop_ready()
    assert qp is not None
    assert not s.schedule_one(qp)
    await drain(s)
    msg = (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
        "1 No preemption victims found for incoming pod.."
    )
    assert rec.events == [("Warning", "FailedScheduling", msg)]
    name, patch = client.patches[0]
    cond = patch["status"]["conditions"][0]
    assert (name, cond["type"], cond["status"], cond["reason"], cond["message"]) == (
        "big", "PodScheduled", "False", "Unschedulable", msg,
    )  # fmt: skip
    assert qp.where == "unschedulable"
    s._node_set(node("n2", cpu="4"))  # noqa: SLF001 - a new node: retried
    assert qp.where in ("backoff", "active")


async def test_other_schedulers_and_finished_pods_are_ignored() -> None:
    s, _, _ = make()
    s._pod_added(pod(schedulerName="other"))  # noqa: SLF001
    done = pod()
    done["status"] = {"phase": "Succeeded"}
    s._pod_added(done)  # noqa: SLF001
    assert len(s.sq) == 0
