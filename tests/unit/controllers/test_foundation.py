"""The control-plane foundation: leader election, events, timings from flags, manager."""

from __future__ import annotations

import asyncio

import pytest

from k3py.client import EVENTS, LEASES, PODS
from k3py.config import ServerConfig, parse_duration
from k3py.server.control import timings_from_config
from k3py.server.controllers.base import (
    Context,
    Controller,
    Expectations,
    Informers,
    set_condition,
)
from k3py.server.controllers.events import EventSink
from k3py.server.controllers.leaderelection import LeaderElector
from k3py.server.controllers.manager import Manager
from tests.unit.conftest import Env


def elector(env: Env, identity: str, **kw: float) -> LeaderElector:
    return LeaderElector(
        env.client, name="test-lock", namespace="default", identity=identity,
        lease_duration=kw.get("lease_duration", 0.6), renew_deadline=0.4, retry_period=0.1,
    )  # fmt: skip


async def test_one_leader_at_a_time_and_takeover_after_expiry(env: Env) -> None:
    a, b = elector(env, "a"), elector(env, "b")
    leading: list[str] = []

    def hooks(name: str) -> tuple[object, object]:
        async def started() -> None:
            leading.append(name)

        async def stopped() -> None:
            leading.remove(name)

        return started, stopped

    ta = asyncio.create_task(a.run(*hooks("a")))  # type: ignore[arg-type]
    await asyncio.sleep(0.3)
    tb = asyncio.create_task(b.run(*hooks("b")))  # type: ignore[arg-type]
    await asyncio.sleep(1.0)
    assert leading == ["a"]
    lease = await env.client.get(LEASES, "test-lock", namespace="default")
    assert lease["spec"]["holderIdentity"] == "a"
    # a dies without releasing (cancel would release: simulate a crash by stopping renewals)
    a.retry_period = 3600
    ta.cancel()
    a._observed = None  # noqa: SLF001 - no release on the way out: a crashed leader
    await asyncio.sleep(0.05)
    for _ in range(60):
        if leading == ["b"]:
            break
        await asyncio.sleep(0.1)
    assert leading == ["b"]
    lease = await env.client.get(LEASES, "test-lock", namespace="default")
    assert lease["spec"]["holderIdentity"] == "b"
    assert lease["spec"]["leaseTransitions"] >= 1
    tb.cancel()
    await asyncio.gather(ta, tb, return_exceptions=True)
    lease = await env.client.get(LEASES, "test-lock", namespace="default")
    assert lease["spec"]["holderIdentity"] == ""  # released on a clean stop


async def test_same_identity_takes_its_lease_back_at_once(env: Env) -> None:
    first = elector(env, "node-1", lease_duration=30)
    assert await first._try_acquire_or_renew()  # noqa: SLF001
    again = elector(env, "node-1", lease_duration=30)  # a restarted server
    assert await again._try_acquire_or_renew()  # noqa: SLF001
    other = elector(env, "node-2", lease_duration=30)
    assert not await other._try_acquire_or_renew()  # noqa: SLF001


