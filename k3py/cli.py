"""The ``k3py`` command: ``server`` now; ``agent``, ``images`` and ``kubectl`` as they land."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from k3py import GIT_VERSION
from k3py.config import DEFAULT_CONFIG, build_server_config, env_name


def _opt(name: str, *short: str, **kw: Any) -> Any:
    """An option that may also come from K3PY_<NAME> (read by build_server_config)."""
    helptext = kw.pop("help", "")
    kw["help"] = f"{helptext} [env: {env_name(name)}]"
    return click.option(f"--{name}", *short, name.replace("-", "_"), **kw)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(GIT_VERSION, "--version", "-v", prog_name="k3py", message="%(prog)s version %(version)s")
def main() -> None:
    """k3py: a Kubernetes-compatible cluster in one Python process per machine."""


@main.command()
@click.option("--config", "-c", "config_path", default=DEFAULT_CONFIG, envvar="K3PY_CONFIG_FILE", show_default=True, help="Config file (YAML)")
@_opt("data-dir", "-d", default=None, help="Folder to hold state (default /var/lib/k3py)")
@_opt("bind-address", default=None, help="Address the API server listens on (default 0.0.0.0)")
@_opt("https-listen-port", type=int, default=None, help="HTTPS listen port (default 6443)")
@_opt("advertise-address", default=None, help="IP address the API server advertises (default node-ip)")
@_opt("node-ip", "-i", default=None, help="IP address to advertise for the node")
@_opt("node-name", default=None, help="Node name (default: hostname)")
@_opt("tls-san", multiple=True, help="Additional hostnames or IPs as Subject Alternative Names in the serving certificate")
@_opt("write-kubeconfig", "-o", default=None, help="Write the admin kubeconfig here (default /etc/k3py/k3py.yaml)")
@_opt("write-kubeconfig-mode", default=None, help="Mode of the written kubeconfig, octal (default 0600)")
@_opt("datastore-endpoint", default=None, help="sqlite:///path (default <data-dir>/server/db/state.db) or postgresql://...")
@_opt("cluster-cidr", default=None, help="Pod network (default 10.42.0.0/16)")
@_opt("service-cidr", default=None, help="Service network (default 10.43.0.0/16)")
@_opt("cluster-dns", default=None, help="Cluster DNS service IP (default 10.43.0.10)")
@_opt("cluster-domain", default=None, help="Cluster domain (default cluster.local)")
@_opt("service-node-port-range", default=None, help="NodePort range (default 30000-32767)")
@_opt("token", "-t", default=None, help="Shared secret used to join agents (generated when absent)")
@_opt("disable-agent", is_flag=True, default=None, help="Do not run the local agent")
@_opt("disable-scheduler", is_flag=True, default=None, help="Do not run the scheduler")
@_opt("disable-controller-manager", is_flag=True, default=None, help="Do not run the controllers")
@_opt("simulate-nodes", type=int, default=None, help="Register N simulated nodes (sim-0 ...) whose kubelet runs no containers")
@_opt("simulate-node-capacity", default=None, help="Capacity of each simulated node (default cpu=4,memory=16Gi,pods=110)")
@_opt("kube-controller-manager-arg", multiple=True, help="Controller setting key=value (node-monitor-grace-period=50s, leader-elect=false, ...)")
@_opt("kube-scheduler-arg", multiple=True, help="Scheduler setting key=value (leader-elect=false, ...)")
@_opt("kube-apiserver-arg", multiple=True, help="API server setting key=value (default-not-ready-toleration-seconds=300, ...)")
@_opt("kubelet-arg", multiple=True, help="Kubelet setting key=value (node-lease-duration-seconds=40, ...)")
@_opt("pause-image", default=None, help="Sandbox (pause) image (default: k3py's built-in k3py.local/pause:3.10)")
@_opt("container-runtime-endpoint", default=None, help="Use this CRI socket instead of running containerd")
@_opt("node-label", multiple=True, help="Label the node at registration (key=value)")
@_opt("node-taint", multiple=True, help="Taint the node at registration (key=value:Effect)")
@_opt("debug", is_flag=True, default=None, help="Debug logging")
def server(config_path: str, **options: Any) -> None:
    """Run the control plane (and, by default, this node's agent)."""
    explicit = {}
    for k, v in options.items():
        if v is None or (isinstance(v, tuple) and not v):
            continue
        if v is False:
            continue
        explicit[k] = list(v) if isinstance(v, tuple) else v
    try:
        cfg = build_server_config(explicit, config_path=config_path)
        from k3py.server.control import timings_from_config
        from k3py.server.run import toleration_seconds

        timings_from_config(cfg)  # refuse unknown or malformed component settings up front
        toleration_seconds(cfg)
        if cfg.simulate_nodes:
            from k3py.server.simnodes import check_cidr_room, parse_capacity

            parse_capacity(cfg.simulate_node_capacity)
            check_cidr_room(cfg)
    except (ValueError, OSError) as e:
        raise click.ClickException(str(e)) from e
    logging.basicConfig(
        level=logging.DEBUG if cfg.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from k3py.server.run import run

    run(cfg)


@main.command()
@click.option("--config", "-c", "config_path", default=DEFAULT_CONFIG, envvar="K3PY_CONFIG_FILE", show_default=True, help="Config file (YAML)")
@click.option("--server", "--join", "-s", "server", default=None, help="URL of the k3py server to join, https://HOST:6443 [env: K3PY_URL]")
@click.option("--token", "-t", default=None, help="The server's join token [env: K3PY_TOKEN]")
@_opt("token-file", default=None, help="Read the token from this file")
@_opt("data-dir", "-d", default=None, help="Folder to hold state (default /var/lib/k3py)")
@_opt("node-name", default=None, help="Node name (default: hostname)")
@_opt("node-ip", "-i", default=None, help="IP address to advertise for the node")
@_opt("node-label", multiple=True, help="Label the node at registration (key=value)")
@_opt("node-taint", multiple=True, help="Taint the node at registration (key=value:Effect)")
@_opt("container-runtime-endpoint", default=None, help="Use this CRI socket instead of running containerd")
@_opt("pause-image", default=None, help="Sandbox (pause) image (default: k3py's built-in k3py.local/pause:3.10)")
@_opt("kubelet-arg", multiple=True, help="Kubelet setting key=value (port=10250, max-pods=110, ...)")
@_opt("debug", is_flag=True, default=None, help="Debug logging")
def agent(config_path: str, **options: Any) -> None:
    """Join a server as a worker node (kubelet, containerd, CNI)."""
    from k3py.config import build_agent_config

    explicit = {}
    for k, v in options.items():
        if v is None or v is False or (isinstance(v, tuple) and not v):
            continue
        explicit[k] = list(v) if isinstance(v, tuple) else v
    try:
        acfg = build_agent_config(explicit, config_path=config_path)
    except (ValueError, OSError) as e:
        raise click.ClickException(str(e)) from e
    logging.basicConfig(
        level=logging.DEBUG if acfg.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from k3py.agent.run import run

    try:
        run(acfg)
    except Exception as e:  # noqa: BLE001 - a clean message for join failures
        from k3py.agent.join import JoinError

        if isinstance(e, JoinError):
            raise click.ClickException(str(e)) from e
        raise


def _register_subcommands() -> None:
    from k3py.agent.images_cli import images

    main.add_command(images)


_register_subcommands()


if __name__ == "__main__":
    main()
