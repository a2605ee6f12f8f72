"""Lease-based leader election (coordination.k8s.io/v1 Lease in kube-system), as
client-go's leaderelection: so that several servers never run one component twice.

A candidate reads the Lease; it takes it when nobody holds it, when it already holds it
(a restarted server keeps its identity, the node name, and takes its Lease back at once),
or when the holder has not renewed for ``lease_duration`` seconds *as observed locally*
(clocks of different machines are never compared).  The leader renews every
``retry_period``; if it cannot renew for ``renew_deadline`` it stops leading.  A clean
stop releases the Lease (empty holder) so another server takes over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from k3py.client import AlreadyExists, ApiError, Client, Conflict, NotFound
from k3py.client.resources import LEASES
from k3py.server.controllers.base import micro_time

Obj = dict[str, Any]
log = logging.getLogger("k3py.leader")


class LeaderElector:
    def __init__(
        self,
        client: Client,
        *,
        name: str,
        identity: str,
        namespace: str = "kube-system",
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.clock = clock
        self.leading = False
        self._observed: tuple[str, str] | None = None  # (holder, resourceVersion) last seen
        self._observed_at = 0.0  # monotonic time it was first seen

    async def run(
        self,
        on_started: Callable[[], Awaitable[None]],
        on_stopped: Callable[[], Awaitable[None]],
    ) -> None:
        """Campaign forever; lead while holding the Lease.  Cancel to stop (releases)."""
        try:
            while True:
                while not await self._try_acquire_or_renew():  # noqa: ASYNC110
                    await asyncio.sleep(self.retry_period)
                self.leading = True
                log.info("%s: %s became leader", self.name, self.identity)
                try:
                    await on_started()
                    await self._renew_loop()
                finally:
                    self.leading = False
                    await on_stopped()
                log.warning("%s: %s lost the lease", self.name, self.identity)
        finally:
            if self.leading or self._holding():
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._release())

    def _holding(self) -> bool:
        return self._observed is not None and self._observed[0] == self.identity

    async def _renew_loop(self) -> None:
        last_ok = time.monotonic()
        while True:
            await asyncio.sleep(self.retry_period)
            try:
                ok = await self._try_acquire_or_renew()
            except Exception as e:  # noqa: BLE001 - a failed renewal is retried
                log.debug("%s: renew failed: %s", self.name, e)
                ok = False
            if ok:
                last_ok = time.monotonic()
            elif time.monotonic() - last_ok > self.renew_deadline or not self._holding():
                return

    def _spec(self, old: Obj | None) -> Obj:
        now = micro_time(self.clock())
        spec = dict(old or {})
        if spec.get("holderIdentity") != self.identity:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if old else 0)
        spec["holderIdentity"] = self.identity
        spec["leaseDurationSeconds"] = max(1, math.ceil(self.lease_duration))
        spec["renewTime"] = now
        return spec

    async def _try_acquire_or_renew(self) -> bool:
        try:
            lease = await self.client.get(LEASES, self.name, namespace=self.namespace)
        except NotFound:
            body: Obj = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(None),
            }
            try:
                created = await self.client.create(LEASES, body, namespace=self.namespace)
            except AlreadyExists:
                return False
            except ApiError as e:
                log.warning("%s: cannot create the lease: %s", self.name, e)
                return False
            self._observe(self.identity, str(created["metadata"].get("resourceVersion") or ""))
            return True
        spec = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        self._observe(holder, str((lease.get("metadata") or {}).get("resourceVersion") or ""))
        if holder and holder != self.identity:
            duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
            if time.monotonic() - self._observed_at < duration:
                return False
        lease["spec"] = self._spec(spec)
        try:
            updated = await self.client.update(LEASES, lease, namespace=self.namespace)
        except (Conflict, NotFound):
            return False
        self._observe(self.identity, str(updated["metadata"].get("resourceVersion") or ""))
        return True

    def _observe(self, holder: str, renew: str) -> None:
        if self._observed != (holder, renew):
            self._observed = (holder, renew)
            self._observed_at = time.monotonic()

    async def _release(self) -> None:
        lease = await self.client.get(LEASES, self.name, namespace=self.namespace)
        spec = lease.get("spec") or {}
        if spec.get("holderIdentity") != self.identity:
            return
        spec["holderIdentity"] = ""
        spec["leaseDurationSeconds"] = 1
        lease["spec"] = spec
        await self.client.update(LEASES, lease, namespace=self.namespace)
        self._observed = None