async def test_events_are_written_and_aggregated(env: Env) -> None:
    sink = EventSink(env.client)
    rec = sink.recorder("tester", host="h1")
    pod = await env.client.create(
        PODS,
        {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
        namespace="default",
    )
    rec.normal(pod, "Pulled", "pulled it")
    rec.normal(pod, "Pulled", "pulled it")
    rec.warning(pod, "BackOff", "backing off")
    await asyncio.sleep(0)
    await sink.flush()
    events = (await env.client.list(EVENTS, namespace="default")).items
    by_reason = {e["reason"]: e for e in events}
    assert set(by_reason) == {"Pulled", "BackOff"}
    assert by_reason["Pulled"]["count"] == 2
    assert by_reason["BackOff"]["type"] == "Warning"
    assert by_reason["Pulled"]["involvedObject"]["uid"] == pod["metadata"]["uid"]
    assert by_reason["Pulled"]["source"] == {"component": "tester", "host": "h1"}
    await sink.stop()


def test_timings_from_component_flags() -> None:
    cfg = ServerConfig(
        kube_controller_manager_arg=["node-monitor-grace-period=4s", "leader-elect=false"],
        kube_scheduler_arg=["pod-initial-backoff-seconds=0.5"],
        kubelet_arg=["node-lease-duration-seconds=8"],
    )
    t, cm_elect, sched_elect = timings_from_config(cfg)
    assert t.node_monitor_grace_period == 4.0
    assert t.scheduler_backoff_initial == 0.5
    assert t.node_lease_duration == 8 and t.node_lease_renew_interval == 2.0
    assert (cm_elect, sched_elect) == (False, True)
    with pytest.raises(ValueError, match="unknown setting 'bogus'"):
        timings_from_config(ServerConfig(kube_controller_manager_arg=["bogus=1"]))
    with pytest.raises(ValueError, match="invalid duration"):
        timings_from_config(ServerConfig(kube_controller_manager_arg=["node-monitor-period=5x"]))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("40s", 40.0), ("1m30s", 90.0), ("500ms", 0.5), ("2h", 7200.0), ("3", 3.0), ("1.5s", 1.5)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "s", "5x", "1m-3s", "abc"])
def test_parse_duration_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_set_condition_moves_transition_time_only_on_status_change() -> None:
    status: dict[str, object] = {}
    assert set_condition(status, {"type": "Ready", "status": "False", "reason": "A"}, now="t1")
    assert not set_condition(status, {"type": "Ready", "status": "False", "reason": "A"}, now="t2")
    assert set_condition(status, {"type": "Ready", "status": "False", "reason": "B"}, now="t3")
    assert status["conditions"][0]["lastTransitionTime"] == "t1"  # type: ignore[index]
    assert set_condition(status, {"type": "Ready", "status": "True", "reason": "B"}, now="t4")
    assert status["conditions"][0]["lastTransitionTime"] == "t4"  # type: ignore[index]


def test_expectations() -> None:
    e = Expectations()
    assert e.satisfied("k")
    e.expect("k", adds=2)
    assert not e.satisfied("k")
    e.observed_add("k")
    assert not e.satisfied("k")
    e.observed_add("k")
    assert e.satisfied("k")


class _Counting(Controller):
    name = "counting"

    def setup(self) -> None:
        self.pods = self.ctx.informer(PODS)
        self.watch(self.pods)
        self.seen: list[str] = []

    async def reconcile(self, key: str) -> float | None:
        self.seen.append(key)
        return None


async def test_manager_runs_controllers_on_synced_caches(env: Env) -> None:
    await env.client.create(
        PODS,
        {"metadata": {"name": "before"}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
        namespace="default",
    )
    sink = EventSink(env.client)
    mgr = Manager(
        name="m",
        make_context=lambda inf: Context(client=env.client, informers=inf, recorder=sink.recorder("m")),
        factories=[_Counting],
        elector=None,
        informers=lambda: Informers(env.client),
    )
    mgr.start()
    await asyncio.wait_for(mgr.running.wait(), 5)
    ctrl = mgr.get("counting")
    assert isinstance(ctrl, _Counting)
    await env.client.create(
        PODS,
        {"metadata": {"name": "after"}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
        namespace="default",
    )
    for _ in range(50):
        if {"default/before", "default/after"} <= set(ctrl.seen):
            break
        await asyncio.sleep(0.05)
    assert {"default/before", "default/after"} <= set(ctrl.seen)
    await mgr.stop()
    assert mgr.get("counting") is None


def test_simulated_fleet_must_fit_the_cluster_cidr() -> None:
    from k3py.server.simnodes import check_cidr_room

    check_cidr_room(ServerConfig(simulate_nodes=255))  # + the local node = 256 /24s
    with pytest.raises(ValueError, match="holds 256 node ranges of /24, 1001 are needed"):
        check_cidr_room(ServerConfig(simulate_nodes=1000))
    check_cidr_room(ServerConfig(simulate_nodes=1000, cluster_cidr="10.64.0.0/14"))
    check_cidr_room(
        ServerConfig(simulate_nodes=1000, kube_controller_manager_arg=["node-cidr-mask-size=26"])
    )
