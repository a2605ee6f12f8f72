"""Pod volumes on a temporary data dir (tmpfs mounts are real: the tests run as root)."""

from __future__ import annotations

import base64
import os
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from k3py.agent.config import AgentConfig
from k3py.agent.cri import api_pb2 as cri
from k3py.agent.kubelet.volumes import (
    VolumeError,
    VolumeManager,
    etc_hosts_content,
    host_path_check,
    is_mounted,
    mounts,
    mounts_under,
)
from k3py.client import CONFIGMAPS, PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, SECRETS

Obj = dict[str, Any]


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def make_pod(volumes: list[Obj], *, uid: str = "uid-1", **spec: Any) -> Obj:
    return {
        "metadata": {"name": "web", "namespace": "default", "uid": uid, "labels": {"app": "w"}},
        "spec": {
            "serviceAccountName": "default",
            "containers": [{"name": "c", "resources": {"limits": {"memory": "64Mi"}}}],
            "volumes": volumes,
            **spec,
        },
    }


@pytest.fixture
async def vm(env: Any, tmp_path: Path) -> AsyncIterator[VolumeManager]:
    cfg = AgentConfig(data_dir=tmp_path / "data", node_ip="192.168.1.2")
    manager = VolumeManager(cfg, env.client, allocatable={"memory": "1Gi", "cpu": "2"})
    yield manager
    for uid in list(os.listdir(cfg.pods_dir)) if cfg.pods_dir.exists() else []:
        await manager.teardown(uid)
    assert not mounts_under(cfg.pods_dir)


async def test_configmap_layout_modes_items_and_refresh_in_place(
    vm: VolumeManager, env: Any
) -> None:
    await env.client.create(CONFIGMAPS, {"metadata": {"name": "cfg", "namespace": "default"},
                                         "data": {"a": "1", "b": "2", "c": "3"}})  # fmt: skip
    pod = make_pod([
        {"name": "all", "configMap": {"name": "cfg", "defaultMode": 0o600}},
        {"name": "some", "configMap": {"name": "cfg", "items": [
            {"key": "a", "path": "dir/a.txt", "mode": 0o400}, {"key": "b", "path": "b"}]}},
    ])  # fmt: skip
    paths = await vm.setup(pod)
    root = paths["all"]
    assert root == vm.cfg.pods_dir / "uid-1/volumes/kubernetes.io~configmap/all"
    assert (root / "..data").is_symlink() and os.readlink(root / "..data").startswith("..20")
    assert os.readlink(root / "a") == "..data/a" and (root / "a").read_text() == "1"
    assert stat.S_IMODE((root / "..data" / "a").stat().st_mode) == 0o600
    some = paths["some"]
    assert (some / "dir/a.txt").read_text() == "1" and (some / "b").read_text() == "2"
    assert stat.S_IMODE((some / "dir/a.txt").stat().st_mode) == 0o400
    assert sorted(p.name for p in some.iterdir() if not p.name.startswith("..")) == ["b", "dir"]
    assert not (some / "c").exists()

    before = os.readlink(root / "..data")
    await vm.refresh(pod)  # unchanged: nothing rewritten
    assert os.readlink(root / "..data") == before
    await env.client.update(CONFIGMAPS, {"metadata": {"name": "cfg", "namespace": "default"},
                                         "data": {"a": "new", "z": "26"}})  # fmt: skip
    vm.cache.forget("ConfigMap", "default", "cfg")
    await vm.refresh(pod)
    assert os.readlink(root / "..data") != before and not (root / before).exists()
    assert (root / "a").read_text() == "new" and (root / "z").read_text() == "26"
    assert not (root / "b").exists()  # removed key: its symlink is gone
    # the items volume now misses key b: refresh keeps the last good content
    assert (some / "b").read_text() == "2"


async def test_missing_sources_and_optional(vm: VolumeManager) -> None:
    with pytest.raises(VolumeError) as ei:
        await vm.setup(make_pod([{"name": "v", "configMap": {"name": "nope"}}]))
    assert (
        ei.value.message == 'MountVolume.SetUp failed for volume "v" : configmap "nope" not found'
    )
    with pytest.raises(VolumeError, match='secret "s" not found'):
        await vm.setup(make_pod([{"name": "v", "secret": {"secretName": "s"}}], uid="u2"))
    paths = await vm.setup(make_pod([
        {"name": "v", "configMap": {"name": "nope", "optional": True}},
        {"name": "w", "secret": {"secretName": "nope", "optional": True}},
    ], uid="u3"))  # fmt: skip
    assert [p.name for p in paths["v"].iterdir() if not p.name.startswith("..")] == []


