"""Container images without a registry: build, import, list.

* ``build_busybox_image`` writes an OCI image archive (OCI layout plus a Docker
  ``manifest.json``, so any importer takes it) holding the host's static busybox with
  applet links — the agent's built-in pause image and the test images are made this way
  from Debian's busybox-static, so a machine without network access runs pods.
* ``import_archives`` loads OCI/Docker archives into containerd's ``k8s.io`` namespace
  with ``ctr`` (the CRI has no import call; K3s imports the same way), unpacked for the
  snapshotter the CRI plugin uses.
* ``auto_import`` imports every archive in ``<data-dir>/agent/images`` at agent start,
  skipping files unchanged since the last import (size, mtime and sha256 remembered).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import logging
import os
import platform
import shutil
import tarfile
from pathlib import Path
from typing import Any

from k3py.agent.containerd import configured_snapshotter
from k3py.agent.cri.client import CRIClient

log = logging.getLogger("k3py.agent.images")

BUSYBOX = "/bin/busybox"
DEFAULT_APPLETS = [
    "sh",
    "ash",
    "httpd",
    "nc",
    "wget",
    "nslookup",
    "sleep",
    "cat",
    "echo",
    "ls",
    "ps",
    "kill",
    "env",
    "hostname",
    "mkdir",
    "rm",
    "cp",
    "mv",
    "tar",
    "true",
    "false",
    "id",
    "head",
    "tail",
    "grep",
    "sed",
    "date",
    "dd",
    "printf",
    "test",
    "[",
    "uname",
    "top",
    "df",
    "du",
    "ip",
    "ifconfig",
    "ping",
    "timeout",
    "yes",
    "seq",
    "wc",
    "sort",
    "touch",
    "chmod",
    "ln",
    "pwd",
    "find",
    "xargs",
    "vi",
    "awk",
    "tr",
    "cut",
    "which",
    "whoami",
    "basename",
    "dirname",
    "stat",
    "md5sum",
    "sha256sum",
    "base64",
    "netstat",
    "free",
    "uptime",
    "nproc",
    "mount",
    "sync",
    "readlink",
    "realpath",
    "tee",
    "usleep",
    "watch",
    "less",
    "more",
    "gzip",
    "gunzip",
    "zcat",
]
# PID 1 of the sandbox: sleeps until SIGTERM/SIGINT, reaping the children it starts.
PAUSE_ENTRYPOINT = [
    "/bin/sh",
    "-c",
    "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done",
]
PAUSE_APPLETS = ["sh", "sleep"]
MANAGED_LABEL = "io.cri-containerd.image=managed"


def _arch() -> str:
    m = platform.machine().lower()
    return {
        "x86_64": "amd64",
        "aarch64": "arm64",
        "armv7l": "arm",
        "ppc64le": "ppc64le",
        "s390x": "s390x",
    }.get(m, m)


def _tar_add(
    tar: tarfile.TarFile,
    name: str,
    *,
    data: bytes | None = None,
    mode: int = 0o644,
    kind: bytes = tarfile.REGTYPE,
    link: str = "",
) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode = mode
    info.type = kind
    if kind == tarfile.SYMTYPE:
        info.linkname = link
        tar.addfile(info)
    elif kind == tarfile.DIRTYPE:
        tar.addfile(info)
    else:
        payload = data or b""
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))


def _layer(applets: list[str], busybox: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in (
            "bin",
            "etc",
            "tmp",
            "root",
            "home",
            "var",
            "var/www",
            "proc",
            "sys",
            "dev",
            "usr",
            "usr/bin",
            "sbin",
        ):
            _tar_add(tar, d, kind=tarfile.DIRTYPE, mode=0o1777 if d == "tmp" else 0o755)
        _tar_add(tar, "bin/busybox", data=Path(busybox).read_bytes(), mode=0o755)
        for applet in sorted(set(applets)):
            if applet != "busybox":
                _tar_add(tar, f"bin/{applet}", kind=tarfile.SYMTYPE, link="busybox")
        _tar_add(
            tar,
            "etc/passwd",
            data=b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
        )
        _tar_add(tar, "etc/group", data=b"root:x:0:\nnobody:x:65534:\nnogroup:x:65534:\n")
        _tar_add(tar, "etc/hosts", data=b"127.0.0.1 localhost\n")
        _tar_add(tar, "var/www/index.html", data=b"hello from k3py busybox\n")
    return buf.getvalue()


def _blob(blobs: dict[str, bytes], data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return digest, len(data)


def build_busybox_image(
    *,
    path: Path,
    ref: str,
    entrypoint: list[str],
    applets: list[str] | None = None,
    cmd: list[str] | None = None,
    busybox: str = BUSYBOX,
) -> Path:
    """Write an OCI image archive of ``ref`` to ``path`` (deterministic for one busybox)."""
    layer = _layer(DEFAULT_APPLETS if applets is None else applets, busybox)
    layer_gz = gzip.compress(layer, mtime=0)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    blobs: dict[str, bytes] = {}
    layer_digest, layer_size = _blob(blobs, layer_gz)
    config: dict[str, Any] = {
        "architecture": _arch(),
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Entrypoint": entrypoint,
            "Cmd": cmd,
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "k3py build_busybox_image"}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_digest, config_size = _blob(blobs, config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": layer_digest,
                "size": layer_size,
            }
        ],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    manifest_digest, manifest_size = _blob(blobs, manifest_bytes)
    tag = ref.rsplit(":", 1)[1] if ":" in ref.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": {
                    "io.containerd.image.name": ref,
                    "org.opencontainers.image.ref.name": tag,
                },
                "platform": {"architecture": _arch(), "os": "linux"},
            }
        ],
    }
    docker_manifest = [
        {
            "Config": f"blobs/sha256/{config_digest[7:]}",
            "RepoTags": [ref],
            "Layers": [f"blobs/sha256/{layer_digest[7:]}"],
        }
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _tar_add(tar, "oci-layout", data=b'{"imageLayoutVersion":"1.0.0"}')
        _tar_add(tar, "index.json", data=json.dumps(index, sort_keys=True).encode())
        _tar_add(tar, "manifest.json", data=json.dumps(docker_manifest).encode())
        _tar_add(tar, "blobs", kind=tarfile.DIRTYPE, mode=0o755)
        _tar_add(tar, "blobs/sha256", kind=tarfile.DIRTYPE, mode=0o755)
        for digest, data in sorted(blobs.items()):
            _tar_add(tar, f"blobs/sha256/{digest[7:]}", data=data)
    os.replace(tmp, path)
    return path


def _ctr() -> str:
    ctr = shutil.which("ctr")
    if ctr is None:
        raise RuntimeError("ctr is not on PATH (it comes with Debian's containerd package)")
    return ctr


async def _ctr_run(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        _ctr(), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError((err or out).decode(errors="replace").strip())
    return out.decode(errors="replace")


async def import_archives(
    *, address: str, paths: list[Path], snapshotter: str | None = None
) -> list[str]:
    """Import archives into containerd's k8s.io namespace, unpacked for the snapshotter of
    the CRI plugin (read from k3py's config.toml when not given); returns the image names.

    Each image gets the ``io.cri-containerd.image=managed`` label as K3s sets it (the CRI
    plugin of containerd ≥ 1.7 lists only managed images; 1.6 ignores it)."""
    if snapshotter is None:
        snapshotter = configured_snapshotter(address)
    base = ["--address", address, "--namespace", "k8s.io"]
    names: list[str] = []
    for path in paths:
        args = [*base, "images", "import"]
        if snapshotter:
            args += ["--snapshotter", snapshotter]
        try:
            out = await _ctr_run(*args, str(path))
        except RuntimeError as e:
            raise RuntimeError(f"importing {path} failed: {e}") from None
        found = [
            # "unpacking k3py.local/x:1 (sha256:...)...done"
            line.split()[1]
            for line in out.splitlines()
            if line.startswith("unpacking ")
        ]
        for name in found:
            await _ctr_run(*base, "images", "label", name, MANAGED_LABEL)
        names += found
        log.info("imported %s: %s", path, ", ".join(found) or "(no names)")
    return names


def _fingerprint(path: Path) -> dict[str, Any]:
    st = path.stat()
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return {"size": st.st_size, "mtime": st.st_mtime_ns, "sha256": h.hexdigest()}


async def auto_import(
    *, address: str, images_dir: Path, state_file: Path, snapshotter: str | None = None
) -> list[str]:
    """Import new or changed archives from ``images_dir`` (``*.tar``, ``*.tar.gz``, ``*.tgz``)."""
    if not images_dir.is_dir():
        return []
    try:
        seen: dict[str, Any] = json.loads(state_file.read_text())
    except (OSError, ValueError):
        seen = {}
    names: list[str] = []
    for path in sorted(images_dir.iterdir()):
        if not path.is_file() or not path.name.endswith((".tar", ".tar.gz", ".tgz", ".oci")):
            continue
        prev = seen.get(path.name)
        st = path.stat()
        if prev and prev.get("size") == st.st_size and prev.get("mtime") == st.st_mtime_ns:
            continue
        fp = await asyncio.to_thread(_fingerprint, path)
        if prev and prev.get("sha256") == fp["sha256"]:
            seen[path.name] = fp
            continue
        names += await import_archives(address=address, paths=[path], snapshotter=snapshotter)
        seen[path.name] = fp
    state_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(seen, indent=1, sort_keys=True))
    os.replace(tmp, state_file)
    return names


async def ensure_pause_image(
    *, address: str, cri: CRIClient, ref: str, work_dir: Path, snapshotter: str | None = None
) -> None:
    """Make the sandbox image available: present already, or built from busybox when it is
    k3py's built-in one (``k3py.local/pause:*``), or pulled."""
    if await cri.image_status(ref) is not None:
        return
    if ref.startswith("k3py.local/pause"):
        if not Path(BUSYBOX).exists():
            raise RuntimeError(
                f"{BUSYBOX} is missing: install busybox-static to build the pause image {ref}"
            )
        path = await asyncio.to_thread(
            build_busybox_image,
            path=work_dir / "pause.tar",
            ref=ref,
            entrypoint=PAUSE_ENTRYPOINT,
            applets=PAUSE_APPLETS,
        )
        await import_archives(address=address, paths=[path], snapshotter=snapshotter)
        return
    await cri.pull_image(ref)


def human_size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{n}B"
        n = n / 1000  # type: ignore[assignment]
    return f"{n}"
