"""The control plane's loops, wired at boot: controllers and scheduler (each behind its
own Lease, as kube-controller-manager and kube-scheduler) and simulated nodes.

Everything here talks to the API through one in-process ``Client``; nothing reads SQL.
Timings come from ``--kube-controller-manager-arg``, ``--kube-scheduler-arg`` and
``--kubelet-arg`` (upstream's flag names), so tests and users can shorten them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from dataclasses import dataclass
from typing import Any

from k3py.client import Client, Transport
from k3py.config import ServerConfig, parse_duration
from k3py.server.controllers.base import Context, Controller, Informers, Timings
from k3py.server.controllers.events import EventSink
from k3py.server.controllers.leaderelection import LeaderElector
from k3py.server.controllers.manager import Factory, Manager

log = logging.getLogger("k3py.control")

# Modules of k3py.server.controllers, each exporting CONTROLLERS (Controller classes).
CONTROLLER_MODULES = [
    "nodeipam",
    "nodelifecycle",
    "serviceaccount",
    "replicaset",
    "deployment",
    "statefulset",
    "daemonset",
    "job",
    "cronjob",
    "ttlafterfinished",
    "garbagecollector",
    "endpoints",
    "disruption",
    "resourcequota",
]

_CM_ARGS = {
    "node-monitor-period": "node_monitor_period",
    "node-monitor-grace-period": "node_monitor_grace_period",
    "node-eviction-rate": "pod_eviction_rate",
    "unhealthy-zone-threshold": "unhealthy_zone_threshold",
    "leader-elect-lease-duration": "leader_lease_duration",
    "leader-elect-renew-deadline": "leader_renew_deadline",
    "leader-elect-retry-period": "leader_retry_period",
    "gc-resync-period": "gc_interval",
    "job-pod-failure-backoff": "job_pod_failure_backoff",
    "job-pod-failure-backoff-max": "job_pod_failure_backoff_max",
}
# Settings read by the controllers themselves (``cfg.component_args``), accepted here.
_CM_READ_BY_CONTROLLERS = {
    "node-cidr-mask-size",
    "node-cidr-mask-size-ipv4",
    "node-cidr-mask-size-ipv6",
    "terminated-pod-gc-threshold",
    "secondary-node-eviction-rate",
    "large-cluster-size-threshold",
}
_SCHED_ARGS = {
    "pod-initial-backoff-seconds": "scheduler_backoff_initial",
    "pod-max-backoff-seconds": "scheduler_backoff_max",
    "leader-elect-lease-duration": "leader_lease_duration",
    "leader-elect-renew-deadline": "leader_renew_deadline",
    "leader-elect-retry-period": "leader_retry_period",
}
_KUBELET_ARGS = {
    "node-lease-duration-seconds": "node_lease_duration",
    "node-status-report-frequency": "node_status_report_frequency",
}
# Kubelet settings read by the agent itself (k3py.agent.config.AgentConfig.kubelet_args).
_KUBELET_READ_BY_AGENT = {
    "port",
    "max-pods",
    "kube-reserved",
    "system-reserved",
    "eviction-hard",
    "node-status-update-frequency",
}


def timings_from_config(cfg: ServerConfig) -> tuple[Timings, bool, bool]:
    """(timings, controller-manager leader-elect, scheduler leader-elect)."""
    t = Timings()
    elect = {"kube-controller-manager": True, "kube-scheduler": True}
    for which, table in (
        ("kube-controller-manager", _CM_ARGS),
        ("kube-scheduler", _SCHED_ARGS),
        ("kubelet", _KUBELET_ARGS),
    ):
        for key, value in cfg.component_args(which).items():
            if key == "leader-elect" and which != "kubelet":
                elect[which] = value.lower() not in ("false", "0", "no")
                continue
            if which == "kube-controller-manager" and key in _CM_READ_BY_CONTROLLERS:
                continue
            if which == "kubelet" and key in _KUBELET_READ_BY_AGENT:
                continue
            attr = table.get(key)
            if attr is None:
                extra = {"kube-controller-manager": _CM_READ_BY_CONTROLLERS, "kubelet": _KUBELET_READ_BY_AGENT}
                known = sorted([*table, "leader-elect", *extra.get(which, ())])
                raise ValueError(f"--{which}-arg: unknown setting {key!r} (known: {', '.join(known)})")  # fmt: skip
            seconds = parse_duration(value)
            setattr(t, attr, int(seconds) if isinstance(getattr(t, attr), int) else seconds)
    if "node_lease_duration" in {_KUBELET_ARGS.get(k) for k in cfg.component_args("kubelet")}:
        t.node_lease_renew_interval = t.node_lease_duration / 4
    return t, elect["kube-controller-manager"], elect["kube-scheduler"]


def controller_factories() -> list[Factory]:
    out: list[Factory] = []
    for mod_name in CONTROLLER_MODULES:
        try:
            mod = importlib.import_module(f"k3py.server.controllers.{mod_name}")
        except ModuleNotFoundError as e:
            if e.name != f"k3py.server.controllers.{mod_name}":
                raise
            log.debug("controller module %s not present", mod_name)
            continue
        out.extend(mod.CONTROLLERS)
    return out


def scheduler_factories() -> list[Factory]:
    try:
        mod = importlib.import_module("k3py.server.scheduler")
    except ModuleNotFoundError as e:
        if e.name != "k3py.server.scheduler":
            raise
        return []
    return [mod.Scheduler]


@dataclass
class ControlPlane:
    client: Client
    sink: EventSink
    timings: Timings
    controllers: Manager | None
    scheduler: Manager | None
    simulated: Any  # k3py.server.simnodes.SimulatedNodes | None

    async def stop(self) -> None:
        starting = getattr(self.simulated, "start_task", None)
        if starting is not None and not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await starting
        for part in (self.simulated, self.scheduler, self.controllers):
            if part is not None:
                with contextlib.suppress(Exception):
                    await part.stop()
        await self.sink.stop()


def _manager(
    *,
    name: str,
    client: Client,
    sink: EventSink,
    timings: Timings,
    cfg: ServerConfig,
    factories: list[Factory],
    elect: bool,
    component: str,
) -> Manager:
    elector = None
    if elect:
        elector = LeaderElector(
            client,
            name=name,
            identity=cfg.node_name or "k3py",
            lease_duration=timings.leader_lease_duration,
            renew_deadline=timings.leader_renew_deadline,
            retry_period=timings.leader_retry_period,
        )

    def make_context(informers: Informers) -> Context:
        return Context(
            client=client,
            informers=informers,
            recorder=sink.recorder(component),
            timings=timings,
            config=cfg,
        )

    return Manager(
        name=name,
        make_context=make_context,
        factories=factories,
        elector=elector,
        informers=lambda: Informers(client),
    )


async def start_control_plane(cfg: ServerConfig, transport: Transport) -> ControlPlane:
    timings, cm_elect, sched_elect = timings_from_config(cfg)
    client = Client(transport, field_manager="k3py-controller-manager")
    sink = EventSink(client)
    controllers = scheduler = simulated = None
    if not cfg.disable_controller_manager:
        controllers = _manager(
            name="kube-controller-manager", client=client, sink=sink, timings=timings, cfg=cfg,
            factories=controller_factories(), elect=cm_elect, component="k3py-controller-manager",
        )  # fmt: skip
        controllers.start()
    if not cfg.disable_scheduler:
        sched_client = Client(transport, field_manager="k3py-scheduler")
        scheduler = _manager(
            name="kube-scheduler", client=sched_client, sink=sink, timings=timings, cfg=cfg,
            factories=scheduler_factories(), elect=sched_elect, component="default-scheduler",
        )  # fmt: skip
        scheduler.start()
    if cfg.simulate_nodes > 0:
        from k3py.server.simnodes import SimulatedNodes, parse_capacity

        simulated = SimulatedNodes(
            Client(transport, field_manager="k3py-simulated-kubelet"),
            names=[f"sim-{i}" for i in range(cfg.simulate_nodes)],
            capacity=parse_capacity(cfg.simulate_node_capacity),
            timings=timings,
            sink=sink,
        )
        # In the background: a fleet's registration must not hold up the API's readiness.
        simulated.start_task = asyncio.get_running_loop().create_task(
            simulated.start(), name="simulated-nodes-start"
        )
    return ControlPlane(
        client=client, sink=sink, timings=timings, controllers=controllers,
        scheduler=scheduler, simulated=simulated,
    )  # fmt: skip


__all__ = ["CONTROLLER_MODULES", "ControlPlane", "Controller", "start_control_plane"]
