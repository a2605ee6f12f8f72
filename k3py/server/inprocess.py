"""The in-process transport: the client's verbs straight into the server's pipeline.

Scheduler, controllers, ingress and the embedded agent run in the server's process and
event loop; for them a request is a function call.  This transport implements
``k3py.client.interface.Transport`` on the same pieces the HTTP handlers use — the
checks of ``api.writes`` (type meta, field types and unknown fields per
fieldValidation, patch application, server-side apply), the ``ObjectStore`` (defaults,
admission, validation, managedFields, optimistic concurrency), ``api.reads.Matcher`` and
``api.reads.transition`` for selectors and watch transitions — without a socket, TLS,
authentication or JSON encoding of requests.  What it skips of the HTTP path: content
negotiation, protobuf, authorization (in-process callers are trusted components; their
``user`` still lands in the WriteContext for admission and audit).

Ownership: objects handed in are copied before the store mutates them (an orjson round
trip, a seventh of ``deepcopy``); objects handed out are fresh dicts decoded from stored
bytes, and write results are copied once more because after-write hooks (CRD serving)
may keep what they are given.  So nothing crossing the transport is shared.

Watches read the datastore's watch hub directly and filter with the HTTP watch's
selector logic; ``Compacted`` becomes ``Gone`` (410).  Use the transport on the server's
event loop only.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

import orjson

from k3py.client import errors as client_errors
from k3py.client.interface import (
    DeleteOptions,
    EventStream,
    EventType,
    ListOptions,
    ObjectList,
    PatchType,
    Transport,
    WatchEvent,
    WatchOptions,
    WriteOptions,
)
from k3py.client.resources import Resource
from k3py.server import errors
from k3py.server.api import encode, params, writes
from k3py.server.api.reads import Matcher, transition
from k3py.server.api.requestinfo import RequestInfo
from k3py.server.api.state import APIState
from k3py.server.api.subresources import bind_pod, to_scale
from k3py.server.datastore.types import Compacted, Event, Record, WatchCutOff
from k3py.server.registry import store as registry_store
from k3py.server.registry.catalog import Catalog, ResourceInfo
from k3py.server.registry.store import ObjectStore, WriteContext, now_rfc3339, object_schema

Obj = dict[str, Any]
log = logging.getLogger("k3py.inprocess")

_PATCH_TYPES = {
    "json": writes.JSON_PATCH,
    "merge": writes.MERGE_PATCH,
    "strategic": writes.STRATEGIC_PATCH,
    "apply": writes.APPLY_PATCH,
}
_PROPAGATION = (None, "Background", "Foreground", "Orphan")


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Server errors become the client's error tree, chained to the original."""
    try:
        yield
    except errors.APIError as e:
        raise client_errors.from_status(e.status()) from e


def copy_obj(obj: Any) -> Any:
    """A private deep copy of a JSON value (orjson round trip)."""
    try:
        return orjson.loads(orjson.dumps(obj))
    except TypeError as e:
        raise errors.bad_request(f"the object is not JSON: {e}") from e


def _not_served() -> errors.APIError:
    return errors.APIError(
        404, "NotFound", "the server could not find the requested resource", details={}
    )


async def _nobody(_: Any) -> None:
    return None


