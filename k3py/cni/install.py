"""Putting the CNI plugin where containerd looks, and the agent-side daemon it talks to.

``install_cni`` writes the executables (``k3py``, ``loopback``: copies of ``shim.py``
with a ``python -S`` shebang) into ``<data-dir>/agent/cni/bin`` and the network config
``10-k3py.conflist`` built from the Node's podCIDR into ``<data-dir>/agent/cni/net.d``;
containerd notices the config and reports NetworkReady.  ``CNIDaemon`` serves the
executables' requests from the agent process, where pyroute2 is already loaded, one
request at a time in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from k3py.agent.config import AgentConfig
from k3py.cni import plugin
from k3py.cni.ipam import HostLocal

log = logging.getLogger("k3py.cni")

CONFLIST = "10-k3py.conflist"


def _write_atomic(path: Path, data: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def network_config(cfg: AgentConfig, *, pod_cidr: str) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": "k3py",
        "plugins": [{
            "type": "k3py",
            "bridge": "k3py0",
            "mtu": 1500,
            "podCIDR": pod_cidr,
            "clusterCIDR": cfg.cluster_cidr,
            "ipamDir": str(cfg.cni_ipam_dir),
            "daemonSocket": str(cfg.cni_socket),
            "capabilities": {"portMappings": True},
        }],
    }


def install_cni(cfg: AgentConfig, *, pod_cidr: str) -> None:
    source = Path(__file__).with_name("shim.py").read_text()
    script = f"#!{sys.executable} -S\n{source}"
    for name in ("k3py", "loopback"):
        _write_atomic(cfg.cni_bin_dir / name, script, 0o755)
    cfg.cni_ipam_dir.mkdir(parents=True, exist_ok=True)
    conf = network_config(cfg, pod_cidr=pod_cidr)
    _write_atomic(cfg.cni_conf_dir / CONFLIST, json.dumps(conf, indent=2), 0o644)
    # Keep masquerade/hostPort rules in place from the start (and after an agent restart).
    plugin.sync_nft(conf["plugins"][0])
    plugin._nft_synced[pod_cidr] = True  # noqa: SLF001 - same package


class CNIDaemon:
    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self._server: asyncio.AbstractServer | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self.requests = 0

    async def start(self) -> None:
        path = self.cfg.cni_socket
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self._server = await asyncio.start_unix_server(self._handle, path=str(path))
        os.chmod(path, 0o600)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.cfg.cni_socket.unlink()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            raw = await reader.read()
            req = json.loads(raw)
            cid = str((req.get("env") or {}).get("CNI_CONTAINERID", ""))
            lock = self._locks.setdefault(cid, asyncio.Lock())  # one call at a time per container
            async with lock:
                self.requests += 1
                code, out = await asyncio.to_thread(
                    plugin.run, str(req.get("command", "")), dict(req.get("env") or {}), str(req.get("conf") or "")
                )
            if not lock.locked():
                self._locks.pop(cid, None)
            writer.write(json.dumps({"code": code, "stdout": out}).encode())
            await writer.drain()
        except Exception as e:  # noqa: BLE001 - the executable reports what failed
            log.exception("CNI request failed")
            with contextlib.suppress(Exception):
                err = plugin.CNIError(999, f"k3py CNI daemon: {e}").result("1.0.0")
                writer.write(json.dumps({"code": 1, "stdout": json.dumps(err)}).encode())
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def gc(self, *, pod_cidr: str, live_container_ids: Iterable[str]) -> list[str]:
        """Release IPs (and hostPort entries) of sandboxes that no longer exist."""
        live = set(live_container_ids)
        freed = HostLocal(directory=self.cfg.cni_ipam_dir, subnet=pod_cidr).gc(live)
        conf = network_config(self.cfg, pod_cidr=pod_cidr)["plugins"][0]
        hp = plugin._hostport_dir(conf)  # noqa: SLF001 - same package
        changed = False
        if hp.is_dir():
            for f in hp.glob("*.json"):
                if f.stem not in live:
                    f.unlink(missing_ok=True)
                    changed = True
        if changed or freed:
            with contextlib.suppress(Exception):
                plugin.sync_nft(conf)
        return freed


def ensure_blackhole_routes(*, cluster_cidr: str, service_cidr: str) -> None:
    """Unreachable routes (metric high) for the cluster and service ranges in this netns,
    so packets to unprogrammed addresses die here instead of reaching the default
    gateway; the bridge's connected route and per-node routes are more specific."""
    with plugin.host_ipr() as ipr:
        for cidr in (cluster_cidr, service_cidr):
            with contextlib.suppress(Exception):
                ipr.route("add", dst=cidr, type="unreachable", priority=4000)
