"""Pod volumes as real directories under ``<data-dir>/agent/pods/<uid>/volumes/<plugin>/<name>``.

* emptyDir: a 0777 directory; ``medium: Memory`` is a tmpfs sized by ``sizeLimit`` (else the
  pod's memory limit or the node's allocatable memory, as upstream), unmounted at teardown.
* configMap, secret, downwardAPI and projected (serviceAccountToken through TokenRequest,
  configMap, secret, downwardAPI — the admission-added ``kube-api-access-*`` volume is one)
  are written the way upstream's AtomicWriter does: a ``..<timestamp>.<random>`` directory,
  a ``..data`` symlink switched with rename, and one ``<key> -> ..data/<key>`` symlink per
  top-level path, so ``refresh`` updates contents in place and readers never see half a
  write.  Secret, downwardAPI and projected volumes live on a tmpfs (upstream wraps them in
  a memory-backed emptyDir) so secrets never touch the disk.
* hostPath honours ``type`` with upstream's checks and messages; persistentVolumeClaim mounts
  the bound PV's hostPath/local path.
* ``mounts`` turns ``volumeMounts`` into CRI mounts (subPath/subPathExpr kept inside the
  volume, readOnly — always for the API-data volumes —, mountPropagation) plus the pod's
  ``/etc/hosts`` and the container's ``/dev/termination-log`` files.

Errors are ``VolumeError(reason, message)`` with upstream's event text, e.g.
``MountVolume.SetUp failed for volume "cfg" : configmap "x" not found``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import datetime as dt
import errno
import logging
import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from k3py.agent.config import AgentConfig
from k3py.agent.cri import api_pb2 as cri
from k3py.agent.kubelet.env import (
    ClientGetter,
    EnvError,
    expand,
    field_value,
    find_container,
    object_data,
    resource_value,
)
from k3py.agent.kubelet.resources import to_bytes
from k3py.client import Client, NotFound
from k3py.client.interface import WriteOptions
from k3py.client.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, SERVICEACCOUNTS

log = logging.getLogger("k3py.agent.volumes")
Obj = dict[str, Any]
Files = dict[str, tuple[bytes, int]]

PLUGIN_DIRS = {
    "emptyDir": "kubernetes.io~empty-dir",
    "configMap": "kubernetes.io~configmap",
    "secret": "kubernetes.io~secret",
    "downwardAPI": "kubernetes.io~downward-api",
    "projected": "kubernetes.io~projected",
}
API_VOLUMES = ("configMap", "secret", "downwardAPI", "projected")
TMPFS_VOLUMES = ("secret", "downwardAPI", "projected")
DEFAULT_MODE = 0o644
DEFAULT_TOKEN_SECONDS = 3600
HOSTS_HEADER = "# Kubernetes-managed hosts file.\n"
HOSTS_HEADER_HOST_NETWORK = "# Kubernetes-managed hosts file (host network).\n"
MNT_DETACH = 2


class VolumeError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


# ---- mounts ---------------------------------------------------------------------------------

_libc: Any = None


def _c() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def is_mounted(path: Path) -> bool:
    try:
        text = Path("/proc/self/mounts").read_text()
    except OSError:
        return False
    want = str(path)
    return any(line.split()[1] == want for line in text.splitlines() if line.strip())


def mount_tmpfs(path: Path, size: int = 0) -> None:
    """A tmpfs at ``path`` (no-op when something is mounted there already)."""
    path.mkdir(parents=True, exist_ok=True)
    if is_mounted(path):
        return
    opts = "mode=0755" + (f",size={size}" if size else "")
    rc = _c().mount(b"tmpfs", str(path).encode(), b"tmpfs", 0, opts.encode())
    if rc == 0:
        return
    err = ctypes.get_errno()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True, text=True
    )
    if res.returncode != 0:
        raise VolumeError(
            "FailedMount",
            f"mounting tmpfs at {path}: {res.stderr.strip() or os.strerror(err)}",
        )


def unmount(path: Path) -> None:
    if _c().umount2(str(path).encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def mounts_under(root: Path) -> list[Path]:
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    prefix = str(root) + "/"
    found = [Path(ln.split()[1]) for ln in lines if ln.strip() and ln.split()[1].startswith(prefix)]
    return sorted(set(found), key=lambda p: len(str(p)), reverse=True)


# ---- the atomic writer ------------------------------------------------------------------------


def _same(old_dir: Path, files: Files) -> bool:
    old_files = {str(p.relative_to(old_dir)) for p in old_dir.rglob("*") if p.is_file()}
    if old_files != set(files):
        return False
    for rel, (data, mode) in files.items():
        p = old_dir / rel
        if p.read_bytes() != data or stat.S_IMODE(p.stat().st_mode) != mode:
            return False
    return True


def atomic_write(target: Path, files: Files) -> bool:
    """Upstream's AtomicWriter: write ``files`` (relative path -> (data, mode)) under
    ``target``; returns whether anything changed."""
    target.mkdir(parents=True, exist_ok=True)
    current = target / "..data"
    old = os.readlink(current) if current.is_symlink() else None
    if old is not None and (target / old).is_dir() and _same(target / old, files):
        return False
    stamp = ".." + dt.datetime.now(dt.UTC).strftime("%Y_%m_%d_%H_%M_%S") + "."
    new_dir = Path(tempfile.mkdtemp(prefix=stamp, dir=target))
    os.chmod(new_dir, 0o755)
    for rel, (data, mode) in files.items():
        p = new_dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.chmod(p, mode)
    tmp_link = target / "..data_tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp_link.unlink()
    os.symlink(new_dir.name, tmp_link)
    os.replace(tmp_link, current)
    tops = {rel.split("/", 1)[0] for rel in files}
    for top in sorted(tops):
        link = target / top
        if link.is_symlink():
            continue
        if link.is_dir():
            shutil.rmtree(link, ignore_errors=True)
        elif link.exists():
            link.unlink()
        os.symlink(f"..data/{top}", link)
    for entry in target.iterdir():
        if not entry.name.startswith("..") and entry.is_symlink() and entry.name not in tops:
            entry.unlink()
    if old:
        shutil.rmtree(target / old, ignore_errors=True)
    return True


# ---- helpers ----------------------------------------------------------------------------------


def _mode(value: Any, default: int) -> int:
    return int(value) if value is not None else default


def key_files(
    data: dict[str, bytes], items: list[Obj] | None, *, default_mode: int, optional: bool, kind: str
) -> Files:
    """The files of a ConfigMap/Secret source: every key, or the ``items`` chosen."""
    if not items:
        return {key: (value, default_mode) for key, value in data.items()}
    out: Files = {}
    for it in items:
        key = it.get("key", "")
        if key not in data:
            if optional:
                continue
            if kind == "ConfigMap":
                raise VolumeError(
                    "FailedMount", f"configmap references non-existent config key: {key}"
                )
            raise VolumeError("FailedMount", f"references non-existent secret key: {key}")
        out[it.get("path") or key] = (data[key], _mode(it.get("mode"), default_mode))
    return out


def host_path_check(path: Path, kind: str) -> None:
    """``checkTypeInternal`` of the hostPath plugin (creates for the *OrCreate types)."""
    if kind == "":
        return
    if kind == "DirectoryOrCreate" and not path.exists():
        path.mkdir(mode=0o755, parents=True)
        return
    if kind == "FileOrCreate" and not path.exists():
        try:
            fd = os.open(path, os.O_CREAT | os.O_RDONLY, 0o644)
        except OSError as e:
            raise VolumeError(
                "FailedMount", f"open {path}: {(e.strerror or str(e)).lower()}"
            ) from e
        os.close(fd)
        return
    checks = {
        "DirectoryOrCreate": (path.is_dir, "is not a directory"),
        "Directory": (path.is_dir, "is not a directory"),
        "FileOrCreate": (path.is_file, "is not a file"),
        "File": (path.is_file, "is not a file"),
        "Socket": (path.is_socket, "is not a socket file"),
        "CharDevice": (path.is_char_device, "is not a character device"),
        "BlockDevice": (path.is_block_device, "is not a block device"),
    }
    if kind not in checks:
        raise VolumeError("FailedMount", f"{kind} is an invalid volume type")
    ok, what = checks[kind]
    if not ok():
        raise VolumeError("FailedMount", f"hostPath type check failed: {path} {what}")


def etc_hosts_content(
    pod: Obj, *, pod_ips: list[str], cluster_domain: str, host_file: Path = Path("/etc/hosts")
) -> str:
    """upstream's ``managedHostsFileContent`` / host-network variant + HostAliases."""
    spec = pod.get("spec") or {}
    meta = pod.get("metadata") or {}
    if spec.get("hostNetwork"):
        try:
            base = host_file.read_text()
        except OSError:
            base = ""
        text = HOSTS_HEADER_HOST_NETWORK + base
    else:
        hostname = (spec.get("hostname") or meta.get("name", ""))[:63]
        domain = ""
        if spec.get("subdomain"):
            ns = meta.get("namespace", "default")
            domain = f"{spec['subdomain']}.{ns}.svc.{cluster_domain}"
        lines = [
            HOSTS_HEADER.rstrip("\n"),
            "127.0.0.1\tlocalhost",
            "::1\tlocalhost ip6-localhost ip6-loopback",
            "fe00::0\tip6-localnet",
            "fe00::0\tip6-mcastprefix",
            "fe00::1\tip6-allnodes",
            "fe00::2\tip6-allrouters",
        ]
        for ip in pod_ips:
            lines.append(
                f"{ip}\t{hostname}.{domain}\t{hostname}" if domain else f"{ip}\t{hostname}"
            )
        text = "\n".join(lines) + "\n"
    aliases = spec.get("hostAliases") or []
    if aliases:
        text += "\n# Entries added by HostAliases.\n"
        for a in aliases:
            text += f"{a.get('ip', '')}\t" + "\t".join(a.get("hostnames") or []) + "\n"
    return text