class InProcessTransport:
    """See the module notes.  ``with_identity`` gives a view acting as another user."""

    def __init__(
        self,
        *,
        store: ObjectStore,
        catalog: Catalog,
        clock: Callable[[], dt.datetime] | None = None,
        state: APIState | None = None,
        user: str = "system:admin",
        groups: tuple[str, ...] = ("system:masters",),
        field_manager: str = "k3py",
        bookmark_interval: float = 60.0,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.clock = clock or store.clock
        # The HTTP subresource helpers take the API state; unit tests need none.
        self.state = state or APIState(
            catalog=catalog, store=store, authenticate=_nobody, authorize=_nobody, clock=self.clock
        )
        self.user = user
        self.groups = groups
        self.field_manager = field_manager
        self.bookmark_interval = bookmark_interval

    @classmethod
    def from_state(cls, state: APIState, **kw: Any) -> InProcessTransport:
        return cls(store=state.store, catalog=state.catalog, clock=state.clock, state=state, **kw)

    def with_identity(
        self, *, user: str, groups: tuple[str, ...] = (), field_manager: str | None = None
    ) -> InProcessTransport:
        return InProcessTransport(
            store=self.store,
            catalog=self.catalog,
            clock=self.clock,
            state=self.state,
            user=user,
            groups=groups,
            field_manager=field_manager or self.field_manager,
            bookmark_interval=self.bookmark_interval,
        )

    async def close(self) -> None:
        return None

    # ---- pieces --------------------------------------------------------------

    def _info(self, res: Resource, *, namespace: str, verb: str) -> ResourceInfo:
        info = self.catalog.get(res.group, res.version, res.plural)
        if info is None or (namespace and not info.namespaced):
            raise _not_served()
        if info.virtual or verb not in info.verbs:
            raise errors.method_not_allowed()
        return info

    def _ctx(
        self, opts: WriteOptions, *, subresource: str = "", apply: bool = False
    ) -> WriteContext:
        return WriteContext(
            user=self.user,
            groups=self.groups,
            dry_run=opts.dry_run,
            field_manager=params.field_manager(
                {"fieldManager": opts.field_manager}, self.field_manager, required=apply
            ),
            field_validation=params.field_validation({"fieldValidation": opts.field_validation}),
            subresource=subresource,
        )

    def _done(self, obj: Obj, ctx: WriteContext) -> Obj:
        for w in ctx.warnings:
            log.warning("in-process write by %s: %s", self.user, w)
        out: Obj = copy_obj(obj)
        return out

    # ---- reads ---------------------------------------------------------------

    async def get(self, res: Resource, *, namespace: str, name: str, subresource: str = "") -> Obj:
        with translated():
            info = self._info(res, namespace=namespace, verb="get")
            if subresource not in ("", "status", "scale") or (
                subresource and subresource not in info.subresources
            ):
                raise _not_served()
            obj = await self.store.get(info, namespace, name)
            return to_scale(info, obj) if subresource == "scale" else obj

    async def list(self, res: Resource, *, namespace: str, opts: ListOptions) -> ObjectList:
        with translated():
            info = self._info(res, namespace=namespace, verb="list")
            matcher = _matcher(info, label=opts.label_selector, fields=opts.field_selector)
            page = await self.store.list(
                info,
                namespace,
                limit=min(max(opts.limit, 0), 1 << 31),
                continue_token=opts.continue_token,
                resource_version=opts.resource_version,
                resource_version_match=opts.resource_version_match,
                match=None if matcher.everything else matcher.matches,
            )
        return ObjectList(
            items=[r.obj() for r in page.records],
            resource_version=str(page.revision),
            continue_token=page.continue_token,
            kind=info.list_kind,
            api_version=info.group_version,
        )

    def watch(self, res: Resource, *, namespace: str, opts: WatchOptions) -> EventStream:
        return self._watch(res, namespace=namespace, opts=opts)

    async def _watch(
        self, res: Resource, *, namespace: str, opts: WatchOptions
    ) -> AsyncGenerator[WatchEvent, None]:
        with translated():
            info = self._info(res, namespace=namespace, verb="watch")
            matcher = _matcher(info, label=opts.label_selector, fields=opts.field_selector)
            initial, after = await self._watch_start(info, namespace, matcher, opts)
            try:
                w = self.store.ds.watch(info.prefix(namespace), after_revision=after)
            except Compacted as e:
                raise errors.gone(
                    f"too old resource version: {after} ({e.compact_revision})"
                ) from e
        try:
            for rec in initial:
                yield WatchEvent("ADDED", rec.obj())
            last = after
            deadline = time.monotonic() + opts.timeout_seconds if opts.timeout_seconds else None
            it = w.__aiter__()
            while True:
                try:
                    batch = await self._next_batch(
                        it, deadline=deadline, bookmarks=opts.allow_bookmarks
                    )
                except TimeoutError:
                    if deadline is not None and time.monotonic() >= deadline:
                        return
                    yield WatchEvent("BOOKMARK", _bookmark(info, last))
                    continue
                except (StopAsyncIteration, WatchCutOff):
                    return  # the consumer resumes from the last resourceVersion it saw
                for ev in batch:
                    last = ev.revision
                    seen = _seen(matcher, ev)
                    if seen is not None:
                        yield seen
        finally:
            await w.close()

    async def _watch_start(
        self, info: ResourceInfo, namespace: str, matcher: Matcher, opts: WatchOptions
    ) -> tuple[builtins.list[Record], int]:
        rv = opts.resource_version
        if rv in ("", "0"):
            page = await self.store.list(
                info, namespace, match=None if matcher.everything else matcher.matches
            )
            return page.records, page.revision
        try:
            after = int(rv)
        except ValueError as e:
            raise errors.bad_request(f'invalid resource version: "{rv}"') from e
        if not 0 <= after < 2**63:
            raise errors.bad_request(f'invalid resource version: "{rv}"')
        return [], after

    async def _next_batch(
        self, it: AsyncIterator[builtins.list[Event]], *, deadline: float | None, bookmarks: bool
    ) -> builtins.list[Event]:
        wait = self.bookmark_interval if bookmarks else None
        if deadline is not None:
            left = max(0.0, deadline - time.monotonic())
            wait = left if wait is None else min(wait, left)
        if wait is None:
            return await it.__anext__()
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
        # arrives as the inner call completes, and an informer being stopped then hangs.
        async with asyncio.timeout(wait):
            return await it.__anext__()

    # ---- writes --------------------------------------------------------------

    async def create(self, res: Resource, obj: Obj, *, namespace: str, opts: WriteOptions) -> Obj:
        with translated():
            info = self._info(res, namespace=namespace, verb="create")
            if info.namespaced and not namespace:
                raise errors.method_not_allowed()
            body = _body(copy_obj(obj))
            ctx = self._ctx(opts)
            writes.check_type_meta(info, body, allow_missing=info.crd is None)
            _place(info, body, namespace=namespace, drop_cluster_namespace=True)
            writes.check_fields(info, body, None, "application/json", ctx)
            created = await self.store.create(info, body, ctx=ctx)
        return self._done(created, ctx)

    async def update(
        self,
        res: Resource,
        obj: Obj,
        *,
        namespace: str,
        name: str,
        subresource: str = "",
        opts: WriteOptions,
    ) -> Obj:
        with translated():
            info = self._info(res, namespace=namespace, verb="update")
            _check_subresource(info, subresource, allowed=("status", "finalize"))
            body = _body(copy_obj(obj))
            ctx = self._ctx(opts, subresource=subresource)
            writes.check_type_meta(info, body, allow_missing=info.crd is None)
            _place(info, body, namespace=namespace, drop_cluster_namespace=False)
            writes.check_fields(info, body, None, "application/json", ctx)
            updated = await self.store.update(info, namespace, name, body, ctx=ctx)
        return self._done(updated, ctx)

    async def patch(
        self,
        res: Resource,
        body: Any,
        *,
        namespace: str,
        name: str,
        patch_type: PatchType,
        subresource: str = "",
        force: bool = False,
        opts: WriteOptions,
    ) -> Obj:
        with translated():
            info = self._info(res, namespace=namespace, verb="patch")
            _check_subresource(info, subresource, allowed=("status",))
            ptype = _PATCH_TYPES.get(patch_type)
            if ptype is None or (ptype == writes.STRATEGIC_PATCH and info.crd is not None):
                raise errors.unsupported_media_type(str(patch_type))
            doc = copy_obj(body)
            if ptype == writes.APPLY_PATCH:
                ctx = self._ctx(opts, subresource=subresource, apply=True)
                result = await self._apply(
                    info, doc, namespace=namespace, name=name, ctx=ctx, force=force
                )
            else:
                if force:
                    raise errors.invalid(
                        "PatchOptions",
                        "",
                        [{"reason": "FieldValueForbidden", "field": "force",
                          "message": "Forbidden: may not be specified for non-apply patch"}],
                        "meta.k8s.io",
                    )  # fmt: skip
                ctx = self._ctx(opts, subresource=subresource)
                result = await self._patch(
                    info, doc, ptype=ptype, namespace=namespace, name=name, ctx=ctx
                )
        return self._done(result, ctx)

    async def _patch(
        self,
        info: ResourceInfo,
        doc: Any,
        *,
        ptype: str,
        namespace: str,
        name: str,
        ctx: WriteContext,
    ) -> Obj:
        if ptype == writes.JSON_PATCH and not isinstance(doc, list):
            raise errors.bad_request(
                "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
            )
        if ptype != writes.JSON_PATCH and not isinstance(doc, dict):
            raise errors.bad_request("error decoding patch: patch must be a JSON object")
        ri = RequestInfo(path="", namespace=namespace, name=name, subresource=ctx.subresource)

        def mutate(current: Obj) -> Obj:
            new = writes.apply_patch(info, current, ptype, doc)
            new = writes._keep_identity(new, current, info, ri)  # noqa: SLF001 - shared step
            writes.check_fields(info, new, None, "application/json", ctx)
            return new

        meta = doc.get("metadata") if isinstance(doc, dict) else None
        patch_rv = isinstance(meta, dict) and bool(meta.get("resourceVersion"))
        return await self.store.modify(info, namespace, name, mutate, ctx=ctx, retry=not patch_rv)

    async def _apply(
        self,
        info: ResourceInfo,
        doc: Any,
        *,
        namespace: str,
        name: str,
        ctx: WriteContext,
        force: bool,
    ) -> Obj:
        """Server-side apply; mirrors the apply branch of ``api.writes.patch``."""
        from k3py.apimachinery import apply as ssa

        if not isinstance(doc, dict):
            raise errors.bad_request("error decoding patch: patch must be a JSON object")
        sub = ctx.subresource
        writes.check_type_meta(info, doc, allow_missing=False)
        meta = _body(doc)["metadata"]
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        meta["name"] = name
        if info.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        writes.check_fields(info, doc, None, "application/json", ctx)
        schema = object_schema(info)
        now = now_rfc3339(self.clock())
        manager = ctx.field_manager

        def do_apply(current: Obj | None) -> Obj:
            return ssa.apply(
                current, doc, manager=manager, force=force, schema=schema, now=now,
                subresource=sub, ignore_status=info.has_status and (not sub or current is None),
            )  # fmt: skip

        # The store must not track fields again: apply wrote managedFields itself.
        skip = WriteContext(
            user=ctx.user, groups=ctx.groups, dry_run=ctx.dry_run, field_manager="",
            field_validation=ctx.field_validation, warnings=ctx.warnings, subresource=sub,
        )  # fmt: skip
        return await self.store.modify(
            info,
            namespace,
            name,
            do_apply,
            ctx=skip,
            create_if_missing=None if sub else lambda: do_apply(None),
        )

    async def delete(
        self, res: Resource, *, namespace: str, name: str, opts: DeleteOptions
    ) -> Obj | None:
        with translated():
            info = self._info(res, namespace=namespace, verb="delete")
            if (
                info.group == ""
                and info.plural == "namespaces"
                and name in writes.IMMORTAL_NAMESPACES
            ):
                raise errors.APIError(
                    403, "Forbidden",
                    f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                    details={"name": name, "kind": "namespaces"},
                )  # fmt: skip
            obj, deleted = await self.store.delete(
                info, namespace, name, opts=_server_delete_options(opts)
            )
        return None if deleted else copy_obj(obj)

    async def create_subresource(
        self,
        res: Resource,
        body: Obj,
        *,
        namespace: str,
        name: str,
        subresource: str,
        opts: WriteOptions,
    ) -> Obj:
        with translated():
            info = self._info(res, namespace=namespace, verb="create")
            _check_subresource(info, subresource, allowed=("binding", "eviction"))
            doc = _body(copy_obj(body))
            ctx = self._ctx(opts, subresource=subresource)
            if subresource == "binding":
                target = name or doc["metadata"].get("name", "")
                await bind_pod(self.state, namespace=namespace, name=target, body=doc, ctx=ctx)
            else:
                await self._evict(
                    info, namespace=namespace, name=name, body=doc, dry_run=opts.dry_run
                )
        return encode.success_status()

    async def _evict(
        self, info: ResourceInfo, *, namespace: str, name: str, body: Obj, dry_run: bool
    ) -> None:
        """Mirrors ``api.subresources.eviction``."""
        d = body.get("deleteOptions") or {}
        opts = registry_store.DeleteOptions(dry_run=dry_run or bool(d.get("dryRun")))
        if d.get("gracePeriodSeconds") is not None:
            opts.grace_period_seconds = int(d["gracePeriodSeconds"])
        checker = self.state.caches.get("eviction_check")
        if checker is not None:
            await checker(namespace, name, dry_run=opts.dry_run)
        await self.store.delete(info, namespace, name, opts=opts)


# ---- helpers ------------------------------------------------------------------


def _matcher(info: ResourceInfo, *, label: str, fields: str) -> Matcher:
    return Matcher(info, {"labelSelector": label, "fieldSelector": fields})


def _seen(matcher: Matcher, ev: Event) -> WatchEvent | None:
    seen = transition(matcher, ev)
    if seen is None:
        return None
    etype, obj = seen
    return WatchEvent(cast(EventType, etype), obj if obj is not None else orjson.loads(ev.value))


def _bookmark(info: ResourceInfo, revision: int) -> Obj:
    return {
        "kind": info.kind,
        "apiVersion": info.group_version,
        "metadata": {"resourceVersion": str(revision)},
    }


def _body(obj: Any) -> Obj:
    if not isinstance(obj, dict):
        raise errors.bad_request("the request body must be a JSON object")
    meta = obj.setdefault("metadata", {})
    if meta is None:
        meta = obj["metadata"] = {}
    if not isinstance(meta, dict):
        raise errors.bad_request("metadata must be an object")
    return obj


def _place(info: ResourceInfo, obj: Obj, *, namespace: str, drop_cluster_namespace: bool) -> None:
    """The body's namespace must be the request's (as the HTTP create/update handlers)."""
    meta = obj["metadata"]
    if info.namespaced:
        ns = meta.get("namespace")
        if ns and ns != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        meta["namespace"] = namespace
    elif drop_cluster_namespace:
        meta.pop("namespace", None)


def _check_subresource(info: ResourceInfo, subresource: str, *, allowed: tuple[str, ...]) -> None:
    if not subresource:
        return
    if subresource not in info.subresources:
        raise _not_served()
    if subresource not in allowed:
        raise errors.method_not_allowed(
            f"{info.plural}/{subresource} is not served by the in-process transport"
        )


def _server_delete_options(opts: DeleteOptions) -> registry_store.DeleteOptions:
    """Checked like ``api.writes._delete_options`` checks a request's."""
    if opts.propagation_policy not in _PROPAGATION:
        raise errors.invalid(
            "DeleteOptions", "",
            [{"reason": "FieldValueNotSupported", "field": "propagationPolicy",
              "message": f'Unsupported value: "{opts.propagation_policy}": supported values: '
                         '"Foreground", "Background", "Orphan", "nil"'}],
            "meta.k8s.io",
        )  # fmt: skip
    grace = opts.grace_period_seconds
    return registry_store.DeleteOptions(
        grace_period_seconds=1 if grace is not None and grace < 0 else grace,
        propagation_policy=opts.propagation_policy,
        preconditions_uid=opts.preconditions_uid,
        preconditions_rv=opts.preconditions_resource_version,
        dry_run=opts.dry_run,
    )


if TYPE_CHECKING:

    def _implements_transport(t: InProcessTransport) -> Transport:
        return t  # mypy checks the protocol here
