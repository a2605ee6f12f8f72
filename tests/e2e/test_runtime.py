"""containerd + CRI end to end (as root, real containerd): the supervisor, images built
from busybox and imported with ctr, a host-network sandbox with a busybox container, its
CRI log, exec, stats, teardown, adoption across a containerd restart, and the images CLI.

One containerd serves the whole module (started once); the tests run in file order on one
event loop.  CNI is not needed: every sandbox uses the node's network namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import grpc
import pytest
import pytest_asyncio
from click.testing import CliRunner

from k3py.agent.config import AgentConfig
from k3py.agent.containerd import Containerd
from k3py.agent.cri import api_pb2 as cri
from k3py.agent.cri.client import CRIClient, CRIError, NotFound
from k3py.agent.images import (
    BUSYBOX,
    DEFAULT_APPLETS,
    auto_import,
    build_busybox_image,
    import_archives,
)
from k3py.agent.images_cli import images as images_cli
from tests.e2e.runtime_fixtures import (
    BUSYBOX_REF,
    PAUSE_REF,
    build_test_images,
    cleanup_runtime,
    remove_all_pods,
    runtime_processes,
    start_runtime,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
CGROUP_ROOT = f"k3py-rt-{os.getpid()}"
T = TypeVar("T")


@dataclass
class Runtime:
    cfg: AgentConfig
    cd: Containerd
    client: CRIClient
    images: dict[str, Any]
    tmp: Path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rt() -> AsyncIterator[Runtime]:
    if os.geteuid() != 0:
        raise RuntimeError("tests/e2e run as root (containerd)")
    tmp = Path(tempfile.mkdtemp(prefix="k3rt-", dir="/tmp"))
    cfg = AgentConfig(data_dir=tmp / "d")
    imgs = await asyncio.to_thread(build_test_images, tmp / "img")
    cd, client = await start_runtime(cfg, images={"busybox": imgs["busybox"]})
    r = Runtime(cfg=cfg, cd=cd, client=client, images=imgs, tmp=tmp)
    try:
        yield r
    finally:
        try:
            if r.cd.pid is not None:
                client = await CRIClient.connect(r.cd.endpoint, timeout=10)
                await remove_all_pods(client)
                await client.close()
            await r.client.close()
        finally:
            await r.cd.stop()
            cleanup_runtime(cfg.containerd_dir)
            remove_cgroups(CGROUP_ROOT)
            shutil.rmtree(tmp, ignore_errors=True)


def remove_cgroups(name: str) -> None:
    """rmdir the test's (empty, all processes gone) cgroup trees in every hierarchy."""
    for top in [*Path("/sys/fs/cgroup").glob(name), *Path("/sys/fs/cgroup").glob(f"*/{name}")]:
        for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):
                d.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()


async def eventually(what: str, fn: Callable[[], Awaitable[T | None]], timeout: float = 30) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            got = await fn()
            if got:
                return got
            last = got
        except CRIError as e:
            last = e
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


def sandbox_config(r: Runtime, name: str) -> cri.PodSandboxConfig:
    logs = r.cfg.pod_logs_dir / f"default_{name}_uid-{name}"
    logs.mkdir(parents=True, exist_ok=True)
    return cri.PodSandboxConfig(
        metadata=cri.PodSandboxMetadata(name=name, namespace="default", uid=f"uid-{name}"),
        # no hostname: a host-network sandbox shares the node's UTS namespace (runc refuses)
        log_directory=str(logs),
        labels={"io.kubernetes.pod.name": name, "test": "runtime"},
        linux=cri.LinuxPodSandboxConfig(
            cgroup_parent=f"/{CGROUP_ROOT}/pod-{name}",  # pod stats need a pod cgroup
            security_context=cri.LinuxSandboxSecurityContext(
                namespace_options=cri.NamespaceOption(network=cri.NODE)
            ),
        ),
    )


