"""The admin kubeconfig, laid out exactly as K3s writes ``/etc/rancher/k3s/k3s.yaml``."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from k3py.server.auth.files import write_atomic


def kubeconfig_dict(
    *,
    server_url: str,
    ca_pem: bytes,
    client_cert_pem: bytes,
    client_key_pem: bytes,
    cluster_name: str = "default",
    user: str = "default",
    context: str = "default",
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "clusters": [
            {
                "cluster": {"certificate-authority-data": _b64(ca_pem), "server": server_url},
                "name": cluster_name,
            }
        ],
        "contexts": [{"context": {"cluster": cluster_name, "user": user}, "name": context}],
        "current-context": context,
        "kind": "Config",
        "preferences": {},
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(client_cert_pem),
                    "client-key-data": _b64(client_key_pem),
                },
            }
        ],
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def write_kubeconfig(
    *,
    path: Path,
    mode: int,
    server_url: str,
    ca_pem: bytes,
    client_cert_pem: bytes,
    client_key_pem: bytes,
    cluster_name: str = "default",
    user: str = "default",
    context: str = "default",
) -> None:
    """Write the kubeconfig atomically; the file ends with exactly ``mode``."""
    doc = kubeconfig_dict(
        server_url=server_url,
        ca_pem=ca_pem,
        client_cert_pem=client_cert_pem,
        client_key_pem=client_key_pem,
        cluster_name=cluster_name,
        user=user,
        context=context,
    )
    text = yaml.safe_dump(doc, default_flow_style=False, sort_keys=False, width=1 << 20)
    write_atomic(path, text.encode(), mode=mode)