async def test_missing_keys(vm: VolumeManager, env: Any) -> None:
    await env.client.create(
        CONFIGMAPS, {"metadata": {"name": "cfg", "namespace": "default"}, "data": {"a": "1"}}
    )
    await env.client.create(
        SECRETS, {"metadata": {"name": "sec", "namespace": "default"}, "data": {"a": b64("1")}}
    )
    with pytest.raises(VolumeError, match="configmap references non-existent config key: x"):
        await vm.setup(
            make_pod(
                [{"name": "v", "configMap": {"name": "cfg", "items": [{"key": "x", "path": "x"}]}}]
            )
        )
    with pytest.raises(VolumeError, match="references non-existent secret key: x"):
        await vm.setup(
            make_pod(
                [
                    {
                        "name": "v",
                        "secret": {"secretName": "sec", "items": [{"key": "x", "path": "x"}]},
                    }
                ]
            )
        )
    ok = make_pod(
        [
            {
                "name": "v",
                "configMap": {
                    "name": "cfg",
                    "optional": True,
                    "items": [{"key": "x", "path": "x"}],
                },
            }
        ]
    )
    await vm.setup(ok)


async def test_secret_and_memory_emptydir_are_tmpfs_and_torn_down(
    vm: VolumeManager, env: Any
) -> None:
    await env.client.create(SECRETS, {"metadata": {"name": "sec", "namespace": "default"},
                                      "data": {"pw": b64("hunter2"), "bin": b64("\x00\x01")}})  # fmt: skip
    pod = make_pod([
        {"name": "s", "secret": {"secretName": "sec"}},
        {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
        {"name": "mem2", "emptyDir": {"medium": "Memory"}},
        {"name": "disk", "emptyDir": {}},
    ])  # fmt: skip
    paths = await vm.setup(pod)
    assert is_mounted(paths["s"]) and (paths["s"] / "pw").read_text() == "hunter2"
    assert (paths["s"] / "bin").read_bytes() == b"\x00\x01"
    assert stat.S_IMODE((paths["s"] / "..data" / "pw").stat().st_mode) == 0o644
    assert is_mounted(paths["mem"]) and is_mounted(paths["mem2"]) and not is_mounted(paths["disk"])
    st = os.statvfs(paths["mem"])
    assert st.f_blocks * st.f_frsize == 16 << 20
    st2 = os.statvfs(paths["mem2"])  # no sizeLimit: the pod's memory limit
    assert st2.f_blocks * st2.f_frsize == 64 << 20
    assert stat.S_IMODE(paths["disk"].stat().st_mode) == 0o777
    (paths["mem"] / "f").write_text("x")
    await vm.teardown("uid-1")
    assert not is_mounted(paths["s"]) and not is_mounted(paths["mem"])
    assert not vm.pod_dir("uid-1").exists()
    await vm.teardown("uid-1")  # idempotent


async def test_downward_api_and_projected_service_account_volume(
    vm: VolumeManager, env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await env.client.create(CONFIGMAPS, {"metadata": {"name": "kube-root-ca.crt", "namespace": "default"},
                                         "data": {"ca.crt": "CA PEM"}})  # fmt: skip
    requests: list[tuple[str, str, Obj]] = []

    async def fake_token(
        res: Any, body: Obj, *, namespace: str, name: str, subresource: str, opts: Any
    ) -> Obj:
        assert (res.plural, subresource) == ("serviceaccounts", "token")
        requests.append((namespace, name, body))
        return {
            **body,
            "status": {
                "token": f"tok-{len(requests)}",
                "expirationTimestamp": "2999-01-01T00:00:00Z",
            },
        }

    monkeypatch.setattr(env.client.transport, "create_subresource", fake_token)
    kube_api_access = {"name": "kube-api-access-abcde", "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}}  # fmt: skip
    downward = {"name": "info", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 0o600},
        {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}},
        {"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu"}},
    ]}}  # fmt: skip
    pod = make_pod([kube_api_access, downward])
    paths = await vm.setup(pod)
    sa = paths["kube-api-access-abcde"]
    assert sa.parent.name == "kubernetes.io~projected" and is_mounted(sa)
    assert (sa / "token").read_text() == "tok-1" and (sa / "ca.crt").read_text() == "CA PEM"
    assert (sa / "namespace").read_text() == "default"
    ns, name, body = requests[0]
    assert (ns, name) == ("default", "default")
    assert body["spec"]["expirationSeconds"] == 3607
    assert body["spec"]["boundObjectRef"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "web",
        "uid": "uid-1",
    }
    info = paths["info"]
    assert (info / "labels").read_text() == 'app="w"' and (info / "name").read_text() == "web"
    assert (info / "mem").read_text() == "64" and (info / "cpu").read_text() == "2"  # allocatable
    assert stat.S_IMODE((info / "..data" / "name").stat().st_mode) == 0o600
    await vm.refresh(pod)  # the token is cached until 80 % of its lifetime
    assert len(requests) == 1
    pod["metadata"]["labels"]["new"] = "1"
    await vm.refresh(pod)
    assert (info / "labels").read_text() == 'app="w"\nnew="1"'
    await vm.teardown("uid-1")
    await vm.setup(pod)
    assert len(requests) == 2  # the token cache went with the pod


