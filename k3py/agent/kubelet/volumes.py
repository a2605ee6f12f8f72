"""Pod volumes as real directories under ``<data-dir>/agent/pods/<uid>/volumes``.

emptyDir (``medium: Memory`` is a tmpfs with the size limit), configMap, secret (on a
tmpfs), downwardAPI and projected (serviceAccountToken through TokenRequest, configMap,
secret, downwardAPI) are written the way upstream's atomic writer does: a timestamped
``..<time>`` directory, a ``..data`` symlink switched with rename, and one symlink per
key — so ``refresh`` updates contents in place and readers never see half a write.
hostPath honours its ``type`` checks; persistentVolumeClaim mounts the bound PV's
hostPath/local path.  Each container also gets ``/etc/hosts`` and
``/dev/termination-log`` files of its own, as upstream.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import logging
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

from k3py.agent.config import AgentConfig
from k3py.agent.cri import api_pb2 as cri
from k3py.agent.kubelet.env import ClientGetter, EnvError, field_value, resource_value
from k3py.client import Client, NotFound
from k3py.client.interface import WriteOptions
from k3py.client.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, SERVICEACCOUNTS

log = logging.getLogger("k3py.agent.volumes")
Obj = dict[str, Any]


class VolumeError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _mounted(path: Path) -> bool:
    try:
        text = Path("/proc/self/mounts").read_text()
    except OSError:
        return False
    return any(line.split()[1] == str(path) for line in text.splitlines())


def _mount_tmpfs(path: Path, size: str = "") -> None:
    path.mkdir(parents=True, exist_ok=True)
    if _mounted(path):
        return
    opts = "mode=0755" + (f",size={size}" if size else "")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True, text=True)
    if res.returncode != 0:
        raise VolumeError("FailedMount", f"mounting tmpfs at {path}: {res.stderr.strip()}")


def atomic_write(target: Path, files: dict[str, tuple[bytes, int]]) -> bool:
    """Upstream's AtomicWriter: returns whether anything changed."""
    target.mkdir(parents=True, exist_ok=True)
    current = target / "..data"
    if current.is_symlink():
        old_dir = target / os.readlink(current)
        same = True
        old_files = {str(p.relative_to(old_dir)) for p in old_dir.rglob("*") if p.is_file()}
        if old_files != set(files):
            same = False
        else:
            for rel, (data, mode) in files.items():
                p = old_dir / rel
                if p.read_bytes() != data or stat.S_IMODE(p.stat().st_mode) != mode:
                    same = False
                    break
        if same:
            return False
    stamp = ".." + dt.datetime.now(dt.UTC).strftime("%Y_%m_%d_%H_%M_%S.%f")
    new_dir = target / stamp
    new_dir.mkdir()
    for rel, (data, mode) in files.items():
        p = new_dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.chmod(p, mode)
    tmp_link = target / "..data_tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp_link.unlink()
    os.symlink(stamp, tmp_link)
    old = os.readlink(current) if current.is_symlink() else None
    os.replace(tmp_link, current)
    tops = {rel.split("/", 1)[0] for rel in files}
    for top in tops:
        link = target / top
        if not link.is_symlink():
            if link.exists():
                shutil.rmtree(link, ignore_errors=True)
            os.symlink(f"..data/{top}", link)
    for entry in target.iterdir():
        if entry.name.startswith(".."):
            continue
        if entry.is_symlink() and entry.name not in tops:
            entry.unlink()
    if old:
        shutil.rmtree(target / old, ignore_errors=True)
    return True


