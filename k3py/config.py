"""One typed configuration from flags, ``K3PY_*`` environment variables and the config file.

Precedence, as K3s: command-line flag > environment variable > config file > default.
Config file keys are the flag names without dashes (``data-dir: /srv/k3py``,
``tls-san: [a, b]``).
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONFIG = "/etc/k3py/config.yaml"


@dataclass
class ServerConfig:
    data_dir: Path = Path("/var/lib/k3py")
    bind_address: str = "0.0.0.0"
    https_listen_port: int = 6443
    advertise_address: str = ""
    node_ip: str = ""
    node_name: str = ""
    tls_san: list[str] = field(default_factory=list)
    write_kubeconfig: str = "/etc/k3py/k3py.yaml"
    write_kubeconfig_mode: int = 0o600
    datastore_endpoint: str = ""
    cluster_cidr: str = "10.42.0.0/16"
    service_cidr: str = "10.43.0.0/16"
    cluster_dns: str = "10.43.0.10"
    cluster_domain: str = "cluster.local"
    service_node_port_range: str = "30000-32767"
    token: str = ""
    disable_agent: bool = False
    debug: bool = False
    compaction_interval: float = 60.0
    retention_seconds: float = 300.0
    retention_revisions: int = 10000
    # control plane (issue 3)
    disable_scheduler: bool = False
    disable_controller_manager: bool = False
    simulate_nodes: int = 0
    simulate_node_capacity: str = "cpu=4,memory=16Gi,pods=110"
    kube_controller_manager_arg: list[str] = field(default_factory=list)
    kube_scheduler_arg: list[str] = field(default_factory=list)
    kube_apiserver_arg: list[str] = field(default_factory=list)
    kubelet_arg: list[str] = field(default_factory=list)
    # the embedded agent (issue 4)
    pause_image: str = ""
    container_runtime_endpoint: str = ""
    node_label: list[str] = field(default_factory=list)
    node_taint: list[str] = field(default_factory=list)

    @property
    def server_dir(self) -> Path:
        return self.data_dir / "server"

    @property
    def tls_dir(self) -> Path:
        return self.server_dir / "tls"

    @property
    def datastore_url(self) -> str:
        if self.datastore_endpoint:
            return self.datastore_endpoint
        return f"sqlite:///{self.server_dir / 'db' / 'state.db'}"

    @property
    def node_port_range(self) -> tuple[int, int]:
        lo, _, hi = self.service_node_port_range.partition("-")
        return int(lo), int(hi or lo)


    def component_args(self, which: str) -> dict[str, str]:
        """``--kube-controller-manager-arg key=value`` (and friends) as a dict."""
        raw: list[str] = getattr(self, f"{which.replace('-', '_')}_arg")
        out: dict[str, str] = {}
        for item in raw:
            k, _, v = item.lstrip("-").partition("=")
            out[k] = v
        return out


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds of a Go duration ("40s", "1m30s", "500ms"); a bare number is seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {text!r}")
    return total


def agent_config_for_server(cfg: ServerConfig) -> Any:
    """The embedded agent's configuration, from the server's."""
    from k3py.agent.config import DEFAULT_KUBELET_PORT, DEFAULT_PAUSE_IMAGE, AgentConfig

    acfg = AgentConfig(
        data_dir=cfg.data_dir,
        node_name=cfg.node_name,
        node_ip=cfg.node_ip,
        node_labels=list(cfg.node_label),
        node_taints=list(cfg.node_taint),
        container_runtime_endpoint=cfg.container_runtime_endpoint,
        pause_image=cfg.pause_image or DEFAULT_PAUSE_IMAGE,
        kubelet_arg=list(cfg.kubelet_arg),
        cluster_cidr=cfg.cluster_cidr,
        service_cidr=cfg.service_cidr,
        cluster_dns=cfg.cluster_dns,
        cluster_domain=cfg.cluster_domain,
        debug=cfg.debug,
    )
    acfg.kubelet_port = int(acfg.kubelet_args().get("port", DEFAULT_KUBELET_PORT))
    return acfg


_AGENT_FIELDS = {
    # option name -> AgentConfig field
    "data_dir": "data_dir", "server": "server_url", "token": "token", "node_name": "node_name",
    "node_ip": "node_ip", "node_label": "node_labels", "node_taint": "node_taints",
    "container_runtime_endpoint": "container_runtime_endpoint", "pause_image": "pause_image",
    "kubelet_arg": "kubelet_arg", "debug": "debug",
}
# K3s's agent reads K3S_URL and K3S_TOKEN; ours are K3PY_URL and K3PY_TOKEN.
_AGENT_ENV = {"server": "K3PY_URL", "token": "K3PY_TOKEN"}


def build_agent_config(explicit: dict[str, Any], *, config_path: str) -> Any:
    """``k3py agent``'s configuration: flag > environment > config file > default."""
    from k3py.agent.config import DEFAULT_KUBELET_PORT, AgentConfig

    file_values = load_config_file(config_path)
    if "url" in file_values and "server" not in file_values:
        file_values["server"] = file_values["url"]
    acfg = AgentConfig()
    for option, attr in _AGENT_FIELDS.items():
        value: Any = None
        env = _AGENT_ENV.get(option, env_name(option))
        if option in explicit:
            value = explicit[option]
        elif env in os.environ:
            value = os.environ[env]
        elif option in file_values:
            value = file_values[option]
        if value is None:
            continue
        current = getattr(acfg, attr)
        if isinstance(current, Path):
            value = Path(value)
        elif isinstance(current, list):
            value = [v for v in value.split(",") if v] if isinstance(value, str) else [str(v) for v in value]
        elif isinstance(current, bool):
            value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
        setattr(acfg, attr, value)
    token_file = explicit.get("token_file") or os.environ.get("K3PY_TOKEN_FILE") or file_values.get("token_file")
    if token_file and not acfg.token:
        acfg.token = Path(token_file).read_text().strip()
    if not acfg.node_ip:
        acfg.node_ip = detect_node_ip()
    if not acfg.node_name:
        acfg.node_name = socket.gethostname().lower()
    acfg.kubelet_port = int(acfg.kubelet_args().get("port", DEFAULT_KUBELET_PORT))
    if not acfg.server_url:
        raise ValueError("--server (or K3PY_URL) is required: the URL of a k3py server, https://HOST:6443")
    if not acfg.token:
        raise ValueError("--token (or K3PY_TOKEN, --token-file) is required: the server's join token "
                         "(<data-dir>/server/token on the server)")
    return acfg


