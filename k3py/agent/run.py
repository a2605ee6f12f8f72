"""The agent, booted in a straight line:

    (remote: join → node certs + kubeconfig) → containerd → CRI → pause image + image
    archives → kubelet API (:10250) → Node registered → podCIDR → CNI config + daemon →
    kubelet pod workers → node status and Lease loops

The server runs the same sequence in-process for its own node (``client`` given: the
in-process transport, and a serving context from the server's own PKI); ``k3py agent``
runs it against a remote server.  Each step that started something pushes its stop onto
a stack: :meth:`RunningAgent.stop` unwinds it in reverse, and so does a start that fails
half way (no containerd child is left behind).  Stopping leaves the containers running:
the next start adopts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from k3py.agent import images
from k3py.agent.config import AgentConfig
from k3py.agent.containerd import Containerd
from k3py.agent.cri.client import CRIClient
from k3py.agent.kubelet import Kubelet, NodeAgent
from k3py.client import Client
from k3py.cni.install import CNIDaemon, install_cni

log = logging.getLogger("k3py.agent")

Stop = Callable[[], Awaitable[Any]]


@dataclass
class RunningAgent:
    cfg: AgentConfig
    client: Client
    cri: CRIClient
    node: NodeAgent
    kubelet: Kubelet
    cni: CNIDaemon
    containerd: Containerd | None = None
    api: Any = None  # k3py.agent.api.KubeletServer
    own_client: bool = False
    started_at: float = 0.0
    stops: list[tuple[str, Stop]] = field(default_factory=list)

    async def stop(self) -> None:
        await _unwind(self.stops)


async def _unwind(stops: list[tuple[str, Stop]]) -> None:
    """Run the stops last-in first-out; one failing does not keep the others from running."""
    while stops:
        what, step = stops.pop()
        try:
            await step()
        except Exception:  # noqa: BLE001 - keep stopping the rest
            log.warning("stopping %s failed", what, exc_info=True)


async def start_agent(
    cfg: AgentConfig,
    *,
    client: Client | None = None,
    control_plane: bool = False,
    serving_ssl: ssl.SSLContext | None = None,
) -> RunningAgent:
    """Start this node's agent.  Remote (``client`` None): join ``cfg.server_url`` with
    ``cfg.token`` first.  Embedded: the server passes its in-process client and the
    kubelet serving context."""
    stops: list[tuple[str, Stop]] = []
    try:
        return await _start(cfg, client=client, control_plane=control_plane,
                            serving_ssl=serving_ssl, stops=stops)  # fmt: skip
    except BaseException:
        await asyncio.shield(_unwind(stops))
        raise


async def _start(
    cfg: AgentConfig,
    *,
    client: Client | None,
    control_plane: bool,
    serving_ssl: ssl.SSLContext | None,
    stops: list[tuple[str, Stop]],
) -> RunningAgent:
    t0 = time.monotonic()
    own_client = client is None
    if client is None:
        from k3py.agent.join import join

        joined = await join(cfg)
        client, serving_ssl = joined.client, joined.serving_ssl
        stops.append(("client", client.close))
    for d in (cfg.agent_dir, cfg.pods_dir, cfg.pod_logs_dir, cfg.images_dir):
        d.mkdir(parents=True, exist_ok=True)

    containerd: Containerd | None = None
    endpoint = cfg.container_runtime_endpoint
    address = endpoint.removeprefix("unix://")
    if not endpoint:
        containerd = Containerd(cfg)
        stops.append(("containerd", containerd.stop))
        await containerd.start()
        endpoint, address = containerd.endpoint, containerd.address
    cri = await CRIClient.connect(endpoint)
    stops.append(("CRI client", cri.close))
    await images.ensure_pause_image(
        address=address, cri=cri, ref=cfg.pause_image, work_dir=cfg.agent_dir
    )
    imported = await images.auto_import(
        address=address,
        images_dir=cfg.images_dir,
        state_file=cfg.agent_dir / "images-imported.json",
    )
    if imported:
        log.info("imported images: %s", ", ".join(imported))

    api = None
    if serving_ssl is not None:
        from k3py.agent.api import KubeletServer

        api = KubeletServer(cfg, cri, serving_ssl)
        cfg.kubelet_port = await api.start()  # before registering: the Node carries the port
        stops.append(("kubelet API", api.stop))

    node = NodeAgent(cfg, client, cri, control_plane=control_plane)
    await node.register()
    pod_cidr = await node.wait_pod_cidr()
    install_cni(cfg, pod_cidr=pod_cidr)
    cni = CNIDaemon(cfg)
    await cni.start()
    stops.append(("CNI daemon", cni.stop))

    def gc_ips(live: list[str]) -> None:
        freed = cni.gc(pod_cidr=pod_cidr, live_container_ids=live)
        if freed:
            log.info("released %d pod IPs of sandboxes that are gone", len(freed))

    kubelet = Kubelet(cfg, client, cri, node=node, gc_ips=gc_ips)
    stops.append(("kubelet", kubelet.stop))
    await kubelet.start()
    stops.append(("node status", node.stop))
    await node.start()
    node.poke()
    log.info(
        "agent for node %s ready in %.2fs (podCIDR %s)",
        cfg.node_name,
        time.monotonic() - t0,
        pod_cidr,
    )
    return RunningAgent(
        cfg=cfg,
        client=client,
        cri=cri,
        node=node,
        kubelet=kubelet,
        cni=cni,
        containerd=containerd,
        api=api,
        own_client=own_client,
        started_at=t0,
        stops=stops,
    )


def run(cfg: AgentConfig) -> None:
    """``k3py agent``: run until SIGINT/SIGTERM (a signal during the start, e.g. while the
    server is still unreachable, stops cleanly too)."""
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(_main(cfg))


async def _main(cfg: AgentConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    starting = asyncio.create_task(start_agent(cfg))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        log.info("interrupted while starting; shutting down")
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        return
    stopping.cancel()
    agent = starting.result()  # raises what the start raised (JoinError: a clean CLI message)
    await stop.wait()
    log.info("shutting down")
    await agent.stop()