async def test_host_path_types(tmp_path: Path) -> None:
    d = tmp_path / "d"
    host_path_check(d / "new", "DirectoryOrCreate")
    assert (d / "new").is_dir()
    host_path_check(d / "f", "FileOrCreate")
    assert (d / "f").is_file()
    host_path_check(d / "f", "File")
    host_path_check(d / "new", "Directory")
    host_path_check(tmp_path / "whatever", "")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "s.sock"))
    try:
        host_path_check(tmp_path / "s.sock", "Socket")
    finally:
        sock.close()
    host_path_check(Path("/dev/null"), "CharDevice")
    bad = [
        (d / "f", "Directory", f"hostPath type check failed: {d / 'f'} is not a directory"),
        (d / "f", "DirectoryOrCreate", f"hostPath type check failed: {d / 'f'} is not a directory"),
        (d / "new", "File", f"hostPath type check failed: {d / 'new'} is not a file"),
        (
            d / "absent",
            "Directory",
            f"hostPath type check failed: {d / 'absent'} is not a directory",
        ),
        (d / "f", "Socket", f"hostPath type check failed: {d / 'f'} is not a socket file"),
        (d / "f", "CharDevice", f"hostPath type check failed: {d / 'f'} is not a character device"),
        (
            Path("/dev/null"),
            "BlockDevice",
            "hostPath type check failed: /dev/null is not a block device",
        ),
        (d / "f", "Weird", "Weird is an invalid volume type"),
    ]
    for path, kind, message in bad:
        with pytest.raises(VolumeError) as ei:
            host_path_check(path, kind)
        assert ei.value.message == message
    with pytest.raises(VolumeError):  # FileOrCreate does not create parent directories
        host_path_check(tmp_path / "no" / "such" / "file", "FileOrCreate")


