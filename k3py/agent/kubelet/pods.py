"""The kubelet: one worker per pod bound to this node, driving containerd through CRI.

Design
  * A Pod informer (field selector ``spec.nodeName=<node>``) feeds ``PodWorker``s, one
    asyncio task per pod UID.  A worker owns everything of its pod: sandbox, containers,
    probes, volumes and the status it reports; it sleeps until the pod changes, a probe
    reports, a back-off expires or its periodic resync (a few seconds) comes round.
  * ``sync`` is level-triggered: it looks at what CRI reports for the pod's sandbox and
    containers (found by labels, so a restarted agent picks up where it was) and does the
    next step — make the sandbox, run init containers one by one, start or restart
    containers under the restart policy with upstream's back-off (immediately, then 10 s
    doubling to 5 min; reset after 10 min of running), then report status.  The status
    is computed from scratch and patched only when it differs from the last one written.
  * Deletion (deletionTimestamp): preStop hooks, StopContainer with the remaining grace
    period, sandbox stopped and removed (CNI DEL frees the IP), volumes torn down, then
    the kubelet deletes the pod object with grace period 0, as upstream.
  * Adoption: at start, sandboxes whose pods are still bound here are kept with their
    running containers (restart counts come from the CRI attempt numbers); sandboxes of
    pods that are gone are stopped and removed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from k3py.agent.config import AgentConfig
from k3py.agent.cri import api_pb2 as cri
from k3py.agent.cri.client import CRIClient, CRIError, NotFound
from k3py.agent.kubelet import resources
from k3py.agent.kubelet.env import ClientGetter, EnvError, build_env, expand
from k3py.agent.kubelet.events import KubeletEvents
from k3py.agent.kubelet.logs import pod_log_dir
from k3py.agent.kubelet.node import NodeAgent
from k3py.agent.kubelet.probes import ProbeRunner, resolve_port
from k3py.agent.kubelet.volumes import VolumeError, VolumeManager, mounts
from k3py.client import Client, Conflict, Informer
from k3py.client import NotFound as APINotFound
from k3py.client.interface import DeleteOptions
from k3py.client.resources import PODS, SECRETS, SERVICES
from k3py.server.controllers.base import get_condition, rfc3339

log = logging.getLogger("k3py.agent.kubelet")
Obj = dict[str, Any]

L_POD_NAME = "io.kubernetes.pod.name"
L_POD_NS = "io.kubernetes.pod.namespace"
L_POD_UID = "io.kubernetes.pod.uid"
L_CONTAINER = "io.kubernetes.container.name"
A_RESTARTS = "io.kubernetes.container.restartCount"
A_TERM_PATH = "io.kubernetes.container.terminationMessagePath"
A_GRACE = "io.kubernetes.pod.terminationGracePeriod"
A_INIT = "k3py.io/init-container"

BACKOFF_START = 10.0
BACKOFF_MAX = 300.0
BACKOFF_RESET = 600.0
RESYNC = 10.0


def _now() -> str:
    return rfc3339(time.time())


def _ts(ns: int) -> str | None:
    return rfc3339(ns / 1e9) if ns else None


@dataclass
class Backoff:
    delay: float = 0.0
    until: float = 0.0

    def next(self, ran_for: float) -> float:
        if ran_for >= BACKOFF_RESET:
            self.delay = 0.0
        self.delay = BACKOFF_START if self.delay == 0.0 else min(BACKOFF_MAX, self.delay * 2)
        self.until = time.monotonic() + self.delay
        return self.delay


@dataclass
class Instance:
    """One CRI container of the pod (the latest or an earlier attempt)."""

    id: str
    name: str
    attempt: int
    state: int
    status: cri.ContainerStatus | None = None


@dataclass
class ContainerRuntimeState:
    waiting_reason: str = ""
    waiting_message: str = ""
    backoff: Backoff = field(default_factory=Backoff)
    restart_pending: bool = False  # a liveness failure asked for a restart
    first_start_done: bool = False


class PodWorker:
    def __init__(self, kubelet: Kubelet, pod: Obj) -> None:
        self.k = kubelet
        self.pod = pod
        self.uid: str = pod["metadata"]["uid"]
        self.key = f"{pod['metadata'].get('namespace', 'default')}/{pod['metadata']['name']}"
        self.gone = False
        self.sandbox_id = ""
        self.sandbox_config: cri.PodSandboxConfig | None = None
        self.pod_ip = ""
        self.attempt = 0
        self.host_paths: dict[str, Any] = {}
        self.containers: dict[str, ContainerRuntimeState] = {}
        self.probes: dict[str, ProbeRunner] = {}  # container name -> runner for current instance id
        self.probe_ids: dict[str, str] = {}
        self.last_status: Obj | None = None
        self.start_time = ""
        self.terminal = False
        self.rejected: tuple[str, str] | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_refresh = 0.0

    # ---- life -------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"pod-{self.key}")

    def update(self, pod: Obj | None) -> None:
        if pod is None:
            self.gone = True
        else:
            self.pod = pod
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Agent shutdown: stop supervising, leave containers running."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for r in list(self.probes.values()):
            await r.stop()

    async def _run(self) -> None:
        delay: float | None = 0.0
        while True:
            if delay is None:
                delay = RESYNC
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()
            try:
                if self.gone or self.pod["metadata"].get("deletionTimestamp"):
                    await self.terminate()
                    return
                delay = await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a worker never dies of one bad sync
                log.exception("sync of pod %s failed", self.key)
                delay = 2.0

    # ---- sync -------------------------------------------------------------------------

    async def sync(self) -> float | None:
        pod = self.pod
        spec = pod.get("spec") or {}
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed") and not self.sandbox_id:
            self.terminal = True
            return None
        if not self.start_time:
            self.start_time = (pod.get("status") or {}).get("startTime") or _now()
        if self.rejected is None and not self.k.admitted(self):
            return None
        if self.rejected is not None:
            await self._write_status(self._rejected_status())
            return None
        if self.terminal:
            await self._write_status(await self._status())
            return None
        if time.monotonic() - self._last_refresh > RESYNC and self.host_paths:
            self._last_refresh = time.monotonic()
            await self.k.volumes.refresh(pod)
        ok = await self._ensure_sandbox()
        if not ok:
            await self._write_status(await self._status())
            return 5.0
        instances = await self._instances()
        next_wake: float | None = None
        init_done = True
        for c in spec.get("initContainers") or []:
            if c.get("restartPolicy") == "Always":  # sidecar: start and keep running
                w = await self._run_container(c, instances, restart_policy="Always", init=True)
                next_wake = _min(next_wake, w)
                continue
            inst = instances.get(c["name"])
            if inst is not None and inst.state == cri.CONTAINER_EXITED and inst.status is not None \
                    and inst.status.exit_code == 0:
                continue
            init_done = False
            w = await self._run_container(c, instances, restart_policy=spec.get("restartPolicy") or "Always",
                                          init=True)
            next_wake = _min(next_wake, w)
            break
        if init_done:
            for c in spec.get("containers") or []:
                w = await self._run_container(c, instances, restart_policy=spec.get("restartPolicy") or "Always")
                next_wake = _min(next_wake, w)
        instances = await self._instances()
        status = await self._status(instances)
        await self._write_status(status)
        if status.get("phase") in ("Succeeded", "Failed"):
            self.terminal = True
            await self._stop_probes()
            with contextlib.suppress(CRIError):
                await self.k.cri.stop_pod_sandbox(self.sandbox_id)
            return None
        return next_wake

    async def _ensure_sandbox(self) -> bool:
        if self.sandbox_id:
            try:
                st = await self.k.cri.pod_sandbox_status(self.sandbox_id)
                if st.status.state == cri.SANDBOX_READY:
                    return True
            except NotFound:
                pass
            # The sandbox died (node reboot, killed): start over with a new attempt.
            self.k.events.warning(self.pod, "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
            with contextlib.suppress(CRIError):
                await self.k.cri.stop_pod_sandbox(self.sandbox_id)
            with contextlib.suppress(CRIError):
                await self.k.cri.remove_pod_sandbox(self.sandbox_id)
            self.sandbox_id = ""
            self.attempt += 1
        try:
            self.host_paths = await self.k.volumes.setup(self.pod)
        except (VolumeError, EnvError) as e:
            self.k.events.warning(self.pod, "FailedMount", e.message)
            self.containers.setdefault("", ContainerRuntimeState()).waiting_message = e.message
            return False
        config = self.sandbox_config_for()
        pod_log_dir(self.k.cfg, self.pod).mkdir(parents=True, exist_ok=True)
        try:
            self.sandbox_id = await self.k.cri.run_pod_sandbox(config)
        except CRIError as e:
            self.k.events.warning(self.pod, "FailedCreatePodSandBox", f"Failed to create pod sandbox: {e}")
            # containerd keeps the failed sandbox (and its name) around: clear it, next attempt.
            await self.k.remove_pod_sandboxes(self.uid)
            self.attempt += 1
            return False
        self.sandbox_config = config
        st = await self.k.cri.pod_sandbox_status(self.sandbox_id)
        self.pod_ip = st.status.network.ip if st.status.network else ""
        if (self.pod.get("spec") or {}).get("hostNetwork"):
            self.pod_ip = self.k.cfg.node_ip
        self.k.volumes.write_etc_hosts({**self.pod, "status": {**(self.pod.get("status") or {}), "podIP": self.pod_ip}})
        return True

    def sandbox_config_for(self) -> cri.PodSandboxConfig:
        pod = self.pod
        meta = pod["metadata"]
        spec = pod.get("spec") or {}
        ns = meta.get("namespace", "default")
        host_net = bool(spec.get("hostNetwork"))
        labels = {k: v for k, v in (meta.get("labels") or {}).items()}
        labels.update({L_POD_NAME: meta["name"], L_POD_NS: ns, L_POD_UID: meta["uid"]})
        annotations = dict(meta.get("annotations") or {})
        dns = self._dns_config(spec, ns)
        ports = []
        for c in spec.get("containers") or []:
            for p in c.get("ports") or []:
                if p.get("hostPort"):
                    proto = {"UDP": cri.UDP, "SCTP": cri.SCTP}.get(p.get("protocol") or "TCP", cri.TCP)
                    ports.append(cri.PortMapping(protocol=proto, container_port=int(p["containerPort"]),
                                                 host_port=int(p["hostPort"]), host_ip=p.get("hostIP") or ""))
        sc = spec.get("securityContext") or {}
        nsopt = cri.NamespaceOption(
            network=cri.NODE if host_net else cri.POD,
            pid=cri.NODE if spec.get("hostPID") else (cri.POD if spec.get("shareProcessNamespace") else cri.CONTAINER),
            ipc=cri.NODE if spec.get("hostIPC") else cri.POD,
        )
        lsc = cri.LinuxSandboxSecurityContext(namespace_options=nsopt)
        if sc.get("runAsUser") is not None:
            lsc.run_as_user.value = int(sc["runAsUser"])
        if sc.get("runAsGroup") is not None:
            lsc.run_as_group.value = int(sc["runAsGroup"])
        lsc.supplemental_groups.extend(int(g) for g in sc.get("supplementalGroups") or [])
        sysctls = {s["name"]: str(s.get("value", "")) for s in sc.get("sysctls") or []}
        hostname = ""
        if not host_net:
            hostname = spec.get("hostname") or meta["name"]
            hostname = hostname[:63]
        return cri.PodSandboxConfig(
            metadata=cri.PodSandboxMetadata(name=meta["name"], uid=meta["uid"], namespace=ns, attempt=self.attempt),
            hostname=hostname,
            log_directory=str(pod_log_dir(self.k.cfg, pod)),
            dns_config=dns,
            port_mappings=ports,
            labels=labels,
            annotations=annotations,
            linux=cri.LinuxPodSandboxConfig(cgroup_parent=self.k.cgroup_parent(pod), security_context=lsc,
                                            sysctls=sysctls),
        )

    def _dns_config(self, spec: Obj, ns: str) -> cri.DNSConfig:
        policy = spec.get("dnsPolicy") or "ClusterFirst"
        domain = self.k.cfg.cluster_domain
        out = cri.DNSConfig()
        if policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not spec.get("hostNetwork")):
            out.servers.append(self.k.cfg.cluster_dns)
            out.searches.extend([f"{ns}.svc.{domain}", f"svc.{domain}", domain])
            out.options.append("ndots:5")
        elif policy in ("Default", "ClusterFirst"):
            servers, searches = _host_resolv()
            out.servers.extend(servers)
            out.searches.extend(searches)
        extra = spec.get("dnsConfig") or {}
        out.servers.extend(extra.get("nameservers") or [])
        out.searches.extend(extra.get("searches") or [])
        for o in extra.get("options") or []:
            out.options.append(o["name"] + (f":{o['value']}" if o.get("value") else ""))
        return out

    async def _instances(self) -> dict[str, Instance]:
        """The latest CRI container per container name (older attempts pruned but one)."""
        if not self.sandbox_id:
            return {}
        found = await self.k.cri.list_containers(cri.ContainerFilter(pod_sandbox_id=self.sandbox_id))
        by_name: dict[str, list[cri.Container]] = {}
        for c in found:
            by_name.setdefault(c.metadata.name, []).append(c)
        out: dict[str, Instance] = {}
        for name, items in by_name.items():
            items.sort(key=lambda c: (c.metadata.attempt, c.created_at))
            latest = items[-1]
            for old in items[:-2]:
                with contextlib.suppress(CRIError):
                    await self.k.cri.remove_container(old.id)
            try:
                st = (await self.k.cri.container_status(latest.id)).status
            except NotFound:
                continue
            out[name] = Instance(id=latest.id, name=name, attempt=latest.metadata.attempt, state=st.state, status=st)
            if len(items) >= 2:
                out[name + "\x00prev"] = Instance(id=items[-2].id, name=name, attempt=items[-2].metadata.attempt,
                                                  state=items[-2].state)
        return out

    async def _run_container(self, c: Obj, instances: dict[str, Instance], *, restart_policy: str,
                             init: bool = False) -> float | None:
        name = c["name"]
        rs = self.containers.setdefault(name, ContainerRuntimeState())
        inst = instances.get(name)
        if inst is not None and inst.state in (cri.CONTAINER_RUNNING, cri.CONTAINER_CREATED):
            if inst.state == cri.CONTAINER_RUNNING:
                rs.waiting_reason = rs.waiting_message = ""
                self._ensure_probes(c, inst.id)
            if rs.restart_pending and inst.state == cri.CONTAINER_RUNNING:
                rs.restart_pending = False
                grace = int(c.get("terminationGracePeriodSeconds")
                            or (self.pod.get("spec") or {}).get("terminationGracePeriodSeconds") or 30)
                self.k.events.normal(self.pod, "Killing",
                                     f"Container {name} failed liveness probe, will be restarted", field=name)
                await self._stop_container(c, inst.id, grace)
                return 0.0
            return None
        if inst is not None and inst.state == cri.CONTAINER_EXITED:
            await self._drop_probes(name)
            code = inst.status.exit_code if inst.status else 0
            restart = restart_policy == "Always" or (restart_policy == "OnFailure" and code != 0)
            if not restart:
                return None
            now = time.monotonic()
            if rs.backoff.until > now:
                if rs.waiting_reason != "CrashLoopBackOff":
                    self.k.events.warning(self.pod, "BackOff", "Back-off restarting failed container "
                                          f"{name} in pod {self.pod['metadata']['name']}_"
                                          f"{self.pod['metadata'].get('namespace')}({self.uid})", field=name)
                rs.waiting_reason = "CrashLoopBackOff"
                rs.waiting_message = (f"back-off {rs.backoff.delay:.0f}s restarting failed container={name} "
                                      f"pod={self.pod['metadata']['name']}_{self.pod['metadata'].get('namespace')}"
                                      f"({self.uid})")
                return rs.backoff.until - now
            ran = 0.0
            if inst.status and inst.status.finished_at and inst.status.started_at:
                ran = (inst.status.finished_at - inst.status.started_at) / 1e9
            rs.backoff.next(ran)  # the first restart is at once; the next exit waits
            return await self._start_container(c, attempt=inst.attempt + 1, init=init)
        return await self._start_container(c, attempt=0, init=init)

    async def _start_container(self, c: Obj, *, attempt: int, init: bool) -> float | None:
        name = c["name"]
        rs = self.containers.setdefault(name, ContainerRuntimeState())
        image = c.get("image") or ""
        try:
            await self._ensure_image(c)
        except _PullError as e:
            rs.waiting_reason, rs.waiting_message = e.reason, e.message
            return e.retry
        try:
            config = await self._container_config(c, attempt=attempt, init=init)
        except (EnvError, VolumeError) as e:
            rs.waiting_reason, rs.waiting_message = "CreateContainerConfigError", e.message
            self.k.events.warning(self.pod, "Failed", f"Error: {e.message}", field=name)
            return 5.0
        assert self.sandbox_config is not None or self.sandbox_id
        sandbox_config = self.sandbox_config or self.sandbox_config_for()
        try:
            cid = await self.k.cri.create_container(self.sandbox_id, config, sandbox_config)
        except CRIError as e:
            rs.waiting_reason, rs.waiting_message = "CreateContainerError", e.message
            self.k.events.warning(self.pod, "Failed", f"Error: {e.message}", field=name)
            return 5.0
        self.k.events.normal(self.pod, "Created", f"Created container {name}", field=name)
        try:
            await self.k.cri.start_container(cid)
        except CRIError as e:
            rs.waiting_reason, rs.waiting_message = "RunContainerError", e.message
            self.k.events.warning(self.pod, "Failed", f"Error: {e.message}", field=name)
            return 5.0
        rs.waiting_reason = rs.waiting_message = ""
        rs.first_start_done = True
        self.k.events.normal(self.pod, "Started", f"Started container {name}", field=name)
        post = ((c.get("lifecycle") or {}).get("postStart")) or None
        if post:
            ok, msg = await self._hook(c, cid, post, timeout=30)
            if not ok:
                self.k.events.warning(self.pod, "FailedPostStartHook", msg, field=name)
                await self._stop_container(c, cid, 2)
        if not init:
            self._ensure_probes(c, cid)
        del image
        return 0.5

    async def _ensure_image(self, c: Obj) -> None:
        image = c.get("image") or ""
        name = c["name"]
        policy = c.get("imagePullPolicy") or ("Always" if _tag(image) == "latest" else "IfNotPresent")
        present = await self.k.cri.image_status(image) is not None
        if policy == "Never":
            if not present:
                msg = f'Container image "{image}" is not present with pull policy of Never'
                self.k.events.warning(self.pod, "ErrImageNeverPull", msg, field=name)
                raise _PullError("ErrImageNeverPull", msg, 10.0)
            return
        if present and policy == "IfNotPresent":
            return
        rs = self.containers.setdefault(name, ContainerRuntimeState())
        now = time.monotonic()
        if rs.waiting_reason in ("ErrImagePull", "ImagePullBackOff") and rs.backoff.until > now:
            if rs.waiting_reason == "ErrImagePull":
                self.k.events.normal(self.pod, "BackOff", f'Back-off pulling image "{image}"', field=name)
                self.k.events.warning(self.pod, "Failed", "Error: ImagePullBackOff", field=name)
            raise _PullError("ImagePullBackOff", f'Back-off pulling image "{image}"', rs.backoff.until - now)
        self.k.events.normal(self.pod, "Pulling", f'Pulling image "{image}"', field=name)
        t0 = time.monotonic()
        auth = await self._auth_for(image)
        try:
            await self.k.cri.pull_image(image, auth=auth, sandbox_config=self.sandbox_config)
        except CRIError as e:
            rs.backoff.next(0.0)
            msg = f'Failed to pull image "{image}": {e}'
            self.k.events.warning(self.pod, "Failed", msg, field=name)
            self.k.events.warning(self.pod, "Failed", "Error: ErrImagePull", field=name)
            raise _PullError("ErrImagePull", msg, 1.0) from None  # then ImagePullBackOff while backing off
        rs.backoff = Backoff()
        self.k.events.normal(self.pod, "Pulled", f'Successfully pulled image "{image}" in {time.monotonic() - t0:.3f}s',
                             field=name)

    async def _auth_for(self, image: str) -> cri.AuthConfig | None:
        host = _registry_host(image)
        ns = self.pod["metadata"].get("namespace", "default")
        for ref in (self.pod.get("spec") or {}).get("imagePullSecrets") or []:
            secret = await self.k.getter.get("Secret", ns, ref.get("name", ""))
            if secret is None:
                continue
            data = secret.get("data") or {}
            raw = data.get(".dockerconfigjson") or data.get(".dockercfg")
            if not raw:
                continue
            try:
                doc = json.loads(base64.b64decode(raw))
            except ValueError:
                continue
            auths = doc.get("auths", doc)
            for server, entry in auths.items():
                s = server.removeprefix("https://").removeprefix("http://").split("/")[0]
                if s == host or (host == "docker.io" and s in ("index.docker.io", "registry-1.docker.io")):
                    user, password = entry.get("username", ""), entry.get("password", "")
                    if entry.get("auth") and not user:
                        user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
                    # containerd parses server_address as a URL and matches its host
                    return cri.AuthConfig(username=user, password=password, server_address=f"https://{s}")
        return None

    async def _container_config(self, c: Obj, *, attempt: int, init: bool) -> cri.ContainerConfig:
        pod = self.pod
        meta = pod["metadata"]
        pod_view = {**pod, "status": {**(pod.get("status") or {}), "podIP": self.pod_ip,
                                      "podIPs": [{"ip": self.pod_ip}] if self.pod_ip else [],
                                      "hostIP": self.k.cfg.node_ip}}
        env = await build_env(pod=pod_view, container=c, client=self.k.client, node_ip=self.k.cfg.node_ip,
                              cache=self.k.getter, allocatable=self.k.node.allocatable,
                              services=await self.k.services(meta.get("namespace", "default")),
                              kubernetes_service=await self.k.kubernetes_service())
        env_map = dict(env)
        command = [expand(x, env_map) for x in c.get("command") or []]
        args = [expand(x, env_map) for x in c.get("args") or []]
        term = self.k.volumes.termination_log(self.uid, c["name"])
        etc_hosts = self.k.volumes.pod_dir(self.uid) / "etc-hosts"
        mlist = mounts(pod, c, self.host_paths, etc_hosts=etc_hosts, termination_log=term)
        sc = {**((pod.get("spec") or {}).get("securityContext") or {}), **(c.get("securityContext") or {})}
        lsc = cri.LinuxContainerSecurityContext(
            privileged=bool(sc.get("privileged")),
            readonly_rootfs=bool(sc.get("readOnlyRootFilesystem")),
            no_new_privs=sc.get("allowPrivilegeEscalation") is False,
        )
        if sc.get("runAsUser") is not None:
            lsc.run_as_user.value = int(sc["runAsUser"])
        if sc.get("runAsGroup") is not None:
            lsc.run_as_group.value = int(sc["runAsGroup"])
        if sc.get("runAsNonRoot") and not sc.get("runAsUser"):
            raise EnvError("CreateContainerConfigError", "container has runAsNonRoot and image will run as root "
                           f"(pod: \"{meta['name']}_{meta.get('namespace')}({self.uid})\", container: {c['name']})")
        caps = sc.get("capabilities") or {}
        if caps:
            lsc.capabilities.add_capabilities.extend(_cap(x) for x in caps.get("add") or [])
            lsc.capabilities.drop_capabilities.extend(_cap(x) for x in caps.get("drop") or [])
        lsc.namespace_options.CopyFrom(self.sandbox_config_for().linux.security_context.namespace_options)
        lsc.supplemental_groups.extend(int(g) for g in sc.get("supplementalGroups") or [])
        res = resources.linux_container_resources(pod, c, node_memory=self.k.node_memory)
        grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        return cri.ContainerConfig(
            metadata=cri.ContainerMetadata(name=c["name"], attempt=attempt),
            image=cri.ImageSpec(image=c.get("image") or ""),
            command=command,
            args=args,
            working_dir=c.get("workingDir") or "",
            envs=[cri.KeyValue(key=k, value=v) for k, v in env],
            mounts=mlist,
            labels={L_POD_NAME: meta["name"], L_POD_NS: meta.get("namespace", "default"), L_POD_UID: self.uid,
                    L_CONTAINER: c["name"]},
            annotations={A_RESTARTS: str(attempt),
                         A_TERM_PATH: c.get("terminationMessagePath") or "/dev/termination-log",
                         A_GRACE: str(30 if grace is None else grace),
                         **({A_INIT: "true"} if init else {})},
            log_path=f"{c['name']}/{attempt}.log",
            stdin=bool(c.get("stdin")),
            stdin_once=bool(c.get("stdinOnce")),
            tty=bool(c.get("tty")),
            linux=cri.LinuxContainerConfig(resources=res, security_context=lsc),
        )

    # ---- probes -----------------------------------------------------------------------

    def _ensure_probes(self, c: Obj, cid: str) -> None:
        name = c["name"]
        if self.probe_ids.get(name) == cid:
            return
        old = self.probes.pop(name, None)
        if old is not None:
            asyncio.create_task(old.stop())
        if not any(k in c for k in ("livenessProbe", "readinessProbe", "startupProbe")):
            self.probe_ids[name] = cid
            return

        def failed(kind: str, message: str, name: str = name) -> None:
            self.containers.setdefault(name, ContainerRuntimeState()).restart_pending = True
            self.wake()

        def event(reason: str, message: str, name: str = name) -> None:
            self.k.events.warning(self.pod, reason, message, field=name)

        runner = ProbeRunner(container=c, container_id=cid, pod_ip=self.pod_ip, cri=self.k.cri,
                             on_change=self.wake, on_failure=failed, on_event=event)
        runner.start()
        self.probes[name] = runner
        self.probe_ids[name] = cid

    async def _drop_probes(self, name: str) -> None:
        r = self.probes.pop(name, None)
        self.probe_ids.pop(name, None)
        if r is not None:
            await r.stop()

    async def _stop_probes(self) -> None:
        for name in list(self.probes):
            await self._drop_probes(name)

    # ---- hooks and stopping -----------------------------------------------------------

    async def _hook(self, c: Obj, cid: str, hook: Obj, *, timeout: int) -> tuple[bool, str]:
        try:
            if "exec" in hook:
                cmd = list((hook["exec"] or {}).get("command") or [])
                out, err, code = await self.k.cri.exec_sync(cid, cmd, timeout)
                if code != 0:
                    return False, f"Exec lifecycle hook ({shlex.join(cmd)}) for Container \"{c['name']}\" in Pod " \
                                  f"\"{self.pod['metadata']['name']}_{self.pod['metadata'].get('namespace')}" \
                                  f"({self.uid})\" failed - error: command '{shlex.join(cmd)}' exited with " \
                                  f"{code}: {(out + err).decode(errors='replace')}"
                return True, ""
            if "httpGet" in hook:
                import aiohttp

                h = hook["httpGet"] or {}
                port = resolve_port(h.get("port"), c)
                url = f"{str(h.get('scheme') or 'http').lower()}://{h.get('host') or self.pod_ip}:{port}{h.get('path') or '/'}"
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s:  # noqa: SIM117
                    async with s.get(url, ssl=False) as r:
                        if r.status >= 400:
                            return False, f"HTTP lifecycle hook ({h.get('path')}) failed with {r.status}"
                return True, ""
            if "sleep" in hook:
                await asyncio.sleep(min(timeout, int((hook["sleep"] or {}).get("seconds") or 0)))
                return True, ""
        except Exception as e:  # noqa: BLE001 - hook failures are reported, not raised
            return False, str(e)
        return True, ""

    async def _stop_container(self, c: Obj, cid: str, grace: int) -> None:
        pre = ((c.get("lifecycle") or {}).get("preStop")) or None
        start = time.monotonic()
        if pre:
            ok, msg = await self._hook(c, cid, pre, timeout=max(1, grace))
            if not ok:
                self.k.events.warning(self.pod, "FailedPreStopHook", msg, field=c["name"])
        remaining = max(0, int(grace - (time.monotonic() - start)))
        with contextlib.suppress(CRIError):
            await self.k.cri.stop_container(cid, remaining)

    async def terminate(self) -> None:
        """Kill everything of the pod, release it, and finish its deletion."""
        pod = self.pod
        spec = pod.get("spec") or {}
        meta = pod["metadata"]
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        grace = 0 if self.gone else int(grace)
        await self._stop_probes()
        if self.sandbox_id:
            instances = await self._instances()
            containers = {c["name"]: c for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])}
            running = [i for k, i in instances.items() if "\x00" not in k and i.state == cri.CONTAINER_RUNNING]
            for i in running:
                self.k.events.normal(pod, "Killing", f"Stopping container {i.name}", field=i.name)
            await asyncio.gather(*(self._stop_container(containers.get(i.name, {"name": i.name}), i.id, grace)
                                   for i in running))
            if not self.gone:
                with contextlib.suppress(Exception):
                    await self._write_status(await self._status(await self._instances(), terminating=True))
        await self.k.remove_pod_sandboxes(self.uid)
        self.sandbox_id = ""
        await self.k.volumes.teardown(self.uid)
        if not self.gone:
            with contextlib.suppress(APINotFound, Conflict):
                await self.k.client.delete(PODS, meta["name"], namespace=meta.get("namespace", "default"),
                                           grace_period_seconds=0, preconditions_uid=self.uid)
        self.k.forget(self.uid)

    # ---- status -----------------------------------------------------------------------

    def _rejected_status(self) -> Obj:
        reason, message = self.rejected or ("", "")
        return {"phase": "Failed", "reason": reason, "message": message, "startTime": self.start_time,
                "hostIP": self.k.cfg.node_ip, "hostIPs": [{"ip": self.k.cfg.node_ip}]}

    async def _status(self, instances: dict[str, Instance] | None = None, *, terminating: bool = False) -> Obj:
        if instances is None:
            instances = await self._instances()
        pod = self.pod
        spec = pod.get("spec") or {}
        old = pod.get("status") or {}
        restart_policy = spec.get("restartPolicy") or "Always"
        init_statuses = [self._container_status(c, instances, init=True) for c in spec.get("initContainers") or []]
        statuses = [self._container_status(c, instances) for c in spec.get("containers") or []]
        init_done = all(s.get("state", {}).get("terminated", {}).get("exitCode") == 0
                        for s, c in zip(init_statuses, spec.get("initContainers") or [], strict=True)
                        if c.get("restartPolicy") != "Always")
        phase = _phase(statuses, init_statuses, init_done=init_done, restart_policy=restart_policy,
                       spec=spec, old_phase=old.get("phase"))
        now = _now()
        ready = bool(statuses) and all(s.get("ready") for s in statuses) and phase == "Running"
        conds: list[Obj] = []

        def cond(ctype: str, ok: bool, reason: str = "", message: str = "") -> None:
            prev = get_condition(old, ctype)
            value = "True" if ok else "False"
            c: Obj = {"type": ctype, "status": value, "lastProbeTime": None,
                      "lastTransitionTime": prev.get("lastTransitionTime") if prev and prev.get("status") == value else now}
            if reason:
                c["reason"] = reason
            if message:
                c["message"] = message
            conds.append(c)

        cond("PodReadyToStartContainers", bool(self.sandbox_id) and not self.terminal)
        cond("Initialized", init_done, "" if init_done else "ContainersNotInitialized",
             "" if init_done else "containers with incomplete status: " + str(
                 [c["name"] for c, s in zip(spec.get("initContainers") or [], init_statuses, strict=True)
                  if s.get("state", {}).get("terminated", {}).get("exitCode") != 0]).replace("'", ""))
        not_ready = [s["name"] for s in statuses if not s.get("ready")]
        if phase in ("Succeeded", "Failed"):
            cond("Ready", False, "PodCompleted")
            cond("ContainersReady", False, "PodCompleted")
        else:
            msg = "containers with unready status: [" + " ".join(not_ready) + "]" if not_ready else ""
            cond("Ready", ready, "" if ready else "ContainersNotReady", msg)
            cond("ContainersReady", ready, "" if ready else "ContainersNotReady", msg)
        sched = get_condition(old, "PodScheduled")
        if sched:
            conds.append(sched)
        for rg in spec.get("readinessGates") or []:
            c0 = get_condition(old, rg.get("conditionType", ""))
            if c0:
                conds.append(c0)
        status: Obj = {
            "phase": phase,
            "conditions": conds,
            "hostIP": self.k.cfg.node_ip,
            "hostIPs": [{"ip": self.k.cfg.node_ip}],
            "startTime": self.start_time,
            "containerStatuses": statuses,
            "qosClass": resources.qos_class(pod),
        }
        if init_statuses:
            status["initContainerStatuses"] = init_statuses
        if self.pod_ip:
            status["podIP"] = self.pod_ip
            status["podIPs"] = [{"ip": self.pod_ip}]
        del terminating
        return status

    def _container_status(self, c: Obj, instances: dict[str, Instance], *, init: bool = False) -> Obj:
        name = c["name"]
        inst = instances.get(name)
        rs = self.containers.get(name) or ContainerRuntimeState()
        out: Obj = {"name": name, "image": c.get("image", ""), "imageID": "", "ready": False,
                    "restartCount": 0, "started": False}
        if inst is None:
            reason = rs.waiting_reason or ("PodInitializing" if not init else "PodInitializing")
            if not init and not rs.waiting_reason and (self.pod.get("spec") or {}).get("initContainers"):
                reason = "PodInitializing"
            elif not rs.waiting_reason:
                reason = "ContainerCreating"
            out["state"] = {"waiting": {"reason": reason, **({"message": rs.waiting_message} if rs.waiting_message else {})}}
            return out
        st = inst.status
        out["restartCount"] = inst.attempt
        out["containerID"] = f"containerd://{inst.id}"
        if st is not None:
            out["imageID"] = st.image_ref
            if st.image.image and not st.image.image.startswith("sha256:"):
                out["image"] = c.get("image", "") or st.image.image
        state = self._state(st)
        if rs.waiting_reason and inst.state == cri.CONTAINER_EXITED:
            out["state"] = {"waiting": {"reason": rs.waiting_reason, "message": rs.waiting_message}}
            out["lastState"] = state
        else:
            out["state"] = state
            prev = instances.get(name + "\x00prev")
            if prev is not None:
                out["lastState"] = {"terminated": {"exitCode": 0, "reason": "Completed"}}
                cached = self.k.prev_status.get(prev.id)
                if cached is not None:
                    out["lastState"] = cached
        if inst.state == cri.CONTAINER_EXITED and "lastState" not in out:
            pass
        if "terminated" in state:
            self.k.prev_status[inst.id] = state
        runner = self.probes.get(name)
        running = inst.state == cri.CONTAINER_RUNNING
        out["started"] = running and (runner.started if runner else True)
        out["ready"] = running and (runner.ready if runner else True) and not init
        if init and c.get("restartPolicy") == "Always":
            out["ready"] = running and (runner.ready if runner else True)
        out.setdefault("lastState", {})
        return out

    def _state(self, st: cri.ContainerStatus | None) -> Obj:
        if st is None:
            return {"waiting": {"reason": "ContainerCreating"}}
        if st.state == cri.CONTAINER_RUNNING:
            return {"running": {"startedAt": _ts(st.started_at)}}
        if st.state == cri.CONTAINER_EXITED:
            reason = st.reason or ("Completed" if st.exit_code == 0 else "Error")
            if reason == "OOMKilled" and st.exit_code == 0:
                pass
            t: Obj = {"exitCode": int(st.exit_code), "reason": reason, "startedAt": _ts(st.started_at),
                      "finishedAt": _ts(st.finished_at), "containerID": f"containerd://{st.id}"}
            msg = st.message or self._termination_message(st)
            if msg:
                t["message"] = msg
            return {"terminated": t}
        return {"waiting": {"reason": "ContainerCreating"}}

    def _termination_message(self, st: cri.ContainerStatus) -> str:
        name = st.metadata.name
        p = self.k.volumes.pod_dir(self.uid) / "containers" / name / "termination-log"
        try:
            return p.read_text(errors="replace")[:4096]
        except OSError:
            return ""

    async def _write_status(self, status: Obj) -> None:
        if status == self.last_status:
            return
        meta = self.pod["metadata"]
        try:
            updated = await self.k.client.patch(PODS, meta["name"], {"status": status},
                                                namespace=meta.get("namespace", "default"),
                                                patch_type="merge", subresource="status")
        except APINotFound:
            self.gone = True
            return
        self.last_status = status
        if updated.get("metadata", {}).get("uid") == self.uid:
            self.pod = updated


class _PullError(Exception):
    def __init__(self, reason: str, message: str, retry: float) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry = retry


def _min(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _tag(image: str) -> str:
    if "@" in image:
        return "digest"
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def _registry_host(image: str) -> str:
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def _cap(name: str) -> str:
    name = name.upper()
    return name if name.startswith("CAP_") or name == "ALL" else f"CAP_{name}"


def _host_resolv() -> tuple[list[str], list[str]]:
    servers: list[str] = []
    searches: list[str] = []
    try:
        text = open("/etc/resolv.conf").read()
    except OSError:
        return servers, searches
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "nameserver" and len(parts) > 1:
            servers.append(parts[1])
        elif parts[0] in ("search", "domain"):
            searches.extend(parts[1:])
    return servers, searches


def _phase(statuses: list[Obj], init_statuses: list[Obj], *, init_done: bool, restart_policy: str,
           spec: Obj, old_phase: str | None) -> str:
    if old_phase in ("Succeeded", "Failed"):
        return old_phase
    if not init_done:
        for s, c in zip(init_statuses, spec.get("initContainers") or [], strict=True):
            t = s.get("state", {}).get("terminated")
            if t and t.get("exitCode") != 0 and restart_policy == "Never" and c.get("restartPolicy") != "Always":
                return "Failed"
        return "Pending"
    running = sum(1 for s in statuses if "running" in s.get("state", {}))
    waiting = sum(1 for s in statuses if "waiting" in s.get("state", {}))
    terminated = [s["state"]["terminated"] for s in statuses if "terminated" in s.get("state", {})]
    stopped_ok = sum(1 for t in terminated if t.get("exitCode") == 0)
    if waiting and not running and not terminated:
        return "Pending"
    if running:
        return "Running"
    if waiting:
        # restarting (CrashLoopBackOff) counts as running once something started
        return "Running" if any(s.get("restartCount") for s in statuses) else "Pending"
    if len(terminated) == len(statuses) and statuses:
        if restart_policy == "Always":
            return "Running"
        if stopped_ok == len(terminated):
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


class Kubelet:
    def __init__(self, cfg: AgentConfig, client: Client, cri: CRIClient, *, node: NodeAgent | None = None,
                 gc_ips: Callable[[list[str]], Any] | None = None) -> None:
        self.cfg = cfg
        self.client = client
        self.cri = cri
        self.node = node or NodeAgent(cfg, client, cri)
        self.volumes = VolumeManager(cfg, client, allocatable=self.node.allocatable)
        self.getter = ClientGetter(client)
        self.events = KubeletEvents(client, node=cfg.node_name)
        self.workers: dict[str, PodWorker] = {}
        self.prev_status: dict[str, Obj] = {}
        self.gc_ips = gc_ips
        self.informer: Informer | None = None
        self._svc_cache: dict[str, tuple[float, list[Obj]]] = {}
        self._adopt: dict[str, list[Any]] = {}  # pod uid -> CRI PodSandbox
        from k3py.agent.kubelet.node import mem_total_bytes

        self.node_memory = mem_total_bytes()

    def cgroup_parent(self, pod: Obj) -> str:
        return resources.pod_cgroup_parent(pod)

    async def services(self, namespace: str) -> list[Obj]:
        hit = self._svc_cache.get(namespace)
        if hit and time.monotonic() - hit[0] < 5.0:
            return hit[1]
        try:
            items = list((await self.client.list(SERVICES, namespace=namespace)).items)
        except Exception:  # noqa: BLE001 - service links are best effort
            items = []
        self._svc_cache[namespace] = (time.monotonic(), items)
        return items

    async def kubernetes_service(self) -> Obj | None:
        for s in await self.services("default"):
            if s["metadata"]["name"] == "kubernetes":
                return s
        return None

    async def start(self) -> None:
        self.events.start()
        sandboxes = await self.cri.list_pod_sandbox()
        for sb in sandboxes:
            uid = sb.labels.get(L_POD_UID)
            if uid:
                self._adopt.setdefault(uid, []).append(sb)
        inf = self.client.informer(PODS, field_selector=f"spec.nodeName={self.cfg.node_name}")
        inf.add_handler(on_add=self._on_pod, on_update=lambda old, new: self._on_pod(new), on_delete=self._on_delete)
        self.informer = inf
        inf.start()
        await inf.wait_synced()
        live = {p["metadata"]["uid"] for p in inf.list()}
        for uid in list(self._adopt):
            if uid not in live:
                log.info("removing sandboxes of pod %s, which is gone", uid)
                await self.remove_pod_sandboxes(uid)
                await self.volumes.teardown(uid)
                self._adopt.pop(uid, None)
        if self.gc_ips is not None:
            keep = [sb.id for sbs in self._adopt.values() for sb in sbs]
            with contextlib.suppress(Exception):
                self.gc_ips(keep)

    async def stop(self) -> None:
        if self.informer is not None:
            await self.informer.stop()
        await asyncio.gather(*(w.stop() for w in list(self.workers.values())), return_exceptions=True)
        await self.events.stop()

    def _on_pod(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        w = self.workers.get(uid)
        if w is None:
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") and uid not in self._adopt \
                    and not pod["metadata"].get("deletionTimestamp"):
                return
            w = PodWorker(self, pod)
            sbs = self._adopt.pop(uid, [])
            ready = [s for s in sbs if s.state == cri.SANDBOX_READY]
            if ready:
                ready.sort(key=lambda s: s.metadata.attempt)
                w.sandbox_id = ready[-1].id
                w.attempt = ready[-1].metadata.attempt
                w.sandbox_config = None
            elif sbs:
                w.attempt = max(s.metadata.attempt for s in sbs) + 1
                asyncio.create_task(self._remove_sandboxes(sbs))
            self.workers[uid] = w
            if w.sandbox_id:
                asyncio.create_task(self._adopted(w))
            else:
                w.start()
            return
        w.update(pod)

    async def _adopted(self, w: PodWorker) -> None:
        try:
            st = await self.cri.pod_sandbox_status(w.sandbox_id)
            w.pod_ip = st.status.network.ip if st.status.network else ""
            if (w.pod.get("spec") or {}).get("hostNetwork"):
                w.pod_ip = self.cfg.node_ip
            w.host_paths = await self.volumes.setup(w.pod)
            w.sandbox_config = w.sandbox_config_for()
            w.last_status = None
            for c in (w.pod.get("spec") or {}).get("containers") or []:
                w.containers.setdefault(c["name"], ContainerRuntimeState()).first_start_done = True
        except Exception:  # noqa: BLE001 - the worker recreates what is missing
            log.exception("adopting pod %s", w.key)
        log.info("adopted running pod %s", w.key)
        w.start()

    def _on_delete(self, pod: Obj) -> None:
        w = self.workers.get(pod["metadata"]["uid"])
        if w is not None:
            w.update(None)
        else:
            asyncio.create_task(self._cleanup_orphan(pod["metadata"]["uid"]))

    async def _cleanup_orphan(self, uid: str) -> None:
        await self.remove_pod_sandboxes(uid)
        await self.volumes.teardown(uid)

    def forget(self, uid: str) -> None:
        self.workers.pop(uid, None)

    async def _remove_sandboxes(self, sbs: list[cri.PodSandbox]) -> None:
        for sb in sbs:
            with contextlib.suppress(CRIError):
                await self.cri.stop_pod_sandbox(sb.id)
            with contextlib.suppress(CRIError):
                await self.cri.remove_pod_sandbox(sb.id)

    async def remove_pod_sandboxes(self, uid: str) -> None:
        sbs = await self.cri.list_pod_sandbox(cri.PodSandboxFilter(label_selector={L_POD_UID: uid}))
        await self._remove_sandboxes(sbs)

    def admitted(self, w: PodWorker) -> bool:
        """Kubelet admission: requests of admitted pods must fit allocatable."""
        pod = w.pod
        if getattr(w, "_admitted", False):
            return True
        alloc = self.node.allocatable
        need = _requests(pod)
        used = {"cpu": 0, "memory": 0, "pods": 0}
        for other in self.workers.values():
            if other is w or not getattr(other, "_admitted", False) or other.terminal:
                continue
            r = _requests(other.pod)
            for k in used:
                used[k] += r.get(k, 0)
        cap = {"cpu": resources.to_milli(alloc.get("cpu", "0")), "memory": resources.to_bytes(alloc.get("memory", "0")),
               "pods": int(alloc.get("pods", "110"))}
        for k in ("cpu", "memory", "pods"):
            if used[k] + need.get(k, 0) > cap[k]:
                w.rejected = (f"OutOf{k}", f"Pod was rejected: Node didn't have enough resource: {k}, "
                              f"requested: {need.get(k, 0)}, used: {used[k]}, capacity: {cap[k]}")
                self.events.warning(pod, f"OutOf{k}", w.rejected[1])
                return False
        w._admitted = True  # type: ignore[attr-defined]
        return True

    async def pull_secret(self, namespace: str, name: str) -> Obj | None:
        try:
            return await self.client.get(SECRETS, name, namespace=namespace)
        except APINotFound:
            return None


def _requests(pod: Obj) -> dict[str, int]:
    spec = pod.get("spec") or {}
    cpu = mem = 0
    for c in spec.get("containers") or []:
        req = (c.get("resources") or {}).get("requests") or {}
        cpu += resources.to_milli(req["cpu"]) if "cpu" in req else 0
        mem += resources.to_bytes(req["memory"]) if "memory" in req else 0
    for c in spec.get("initContainers") or []:
        req = (c.get("resources") or {}).get("requests") or {}
        cpu = max(cpu, resources.to_milli(req["cpu"]) if "cpu" in req else 0)
        mem = max(mem, resources.to_bytes(req["memory"]) if "memory" in req else 0)
    return {"cpu": cpu, "memory": mem, "pods": 1}


__all__ = ["Kubelet", "PodWorker", "DeleteOptions"]
