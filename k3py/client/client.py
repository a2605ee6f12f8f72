"""The ``Client`` facade: friendly verbs over a ``Transport``.

    client = Client.from_kubeconfig("/etc/k3py/k3py.yaml")       # remote: HTTPS
    client = Client(running_server.transport)                    # in the server process
    pod = await client.get(PODS, "web-0", namespace="default")
    await client.apply(DEPLOYMENTS, manifest, field_manager="k3py-example")
    informer = client.informer(PODS, field_selector="spec.nodeName=node-1")

Namespaces: a single-object call uses ``namespace=`` if given, else the object's
``metadata.namespace``, else the client's default (the kubeconfig context's, or
"default"); cluster-scoped resources ignore it.  ``list`` and ``watch`` with no namespace
span all namespaces.  The client adds no caching or retries of its own: informers
(``informer.py``) cache, controllers retry through the work queue (``workqueue.py``).
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

from k3py.client.errors import NotFound
from k3py.client.informer import IndexFunc, Informer
from k3py.client.interface import (
    DeleteOptions,
    EventStream,
    ListOptions,
    ObjectList,
    PatchType,
    Transport,
    WatchOptions,
    WriteOptions,
)
from k3py.client.resources import PODS, Resource

Obj = dict[str, Any]


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


class Client:
    def __init__(
        self,
        transport: Transport,
        *,
        namespace: str | None = None,
        field_manager: str = "",
        field_validation: str = "",
    ) -> None:
        self.transport = transport
        self.namespace = namespace or getattr(transport, "default_namespace", "") or "default"
        self.field_manager = field_manager
        self.field_validation = field_validation

    @classmethod
    def from_kubeconfig(
        cls,
        path: str | Path | None = None,
        *,
        context: str | None = None,
        field_manager: str = "",
        **transport_kw: Any,
    ) -> Client:
        from k3py.client.https import HTTPSTransport

        transport = HTTPSTransport.from_kubeconfig(path, context=context, **transport_kw)
        return cls(transport, field_manager=field_manager)

    async def close(self) -> None:
        await self.transport.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # ---- pieces --------------------------------------------------------------

    def _ns(self, res: Resource, namespace: str, obj: Obj | None = None) -> str:
        if not res.namespaced:
            return ""
        return namespace or (_meta(obj).get("namespace") if obj else "") or self.namespace

    def _wopts(self, *, field_manager: str, dry_run: bool) -> WriteOptions:
        return WriteOptions(
            field_manager=field_manager or self.field_manager,
            dry_run=dry_run,
            field_validation=self.field_validation,
        )

    @staticmethod
    def _name(obj: Obj) -> str:
        name = _meta(obj).get("name")
        if not name:
            raise ValueError("the object has no metadata.name")
        return str(name)

    # ---- reads ---------------------------------------------------------------

    async def get(
        self, res: Resource, name: str, *, namespace: str = "", subresource: str = ""
    ) -> Obj:
        return await self.transport.get(
            res, namespace=self._ns(res, namespace), name=name, subresource=subresource
        )

    async def get_or_none(self, res: Resource, name: str, *, namespace: str = "") -> Obj | None:
        try:
            return await self.get(res, name, namespace=namespace)
        except NotFound:
            return None

    async def list(
        self,
        res: Resource,
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_token: str = "",
        resource_version: str = "",
        resource_version_match: str = "",
    ) -> ObjectList:
        opts = ListOptions(
            label_selector=label_selector,
            field_selector=field_selector,
            limit=limit,
            continue_token=continue_token,
            resource_version=resource_version,
            resource_version_match=resource_version_match,
        )
        return await self.transport.list(res, namespace=namespace, opts=opts)

    async def list_all(
        self,
        res: Resource,
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        page_size: int = 500,
    ) -> ObjectList:
        """Every page of a list, consistent with the first page's revision."""
        first = await self.list(
            res,
            namespace=namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            limit=page_size,
        )
        page = first
        while page.continue_token:
            page = await self.list(
                res,
                namespace=namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                limit=page_size,
                continue_token=page.continue_token,
            )
            first.items.extend(page.items)
        first.continue_token = ""
        return first

    def watch(
        self,
        res: Resource,
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        resource_version: str = "",
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = False,
    ) -> EventStream:
        opts = WatchOptions(
            label_selector=label_selector,
            field_selector=field_selector,
            resource_version=resource_version,
            timeout_seconds=timeout_seconds,
            allow_bookmarks=allow_bookmarks,
        )
        return self.transport.watch(res, namespace=namespace, opts=opts)

    # ---- writes --------------------------------------------------------------

    async def create(
        self,
        res: Resource,
        obj: Obj,
        *,
        namespace: str = "",
        field_manager: str = "",
        dry_run: bool = False,
    ) -> Obj:
        return await self.transport.create(
            res,
            obj,
            namespace=self._ns(res, namespace, obj),
            opts=self._wopts(field_manager=field_manager, dry_run=dry_run),
        )

    async def update(
        self,
        res: Resource,
        obj: Obj,
        *,
        namespace: str = "",
        subresource: str = "",
        field_manager: str = "",
        dry_run: bool = False,
    ) -> Obj:
        """PUT: replaces the object; with its ``resourceVersion`` set, a lost race is
        ``Conflict``."""
        return await self.transport.update(
            res,
            obj,
            namespace=self._ns(res, namespace, obj),
            name=self._name(obj),
            subresource=subresource,
            opts=self._wopts(field_manager=field_manager, dry_run=dry_run),
        )

    async def update_status(
        self,
        res: Resource,
        obj: Obj,
        *,
        namespace: str = "",
        field_manager: str = "",
        dry_run: bool = False,
    ) -> Obj:
        return await self.update(
            res,
            obj,
            namespace=namespace,
            subresource="status",
            field_manager=field_manager,
            dry_run=dry_run,
        )

    async def patch(
        self,
        res: Resource,
        name: str,
        body: Any,
        *,
        namespace: str = "",
        patch_type: PatchType = "merge",
        subresource: str = "",
        field_manager: str = "",
        force: bool = False,
        dry_run: bool = False,
    ) -> Obj:
        return await self.transport.patch(
            res,
            body,
            namespace=self._ns(res, namespace),
            name=name,
            patch_type=patch_type,
            subresource=subresource,
            force=force,
            opts=self._wopts(field_manager=field_manager, dry_run=dry_run),
        )

    async def apply(
        self,
        res: Resource,
        obj: Obj,
        *,
        namespace: str = "",
        field_manager: str = "",
        force: bool = False,
        subresource: str = "",
        dry_run: bool = False,
    ) -> Obj:
        """Server-side apply of ``obj`` (which carries apiVersion, kind and name) as
        ``field_manager``; ``force`` takes over fields other managers own."""
        body = {"apiVersion": res.api_version, "kind": res.kind, **obj}
        return await self.patch(
            res,
            self._name(obj),
            body,
            namespace=self._ns(res, namespace, obj),
            patch_type="apply",
            subresource=subresource,
            field_manager=field_manager,
            force=force,
            dry_run=dry_run,
        )

    async def delete(
        self,
        res: Resource,
        name: str,
        *,
        namespace: str = "",
        grace_period_seconds: int | None = None,
        propagation_policy: str | None = None,
        preconditions_uid: str | None = None,
        preconditions_resource_version: str | None = None,
        dry_run: bool = False,
    ) -> Obj | None:
        """Returns the object while its deletion is pending (finalizers, grace period),
        None once it is gone."""
        opts = DeleteOptions(
            grace_period_seconds=grace_period_seconds,
            propagation_policy=propagation_policy,
            preconditions_uid=preconditions_uid,
            preconditions_resource_version=preconditions_resource_version,
            dry_run=dry_run,
        )
        return await self.transport.delete(
            res, namespace=self._ns(res, namespace), name=name, opts=opts
        )

    # ---- pod subresources ----------------------------------------------------

    async def bind(self, *, namespace: str, pod: str, node: str, field_manager: str = "") -> None:
        """Assign ``pod`` to ``node`` (``pods/binding``, as the scheduler does)."""
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": pod, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        await self.transport.create_subresource(
            PODS,
            body,
            namespace=namespace,
            name=pod,
            subresource="binding",
            opts=self._wopts(field_manager=field_manager, dry_run=False),
        )

    async def evict(
        self, *, namespace: str, pod: str, grace_period_seconds: int | None = None
    ) -> None:
        """Evict ``pod`` (``pods/eviction``: honours PodDisruptionBudgets)."""
        body: Obj = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": pod, "namespace": namespace},
        }
        if grace_period_seconds is not None:
            body["deleteOptions"] = {"gracePeriodSeconds": grace_period_seconds}
        await self.transport.create_subresource(
            PODS,
            body,
            namespace=namespace,
            name=pod,
            subresource="eviction",
            opts=self._wopts(field_manager="", dry_run=False),
        )

    # ---- caches --------------------------------------------------------------

    def informer(
        self,
        res: Resource,
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        indexers: dict[str, IndexFunc] | None = None,
        **kw: Any,
    ) -> Informer:
        """An informer (not started) over this client's transport."""
        return Informer(
            self.transport,
            res,
            namespace=namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            indexers=indexers,
            **kw,
        )
