"""The agent, booted in a straight line:

    (remote: join → node certs + kubeconfig) → containerd → CRI → pause image + image
    archives → kubelet API (:10250) → Node registered → podCIDR → CNI config + daemon →
    kubelet pod workers → node status and Lease loops

The server runs the same sequence in-process for its own node (``client`` given: the
in-process transport); ``k3py agent`` runs it against a remote server.  Stopping leaves
the containers running: the next start adopts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import time
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


@dataclass
class RunningAgent:
    cfg: AgentConfig
    client: Client
    cri: CRIClient
    node: NodeAgent
    kubelet: Kubelet
    cni: CNIDaemon
    containerd: Containerd | None = None
    api: Any = None
    own_client: bool = False
    started_at: float = 0.0
    extra: list[Any] = field(default_factory=list)

    async def stop(self) -> None:
        for step in (self.kubelet.stop, self.node.stop):
            with contextlib.suppress(Exception):
                await step()
        if self.api is not None:
            with contextlib.suppress(Exception):
                await self.api.stop()
        with contextlib.suppress(Exception):
            await self.cni.stop()
        with contextlib.suppress(Exception):
            await self.cri.close()
        if self.containerd is not None:
            await self.containerd.stop()
        if self.own_client:
            with contextlib.suppress(Exception):
                await self.client.close()


async def start_agent(cfg: AgentConfig, *, client: Client | None = None, control_plane: bool = False,
                      serving_ssl: ssl.SSLContext | None = None) -> RunningAgent:
    t0 = time.monotonic()
    own_client = False
    if client is None:
        from k3py.agent.join import join

        joined = await join(cfg)
        client = joined.client
        serving_ssl = joined.serving_ssl
        own_client = True
    for d in (cfg.agent_dir, cfg.pods_dir, cfg.pod_logs_dir, cfg.images_dir):
        d.mkdir(parents=True, exist_ok=True)

    containerd: Containerd | None = None
    endpoint = cfg.container_runtime_endpoint
    address = endpoint.removeprefix("unix://")
    if not endpoint:
        containerd = Containerd(cfg)
        await containerd.start()
        endpoint, address = containerd.endpoint, containerd.address
    cri = await CRIClient.connect(endpoint)
    await images.ensure_pause_image(address=address, cri=cri, ref=cfg.pause_image, work_dir=cfg.agent_dir)
    imported = await images.auto_import(address=address, images_dir=cfg.images_dir,
                                        state_file=cfg.agent_dir / "images-imported.json")
    if imported:
        log.info("imported images: %s", ", ".join(imported))

    api = None
    if serving_ssl is not None:
        try:
            from k3py.agent.api import KubeletServer
        except ImportError:  # pragma: no cover - the kubelet API lands separately
            KubeletServer = None  # type: ignore[assignment,misc]  # noqa: N806
        if KubeletServer is not None:
            api = KubeletServer(cfg, cri, serving_ssl)
            cfg.kubelet_port = await api.start()

    node = NodeAgent(cfg, client, cri, control_plane=control_plane)
    await node.register()
    pod_cidr = await node.wait_pod_cidr()
    install_cni(cfg, pod_cidr=pod_cidr)
    cni = CNIDaemon(cfg)
    await cni.start()

    def gc_ips(live: list[str]) -> None:
        freed = cni.gc(pod_cidr=pod_cidr, live_container_ids=live)
        if freed:
            log.info("released %d pod IPs of sandboxes that are gone", len(freed))

    kubelet = Kubelet(cfg, client, cri, node=node, gc_ips=gc_ips)
    await kubelet.start()
    await node.start()
    node.poke()
    log.info("agent for node %s ready in %.2fs (podCIDR %s)", cfg.node_name, time.monotonic() - t0, pod_cidr)
    return RunningAgent(cfg=cfg, client=client, cri=cri, node=node, kubelet=kubelet, cni=cni,
                        containerd=containerd, api=api, own_client=own_client, started_at=t0)


def run(cfg: AgentConfig) -> None:
    """``k3py agent``: run until SIGINT/SIGTERM."""
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()

    async def main() -> None:
        agent = await start_agent(cfg)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("shutting down")
        await agent.stop()

    asyncio.run(main())
