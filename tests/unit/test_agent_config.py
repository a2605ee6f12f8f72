"""``k3py agent`` configuration (flag > K3PY_* env > config file > default) and the
embedded agent's configuration built from the server's."""

from __future__ import annotations

from pathlib import Path

import pytest

from k3py.config import ServerConfig, agent_config_for_server, build_agent_config

URL = "https://10.0.0.1:6443"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("K3PY_URL", "K3PY_TOKEN", "K3PY_TOKEN_FILE", "K3PY_NODE_NAME", "K3PY_NODE_IP",
                 "K3PY_DATA_DIR", "K3PY_NODE_LABEL", "K3PY_PAUSE_IMAGE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


def test_flags_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "config.yaml"
    conf.write_text(
        "server: https://from-file:6443\ntoken: file-token\nnode-name: file-node\n"
        "node-label: [a=1, b=2]\nkubelet-arg: [port=10260]\npause-image: p:file\n"
    )
    cfg = build_agent_config({}, config_path=str(conf))
    assert cfg.server_url == "https://from-file:6443" and cfg.token == "file-token"
    assert cfg.node_name == "file-node" and cfg.node_labels == ["a=1", "b=2"]
    assert cfg.kubelet_port == 10260 and cfg.pause_image == "p:file"
    monkeypatch.setenv("K3PY_URL", URL)
    monkeypatch.setenv("K3PY_TOKEN", "env-token")
    monkeypatch.setenv("K3PY_NODE_LABEL", "c=3,d=4")
    cfg = build_agent_config({"node_name": "flag-node"}, config_path=str(conf))
    assert cfg.server_url == URL and cfg.token == "env-token"
    assert cfg.node_name == "flag-node" and cfg.node_labels == ["c=3", "d=4"]
    cfg = build_agent_config({"server": "https://flag:6443", "token": "t", "debug": True,
                              "data_dir": str(tmp_path / "d"), "node_taint": ["k=v:NoSchedule"]},
                             config_path=str(conf))  # fmt: skip
    assert cfg.server_url == "https://flag:6443" and cfg.token == "t" and cfg.debug
    assert cfg.data_dir == tmp_path / "d" and cfg.node_taints == ["k=v:NoSchedule"]
    assert cfg.tls_dir == tmp_path / "d" / "agent" / "tls"


def test_token_file_and_required_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    none = str(tmp_path / "absent.yaml")
    tf = tmp_path / "token"
    tf.write_text("K10" + "a" * 64 + "::server:s3cret\n")
    cfg = build_agent_config({"server": URL, "token_file": str(tf)}, config_path=none)
    assert cfg.token == "K10" + "a" * 64 + "::server:s3cret"
    assert cfg.node_name and cfg.node_ip  # hostname and the default-route address
    with pytest.raises(ValueError, match="--server"):
        build_agent_config({"token": "t"}, config_path=none)
    with pytest.raises(ValueError, match="--token"):
        build_agent_config({"server": URL}, config_path=none)
    monkeypatch.setenv("K3PY_TOKEN_FILE", str(tf))
    assert build_agent_config({"server": URL}, config_path=none).token.endswith("s3cret")


def test_embedded_agent_config_from_server(tmp_path: Path) -> None:
    scfg = ServerConfig(
        data_dir=tmp_path, node_name="n1", node_ip="192.0.2.5", cluster_cidr="10.50.0.0/16",
        service_cidr="10.60.0.0/16", cluster_dns="10.60.0.10", cluster_domain="k.local",
        node_label=["x=y"], node_taint=["t=v:NoExecute"], kubelet_arg=["port=10999"],
        container_runtime_endpoint="unix:///run/c.sock", pause_image="",
    )  # fmt: skip
    acfg = agent_config_for_server(scfg)
    assert (acfg.node_name, acfg.node_ip, acfg.data_dir) == ("n1", "192.0.2.5", tmp_path)
    assert (acfg.cluster_cidr, acfg.service_cidr) == ("10.50.0.0/16", "10.60.0.0/16")
    assert (acfg.cluster_dns, acfg.cluster_domain) == ("10.60.0.10", "k.local")
    assert acfg.node_labels == ["x=y"] and acfg.node_taints == ["t=v:NoExecute"]
    assert acfg.kubelet_port == 10999 and acfg.container_runtime_endpoint == "unix:///run/c.sock"
    assert acfg.pause_image == "k3py.local/pause:3.10" and not acfg.server_url