def container_config(name: str, script: str) -> cri.ContainerConfig:
    return cri.ContainerConfig(
        metadata=cri.ContainerMetadata(name=name),
        image=cri.ImageSpec(image=BUSYBOX_REF),
        command=["/bin/sh", "-c", script],
        log_path=f"{name}/0.log",
        labels={"io.kubernetes.container.name": name},
    )


async def run_pod(r: Runtime, name: str, script: str) -> tuple[str, str, cri.PodSandboxConfig]:
    sb_cfg = sandbox_config(r, name)
    sb = await r.client.run_pod_sandbox(sb_cfg)
    cid = await r.client.create_container(sb, container_config("main", script), sb_cfg)
    await r.client.start_container(cid)
    return sb, cid, sb_cfg


async def test_containerd_ready_and_configured(rt: Runtime) -> None:
    v = await rt.client.version()
    assert v.runtime_name == "containerd" and v.runtime_api_version == "v1"
    st = await rt.client.status()
    assert any(c.type == "RuntimeReady" and c.status for c in st.status.conditions)
    text = rt.cd.config_path.read_text()
    for needle in (
        "restrict_oom_score_adj = true",
        f'sandbox_image = "{PAUSE_REF}"',
        f'bin_dir = "{rt.cfg.cni_bin_dir}"',
        f'conf_dir = "{rt.cfg.cni_conf_dir}"',
        f'config_path = "{rt.cd.certs_dir}"',
        f'snapshotter = "{rt.cd.snapshotter}"',
    ):
        assert needle in text
    assert rt.cd.snapshotter in ("overlayfs", "native")
    assert rt.cd.endpoint == f"unix://{rt.cfg.containerd_dir}/containerd.sock"
    fs = await rt.client.image_fs_info()
    # containerd measures usage in the background: only the filesystem is known at once
    mountpoint = fs.image_filesystems[0].fs_id.mountpoint
    assert mountpoint.startswith(str(rt.cfg.containerd_dir / "root"))
    assert mountpoint.endswith(rt.cd.snapshotter)


async def test_images_imported_and_labelled(rt: Runtime) -> None:
    tags = {t for img in await rt.client.list_images() for t in img.repo_tags}
    assert {PAUSE_REF, BUSYBOX_REF} <= tags
    img = await rt.client.image_status(BUSYBOX_REF)
    assert img is not None and img.size > 0 and img.id.startswith("sha256:")
    assert await rt.client.image_status("k3py.local/absent:1") is None
    proc = await asyncio.create_subprocess_exec(
        *["ctr", "--address", rt.cd.address, "-n", "k8s.io", "images", "ls"],
        stdout=asyncio.subprocess.PIPE,
    )
    out = (await proc.communicate())[0].decode()
    assert proc.returncode == 0
    line = next(ln for ln in out.splitlines() if ln.startswith(BUSYBOX_REF + " "))
    assert "io.cri-containerd.image=managed" in line