def env_name(option: str) -> str:
    return "K3PY_" + option.upper().replace("-", "_")


def detect_node_ip() -> str:
    """The address of the interface holding the default route (no packet is sent)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: connect() on UDP sends nothing
        ip: str = s.getsockname()[0]
        return ip
    except OSError:
        return "127.0.0.1"
    finally:
        s.close()


def _coerce(cfg_field: Any, value: Any) -> Any:
    t = cfg_field.type
    if value is None:
        return None
    if t in ("Path", Path):
        return Path(value)
    if t in ("int", int):
        if isinstance(value, str):
            return int(value, 8) if cfg_field.name.endswith("_mode") else int(value)
        return int(value)
    if t in ("float", float):
        return float(value)
    if t in ("bool", bool):
        if isinstance(value, str):
            return value.lower() in ("1", "true", "yes", "on")
        return bool(value)
    if t in ("list[str]",):
        if isinstance(value, str):
            return [v for v in value.split(",") if v]
        return [str(v) for v in value]
    return str(value)


def load_config_file(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        return {}
    data = yaml.safe_load(p.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of option names to values")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def build_server_config(explicit: dict[str, Any], *, config_path: str) -> ServerConfig:
    """``explicit`` holds only the options given on the command line."""
    file_values = load_config_file(config_path)
    cfg = ServerConfig()
    for f in fields(ServerConfig):
        value: Any = None
        if f.name in explicit:
            value = explicit[f.name]
        elif env_name(f.name) in os.environ:
            value = os.environ[env_name(f.name)]
        elif f.name in file_values:
            value = file_values[f.name]
        if value is not None:
            setattr(cfg, f.name, _coerce(f, value))
    if not cfg.node_ip:
        cfg.node_ip = detect_node_ip()
    if not cfg.node_name:
        cfg.node_name = socket.gethostname().lower()
    if not cfg.advertise_address:
        cfg.advertise_address = cfg.node_ip
    return cfg
