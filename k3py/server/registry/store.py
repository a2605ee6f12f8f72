"""The generic object store: resource semantics between the API and the datastore.

Every write goes through the same steps, in upstream's order:

    decode (API layer) → prepare (uid, timestamps, status split, generation)
    → defaults → admission (namespace lifecycle, allocators) → validation
    → managedFields → datastore (optimistic concurrency) → watchers

This module knows nothing of HTTP: the aiohttp handlers and the in-process
client both call it.  Objects handed out are always fresh dicts decoded from the
stored bytes, never shared.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from k3py.server import errors
from k3py.server.datastore.types import (
    Compacted,
    Datastore,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    Record,
    RevisionMismatch,
)
from k3py.server.registry import schema as schemas
from k3py.server.registry import strategies
from k3py.server.registry.catalog import ResourceInfo

Obj = dict[str, Any]

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
MAX_GENERATE_ATTEMPTS = 8
MAX_PATCH_ATTEMPTS = 16


def now_rfc3339(now: dt.datetime | None = None) -> str:
    t = now or dt.datetime.now(dt.UTC)
    if t.year >= 1000:  # isoformat is several times cheaper than strftime; same text
        return t.isoformat(timespec="seconds")[:19] + "Z"
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class WriteContext:
    """Who writes and how: what the API layer learned from the request."""

    user: str = "system:admin"
    groups: tuple[str, ...] = ("system:masters",)
    dry_run: bool = False
    field_manager: str = ""
    field_validation: str = "Strict"  # Ignore | Warn | Strict
    warnings: list[str] = field(default_factory=list)
    subresource: str = ""


@dataclass
class DeleteOptions:
    grace_period_seconds: int | None = None
    propagation_policy: str | None = None  # Background | Foreground | Orphan
    preconditions_uid: str | None = None
    preconditions_rv: str | None = None
    dry_run: bool = False


@dataclass
class ListPage:
    records: list[Record]
    revision: int
    continue_token: str
    remaining: int | None


Admit = Callable[[ResourceInfo, Obj, Obj | None, WriteContext], Awaitable[None]]
AfterWrite = Callable[[ResourceInfo, Obj, bool], Awaitable[None]]


def encode_continue(*, revision: int, start: str) -> str:
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": start})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    try:
        pad = "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(token + pad))
        rv, start = int(data["rv"]), str(data["start"])
        if data.get("v") != "meta.k8s.io/v1" or rv <= 0:
            raise ValueError("bad continue token")
        return rv, start
    except Exception as e:  # noqa: BLE001 - any decoding failure is the client's
        raise errors.bad_request(f"continue key is not valid: {e}") from e


class ObjectStore:
    def __init__(
        self,
        *,
        datastore: Datastore,
        admit: list[Admit] | None = None,
        after_write: list[AfterWrite] | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.ds = datastore
        self.admit = admit or []
        self.after_write = after_write or []
        self.clock = clock

    # ---- reads -------------------------------------------------------------

    async def get_record(self, info: ResourceInfo, namespace: str, name: str) -> Record:
        rec = await self.ds.get(info.key(namespace, name))
        if rec is None:
            raise errors.not_found(info.plural, name, info.group)
        return rec

    async def get(self, info: ResourceInfo, namespace: str, name: str) -> Obj:
        return (await self.get_record(info, namespace, name)).obj()

    async def list(
        self,
        info: ResourceInfo,
        namespace: str,
        *,
        limit: int = 0,
        continue_token: str = "",
        resource_version: str = "",
        resource_version_match: str = "",
        match: Callable[[Record], bool] | None = None,
    ) -> ListPage:
        prefix = info.prefix(namespace)
        revision = 0
        start_after = ""
        if continue_token:
            revision, rel = decode_continue(continue_token)
            start_after = prefix + rel
        elif resource_version and resource_version_match == "Exact":
            revision = _parse_rv(resource_version)
        try:
            return await self._list_filtered(
                prefix=prefix, start_after=start_after, limit=limit, revision=revision, match=match
            )
        except Compacted as e:
            if continue_token:
                raise errors.gone(
                    "The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter, or use the "
                    "continue token in this response to retrieve the remainder of the results. "
                    "Continuing with the provided token results in an inconsistent list - objects "
                    "that were created, modified, or deleted between the time the first chunk was "
                    "returned and now may show up in the list."
                ) from e
            raise errors.gone(f"too old resource version: {revision} ({e.compact_revision})") from e
        except FutureRevision as e:
            current = self.ds.current_revision()
            cause = {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
            raise errors.APIError(
                504,
                "Timeout",
                f"Timeout: Too large resource version: {revision}, current: {current}",
                details={"causes": [cause], "retryAfterSeconds": 1},
            ) from e

    async def _list_filtered(
        self,
        *,
        prefix: str,
        start_after: str,
        limit: int,
        revision: int,
        match: Callable[[Record], bool] | None,
    ) -> ListPage:
        out: list[Record] = []
        rev = revision
        cursor = start_after
        while True:
            batch = limit - len(out) if limit else 0
            if match is not None and limit:
                batch = max(batch, 500)
            res = await self.ds.list(prefix, start_after=cursor, limit=batch, revision=rev)
            rev = res.revision
            if match is None and not limit and not out and not res.more:
                return ListPage(list(res.records), rev, "", None)  # the whole list at once
            for i, rec in enumerate(res.records):
                if match is None or match(rec):
                    out.append(rec)
                    if limit and len(out) >= limit:
                        more = res.more or i < len(res.records) - 1
                        token = (
                            encode_continue(revision=rev, start=rec.key[len(prefix) :])
                            if more
                            else ""
                        )
                        return ListPage(out, rev, token, None)
            if not res.more or not res.records:
                return ListPage(out, rev, "", None)
            cursor = res.records[-1].key

    # ---- creates -----------------------------------------------------------

    async def create(self, info: ResourceInfo, obj: Obj, *, ctx: WriteContext) -> Obj:
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if meta.get("resourceVersion"):
            raise errors.bad_request("resourceVersion should not be set on objects to be created")
        now = now_rfc3339(self.clock())
        self._prepare_create(info, obj, now=now)
        await self._run_admission(info, obj, None, ctx)
        self._validate(info, obj, None)
        self._track_fields(info, None, obj, ctx=ctx, now=now)
        meta = obj["metadata"]  # _track_fields replaces the metadata dict
        generated = not meta.get("name") and bool(meta.get("generateName"))
        for _attempt in range(MAX_GENERATE_ATTEMPTS):
            if generated:
                meta["name"] = meta["generateName"] + "".join(random.choices(_NAME_CHARS, k=5))
            if ctx.dry_run:
                if await self.ds.get(info.key(meta.get("namespace", ""), meta["name"])):
                    raise errors.already_exists(info.plural, meta["name"], info.group)
                return obj
            try:
                rec = await self.ds.create(info.key(meta.get("namespace", ""), meta["name"]), obj)
                return await self._after(info, rec.obj(), deleted=False)
            except KeyExists as e:
                if not generated:
                    raise errors.already_exists(info.plural, meta["name"], info.group) from e
        raise errors.APIError(
            409, "AlreadyExists", f"failed to generate a unique name for {info.plural}"
        )

    def _prepare_create(self, info: ResourceInfo, obj: Obj, *, now: str) -> None:
        meta = obj["metadata"]
        obj["apiVersion"] = info.group_version
        obj["kind"] = info.kind
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now
        meta["generation"] = 1
        for f in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(f, None)
        _omit_empty_meta(meta)
        if not meta.get("name") and not meta.get("generateName"):
            # Validation reports it; give it something to key on meanwhile.
            meta["name"] = ""
        strategies.initial_status(
            info.group, info.kind, obj, has_status=info.has_status, custom=info.crd is not None
        )
        strategies.template_generation(info.group, info.kind, obj, None)
        self._defaults(info, obj)

    # ---- updates -----------------------------------------------------------

    async def update(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        obj: Obj,
        *,
        ctx: WriteContext,
        old_record: Record | None = None,
        force_unconditional: bool = False,
    ) -> Obj:
        """PUT semantics: replace the object (or its status with ctx.subresource == 'status')."""
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        meta["name"] = name
        rec = old_record or await self.ds.get(info.key(namespace, name))
        if rec is None:
            raise errors.not_found(info.plural, name, info.group)
        expected = rec.revision
        rv = meta.get("resourceVersion")
        if rv and not force_unconditional:
            if _parse_rv(rv) != rec.revision:
                raise errors.conflict(info.plural, name, info.group)
        old = rec.obj()
        new = self._prepare_update(info, obj, old, ctx=ctx)
        await self._run_admission(info, new, old, ctx)
        if ctx.subresource != "binding":  # upstream's binding writes storage directly
            self._validate(info, new, old)
        now = now_rfc3339(self.clock())
        self._track_fields(info, old, new, ctx=ctx, now=now)
        return await self._commit_update(
            info, namespace, name, new, old, expected=expected, ctx=ctx
        )

    def _prepare_update(self, info: ResourceInfo, obj: Obj, old: Obj, *, ctx: WriteContext) -> Obj:
        if ctx.subresource == "status":
            new = strategies.status_only(obj, old, group=info.group, kind=info.kind)
        else:
            new = obj
            if info.has_status and ctx.subresource != "binding":
                strategies.carry_status(new, old)
        new["apiVersion"] = info.group_version
        new["kind"] = info.kind
        meta = new["metadata"]
        old_meta = old["metadata"]
        for f in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if f in old_meta:
                meta[f] = old_meta[f]
            else:
                meta.pop(f, None)
        if "namespace" in old_meta:
            meta["namespace"] = old_meta["namespace"]
        meta.pop("resourceVersion", None)
        _omit_empty_meta(meta)
        if info.crd is None and ctx.subresource not in ("status", "finalize"):
            # /status and /finalize own what the main endpoint's preparer restores
            # (a Namespace's status and spec.finalizers); the rest is from ``old``.
            from k3py.server.registry import defaults

            defaults.prepare_for_update(info.group, info.kind, new, old)
        self._defaults(info, new)
        if ctx.subresource != "status":
            strategies.template_generation(info.group, info.kind, new, old)
        generation = int(old_meta.get("generation") or 1)
        if ctx.subresource != "status" and strategies.spec_changed(
            new, old, group=info.group, kind=info.kind
        ):
            generation += 1
        meta["generation"] = generation
        return new

    async def _commit_update(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        new: Obj,
        old: Obj,
        *,
        expected: int,
        ctx: WriteContext,
    ) -> Obj:
        meta = new["metadata"]
        if (
            meta.get("deletionTimestamp")
            and not meta.get("finalizers")
            and not _pending_grace(info, new)
        ):
            # The last finalizer is gone: the object goes now.
            if ctx.dry_run:
                return new
            try:
                rec = await self.ds.delete(info.key(namespace, name), expected_revision=expected)
            except RevisionMismatch as e:
                raise errors.conflict(info.plural, name, info.group) from e
            except KeyNotFound as e:
                raise errors.not_found(info.plural, name, info.group) from e
            return await self._after(info, rec.obj(), deleted=True)
        if new == old or _same_but_rv(new, old):
            # A no-op write keeps the resourceVersion, as upstream.
            return old
        if ctx.dry_run:
            meta["resourceVersion"] = str(expected)
            return new
        try:
            rec = await self.ds.update(info.key(namespace, name), new, expected_revision=expected)
        except RevisionMismatch as e:
            raise errors.conflict(info.plural, name, info.group) from e
        except KeyNotFound as e:
            raise errors.not_found(info.plural, name, info.group) from e
        return await self._after(info, rec.obj(), deleted=False)

    async def _after(self, info: ResourceInfo, obj: Obj, *, deleted: bool) -> Obj:
        for hook in self.after_write:
            await hook(info, obj, deleted)
        return obj

    async def modify(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        mutate: Callable[[Obj], Obj | Awaitable[Obj]],
        *,
        ctx: WriteContext,
        create_if_missing: Callable[[], Obj] | None = None,
        retry: bool = True,
    ) -> Obj:
        """Read-modify-write with retries on conflicts (patch and apply use this)."""
        for _attempt in range(MAX_PATCH_ATTEMPTS):
            rec = await self.ds.get(info.key(namespace, name))
            if rec is None:
                if create_if_missing is None:
                    raise errors.not_found(info.plural, name, info.group)
                obj = create_if_missing()
                obj.setdefault("metadata", {})["name"] = name
                if info.namespaced:
                    obj["metadata"]["namespace"] = namespace
                try:
                    return await self.create(info, obj, ctx=ctx)
                except errors.APIError as e:
                    if e.reason == "AlreadyExists" and retry:
                        continue
                    raise
            current = rec.obj()
            result = mutate(current)
            new = await result if asyncio.iscoroutine(result) else result
            assert isinstance(new, dict)
            new_meta = new.setdefault("metadata", {})
            if not isinstance(new_meta, dict):
                raise errors.bad_request("metadata must be an object")
            rv = new_meta.get("resourceVersion")
            if rv and _parse_rv(rv) != rec.revision:
                raise errors.conflict(info.plural, name, info.group)
            new_meta["resourceVersion"] = str(rec.revision)
            try:
                return await self.update(info, namespace, name, new, ctx=ctx, old_record=rec)
            except errors.APIError as e:
                if e.reason == "Conflict" and retry and not rv and e.code == 409:
                    continue
                raise
        raise errors.conflict(info.plural, name, info.group, "too many concurrent updates")

    # ---- deletes -----------------------------------------------------------

    async def delete(
        self, info: ResourceInfo, namespace: str, name: str, *, opts: DeleteOptions
    ) -> tuple[Obj, bool]:
        """Returns (object, deleted_now).  With finalizers or a grace period the object
        stays, marked with deletionTimestamp, and deleted_now is False."""
        for _attempt in range(MAX_PATCH_ATTEMPTS):
            rec = await self.get_record(info, namespace, name)
            obj = rec.obj()
            meta = obj["metadata"]
            if opts.preconditions_uid and meta.get("uid") != opts.preconditions_uid:
                raise errors.conflict(
                    info.plural,
                    name,
                    info.group,
                    f"Precondition failed: UID in precondition: {opts.preconditions_uid}, UID in object meta: {meta.get('uid')}",
                )
            if opts.preconditions_rv and _parse_rv(opts.preconditions_rv) != rec.revision:
                raise errors.conflict(
                    info.plural,
                    name,
                    info.group,
                    f"Precondition failed: ResourceVersion in precondition: {opts.preconditions_rv}, ResourceVersion in object meta: {rec.revision}",
                )
            finalizers = list(meta.get("finalizers") or [])
            policy = opts.propagation_policy
            if policy == "Orphan" and "orphan" not in finalizers:
                finalizers.append("orphan")
            elif policy == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            grace = strategies.graceful_period(
                info.group, info.kind, obj, opts.grace_period_seconds
            )
            if info.kind == "Namespace" and info.group == "":
                finalizers_spec = (obj.get("spec") or {}).get("finalizers") or []
                if finalizers_spec:
                    grace = -1  # the namespace controller finishes it
            if not finalizers and grace == 0:
                if opts.dry_run:
                    return obj, True
                try:
                    gone = await self.ds.delete(
                        info.key(namespace, name), expected_revision=rec.revision
                    )
                except RevisionMismatch:
                    continue
                except KeyNotFound as e:
                    raise errors.not_found(info.plural, name, info.group) from e
                return await self._after(info, gone.obj(), deleted=True), True
            # Graceful: mark it and leave it to finalizers / the kubelet / controllers.
            now = self.clock()
            if meta.get("deletionTimestamp"):
                old_grace = meta.get("deletionGracePeriodSeconds")
                if grace >= 0 and old_grace is not None and grace < int(old_grace):
                    meta["deletionGracePeriodSeconds"] = grace
                    meta["deletionTimestamp"] = now_rfc3339(now + dt.timedelta(seconds=grace))
                elif finalizers == list(meta.get("finalizers") or []):
                    return obj, False
            else:
                g = max(grace, 0)
                meta["deletionTimestamp"] = now_rfc3339(now + dt.timedelta(seconds=g))
                meta["deletionGracePeriodSeconds"] = g
                meta["generation"] = int(meta.get("generation") or 1) + 1
                if info.kind == "Namespace" and info.group == "":
                    obj.setdefault("status", {})["phase"] = "Terminating"
            if finalizers:
                meta["finalizers"] = finalizers
            if opts.dry_run:
                return obj, False
            try:
                rec2 = await self.ds.update(
                    info.key(namespace, name), obj, expected_revision=rec.revision
                )
            except RevisionMismatch:
                continue
            return await self._after(info, rec2.obj(), deleted=False), False
        raise errors.conflict(info.plural, name, info.group, "too many concurrent updates")

    # ---- pieces ------------------------------------------------------------

    def _defaults(self, info: ResourceInfo, obj: Obj) -> None:
        if info.crd is not None:
            from k3py.server.registry import structural

            sch = crd_schema(info)
            if sch:
                structural.apply_defaults(obj, sch)
            return
        from k3py.server.registry import defaults

        defaults.apply_defaults(info.group, info.kind, obj)

    async def _run_admission(
        self, info: ResourceInfo, obj: Obj, old: Obj | None, ctx: WriteContext
    ) -> None:
        for hook in self.admit:
            await hook(info, obj, old, ctx)

    def _validate(self, info: ResourceInfo, obj: Obj, old: Obj | None) -> None:
        name = (obj.get("metadata") or {}).get("name") or ""
        if info.crd is not None:
            from k3py.server.registry import structural

            causes = _custom_meta_causes(info, obj, old)
            sch = crd_schema(info)
            if sch:
                causes += structural.validate_custom(obj, sch)
        else:
            from k3py.server.registry import validation

            # Request bodies were type-checked by the API layer's decoder.
            causes = validation.validate(
                info.group, info.kind, obj, old=old, namespaced=info.namespaced, typed=True
            )
        if causes:
            raise errors.invalid(info.kind, name, causes, info.group)

    def _track_fields(
        self, info: ResourceInfo, old: Obj | None, new: Obj, *, ctx: WriteContext, now: str
    ) -> None:
        if not ctx.field_manager or ctx.subresource == "apply":
            return
        from k3py.apimachinery import managedfields

        updated = managedfields.update_managed_fields(
            old,
            new,
            manager=ctx.field_manager,
            operation="Update",
            schema=object_schema(info),
            now=now,
            subresource=ctx.subresource if ctx.subresource in ("status", "scale") else "",
            ignore_status=info.has_status and ctx.subresource != "status",
        )
        new["metadata"] = updated["metadata"]


def object_schema(info: ResourceInfo) -> dict[str, Any]:
    if info.crd is not None:
        return crd_schema(info) or {}
    return schemas.schema_for_kind(info.group, info.version, info.kind) or {}


def crd_schema(info: ResourceInfo) -> dict[str, Any] | None:
    if info.crd is None:
        return None
    sch = (info.crd.get("schema") or {}).get("openAPIV3Schema")
    return sch if isinstance(sch, dict) else None


def _custom_meta_causes(info: ResourceInfo, obj: Obj, old: Obj | None) -> list[errors.Cause]:
    from k3py.apimachinery import names

    meta = obj.get("metadata") or {}
    causes: list[errors.Cause] = []
    name = meta.get("name") or ""
    if not name:
        causes.append(
            {
                "reason": "FieldValueRequired",
                "message": "Required value: name or generateName is required",
                "field": "metadata.name",
            }
        )
    else:
        for m in names.check_dns1123_subdomain(name):
            causes.append(
                {
                    "reason": "FieldValueInvalid",
                    "message": f'Invalid value: "{name}": {m}',
                    "field": "metadata.name",
                }
            )
    for k, v in (meta.get("labels") or {}).items():
        for m in names.check_qualified_name(k):
            causes.append(
                {
                    "reason": "FieldValueInvalid",
                    "message": f'Invalid value: "{k}": {m}',
                    "field": "metadata.labels",
                }
            )
        for m in names.check_label_value(str(v)):
            causes.append(
                {
                    "reason": "FieldValueInvalid",
                    "message": f'Invalid value: "{v}": {m}',
                    "field": "metadata.labels",
                }
            )
    return causes


_OMIT_EMPTY_META = ("labels", "annotations", "finalizers", "ownerReferences")


def _omit_empty_meta(meta: Obj) -> None:
    """ObjectMeta's maps and lists are ``omitempty`` in Go: one emptied by a patch
    (``kubectl label x key-`` leaves ``labels: {}``) disappears, as upstream."""
    for f in _OMIT_EMPTY_META:
        if f in meta and not meta[f]:
            del meta[f]


def _pending_grace(info: ResourceInfo, obj: Obj) -> bool:
    """A pod being gracefully deleted waits for its kubelet even without finalizers."""
    meta = obj["metadata"]
    if info.kind == "Namespace" and info.group == "":
        return bool((obj.get("spec") or {}).get("finalizers"))
    return (
        info.kind == "Pod"
        and info.group == ""
        and int(meta.get("deletionGracePeriodSeconds") or 0) > 0
    )


def _same_but_rv(new: Obj, old: Obj) -> bool:
    a = dict(new)
    b = dict(old)
    am = dict(a.get("metadata") or {})
    bm = dict(b.get("metadata") or {})
    am.pop("resourceVersion", None)
    bm.pop("resourceVersion", None)
    a["metadata"] = am
    b["metadata"] = bm
    return a == b


def _parse_rv(rv: Any) -> int:
    try:
        n = int(rv)
        if n < 0:
            raise ValueError
        return n
    except (TypeError, ValueError) as e:
        raise errors.bad_request(f"invalid resource version: {rv!r}".replace("'", '"')) from e
