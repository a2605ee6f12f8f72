from __future__ import annotations

import base64
import stat
from pathlib import Path

import yaml
from kubernetes import client, config

from k3py.server.auth.kubeconfig import write_kubeconfig
from k3py.server.auth.pki import PKI


def write(pki: PKI, path: Path, *, mode: int = 0o600) -> None:
    write_kubeconfig(
        path=path,
        mode=mode,
        server_url="https://127.0.0.1:6443",
        ca_pem=pki.server_ca_pem,
        client_cert_pem=pki.admin.cert_pem,
        client_key_pem=pki.admin.key_pem,
    )


def test_layout_matches_k3s_yaml(pki: PKI, tmp_path: Path) -> None:
    path = tmp_path / "etc" / "k3py.yaml"
    write(pki, path)
    doc = yaml.safe_load(path.read_text())
    assert list(doc) == [
        "apiVersion",
        "clusters",
        "contexts",
        "current-context",
        "kind",
        "preferences",
        "users",
    ]
    assert doc["kind"] == "Config" and doc["current-context"] == "default"
    cluster = doc["clusters"][0]
    assert cluster["name"] == "default"
    assert cluster["cluster"]["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["cluster"]["certificate-authority-data"]) == pki.server_ca_pem
    assert doc["contexts"] == [
        {"context": {"cluster": "default", "user": "default"}, "name": "default"}
    ]
    user = doc["users"][0]["user"]
    assert base64.b64decode(user["client-certificate-data"]) == pki.admin.cert_pem
    assert base64.b64decode(user["client-key-data"]) == pki.admin.key_pem
    assert path.read_text().startswith("apiVersion: v1\nclusters:\n- cluster:\n")


def test_mode_is_applied_even_over_an_existing_file(pki: PKI, tmp_path: Path) -> None:
    path = tmp_path / "k3py.yaml"
    path.write_text("old")
    path.chmod(0o666)
    write(pki, path, mode=0o644)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    write(pki, path, mode=0o600)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k3py.yaml", "tls"]


def test_official_client_loads_it(pki: PKI, tmp_path: Path) -> None:
    path = tmp_path / "k3py.yaml"
    write(pki, path)
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=cfg)
    assert cfg.host == "https://127.0.0.1:6443"
    assert cfg.ssl_ca_cert and cfg.cert_file and cfg.key_file
    assert Path(cfg.ssl_ca_cert).read_bytes() == pki.server_ca_pem
    assert Path(cfg.cert_file).read_bytes() == pki.admin.cert_pem
    assert Path(cfg.key_file).read_bytes() == pki.admin.key_pem
