"""The agent's typed configuration and the layout of its data dir.

``k3py agent`` builds it from flags/env/config file (see ``k3py.config``); the server
builds one for its embedded agent from its own ``ServerConfig``.

Layout under ``<data-dir>/agent`` (K3s keeps the same split):

    containerd/            containerd root, state, config.toml, socket, log
    cni/bin/               the CNI executables containerd runs (k3py, loopback)
    cni/net.d/             the CNI network config written from the Node's podCIDR
    cni/ipam/              host-local IPAM state (one file per allocated IP)
    cni/cni.sock           the agent's CNI daemon socket (the executables forward to it)
    images/                OCI/Docker archives imported at start (unchanged ones skipped)
    pods/<uid>/volumes/    pod volumes (emptyDir, configMap, secret, projected, ...)
    logs/pods/             container logs (CRI log format), <ns>_<pod>_<uid>/<ctr>/<n>.log
    tls/                   client-ca.crt, server-ca.crt, kubelet client + serving certs
    kubeconfig             the node's kubeconfig (remote agents)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PAUSE_IMAGE = "k3py.local/pause:3.10"
DEFAULT_KUBELET_PORT = 10250


@dataclass
class AgentConfig:
    data_dir: Path = Path("/var/lib/k3py")
    server_url: str = ""  # empty: embedded in the server process
    token: str = ""
    node_name: str = ""
    node_ip: str = ""
    node_labels: list[str] = field(default_factory=list)  # key=value
    node_taints: list[str] = field(default_factory=list)  # key=value:Effect
    container_runtime_endpoint: str = ""  # empty: run our own containerd
    pause_image: str = DEFAULT_PAUSE_IMAGE
    kubelet_arg: list[str] = field(default_factory=list)
    cluster_cidr: str = "10.42.0.0/16"
    service_cidr: str = "10.43.0.0/16"
    cluster_dns: str = "10.43.0.10"
    cluster_domain: str = "cluster.local"
    kubelet_port: int = DEFAULT_KUBELET_PORT
    debug: bool = False

    @property
    def agent_dir(self) -> Path:
        return self.data_dir / "agent"

    @property
    def containerd_dir(self) -> Path:
        return self.agent_dir / "containerd"

    @property
    def cni_bin_dir(self) -> Path:
        return self.agent_dir / "cni" / "bin"

    @property
    def cni_conf_dir(self) -> Path:
        return self.agent_dir / "cni" / "net.d"

    @property
    def cni_ipam_dir(self) -> Path:
        return self.agent_dir / "cni" / "ipam"

    @property
    def cni_socket(self) -> Path:
        return self.agent_dir / "cni" / "cni.sock"

    @property
    def images_dir(self) -> Path:
        return self.agent_dir / "images"

    @property
    def pods_dir(self) -> Path:
        return self.agent_dir / "pods"

    @property
    def pod_logs_dir(self) -> Path:
        return self.agent_dir / "logs" / "pods"

    @property
    def tls_dir(self) -> Path:
        return self.agent_dir / "tls"

    @property
    def kubeconfig(self) -> Path:
        return self.agent_dir / "kubeconfig"

    def kubelet_args(self) -> dict[str, str]:
        """``--kubelet-arg key=value`` as a dict (upstream kubelet flag names)."""
        out: dict[str, str] = {}
        for item in self.kubelet_arg:
            k, _, v = item.lstrip("-").partition("=")
            out[k] = v
        return out