async def test_persistent_volume_claims(vm: VolumeManager, env: Any, tmp_path: Path) -> None:
    c = env.client
    await c.create(PERSISTENTVOLUMES, {"metadata": {"name": "pv1"}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
        "hostPath": {"path": str(tmp_path / "pv1")}}})  # fmt: skip
    claim = {"metadata": {"name": "data", "namespace": "default"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}  # fmt: skip
    await c.create(PERSISTENTVOLUMECLAIMS, claim)
    pod = make_pod([{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}])
    with pytest.raises(VolumeError, match='persistentvolumeclaim "data" not bound'):
        await vm.setup(pod)
    with pytest.raises(VolumeError, match='persistentvolumeclaim "other" not found'):
        await vm.setup(make_pod([{"name": "d", "persistentVolumeClaim": {"claimName": "other"}}]))
    got = await c.get(PERSISTENTVOLUMECLAIMS, "data", namespace="default")
    got["spec"]["volumeName"] = "pv1"
    got = await c.update(PERSISTENTVOLUMECLAIMS, got)
    got["status"] = {"phase": "Bound"}
    await c.update_status(PERSISTENTVOLUMECLAIMS, got)
    paths = await vm.setup(pod)
    assert paths["d"] == tmp_path / "pv1" and paths["d"].is_dir()


async def test_mounts_etc_hosts_and_termination_log(vm: VolumeManager, env: Any) -> None:
    await env.client.create(
        CONFIGMAPS, {"metadata": {"name": "cfg", "namespace": "default"}, "data": {"a": "1"}}
    )
    pod = make_pod(
        [{"name": "cfg", "configMap": {"name": "cfg"}}, {"name": "scratch", "emptyDir": {}}],
        hostname="h", subdomain="sub", hostAliases=[{"ip": "1.2.3.4", "hostnames": ["a", "b"]}],
    )  # fmt: skip
    paths = await vm.setup(pod)
    pod["status"] = {"podIP": "10.42.0.7", "podIPs": [{"ip": "10.42.0.7"}]}
    hosts = vm.write_etc_hosts(pod)
    text = hosts.read_text()
    assert text.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert "10.42.0.7\th.sub.default.svc.cluster.local\th\n" in text
    assert text.endswith("\n# Entries added by HostAliases.\n1.2.3.4\ta\tb\n")
    term = vm.termination_log("uid-1", "c")
    container = {"name": "c", "terminationMessagePath": "/dev/termination-log", "volumeMounts": [
        {"name": "cfg", "mountPath": "/etc/cfg"},
        {"name": "scratch", "mountPath": "/data", "subPath": "sub/dir", "mountPropagation": "HostToContainer"},
        {"name": "scratch", "mountPath": "/ro", "readOnly": True, "subPathExpr": "$(POD)"},
    ]}  # fmt: skip
    ms = mounts(pod, container, paths, etc_hosts=hosts, termination_log=term, env={"POD": "web"})
    got = [(m.container_path, m.host_path, m.readonly, m.propagation) for m in ms]
    scratch = paths["scratch"]
    assert got == [
        ("/etc/cfg", str(paths["cfg"]), True, cri.PROPAGATION_PRIVATE),  # API volumes: read-only
        ("/data", str(scratch / "sub/dir"), False, cri.PROPAGATION_HOST_TO_CONTAINER),
        ("/ro", str(scratch / "web"), True, cri.PROPAGATION_PRIVATE),
        ("/etc/hosts", str(hosts), False, cri.PROPAGATION_PRIVATE),
        ("/dev/termination-log", str(term), False, cri.PROPAGATION_PRIVATE),
    ]
    assert (scratch / "sub/dir").is_dir() and term.exists()
    own = {
        "name": "c",
        "volumeMounts": [{"name": "scratch", "mountPath": "/etc/hosts", "subPath": "h"}],
    }
    assert [m.container_path for m in mounts(pod, own, paths, etc_hosts=hosts)] == ["/etc/hosts"]
    for bad in ("../escape", "/abs"):
        with pytest.raises(VolumeError):
            mounts(
                pod,
                {
                    "name": "c",
                    "volumeMounts": [{"name": "scratch", "mountPath": "/x", "subPath": bad}],
                },
                paths,
            )
    os.symlink("/etc", scratch / "link")
    with pytest.raises(VolumeError, match="outside the volume"):
        mounts(
            pod,
            {
                "name": "c",
                "volumeMounts": [{"name": "scratch", "mountPath": "/x", "subPath": "link"}],
            },
            paths,
        )
    with pytest.raises(VolumeError, match='cannot find volume "nope" to mount into container "c"'):
        mounts(pod, {"name": "c", "volumeMounts": [{"name": "nope", "mountPath": "/x"}]}, paths)


def test_etc_hosts_host_network(tmp_path: Path) -> None:
    host = tmp_path / "hosts"
    host.write_text("127.0.0.1 localhost\n10.0.0.1 myhost\n")
    pod = {"metadata": {"name": "p"}, "spec": {"hostNetwork": True}}
    text = etc_hosts_content(
        pod, pod_ips=["10.0.0.1"], cluster_domain="cluster.local", host_file=host
    )
    assert (
        text
        == "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n10.0.0.1 myhost\n"
    )
    plain = etc_hosts_content(
        {"metadata": {"name": "p"}, "spec": {}}, pod_ips=[], cluster_domain="x"
    )
    assert plain.endswith("fe00::2\tip6-allrouters\n")