def _b(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode()


def _items(data: dict[str, bytes], items: list[Obj] | None, default_mode: int, *,
           optional: bool, kind: str, name: str) -> dict[str, tuple[bytes, int]]:
    out: dict[str, tuple[bytes, int]] = {}
    if items:
        for it in items:
            key = it.get("key", "")
            if key not in data:
                if optional:
                    continue
                raise VolumeError("FailedMount", f'configmap references non-existent config key: {key}'
                                  if kind == "ConfigMap" else f"references non-existent secret key: {key}")
            out[it.get("path") or key] = (data[key], int(it.get("mode") or default_mode))
    else:
        for key, value in data.items():
            out[key] = (value, default_mode)
    return out


def _obj_data(obj: Obj, *, secret: bool) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    if secret:
        for k, v in (obj.get("data") or {}).items():
            out[k] = base64.b64decode(v)
    else:
        out.update({k: _b(str(v)) for k, v in (obj.get("data") or {}).items()})
        for k, v in (obj.get("binaryData") or {}).items():
            out[k] = base64.b64decode(v)
    return out


class VolumeManager:
    def __init__(self, cfg: AgentConfig, client: Client, *, allocatable: dict[str, str] | None = None) -> None:
        self.cfg = cfg
        self.client = client
        self.cache = ClientGetter(client, ttl=1.0)
        self.allocatable = allocatable or {}
        self._tokens: dict[tuple[str, str], tuple[float, bytes]] = {}

    def pod_dir(self, uid: str) -> Path:
        return self.cfg.pods_dir / uid

    async def setup(self, pod: Obj) -> dict[str, Path]:
        uid = pod["metadata"]["uid"]
        paths: dict[str, Path] = {}
        for vol in (pod.get("spec") or {}).get("volumes") or []:
            paths[vol["name"]] = await self._setup_one(pod, vol, refresh=False)
        self._etc_hosts(pod)
        del uid
        return paths

    async def refresh(self, pod: Obj) -> None:
        for vol in (pod.get("spec") or {}).get("volumes") or []:
            if any(k in vol for k in ("configMap", "secret", "projected", "downwardAPI")):
                try:
                    await self._setup_one(pod, vol, refresh=True)
                except (VolumeError, EnvError) as e:
                    log.debug("refresh of volume %s failed: %s", vol.get("name"), e)

    async def _setup_one(self, pod: Obj, vol: Obj, *, refresh: bool) -> Path:
        uid = pod["metadata"]["uid"]
        ns = pod["metadata"].get("namespace", "default")
        name = vol["name"]
        base = self.pod_dir(uid) / "volumes"
        if "emptyDir" in vol:
            path = base / "kubernetes.io~empty-dir" / name
            ed = vol.get("emptyDir") or {}
            if ed.get("medium") == "Memory":
                from k3py.agent.kubelet.resources import to_bytes

                _mount_tmpfs(path, str(to_bytes(ed["sizeLimit"])) if ed.get("sizeLimit") else "")
            else:
                path.mkdir(parents=True, exist_ok=True)
                os.chmod(path, 0o777)
            return path
        if "hostPath" in vol:
            return self._host_path(vol["hostPath"])
        if "configMap" in vol or "secret" in vol:
            secret = "secret" in vol
            src = vol["secret" if secret else "configMap"] or {}
            ref = src.get("secretName" if secret else "name", "")
            kind = "Secret" if secret else "ConfigMap"
            path = base / ("kubernetes.io~secret" if secret else "kubernetes.io~configmap") / name
            if secret and not refresh:
                _mount_tmpfs(path)
            obj = await self.cache.get(kind, ns, ref)
            if obj is None and not src.get("optional"):
                raise VolumeError("FailedMount", f'{kind.lower()} "{ref}" not found')
            data = _obj_data(obj or {}, secret=secret)
            mode = int(src["defaultMode"]) if src.get("defaultMode") is not None else 0o644
            files = _items(data, src.get("items"), mode, optional=bool(src.get("optional")), kind=kind, name=ref)
            atomic_write(path, files)
            return path
        if "downwardAPI" in vol:
            src = vol["downwardAPI"] or {}
            path = base / "kubernetes.io~downward-api" / name
            atomic_write(path, self._downward(pod, src.get("items") or [], int(src.get("defaultMode") or 0o644)))
            return path
        if "projected" in vol:
            src = vol["projected"] or {}
            path = base / "kubernetes.io~projected" / name
            if not refresh:
                _mount_tmpfs(path)
            atomic_write(path, await self._projected(pod, src))
            return path
        if "persistentVolumeClaim" in vol:
            return await self._pvc(ns, (vol["persistentVolumeClaim"] or {}).get("claimName", ""))
        raise VolumeError("FailedMount", f"volume {name!r}: this volume type is not supported by k3py")

    def _host_path(self, src: Obj) -> Path:
        path = Path(src.get("path", ""))
        kind = src.get("type") or ""
        if kind == "DirectoryOrCreate":
            path.mkdir(parents=True, exist_ok=True)
        elif kind == "FileOrCreate":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(exist_ok=True)
        checks = {
            "Directory": (path.is_dir, "is not a directory"),
            "File": (path.is_file, "is not a file"),
            "Socket": (path.is_socket, "is not a socket file"),
            "CharDevice": (path.is_char_device, "is not a character device"),
            "BlockDevice": (path.is_block_device, "is not a block device"),
        }
        if kind in checks:
            ok, what = checks[kind]
            if not path.exists():
                raise VolumeError("FailedMount", f"hostPath type check failed: {path} does not exist")
            if not ok():
                raise VolumeError("FailedMount", f"hostPath type check failed: {path} {what}")
        return path

    def _downward(self, pod: Obj, items: list[Obj], mode: int) -> dict[str, tuple[bytes, int]]:
        files: dict[str, tuple[bytes, int]] = {}
        for it in items:
            if "fieldRef" in it:
                value = field_value(pod, it["fieldRef"].get("fieldPath", ""), node_ip=self.cfg.node_ip)
            elif "resourceFieldRef" in it:
                ref = it["resourceFieldRef"]
                target: Obj = {}
                for c in (pod.get("spec") or {}).get("containers") or []:
                    if c.get("name") == ref.get("containerName") or not target:
                        target = c
                value = resource_value(target, ref, allocatable=self.allocatable)
            else:
                continue
            files[it["path"]] = (value.encode(), int(it.get("mode") or mode))
        return files

    async def _token(self, pod: Obj, src: Obj) -> bytes:
        meta = pod["metadata"]
        sa = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        audience = src.get("audience") or ""
        expiration = int(src.get("expirationSeconds") or 3607)
        key = (meta["uid"], audience)
        cached = self._tokens.get(key)
        if cached and time.time() < cached[0]:
            return cached[1]
        body: Obj = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [audience] if audience else [],
                "expirationSeconds": expiration,
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]},
            },
        }
        try:
            resp = await self.client.transport.create_subresource(
                SERVICEACCOUNTS, body, namespace=meta.get("namespace", "default"), name=sa,
                subresource="token", opts=WriteOptions(),
            )
        except NotFound as e:
            raise VolumeError("FailedMount", f'serviceaccounts "{sa}" not found') from e
        token = str((resp.get("status") or {}).get("token", "")).encode()
        # Refresh at 80 % of the lifetime, as upstream's token manager.
        self._tokens[key] = (time.time() + expiration * 0.8, token)
        return token

    async def _projected(self, pod: Obj, src: Obj) -> dict[str, tuple[bytes, int]]:
        ns = pod["metadata"].get("namespace", "default")
        default_mode = int(src["defaultMode"]) if src.get("defaultMode") is not None else 0o644
        files: dict[str, tuple[bytes, int]] = {}
        for source in src.get("sources") or []:
            if "serviceAccountToken" in source:
                s = source["serviceAccountToken"] or {}
                files[s.get("path", "token")] = (await self._token(pod, s), default_mode)
            elif "configMap" in source or "secret" in source:
                secret = "secret" in source
                s = source["secret" if secret else "configMap"] or {}
                kind = "Secret" if secret else "ConfigMap"
                obj = await self.cache.get(kind, ns, s.get("name", ""))
                if obj is None:
                    if s.get("optional"):
                        continue
                    raise VolumeError("FailedMount", f'{kind.lower()} "{s.get("name", "")}" not found')
                files.update(_items(_obj_data(obj, secret=secret), s.get("items"), default_mode,
                                    optional=bool(s.get("optional")), kind=kind, name=s.get("name", "")))
            elif "downwardAPI" in source:
                files.update(self._downward(pod, (source["downwardAPI"] or {}).get("items") or [], default_mode))
        return files

    async def _pvc(self, ns: str, claim: str) -> Path:
        try:
            pvc = await self.client.get(PERSISTENTVOLUMECLAIMS, claim, namespace=ns)
        except NotFound as e:
            raise VolumeError("FailedMount", f'persistentvolumeclaim "{claim}" not found') from e
        pv_name = (pvc.get("spec") or {}).get("volumeName")
        if not pv_name or (pvc.get("status") or {}).get("phase") != "Bound":
            raise VolumeError("FailedMount", f'persistentvolumeclaim "{claim}" not bound')
        pv = await self.client.get(PERSISTENTVOLUMES, pv_name)
        spec = pv.get("spec") or {}
        path = (spec.get("hostPath") or {}).get("path") or (spec.get("local") or {}).get("path")
        if not path:
            raise VolumeError("FailedMount", f"persistentvolume {pv_name} has no hostPath or local path")
        Path(path).mkdir(parents=True, exist_ok=True)
        return Path(path)

    def _etc_hosts(self, pod: Obj) -> None:
        spec = pod.get("spec") or {}
        if spec.get("hostNetwork"):
            return
        d = self.pod_dir(pod["metadata"]["uid"])
        d.mkdir(parents=True, exist_ok=True)
        ip = (pod.get("status") or {}).get("podIP") or ""
        hostname = spec.get("hostname") or pod["metadata"]["name"]
        lines = ["# Kubernetes-managed hosts file.", "127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
                 "fe00::0\tip6-localnet", "fe00::0\tip6-mcastprefix", "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters"]
        if ip:
            fqdn = ""
            if spec.get("subdomain"):
                ns = pod["metadata"].get("namespace", "default")
                fqdn = f"{hostname}.{spec['subdomain']}.{ns}.svc.{self.cfg.cluster_domain}\t"
            lines.append(f"{ip}\t{fqdn}{hostname}")
        for alias in spec.get("hostAliases") or []:
            lines.append(f"\n# Entries added by HostAliases.\n{alias.get('ip')}\t" + "\t".join(alias.get("hostnames") or []))
        (d / "etc-hosts").write_text("\n".join(lines) + "\n")

    def write_etc_hosts(self, pod: Obj) -> None:
        self._etc_hosts(pod)

    def termination_log(self, uid: str, container: str) -> Path:
        p = self.pod_dir(uid) / "containers" / container / "termination-log"
        p.parent.mkdir(parents=True, exist_ok=True)
        if not p.exists():
            p.touch()
        return p

    async def teardown(self, pod_uid: str) -> None:
        d = self.pod_dir(pod_uid)
        if not d.exists():
            return
        try:
            mounts = Path("/proc/self/mounts").read_text().splitlines()
        except OSError:
            mounts = []
        targets = [m.split()[1] for m in mounts if m.split()[1].startswith(str(d) + "/")]
        for t in sorted(targets, key=len, reverse=True):
            proc = await asyncio.create_subprocess_exec("umount", "-l", t, stdout=asyncio.subprocess.DEVNULL,
                                                        stderr=asyncio.subprocess.DEVNULL)
            await proc.wait()
        await asyncio.to_thread(shutil.rmtree, d, True)


