"""Reading a kubeconfig: the chosen context's server, CA, client credentials and namespace.

Supports what K3s and kubeadm write and what users hand-edit: ``*-data`` fields (base64)
or file paths (relative to the kubeconfig's directory), client certificate + key, bearer
``token`` or ``tokenFile``, ``insecure-skip-tls-verify``, ``tls-server-name``.  Exec and
auth-provider plugins are not supported (refused with a clear error).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class KubeconfigError(ValueError):
    pass


@dataclass(frozen=True)
class Credentials:
    """Everything a transport needs to reach and authenticate to one API server."""

    server: str
    ca_pem: bytes | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    token: str | None = None
    insecure: bool = False
    tls_server_name: str | None = None
    namespace: str = "default"


def default_path() -> Path:
    env = os.environ.get("KUBECONFIG", "")
    first = env.split(os.pathsep)[0] if env else ""
    return Path(first) if first else Path.home() / ".kube" / "config"


def load(path: str | Path | None = None, *, context: str | None = None) -> Credentials:
    p = Path(path) if path is not None else default_path()
    try:
        doc = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise KubeconfigError(f"cannot read kubeconfig {p}: {e}") from e
    return parse(doc, base_dir=p.parent, context=context)


def parse(doc: Any, *, base_dir: Path, context: str | None = None) -> Credentials:
    if not isinstance(doc, dict):
        raise KubeconfigError("kubeconfig is not a mapping")
    ctx_name = context or doc.get("current-context") or ""
    if not ctx_name:
        raise KubeconfigError("kubeconfig has no current-context and none was given")
    ctx = _named(doc, "contexts", ctx_name, "context")
    cluster = _named(doc, "clusters", str(ctx.get("cluster") or ""), "cluster")
    user = _named(doc, "users", str(ctx.get("user") or ""), "user") if ctx.get("user") else {}
    if user.get("exec") or user.get("auth-provider"):
        raise KubeconfigError(f"context {ctx_name!r}: exec/auth-provider users are not supported")
    server = str(cluster.get("server") or "")
    if not server:
        raise KubeconfigError(f"cluster of context {ctx_name!r} has no server")
    return Credentials(
        server=server.rstrip("/"),
        ca_pem=_data_or_file(cluster, "certificate-authority", base_dir=base_dir),
        cert_pem=_data_or_file(user, "client-certificate", base_dir=base_dir),
        key_pem=_data_or_file(user, "client-key", base_dir=base_dir),
        token=_token(user, base_dir=base_dir),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=cluster.get("tls-server-name") or None,
        namespace=str(ctx.get("namespace") or "default"),
    )


def _named(doc: dict[str, Any], section: str, name: str, field: str) -> dict[str, Any]:
    for entry in doc.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            body = entry.get(field) or {}
            if not isinstance(body, dict):
                raise KubeconfigError(f"{section} entry {name!r} is not a mapping")
            return body
    raise KubeconfigError(f"kubeconfig has no {field} named {name!r}")


def _resolve(base_dir: Path, value: str) -> Path:
    p = Path(os.path.expanduser(value))
    return p if p.is_absolute() else base_dir / p


def _data_or_file(section: dict[str, Any], key: str, *, base_dir: Path) -> bytes | None:
    data = section.get(f"{key}-data")
    if data:
        try:
            return base64.b64decode(str(data), validate=False)
        except ValueError as e:
            raise KubeconfigError(f"{key}-data is not base64: {e}") from e
    path = section.get(key)
    if path:
        try:
            return _resolve(base_dir, str(path)).read_bytes()
        except OSError as e:
            raise KubeconfigError(f"cannot read {key} {path}: {e}") from e
    return None


def _token(user: dict[str, Any], *, base_dir: Path) -> str | None:
    if user.get("token"):
        return str(user["token"])
    if user.get("tokenFile"):
        try:
            return _resolve(base_dir, str(user["tokenFile"])).read_text().strip()
        except OSError as e:
            raise KubeconfigError(f"cannot read tokenFile: {e}") from e
    return None