async def test_auto_import_skips_unchanged(rt: Runtime) -> None:
    images_dir = rt.tmp / "auto"
    images_dir.mkdir()
    state = rt.tmp / "auto-state.json"
    archive = images_dir / "extra.tar"
    await asyncio.to_thread(
        build_busybox_image,
        path=archive,
        ref="k3py.local/auto:1",
        entrypoint=["/bin/sh"],
        applets=["sh"],
    )
    (images_dir / "notes.txt").write_text("not an image")
    assert await auto_import(address=rt.cd.address, images_dir=images_dir, state_file=state) == [
        "k3py.local/auto:1"
    ]
    assert await rt.client.image_status("k3py.local/auto:1") is not None
    assert await auto_import(address=rt.cd.address, images_dir=images_dir, state_file=state) == []
    os.utime(archive, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched, same bytes
    assert await auto_import(address=rt.cd.address, images_dir=images_dir, state_file=state) == []
    await asyncio.to_thread(
        build_busybox_image,
        path=archive,
        ref="k3py.local/auto:2",
        entrypoint=["/bin/sh"],
        applets=["sh"],
    )
    assert await auto_import(address=rt.cd.address, images_dir=images_dir, state_file=state) == [
        "k3py.local/auto:2"
    ]
    with pytest.raises(RuntimeError, match="importing"):
        bad = rt.tmp / "bad.tar"
        bad.write_bytes(b"not a tar archive")
        await import_archives(address=rt.cd.address, paths=[bad])


async def test_container_logs_exec_stats_and_teardown(rt: Runtime) -> None:
    c = rt.client
    sb, cid, sb_cfg = await run_pod(
        rt, "life", "trap '' TERM; echo hi; echo oops >&2; exec sleep 3600"
    )
    status = await c.pod_sandbox_status(sb)
    assert status.status.state == cri.SANDBOX_READY
    assert status.status.linux.namespaces.options.network == cri.NODE

    log_file = Path(sb_cfg.log_directory) / "main" / "0.log"

    async def logged() -> list[str] | None:
        lines = log_file.read_text().splitlines() if log_file.exists() else []
        return lines if len(lines) >= 2 else None

    lines = await eventually("the container's CRI log", logged)
    # CRI log format: <RFC3339Nano> <stream> <P|F> <content> (streams in either order)
    assert sorted(ln.split(" ", 3)[1:] for ln in lines[:2]) == [
        ["stderr", "F", "oops"],
        ["stdout", "F", "hi"],
    ]

    st = (await c.container_status(cid)).status
    assert st.state == cri.CONTAINER_RUNNING and st.image.image == BUSYBOX_REF
    assert await c.exec_sync(cid, ["echo", "from-exec"], timeout=10) == (b"from-exec\n", b"", 0)
    out, err, code = await c.exec_sync(cid, ["sh", "-c", "echo e >&2; exit 3"], timeout=10)
    assert (out, err, code) == (b"", b"e\n", 3)
    # a command that cannot start is an RPC error, not an exit code (exec probes: failure)
    with pytest.raises(CRIError, match="no-such-command"):
        await c.exec_sync(cid, ["/bin/no-such-command"], timeout=10)

    url = urlparse(await c.exec(cri.ExecRequest(container_id=cid, cmd=["sh"], stdout=True)))
    assert url.hostname == "127.0.0.1" and url.port and url.port > 0
    pf = urlparse(await c.port_forward(sb, [80]))
    assert pf.hostname == "127.0.0.1" and pf.port == url.port

    stats = await c.container_stats(cid)
    assert stats.attributes.id == cid
    assert stats.memory.working_set_bytes.value > 0
    listed = await c.list_container_stats(cri.ContainerStatsFilter(pod_sandbox_id=sb))
    assert [s.attributes.id for s in listed] == [cid]
    pod_stats = await c.list_pod_sandbox_stats(cri.PodSandboxStatsFilter(id=sb))
    assert [s.attributes.id for s in pod_stats] == [sb]

    mine = cri.ContainerFilter(pod_sandbox_id=sb)
    assert [x.id for x in await c.list_containers(mine)] == [cid]
    await c.stop_container(cid, 1)  # TERM is ignored: SIGKILL after 1 s
    st = (await c.container_status(cid)).status
    assert st.state == cri.CONTAINER_EXITED and st.exit_code == 137
    await c.stop_pod_sandbox(sb)
    await c.remove_pod_sandbox(sb)
    assert await c.list_pod_sandbox(cri.PodSandboxFilter(id=sb)) == []
    assert await c.list_containers(mine) == []
    with pytest.raises(NotFound) as e:
        await c.container_status(cid)
    assert e.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(NotFound):
        await c.pod_sandbox_status(sb)


async def test_create_with_missing_image_fails(rt: Runtime) -> None:
    sb_cfg = sandbox_config(rt, "noimg")
    sb = await rt.client.run_pod_sandbox(sb_cfg)
    cfg = container_config("main", "true")
    cfg.image.image = "k3py.local/absent:1"
    with pytest.raises(CRIError) as e:
        await rt.client.create_container(sb, cfg, sb_cfg)
    assert "absent" in str(e.value)
    await rt.client.stop_pod_sandbox(sb)
    await rt.client.remove_pod_sandbox(sb)


async def test_images_cli(rt: Runtime) -> None:
    archive = rt.tmp / "cli.tar"
    await asyncio.to_thread(
        build_busybox_image, path=archive, ref="k3py.local/cli:3", entrypoint=["/bin/sh"]
    )
    runner = CliRunner()
    data_dir = str(rt.cfg.data_dir)
    res = await asyncio.to_thread(
        runner.invoke, images_cli, ["import", str(archive), "--data-dir", data_dir]
    )
    assert res.exit_code == 0, res.output
    assert "imported k3py.local/cli:3" in res.output
    res = await asyncio.to_thread(
        runner.invoke,
        images_cli,
        ["list", "--container-runtime-endpoint", rt.cd.endpoint],
    )
    assert res.exit_code == 0, res.output
    rows = [ln.split() for ln in res.output.splitlines()]
    assert rows[0] == ["IMAGE", "TAG", "IMAGE", "ID", "SIZE"]
    assert ["k3py.local/cli", "3"] in [row[:2] for row in rows]
    assert ["k3py.local/pause", "3.10"] in [row[:2] for row in rows]
    res = await asyncio.to_thread(
        runner.invoke, images_cli, ["list", "--data-dir", str(rt.tmp / "nowhere")]
    )
    assert res.exit_code != 0 and "no containerd socket" in res.output


async def test_restart_keeps_running_containers(rt: Runtime) -> None:
    sb, cid, _ = await run_pod(rt, "keep", "exec sleep 3600")
    shims_before = [p for p in runtime_processes(rt.cfg.containerd_dir) if p != rt.cd.pid]
    assert shims_before

    # A clean stop (the agent going away) leaves shims and containers running...
    await rt.cd.stop()
    await rt.client.close()
    alive = runtime_processes(rt.cfg.containerd_dir)
    assert set(shims_before) <= set(alive)
    # A containerd left behind by a killed agent is stopped first (it holds the metadata
    # lock); then a new containerd adopts the containers.
    stale = await asyncio.create_subprocess_exec(
        "containerd",
        "--config",
        str(rt.cd.config_path),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    rt.cd.pid_file.write_text(f"{stale.pid}\n")

    async def stale_serving() -> bool:
        return Path(rt.cd.address).exists()

    await eventually("the stale containerd's socket", stale_serving)
    await rt.cd.start()
    assert await asyncio.wait_for(stale.wait(), 10) is not None
    assert rt.cd.pid not in (None, stale.pid)
    rt.client = await CRIClient.connect(rt.cd.endpoint)
    st = (await rt.client.container_status(cid)).status
    assert st.state == cri.CONTAINER_RUNNING
    assert (await rt.client.exec_sync(cid, ["echo", "still"], timeout=10))[0] == b"still\n"

    # containerd dying under the agent is restarted by the supervisor.
    old_pid = rt.cd.pid
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)

    async def restarted() -> bool:
        if rt.cd.restarts < 1 or rt.cd.pid == old_pid:
            return False
        fresh = await CRIClient.connect(rt.cd.endpoint, timeout=5)
        try:
            return (await fresh.container_status(cid)).status.state == cri.CONTAINER_RUNNING
        finally:
            await fresh.close()

    await eventually("containerd restarted by its supervisor", restarted, timeout=60)

    # The long-lived client (the kubelet's) reconnects by itself.
    async def reconnected() -> bool:
        st = (await rt.client.container_status(cid)).status
        return st.state == cri.CONTAINER_RUNNING

    await eventually("the old CRI channel to reconnect", reconnected, timeout=20)
    await rt.client.stop_pod_sandbox(sb)
    await rt.client.remove_pod_sandbox(sb)
    assert await rt.client.list_pod_sandbox(cri.PodSandboxFilter(id=sb)) == []


async def test_host_busybox_has_every_default_applet() -> None:
    proc = await asyncio.create_subprocess_exec(BUSYBOX, "--list", stdout=asyncio.subprocess.PIPE)
    listed = set((await proc.communicate())[0].decode().split())
    assert set(DEFAULT_APPLETS) - listed == set()