def mounts(pod: Obj, container: Obj, host_paths: dict[str, Path], *, etc_hosts: Path | None,
           termination_log: Path | None) -> list[cri.Mount]:
    out: list[cri.Mount] = []
    prop = {"HostToContainer": cri.PROPAGATION_HOST_TO_CONTAINER, "Bidirectional": cri.PROPAGATION_BIDIRECTIONAL}
    targets = set()
    for vm in container.get("volumeMounts") or []:
        host = host_paths.get(vm.get("name", ""))
        if host is None:
            raise VolumeError("CreateContainerConfigError", f"cannot find volume \"{vm.get('name')}\" to mount into container \"{container['name']}\"")
        sub = vm.get("subPath") or ""
        path = host
        if sub:
            path = host / sub
            if ".." in Path(sub).parts or Path(sub).is_absolute():
                raise VolumeError("CreateContainerConfigError", f"subPath {sub!r} must be a relative path without '..'")
            if not path.exists():
                path.mkdir(parents=True, exist_ok=True)
        targets.add(vm.get("mountPath"))
        out.append(cri.Mount(container_path=vm.get("mountPath", ""), host_path=str(path),
                             readonly=bool(vm.get("readOnly")),
                             propagation=prop.get(vm.get("mountPropagation") or "", cri.PROPAGATION_PRIVATE)))
    if etc_hosts is not None and etc_hosts.exists() and "/etc/hosts" not in targets:
        out.append(cri.Mount(container_path="/etc/hosts", host_path=str(etc_hosts)))
    if termination_log is not None:
        tpath = container.get("terminationMessagePath") or "/dev/termination-log"
        if tpath not in targets:
            out.append(cri.Mount(container_path=tpath, host_path=str(termination_log)))
    return out
