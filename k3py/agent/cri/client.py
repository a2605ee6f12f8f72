"""An asyncio CRI v1 client (``grpc.aio`` over the runtime's unix socket).

Thin on purpose: each method builds the request message, makes one call with a deadline
and returns the interesting part of the response.  gRPC failures become ``CRIError``
(``NotFound`` for ``NOT_FOUND``) carrying the runtime's message, which the kubelet shows
to users in container states (e.g. ``ErrImagePull``) the way upstream does.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

# The agent forks (nft, ctr, CNI fallbacks) while gRPC threads run; gRPC's fork handlers
# only log noise there.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import grpc  # noqa: E402

from k3py.agent.cri import api_pb2 as cri  # noqa: E402
from k3py.agent.cri import api_pb2_grpc as rpc  # noqa: E402

T = TypeVar("T")

MAX_MESSAGE = 16 * 1024 * 1024
DEFAULT_TIMEOUT = 120.0  # pulls and sandbox starts can be slow; short calls pass their own


class CRIError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"rpc error: code = {self.code.name.title().replace('_', '')} desc = {self.message}"


class NotFound(CRIError):
    pass


def _error(e: grpc.aio.AioRpcError) -> CRIError:
    code = e.code()
    cls = NotFound if code == grpc.StatusCode.NOT_FOUND else CRIError
    return cls(code, e.details() or "")


class CRIClient:
    def __init__(self, channel: grpc.aio.Channel, endpoint: str) -> None:
        self.endpoint = endpoint
        self._channel = channel
        self.runtime = rpc.RuntimeServiceStub(channel)
        self.images = rpc.ImageServiceStub(channel)

    @classmethod
    async def connect(cls, endpoint: str, *, timeout: float = 10.0) -> CRIClient:
        """Connect and wait until the runtime answers ``Version``."""
        target = endpoint if endpoint.startswith("unix:") else f"unix://{endpoint}"
        channel = grpc.aio.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE),
                # containerd restarts (supervisor, upgrades) must not leave the kubelet's
                # channel in a long reconnect back-off: retry the socket within 1 s.
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.min_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 1000),
            ],
        )
        client = cls(channel, target)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                await client.version(timeout=2.0)
                return client
            except CRIError:
                if asyncio.get_running_loop().time() > deadline:
                    await channel.close()
                    raise
                await asyncio.sleep(0.1)

    async def close(self) -> None:
        await self._channel.close()

    async def _call(
        self,
        method: Callable[..., Awaitable[T]],
        request: Any,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> T:
        try:
            return await method(request, timeout=timeout)
        except grpc.aio.AioRpcError as e:
            raise _error(e) from None

    # ---- runtime -------------------------------------------------------------------

    async def version(self, *, timeout: float = 10.0) -> cri.VersionResponse:
        return await self._call(self.runtime.Version, cri.VersionRequest(version="v1"), timeout)

    async def status(self, verbose: bool = False) -> cri.StatusResponse:
        return await self._call(self.runtime.Status, cri.StatusRequest(verbose=verbose), 10.0)

    async def run_pod_sandbox(self, config: cri.PodSandboxConfig, runtime_handler: str = "") -> str:
        req = cri.RunPodSandboxRequest(config=config, runtime_handler=runtime_handler)
        resp = await self._call(self.runtime.RunPodSandbox, req)
        return str(resp.pod_sandbox_id)

    async def stop_pod_sandbox(self, pod_sandbox_id: str) -> None:
        await self._call(
            self.runtime.StopPodSandbox, cri.StopPodSandboxRequest(pod_sandbox_id=pod_sandbox_id)
        )

    async def remove_pod_sandbox(self, pod_sandbox_id: str) -> None:
        await self._call(
            self.runtime.RemovePodSandbox,
            cri.RemovePodSandboxRequest(pod_sandbox_id=pod_sandbox_id),
        )

    async def pod_sandbox_status(
        self, pod_sandbox_id: str, verbose: bool = False
    ) -> cri.PodSandboxStatusResponse:
        req = cri.PodSandboxStatusRequest(pod_sandbox_id=pod_sandbox_id, verbose=verbose)
        return await self._call(self.runtime.PodSandboxStatus, req, 30.0)

    async def list_pod_sandbox(
        self, filter: cri.PodSandboxFilter | None = None
    ) -> list[cri.PodSandbox]:
        resp = await self._call(
            self.runtime.ListPodSandbox, cri.ListPodSandboxRequest(filter=filter), 30.0
        )
        return list(resp.items)

    async def create_container(
        self, pod_sandbox_id: str, config: cri.ContainerConfig, sandbox_config: cri.PodSandboxConfig
    ) -> str:
        req = cri.CreateContainerRequest(
            pod_sandbox_id=pod_sandbox_id, config=config, sandbox_config=sandbox_config
        )
        resp = await self._call(self.runtime.CreateContainer, req)
        return str(resp.container_id)

    async def start_container(self, container_id: str) -> None:
        await self._call(
            self.runtime.StartContainer, cri.StartContainerRequest(container_id=container_id)
        )

    async def stop_container(self, container_id: str, timeout: int) -> None:
        req = cri.StopContainerRequest(container_id=container_id, timeout=max(0, int(timeout)))
        await self._call(self.runtime.StopContainer, req, max(0, int(timeout)) + DEFAULT_TIMEOUT)

    async def remove_container(self, container_id: str) -> None:
        await self._call(
            self.runtime.RemoveContainer, cri.RemoveContainerRequest(container_id=container_id)
        )

    async def list_containers(
        self, filter: cri.ContainerFilter | None = None
    ) -> list[cri.Container]:
        resp = await self._call(
            self.runtime.ListContainers, cri.ListContainersRequest(filter=filter), 30.0
        )
        return list(resp.containers)

    async def container_status(
        self, container_id: str, verbose: bool = False
    ) -> cri.ContainerStatusResponse:
        req = cri.ContainerStatusRequest(container_id=container_id, verbose=verbose)
        return await self._call(self.runtime.ContainerStatus, req, 30.0)

    async def update_container_resources(
        self, container_id: str, linux: cri.LinuxContainerResources
    ) -> None:
        req = cri.UpdateContainerResourcesRequest(container_id=container_id, linux=linux)
        await self._call(self.runtime.UpdateContainerResources, req)

    async def reopen_container_log(self, container_id: str) -> None:
        await self._call(
            self.runtime.ReopenContainerLog,
            cri.ReopenContainerLogRequest(container_id=container_id),
        )

    async def exec_sync(
        self, container_id: str, cmd: list[str], timeout: int = 0
    ) -> tuple[bytes, bytes, int]:
        req = cri.ExecSyncRequest(container_id=container_id, cmd=cmd, timeout=timeout)
        deadline = None if timeout <= 0 else timeout + 10.0
        resp = await self._call(self.runtime.ExecSync, req, deadline)
        return bytes(resp.stdout), bytes(resp.stderr), int(resp.exit_code)

    async def exec(self, req: cri.ExecRequest) -> str:
        return str((await self._call(self.runtime.Exec, req, 30.0)).url)

    async def attach(self, req: cri.AttachRequest) -> str:
        return str((await self._call(self.runtime.Attach, req, 30.0)).url)

    async def port_forward(self, pod_sandbox_id: str, ports: list[int]) -> str:
        req = cri.PortForwardRequest(pod_sandbox_id=pod_sandbox_id, port=ports)
        return str((await self._call(self.runtime.PortForward, req, 30.0)).url)

    async def container_stats(self, container_id: str) -> cri.ContainerStats:
        resp = await self._call(
            self.runtime.ContainerStats, cri.ContainerStatsRequest(container_id=container_id), 30.0
        )
        return resp.stats

    async def list_container_stats(
        self, filter: cri.ContainerStatsFilter | None = None
    ) -> list[cri.ContainerStats]:
        resp = await self._call(
            self.runtime.ListContainerStats, cri.ListContainerStatsRequest(filter=filter), 30.0
        )
        return list(resp.stats)

    async def list_pod_sandbox_stats(
        self, filter: cri.PodSandboxStatsFilter | None = None
    ) -> list[cri.PodSandboxStats]:
        resp = await self._call(
            self.runtime.ListPodSandboxStats, cri.ListPodSandboxStatsRequest(filter=filter), 30.0
        )
        return list(resp.stats)

    # ---- images --------------------------------------------------------------------

    async def list_images(self, filter: cri.ImageFilter | None = None) -> list[cri.Image]:
        resp = await self._call(self.images.ListImages, cri.ListImagesRequest(filter=filter), 30.0)
        return list(resp.images)

    async def image_status(self, image: str) -> cri.Image | None:
        resp = await self._call(
            self.images.ImageStatus, cri.ImageStatusRequest(image=cri.ImageSpec(image=image)), 30.0
        )
        return resp.image if resp.HasField("image") else None

    async def pull_image(
        self,
        image: str,
        auth: cri.AuthConfig | None = None,
        sandbox_config: cri.PodSandboxConfig | None = None,
    ) -> str:
        req = cri.PullImageRequest(
            image=cri.ImageSpec(image=image), auth=auth, sandbox_config=sandbox_config
        )
        resp = await self._call(self.images.PullImage, req, 600.0)
        return str(resp.image_ref)

    async def remove_image(self, image: str) -> None:
        await self._call(
            self.images.RemoveImage, cri.RemoveImageRequest(image=cri.ImageSpec(image=image))
        )

    async def image_fs_info(self) -> cri.ImageFsInfoResponse:
        return await self._call(self.images.ImageFsInfo, cri.ImageFsInfoRequest(), 30.0)
