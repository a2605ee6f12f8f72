"""Reusable runtime helpers for e2e tests: test images built from Debian's busybox-static
(no registry, no network), a started containerd + CRI client, and the cleanup of what a
runtime leaves on the machine by design (shims, container processes, mounts)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from k3py.agent.config import AgentConfig
from k3py.agent.containerd import Containerd
from k3py.agent.cri.client import CRIClient
from k3py.agent.images import (
    PAUSE_APPLETS,
    PAUSE_ENTRYPOINT,
    build_busybox_image,
    ensure_pause_image,
    import_archives,
)

BUSYBOX_REF = "k3py.local/busybox:1"
PAUSE_REF = "k3py.local/pause:3.10"


def build_test_images(directory: Path) -> dict[str, Any]:
    """OCI archives of a pause image and a busybox image (sh, httpd, nc, wget, nslookup…):
    ``{"busybox": {"path", "ref"}, "pause": {"path", "ref"}}``."""
    busybox = build_busybox_image(
        path=directory / "busybox.tar", ref=BUSYBOX_REF, entrypoint=["/bin/sh"]
    )
    pause = build_busybox_image(
        path=directory / "pause.tar",
        ref=PAUSE_REF,
        entrypoint=PAUSE_ENTRYPOINT,
        applets=PAUSE_APPLETS,
    )
    return {
        "busybox": {"path": busybox, "ref": BUSYBOX_REF},
        "pause": {"path": pause, "ref": PAUSE_REF},
    }


async def start_runtime(
    cfg: AgentConfig, *, images: dict[str, Any] | None = None
) -> tuple[Containerd, CRIClient]:
    """Start containerd for ``cfg`` (data dir short: unix sockets take ≤ 108 bytes), connect
    a CRI client, make sure the pause image is there and import ``images`` (as returned by
    ``build_test_images``) when given."""
    cd = Containerd(cfg)
    await cd.start()
    try:
        client = await CRIClient.connect(cd.endpoint)
    except BaseException:
        await cd.stop()
        raise
    try:
        await ensure_pause_image(
            address=cd.address, cri=client, ref=cfg.pause_image, work_dir=cfg.agent_dir
        )
        if images:
            await import_archives(address=cd.address, paths=[i["path"] for i in images.values()])
    except BaseException:
        await client.close()
        await cd.stop()
        raise
    return cd, client


async def remove_all_pods(client: CRIClient) -> None:
    """Stop and remove every sandbox (with its containers) the runtime knows."""
    for sb in await client.list_pod_sandbox():
        with contextlib.suppress(Exception):
            await client.stop_pod_sandbox(sb.id)
        with contextlib.suppress(Exception):
            await client.remove_pod_sandbox(sb.id)


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _ppid(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def runtime_processes(containerd_dir: Path) -> list[int]:
    """containerd and the shims started for ``containerd_dir`` (by their command lines),
    with every descendant (the containers)."""
    roots = {p for p in _pids() if str(containerd_dir) in _cmdline(p) and p != os.getpid()}
    found = set(roots)
    children: dict[int, list[int]] = {}
    for p in _pids():
        children.setdefault(_ppid(p), []).append(p)
    todo = list(roots)
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in found:
                found.add(c)
                todo.append(c)
    return sorted(found)


def cleanup_runtime(containerd_dir: Path) -> None:
    """Kill what is left of a runtime under ``containerd_dir`` (by pid) and unmount its
    rootfs/shm mounts; call after ``Containerd.stop()`` (and ideally ``remove_all_pods``)."""
    for pid in runtime_processes(containerd_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while runtime_processes(containerd_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    mounts = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            target = line.split()[1]
            if target.startswith(str(containerd_dir)):
                mounts.append(target)
    for target in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], check=False, capture_output=True)