def _pod_memory_limit(pod: Obj) -> int:
    """Sum of the containers' memory limits, 0 when one is unlimited."""
    total = 0
    for c in (pod.get("spec") or {}).get("containers") or []:
        lim = ((c.get("resources") or {}).get("limits") or {}).get("memory")
        if not lim:
            return 0
        total += to_bytes(lim)
    return total


class VolumeManager:
    def __init__(
        self, cfg: AgentConfig, client: Client, *, allocatable: dict[str, str] | None = None
    ) -> None:
        self.cfg = cfg
        self.client = client
        self.cache = ClientGetter(client, ttl=1.0)
        self.allocatable = allocatable if allocatable is not None else {}
        self._tokens: dict[tuple[str, str, int], tuple[float, bytes]] = {}

    def pod_dir(self, uid: str) -> Path:
        return self.cfg.pods_dir / uid

    def volume_dir(self, uid: str, vol: Obj) -> Path:
        plugin = next((PLUGIN_DIRS[k] for k in PLUGIN_DIRS if k in vol), "unknown")
        return self.pod_dir(uid) / "volumes" / plugin / vol["name"]

    async def setup(self, pod: Obj) -> dict[str, Path]:
        """Every volume of the pod, ready to mount: volume name -> host path."""
        paths: dict[str, Path] = {}
        self.pod_dir(pod["metadata"]["uid"]).mkdir(parents=True, exist_ok=True)
        for vol in (pod.get("spec") or {}).get("volumes") or []:
            try:
                paths[vol["name"]] = await self._setup_one(pod, vol)
            except (VolumeError, EnvError) as e:
                raise VolumeError(
                    "FailedMount",
                    f'MountVolume.SetUp failed for volume "{vol["name"]}" : {e.message}',
                ) from e
        self.write_etc_hosts(pod)
        return paths

    async def refresh(self, pod: Obj) -> None:
        """Rewrite configMap/secret/downwardAPI/projected contents whose sources changed."""
        uid = pod["metadata"]["uid"]
        if not self.pod_dir(uid).is_dir():
            return
        for vol in (pod.get("spec") or {}).get("volumes") or []:
            if not any(k in vol for k in API_VOLUMES):
                continue
            try:
                await self._setup_one(pod, vol)
            except (VolumeError, EnvError) as e:
                log.debug("refresh of volume %s failed: %s", vol.get("name"), e.message)

    async def _setup_one(self, pod: Obj, vol: Obj) -> Path:
        uid = pod["metadata"]["uid"]
        path = self.volume_dir(uid, vol)
        if "emptyDir" in vol:
            self._empty_dir(pod, vol.get("emptyDir") or {}, path)
            return path
        if "hostPath" in vol:
            src = vol["hostPath"] or {}
            hp = Path(src.get("path", ""))
            host_path_check(hp, src.get("type") or "")
            return hp
        if "persistentVolumeClaim" in vol:
            ns = pod["metadata"].get("namespace", "default")
            return await self._pvc(ns, (vol["persistentVolumeClaim"] or {}).get("claimName", ""))
        kind = next((k for k in API_VOLUMES if k in vol), "")
        if not kind:
            raise VolumeError("FailedMount", "unsupported volume type (k3py)")
        if kind in TMPFS_VOLUMES:
            mount_tmpfs(path)  # also on refresh: a secret that appeared late stays off the disk
        src = vol[kind] or {}
        if kind in ("configMap", "secret"):
            files = await self._object_files(pod, src, kind=kind)
        elif kind == "downwardAPI":
            files = self._downward(
                pod, src.get("items") or [], _mode(src.get("defaultMode"), DEFAULT_MODE)
            )
        else:
            files = await self._projected(pod, src)
        if files is None:  # optional and absent: an empty volume
            files = {}
        atomic_write(path, files)
        return path

    def _empty_dir(self, pod: Obj, src: Obj, path: Path) -> None:
        if src.get("medium") == "Memory":
            size = to_bytes(src["sizeLimit"]) if src.get("sizeLimit") else 0
            limit = _pod_memory_limit(pod) or to_bytes(self.allocatable.get("memory") or "0")
            size = min(size, limit) if size and limit else (size or limit)
            mount_tmpfs(path, size)
            os.chmod(path, 0o777)
            return
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o777)

    async def _object_files(self, pod: Obj, src: Obj, *, kind: str) -> Files | None:
        ns = pod["metadata"].get("namespace", "default")
        secret = kind == "secret"
        name = src.get("secretName" if secret else "name", "")
        obj = await self.cache.get("Secret" if secret else "ConfigMap", ns, name)
        optional = bool(src.get("optional"))
        if obj is None:
            if optional:
                return None
            raise VolumeError(
                "FailedMount", f'{"secret" if secret else "configmap"} "{name}" not found'
            )
        return key_files(
            object_data(obj, secret=secret),
            src.get("items"),
            default_mode=_mode(src.get("defaultMode"), DEFAULT_MODE),
            optional=optional,
            kind="Secret" if secret else "ConfigMap",
        )

    def _downward(self, pod: Obj, items: list[Obj], mode: int) -> Files:
        files: Files = {}
        for it in items:
            if "fieldRef" in it:
                path = (it["fieldRef"] or {}).get("fieldPath", "")
                value = field_value(pod, path, node_ip=self.cfg.node_ip)
            elif "resourceFieldRef" in it:
                ref = it["resourceFieldRef"] or {}
                target = find_container(pod, ref.get("containerName", ""))
                value = resource_value(target, ref, allocatable=self.allocatable)
            else:
                continue
            files[it["path"]] = (value.encode(), _mode(it.get("mode"), mode))
        return files

    async def _token(self, pod: Obj, src: Obj) -> bytes:
        meta = pod["metadata"]
        sa = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        audience = src.get("audience") or ""
        expiration = int(src.get("expirationSeconds") or DEFAULT_TOKEN_SECONDS)
        key = (meta["uid"], audience, expiration)
        cached = self._tokens.get(key)
        if cached and time.time() < cached[0]:
            return cached[1]
        body: Obj = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [audience] if audience else [],
                "expirationSeconds": expiration,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            },
        }
        try:
            resp = await self.client.transport.create_subresource(
                SERVICEACCOUNTS,
                body,
                namespace=meta.get("namespace", "default"),
                name=sa,
                subresource="token",
                opts=WriteOptions(),
            )
        except NotFound as e:
            raise VolumeError("FailedMount", f'serviceaccounts "{sa}" not found') from e
        status = resp.get("status") or {}
        token = str(status.get("token", "")).encode()
        issued = time.time()
        lifetime = float(expiration)
        exp = status.get("expirationTimestamp")
        if isinstance(exp, str):
            with contextlib.suppress(ValueError):
                lifetime = (
                    dt.datetime.fromisoformat(exp.replace("Z", "+00:00")).timestamp() - issued
                )
        # Refresh at 80 % of the lifetime (or after 24 h), as upstream's token manager.
        self._tokens[key] = (issued + min(lifetime * 0.8, 86400.0), token)
        return token

    async def _projected(self, pod: Obj, src: Obj) -> Files:
        default_mode = _mode(src.get("defaultMode"), DEFAULT_MODE)
        files: Files = {}
        for source in src.get("sources") or []:
            if "serviceAccountToken" in source:
                s = source["serviceAccountToken"] or {}
                mode = default_mode
                files[s.get("path") or "token"] = (await self._token(pod, s), mode)
            elif "configMap" in source or "secret" in source:
                kind = "secret" if "secret" in source else "configMap"
                s = dict(source[kind] or {})
                s.setdefault("defaultMode", default_mode)
                if kind == "secret":
                    s["secretName"] = s.get("name", "")
                got = await self._object_files(pod, s, kind=kind)
                files.update(got or {})
            elif "downwardAPI" in source:
                items = (source["downwardAPI"] or {}).get("items") or []
                files.update(self._downward(pod, items, default_mode))
        return files

    async def _pvc(self, ns: str, claim: str) -> Path:
        try:
            pvc = await self.client.get(PERSISTENTVOLUMECLAIMS, claim, namespace=ns)
        except NotFound as e:
            raise VolumeError("FailedMount", f'persistentvolumeclaim "{claim}" not found') from e
        pv_name = (pvc.get("spec") or {}).get("volumeName")
        if not pv_name or (pvc.get("status") or {}).get("phase") != "Bound":
            raise VolumeError("FailedMount", f'persistentvolumeclaim "{claim}" not bound')
        try:
            pv = await self.client.get(PERSISTENTVOLUMES, pv_name)
        except NotFound as e:
            raise VolumeError("FailedMount", f'persistentvolume "{pv_name}" not found') from e
        spec = pv.get("spec") or {}
        if spec.get("hostPath"):
            path = Path(spec["hostPath"].get("path", ""))
            host_path_check(path, spec["hostPath"].get("type") or "DirectoryOrCreate")
            return path
        if spec.get("local"):
            path = Path(spec["local"].get("path", ""))
            if not path.exists():
                raise VolumeError("FailedMount", f"path {path} does not exist")
            return path
        raise VolumeError(
            "FailedMount", f'persistentvolume "{pv_name}" has no hostPath or local path (k3py)'
        )

    # ---- per-pod and per-container files --------------------------------------------------

    def etc_hosts_path(self, uid: str) -> Path:
        return self.pod_dir(uid) / "etc-hosts"

    def write_etc_hosts(self, pod: Obj) -> Path:
        """The pod's ``/etc/hosts`` (with its IPs once known; rewritten when they are)."""
        status = pod.get("status") or {}
        ips = [i.get("ip", "") for i in status.get("podIPs") or [] if i.get("ip")]
        if not ips and status.get("podIP"):
            ips = [status["podIP"]]
        path = self.etc_hosts_path(pod["metadata"]["uid"])
        path.parent.mkdir(parents=True, exist_ok=True)
        text = etc_hosts_content(pod, pod_ips=ips, cluster_domain=self.cfg.cluster_domain)
        tmp = path.with_name(".etc-hosts.tmp")
        tmp.write_text(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        return path

    def termination_log(self, uid: str, container: str) -> Path:
        p = self.pod_dir(uid) / "containers" / container / "termination-log"
        p.parent.mkdir(parents=True, exist_ok=True)
        if not p.exists():
            p.touch(mode=0o666)
        return p

    async def teardown(self, pod_uid: str) -> None:
        """Unmount the pod's tmpfs volumes and remove its directory."""
        for key in [k for k in self._tokens if k[0] == pod_uid]:
            del self._tokens[key]
        d = self.pod_dir(pod_uid)
        if not d.exists():
            return
        for target in mounts_under(d):
            unmount(target)
        await asyncio.to_thread(shutil.rmtree, d, True)


# ---- container mounts ---------------------------------------------------------------------------

PROPAGATION = {
    "": cri.PROPAGATION_PRIVATE,
    "None": cri.PROPAGATION_PRIVATE,
    "HostToContainer": cri.PROPAGATION_HOST_TO_CONTAINER,
    "Bidirectional": cri.PROPAGATION_BIDIRECTIONAL,
}


def _sub_path(host: Path, sub: str, *, container: str, api_volume: bool) -> Path:
    rel = Path(sub)
    if rel.is_absolute() or ".." in rel.parts:
        raise VolumeError(
            "CreateContainerConfigError",
            f"failed to prepare subPath for volumeMount of container {container}: "
            f"subPath {sub!r} must be a relative path without '..'",
        )
    path = host / rel
    if not path.exists() and not path.is_symlink():
        path.mkdir(mode=0o750, parents=True, exist_ok=True)
    root = host.resolve()
    real = path.resolve()
    # API-data volumes are symlink farms into their own ``..data``; others must not escape.
    if not api_volume and real != root and root not in real.parents:
        raise VolumeError(
            "CreateContainerConfigError",
            f"failed to prepare subPath for volumeMount of container {container}: "
            f"subPath {sub!r} resolves outside the volume",
        )
    return path


def mounts(
    pod: Obj,
    container: Obj,
    host_paths: dict[str, Path],
    *,
    etc_hosts: Path | None = None,
    termination_log: Path | None = None,
    env: dict[str, str] | None = None,
) -> list[cri.Mount]:
    """CRI mounts of a container: its ``volumeMounts``, then ``/etc/hosts`` (unless it mounts
    one itself or the file is missing) and the termination-message file.  ``env`` expands
    ``subPathExpr``."""
    vols = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
    cname = container.get("name", "")
    out: list[cri.Mount] = []
    targets: set[str] = set()
    for vm in container.get("volumeMounts") or []:
        name = vm.get("name", "")
        host = host_paths.get(name)
        if host is None:
            raise VolumeError(
                "CreateContainerConfigError",
                f'cannot find volume "{name}" to mount into container "{cname}"',
            )
        sub = vm.get("subPath") or ""
        if not sub and vm.get("subPathExpr"):
            sub = expand(vm["subPathExpr"], env or {})
        vol = vols.get(name) or {}
        api_volume = any(k in vol for k in API_VOLUMES)
        path = _sub_path(host, sub, container=cname, api_volume=api_volume) if sub else host
        readonly = bool(vm.get("readOnly")) or api_volume
        targets.add(vm.get("mountPath", ""))
        out.append(
            cri.Mount(
                container_path=vm.get("mountPath", ""),
                host_path=str(path),
                readonly=readonly,
                propagation=PROPAGATION.get(
                    vm.get("mountPropagation") or "", cri.PROPAGATION_PRIVATE
                ),
            )
        )
    if etc_hosts is not None and etc_hosts.exists() and "/etc/hosts" not in targets:
        out.append(cri.Mount(container_path="/etc/hosts", host_path=str(etc_hosts)))
    if termination_log is not None:
        tpath = container.get("terminationMessagePath") or "/dev/termination-log"
        if tpath not in targets:
            out.append(cri.Mount(container_path=tpath, host_path=str(termination_log)))
    return out
