"""Node IPAM: every Node gets a pod range (``spec.podCIDR``/``podCIDRs``) cut from the
cluster CIDR, one per address family (kube-controller-manager's range allocator).

The used ranges are rebuilt from the Node cache when the controller starts (so a restart
or a new leader hands out nothing twice) and kept in memory: a range is taken when it is
assigned (before the cache shows it, so a stale cache never assigns two), and freed
when its Node is deleted.  Mask sizes: /24 for IPv4 and /64 for IPv6 (K3s's
``node-cidr-mask-size``), or ``node-cidr-mask-size[-ipv4|-ipv6]`` from
``--kube-controller-manager-arg`` when given.  When the cluster CIDR is exhausted the
Node gets a ``CIDRNotAvailable`` event and is retried later.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Any

from k3py.client import NotFound
from k3py.client.resources import NODES
from k3py.server.controllers.base import Controller

Obj = dict[str, Any]
Net = ipaddress.IPv4Network | ipaddress.IPv6Network
log = logging.getLogger("k3py.controllers.nodeipam")

DEFAULT_CLUSTER_CIDR = "10.42.0.0/16"
RETRY_WHEN_FULL = 30.0


@dataclass
class CidrSet:
    """The /mask subnets of one cluster CIDR, handed out lowest-free-after-cursor first."""

    cluster: Net
    mask: int
    used: set[int] = field(default_factory=set)
    cursor: int = 0

    def __post_init__(self) -> None:
        if self.mask < self.cluster.prefixlen:
            raise ValueError(f"node CIDR mask /{self.mask} is larger than the cluster CIDR {self.cluster}")  # fmt: skip
        if self.mask - self.cluster.prefixlen > 24:
            raise ValueError(f"cluster CIDR {self.cluster} with /{self.mask} gives too many ranges")  # fmt: skip

    @property
    def size(self) -> int:
        return 1 << (self.mask - self.cluster.prefixlen)

    def subnet(self, index: int) -> Net:
        step = 1 << (self.cluster.max_prefixlen - self.mask)
        addr = self.cluster.network_address + index * step
        return ipaddress.ip_network(f"{addr}/{self.mask}")

    def index_of(self, net: Net) -> int | None:
        if net.version != self.cluster.version or net.prefixlen != self.mask:
            return None
        if not net.subnet_of(self.cluster):  # type: ignore[arg-type]
            return None
        step = 1 << (self.cluster.max_prefixlen - self.mask)
        return (int(net.network_address) - int(self.cluster.network_address)) // step

    def occupy(self, net: Net) -> bool:
        i = self.index_of(net)
        if i is None:
            return False
        self.used.add(i)
        return True

    def release(self, net: Net) -> None:
        i = self.index_of(net)
        if i is not None:
            self.used.discard(i)

    def allocate(self) -> Net | None:
        n = self.size
        if len(self.used) >= n:
            return None
        for k in range(n):
            i = (self.cursor + k) % n
            if i not in self.used:
                self.used.add(i)
                self.cursor = (i + 1) % n
                return self.subnet(i)
        return None


def cidr_sets(cluster_cidr: str, *, mask_v4: int = 24, mask_v6: int = 64) -> list[CidrSet]:
    out = []
    for part in (cluster_cidr or DEFAULT_CLUSTER_CIDR).split(","):
        net = ipaddress.ip_network(part.strip(), strict=False)
        out.append(CidrSet(net, mask_v4 if net.version == 4 else mask_v6))
    return out


def _masks(config: Any) -> tuple[int, int]:
    v4, v6 = 24, 64
    args: dict[str, str] = {}
    if config is not None and hasattr(config, "component_args"):
        args = config.component_args("kube-controller-manager")
    if "node-cidr-mask-size" in args:
        v4 = v6 = int(args["node-cidr-mask-size"])
        v6 = 64 if v6 <= 32 else v6
    if "node-cidr-mask-size-ipv4" in args:
        v4 = int(args["node-cidr-mask-size-ipv4"])
    if "node-cidr-mask-size-ipv6" in args:
        v6 = int(args["node-cidr-mask-size-ipv6"])
    return v4, v6


class NodeIpamController(Controller):
    name = "nodeipam"
    workers = 2

    def setup(self) -> None:
        cfg = self.ctx.config
        v4, v6 = _masks(cfg)
        self.sets = cidr_sets(getattr(cfg, "cluster_cidr", "") or DEFAULT_CLUSTER_CIDR, mask_v4=v4, mask_v6=v6)  # fmt: skip
        self.assigned: dict[str, list[Net]] = {}  # node name -> ranges given (or found)
        self.waiting: set[str] = set()  # nodes that found the cluster CIDR full
        self.nodes = self.ctx.informer(NODES)
        self.nodes.add_handler(
            on_add=self.enqueue,
            on_update=lambda _o, n: self.enqueue(n),
            on_delete=self._on_delete,
        )

    async def started(self) -> None:
        for node in self.nodes.list():
            name = node["metadata"]["name"]
            nets = self._ranges_of(node)
            for net in nets:
                for s in self.sets:
                    s.occupy(net)
            if nets:
                self.assigned[name] = nets
        self.enqueue_all(self.nodes)

    @staticmethod
    def _ranges_of(node: Obj) -> list[Net]:
        spec = node.get("spec") or {}
        texts = spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
        out: list[Net] = []
        for t in texts:
            try:
                out.append(ipaddress.ip_network(t, strict=False))
            except ValueError:
                continue
        return out

    def _on_delete(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        self.waiting.discard(name)
        freed = self.assigned.pop(name, [])
        for net in freed:
            for s in self.sets:
                s.release(net)
        if freed:
            for waiting in self.waiting:  # a range is free again
                self.queue.add(waiting)

    async def reconcile(self, key: str) -> float | None:
        node = self.nodes.get(key)
        if node is None:
            return None
        have = self._ranges_of(node)
        if have:
            if key not in self.assigned:
                for net in have:
                    for s in self.sets:
                        s.occupy(net)
            elif self.assigned[key] != have:  # someone else set it: follow the Node
                for net in self.assigned[key]:
                    if net not in have:
                        for s in self.sets:
                            s.release(net)
                for net in have:
                    for s in self.sets:
                        s.occupy(net)
            self.assigned[key] = have
            return None
        nets = self.assigned.get(key)
        if not nets:
            nets = []
            for s in self.sets:
                got_net = s.allocate()
                if got_net is None:
                    for got in nets:
                        s2 = next(x for x in self.sets if x.cluster.version == got.version)
                        s2.release(got)
                    self.recorder.normal(node, "CIDRNotAvailable", f"Node {key} status is now: CIDRNotAvailable")  # fmt: skip
                    log.warning("no pod CIDR left for node %s in %s", key, [str(x.cluster) for x in self.sets])  # fmt: skip
                    self.waiting.add(key)
                    return RETRY_WHEN_FULL
                nets.append(got_net)
            self.assigned[key] = nets
            self.waiting.discard(key)
        texts = [str(n) for n in nets]
        try:
            await self.client.patch(NODES, key, {"spec": {"podCIDR": texts[0], "podCIDRs": texts}})
        except NotFound:
            self._on_delete(node)
            return None
        return None


CONTROLLERS = [NodeIpamController]
