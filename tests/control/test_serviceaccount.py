"""ServiceAccount controller and root CA publisher: ``default`` and ``kube-root-ca.crt`` in
every namespace, put back when deleted or edited.  Only these controllers run (the
server's own controller manager is off), so nothing else can make the objects."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from k3py.server.controllers.serviceaccount import CONTROLLERS
from tests.conftest import server_config, start_server_thread, stop_server_thread
from tests.control.conftest import ClusterHandle, start_only


@pytest.fixture(scope="module")
def sa_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHandle]:
    data = tmp_path_factory.mktemp("k3py-sa")
    cfg = server_config(data, disable_controller_manager=True, disable_scheduler=True)
    h = ClusterHandle(**start_server_thread(cfg).__dict__)
    os.environ.setdefault("KUBECACHEDIR", str(data / "kubecache"))
    mgr = start_only(h, list(CONTROLLERS))
    try:
        yield h
    finally:
        h.call(mgr.stop())
        stop_server_thread(h)


def _get(h: ClusterHandle, *args: str) -> Any:
    r = h.kubectl("get", *args, "-o", "json", check=False)
    return json.loads(r.stdout) if r.returncode == 0 else None


def test_default_service_account_in_every_namespace(sa_cluster: ClusterHandle) -> None:
    h = sa_cluster
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        h.wait_for(lambda: _get(h, "serviceaccount", "default", "-n", ns), what=f"{ns}/default")  # noqa: B023
    h.kubectl("create", "namespace", "sa-one")
    sa = h.wait_for(lambda: _get(h, "sa", "default", "-n", "sa-one"), what="default SA")
    uid = sa["metadata"]["uid"]
    h.kubectl("delete", "sa", "default", "-n", "sa-one")
    again = h.wait_for(
        lambda: (
            (s := _get(h, "sa", "default", "-n", "sa-one")) and s["metadata"]["uid"] != uid and s
        ),
        what="default SA recreated",
    )
    assert again["metadata"]["name"] == "default"
    out = h.kubectl("get", "sa", "-n", "sa-one").stdout
    assert "default" in out


def test_root_ca_configmap_published_and_restored(sa_cluster: ClusterHandle) -> None:
    h = sa_cluster
    ca = (h.running.config.tls_dir / "server-ca.crt").read_text()
    assert "BEGIN CERTIFICATE" in ca
    h.kubectl("create", "namespace", "ca-one")
    cm = h.wait_for(lambda: _get(h, "cm", "kube-root-ca.crt", "-n", "ca-one"), what="root CA cm")
    assert cm["data"] == {"ca.crt": ca}
    assert "kubernetes.io/description" in cm["metadata"]["annotations"]
    # every namespace has it, kube-system included
    assert _get(h, "cm", "kube-root-ca.crt", "-n", "kube-system") or h.wait_for(
        lambda: _get(h, "cm", "kube-root-ca.crt", "-n", "kube-system"), what="kube-system"
    )
    # edited: put back
    h.kubectl("patch", "cm", "kube-root-ca.crt", "-n", "ca-one", "--type=merge",
              "-p", '{"data":{"ca.crt":"tampered","extra":"x"}}')  # fmt: skip
    h.wait_for(
        lambda: (
            (c := _get(h, "cm", "kube-root-ca.crt", "-n", "ca-one")) and c["data"] == {"ca.crt": ca}
        ),
        what="ca.crt restored",
    )
    # deleted: recreated
    h.kubectl("delete", "cm", "kube-root-ca.crt", "-n", "ca-one")
    h.wait_for(
        lambda: (
            (c := _get(h, "cm", "kube-root-ca.crt", "-n", "ca-one")) and c["data"] == {"ca.crt": ca}
        ),
        what="root CA cm recreated",
    )


def test_terminating_namespace_gets_nothing_new(sa_cluster: ClusterHandle) -> None:
    h = sa_cluster
    h.kubectl("create", "namespace", "going")
    h.wait_for(lambda: _get(h, "sa", "default", "-n", "going"), what="default SA")
    # Hold the namespace in Terminating with a finalizer on an object in it.
    h.kubectl("create", "cm", "held", "-n", "going")
    h.kubectl("patch", "cm", "held", "-n", "going", "--type=merge",
              "-p", '{"metadata":{"finalizers":["example.com/hold"]}}')  # fmt: skip
    h.kubectl("delete", "namespace", "going", "--wait=false")
    h.wait_for(lambda: _get(h, "sa", "default", "-n", "going") is None, what="SA removed")
    h.wait_for(lambda: _get(h, "cm", "kube-root-ca.crt", "-n", "going") is None, what="cm removed")
    ns = _get(h, "namespace", "going")
    assert ns is not None and ns["status"]["phase"] == "Terminating"
    h.kubectl("patch", "cm", "held", "-n", "going", "--type=merge",
              "-p", '{"metadata":{"finalizers":null}}')  # fmt: skip
    h.wait_for(lambda: _get(h, "namespace", "going") is None, what="namespace gone")
