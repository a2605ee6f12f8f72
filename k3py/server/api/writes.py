"""POST, PUT, PATCH and DELETE handlers: decode, check, then hand to the store."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from k3py.server import errors
from k3py.server.api import encode, params
from k3py.server.api.negotiate import Output
from k3py.server.api.requestinfo import RequestInfo
from k3py.server.api.state import USER, APIState
from k3py.server.registry import decode as body_decode
from k3py.server.registry import protobuf
from k3py.server.registry.catalog import ResourceInfo
from k3py.server.registry.store import (
    DeleteOptions,
    WriteContext,
    crd_schema,
    now_rfc3339,
    object_schema,
)

Obj = dict[str, Any]

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
_BODY_TYPES = ("application/json", "application/yaml")

# Kinds whose DELETE answers with the object itself rather than a Status.
_RETURNS_DELETED = {("", "pods"), ("", "services"), ("", "namespaces")}


def media_type(request: web.Request) -> str:
    ct = request.headers.get("Content-Type", "")
    return ct.split(";", 1)[0].strip().lower()


async def read_body(request: web.Request, st: APIState) -> bytes:
    limit = st.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise errors.too_large()
    chunks = []
    size = 0
    while True:
        chunk = await request.content.read(65536)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise errors.too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def write_context(request: web.Request, st: APIState, ri: RequestInfo, *, apply: bool = False) -> WriteContext:
    q = request.query
    user = request.get(USER)
    return WriteContext(
        user=getattr(user, "name", "system:admin"),
        groups=tuple(getattr(user, "groups", ()) or ()),
        dry_run=params.dry_run(q),
        field_manager=params.field_manager(q, request.headers.get("User-Agent", ""), required=apply),
        field_validation=params.field_validation(q),
        subresource=ri.subresource,
    )


def _decode_object(raw: bytes, ctype: str) -> Obj:
    ctype = ctype or "application/json"  # no Content-Type: the first supported type
    if ctype == protobuf.MEDIA_TYPE:
        return protobuf.decode_object(raw, expected_gvk=None)
    if ctype not in _BODY_TYPES:
        raise errors.unsupported_media_type(ctype)
    obj = body_decode.decode_body(raw, ctype)
    if not isinstance(obj, dict):
        raise errors.bad_request("Object 'Kind' is missing in '" + raw[:64].decode("utf-8", "replace") + "'")
    return obj


def check_type_meta(info: ResourceInfo, obj: Obj, *, allow_missing: bool) -> None:
    """The body's apiVersion/kind must name this endpoint's kind."""
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if not api_version and not kind and allow_missing:
        return
    if kind is not None and kind != info.kind:
        raise errors.bad_request(
            f"the kind in the data ({kind}) does not match the expected kind ({info.kind})" if kind else "Object 'Kind' is missing"
        )
    if api_version is not None and api_version != info.group_version:
        # Other served versions of the same resource are not converted (yet).
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version ({info.group_version})"
        )
    if not kind and not allow_missing:
        raise errors.bad_request("Object 'Kind' is missing in " + orjson.dumps(obj)[:200].decode())


def check_fields(info: ResourceInfo, obj: Obj, raw: bytes | None, ctype: str, ctx: WriteContext) -> None:
    """Unknown and duplicate fields per fieldValidation; wrong types always fail.

    Unknown fields are dropped (custom resources: pruned) whatever the mode, as
    upstream's decoder does; Strict refuses them, Warn reports them in headers."""
    if info.crd is not None:
        sch = crd_schema(info)
        unknown = _prune_custom(obj, sch) if sch else []
    else:
        sch = object_schema(info)
        type_errs = body_decode.type_errors(obj, sch)
        if type_errs:
            raise body_decode.decode_error(kind=info.kind, version=info.version, message=type_errs[0])
        unknown = body_decode.drop_unknown_zero_nulls(obj, sch) if sch else []
    if ctx.field_validation == "Ignore":
        return
    protobuf_body = ctype == protobuf.MEDIA_TYPE  # no JSON keys, so no duplicates
    duplicate = body_decode.find_duplicate_fields(raw, ctype) if raw is not None and not protobuf_body else []
    problems = body_decode.strict_problems(unknown=unknown, duplicate=duplicate)
    if not problems:
        return
    if ctx.field_validation == "Strict":
        raise body_decode.strict_error(kind=info.kind, version=info.version, problems=problems)
    ctx.warnings.extend(problems)


def _prune_custom(obj: Obj, sch: dict[str, Any]) -> list[str]:
    from k3py.server.registry import structural

    return structural.prune(obj, sch)


def _warning_headers(ctx: WriteContext) -> Any:
    if not ctx.warnings:
        return None
    from multidict import CIMultiDict

    headers: CIMultiDict[str] = CIMultiDict()
    for value in body_decode.warning_headers(ctx.warnings):
        headers.add("Warning", value)
    return headers


def _respond(obj: Obj, status: int, ctx: WriteContext) -> web.Response:
    return encode.json_response(obj, status=status, headers=_warning_headers(ctx))


async def create(request: web.Request, st: APIState, ri: RequestInfo, info: ResourceInfo, out: Output) -> web.StreamResponse:
    if info.namespaced and not ri.namespace:
        raise errors.method_not_allowed()
    raw = await read_body(request, st)
    # No Content-Type means the first supported media type (upstream's negotiation).
    ctype = media_type(request) or "application/json"
    ctx = write_context(request, st, ri)
    obj = _decode_object(raw, ctype)
    # Built-ins decode with the endpoint's kind as default (upstream gvkWithDefaults);
    # custom resources go through the unstructured decoder, which needs both.
    check_type_meta(info, obj, allow_missing=info.crd is None)
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    if not isinstance(meta, dict):
        raise errors.bad_request("metadata must be an object")
    if info.namespaced:
        ns = meta.get("namespace")
        if ns and ns != ri.namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
        meta["namespace"] = ri.namespace
    else:
        meta.pop("namespace", None)
    check_fields(info, obj, raw, ctype, ctx)
    created = await st.store.create(info, obj, ctx=ctx)
    return _respond(created, 201, ctx)


async def update(request: web.Request, st: APIState, ri: RequestInfo, info: ResourceInfo, out: Output) -> web.StreamResponse:
    raw = await read_body(request, st)
    # No Content-Type means the first supported media type (upstream's negotiation).
    ctype = media_type(request) or "application/json"
    ctx = write_context(request, st, ri)
    obj = _decode_object(raw, ctype)
    check_type_meta(info, obj, allow_missing=info.crd is None)
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise errors.bad_request("metadata must be an object")
    if info.namespaced:
        ns = meta.get("namespace")
        if ns and ns != ri.namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
        meta["namespace"] = ri.namespace
    check_fields(info, obj, raw, ctype, ctx)
    updated = await st.store.update(info, ri.namespace, ri.name, obj, ctx=ctx)
    return _respond(updated, 200, ctx)


def _parse_patch(raw: bytes, ptype: str) -> Any:
    try:
        doc = orjson.loads(raw) if ptype != APPLY_PATCH else body_decode.decode_body(raw, "application/yaml")
    except errors.APIError:
        raise
    except orjson.JSONDecodeError as e:
        raise errors.bad_request(f"error decoding patch: {e}") from e
    if ptype == JSON_PATCH and not isinstance(doc, list):
        raise errors.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    if ptype != JSON_PATCH and not isinstance(doc, dict):
        raise errors.bad_request("error decoding patch: patch must be a JSON object")
    return doc


def apply_patch(info: ResourceInfo, current: Obj, ptype: str, doc: Any) -> Obj:
    from k3py.apimachinery import jsonpatch, mergepatch, strategic

    if ptype == JSON_PATCH:
        return jsonpatch.apply_patch(current, doc)
    if ptype == MERGE_PATCH:
        return mergepatch.merge_patch(current, doc)
    try:
        return strategic.strategic_merge(current, doc, object_schema(info))
    except errors.APIError as e:
        if e.code != 500:
            raise
        # Upstream answers 500 for a malformed patch; it is the client's error (400).
        raise errors.bad_request(e.message) from None


def _keep_identity(new: Obj, current: Obj, info: ResourceInfo, ri: RequestInfo) -> Obj:
    meta = new.get("metadata")
    if not isinstance(meta, dict):
        raise errors.bad_request("metadata must be an object")
    if meta.get("name", ri.name) != ri.name:
        raise errors.bad_request(
            f"the name of the object ({meta.get('name')}) does not match the name on the URL ({ri.name})"
        )
    meta["name"] = ri.name
    if info.namespaced:
        meta["namespace"] = ri.namespace
    new["apiVersion"] = current.get("apiVersion", info.group_version)
    new["kind"] = current.get("kind", info.kind)
    return new


def _patch_duplicates(info: ResourceInfo, raw: bytes, ptype: str, ctx: WriteContext) -> None:
    """Keys given twice in the patch itself (upstream decodes patches strictly too)."""
    dups = body_decode.find_duplicate_fields(raw, "application/json")
    if not dups:
        return
    prefix = "json patch " if ptype == JSON_PATCH else ""
    problems = [prefix + p for p in body_decode.strict_problems(unknown=[], duplicate=dups)]
    if ctx.field_validation == "Strict":
        raise body_decode.strict_error(kind=info.kind, version=info.version, problems=problems)
    ctx.warnings.extend(problems)


async def patch(request: web.Request, st: APIState, ri: RequestInfo, info: ResourceInfo, out: Output) -> web.StreamResponse:
    ptype = media_type(request)
    if ptype not in (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH):
        raise errors.APIError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types include: {JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}, {STRATEGIC_PATCH}",
        )
    if ptype == STRATEGIC_PATCH and info.crd is not None:
        raise errors.APIError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types include: {JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}",
        )
    raw = await read_body(request, st)
    is_apply = ptype == APPLY_PATCH
    ctx = write_context(request, st, ri, apply=is_apply)
    doc = _parse_patch(raw, ptype)
    if not is_apply and ctx.field_validation != "Ignore":
        _patch_duplicates(info, raw, ptype, ctx)
    force = params.parse_bool(request.query, "force")
    if "force" in request.query and not is_apply:
        # ValidatePatchOptions: any force (even false) on a non-apply patch is invalid.
        cause: errors.Cause = {
            "reason": "FieldValueForbidden",
            "message": "Forbidden: may not be specified for non-apply patch",
            "field": "force",
        }
        raise errors.invalid("PatchOptions", "", [cause], "meta.k8s.io")
    created = False
    if is_apply:
        check_type_meta(info, doc, allow_missing=False)
        doc.setdefault("metadata", {})
        meta = doc["metadata"]
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if meta.get("name") and meta["name"] != ri.name:
            raise errors.bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({ri.name})")
        meta["name"] = ri.name
        if info.namespaced:
            if meta.get("namespace") and meta["namespace"] != ri.namespace:
                raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
            meta["namespace"] = ri.namespace
        apply_ctype = "application/json" if raw.lstrip()[:1] == b"{" else "application/yaml"
        check_fields(info, doc, raw, apply_ctype, ctx)
        from k3py.apimachinery import apply as ssa

        schema = object_schema(info)
        now = now_rfc3339(st.clock())
        ctx.subresource = "apply" if not ri.subresource else ri.subresource
        ctx_fm = ctx.field_manager

        def do_apply(current: Obj) -> Obj:
            return ssa.apply(
                current, doc, manager=ctx_fm, force=force, schema=schema, now=now,
                subresource=ri.subresource, ignore_status=info.has_status and not ri.subresource,
            )

        def do_create() -> Obj:
            nonlocal created
            created = True
            return ssa.apply(None, doc, manager=ctx_fm, force=force, schema=schema, now=now,
                             subresource=ri.subresource, ignore_status=info.has_status)

        skip_ctx = WriteContext(
            user=ctx.user, groups=ctx.groups, dry_run=ctx.dry_run, field_manager="",
            field_validation=ctx.field_validation, warnings=ctx.warnings,
            subresource=ri.subresource,
        )
        result = await st.store.modify(
            info, ri.namespace, ri.name, do_apply, ctx=skip_ctx,
            create_if_missing=None if ri.subresource else do_create,
        )
        return _respond(result, 201 if created else 200, ctx)

    def mutate(current: Obj) -> Obj:
        new = apply_patch(info, current, ptype, doc)
        new = _keep_identity(new, current, info, ri)
        check_fields(info, new, None, "application/json", ctx)
        return new

    patch_rv = isinstance(doc, dict) and isinstance(doc.get("metadata"), dict) and doc["metadata"].get("resourceVersion")
    result = await st.store.modify(info, ri.namespace, ri.name, mutate, ctx=ctx, retry=not patch_rv)
    return _respond(result, 200, ctx)


async def _delete_options(request: web.Request) -> DeleteOptions:
    q = request.query
    opts = DeleteOptions(
        grace_period_seconds=params.parse_int(q, "gracePeriodSeconds"),
        propagation_policy=q.get("propagationPolicy") or None,
        dry_run=params.dry_run(q),
    )
    if params.parse_bool(q, "orphanDependents", False) and "orphanDependents" in q:
        opts.propagation_policy = opts.propagation_policy or "Orphan"
    raw = await request.read() if request.can_read_body else b""
    if raw.strip():
        try:
            if media_type(request) == protobuf.MEDIA_TYPE:  # typed clients (kubectl drain)
                body = protobuf.decode_object(raw, expected_gvk=("meta.k8s.io", "v1", "DeleteOptions"))
            else:
                body = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise errors.bad_request(f"error decoding DeleteOptions: {e}") from e
        if not isinstance(body, dict):
            raise errors.bad_request("DeleteOptions must be an object")
        _check_delete_body(body)
        if body.get("gracePeriodSeconds") is not None:
            opts.grace_period_seconds = int(body["gracePeriodSeconds"])
        if body.get("propagationPolicy"):
            opts.propagation_policy = body["propagationPolicy"]
        if body.get("orphanDependents") is True and not opts.propagation_policy:
            opts.propagation_policy = "Orphan"
        pre = body.get("preconditions") or {}
        opts.preconditions_uid = pre.get("uid")
        opts.preconditions_rv = pre.get("resourceVersion")
        if body.get("dryRun"):
            if body["dryRun"] != ["All"]:
                raise errors.bad_request(f'Invalid dryRun value {body["dryRun"]}: supported values: "All"')
            opts.dry_run = True
    if opts.propagation_policy not in (None, "Background", "Foreground", "Orphan"):
        raise errors.invalid(
            "DeleteOptions", "",
            [{"reason": "FieldValueNotSupported", "field": "propagationPolicy",
              "message": f'Unsupported value: "{opts.propagation_policy}": supported values: "Foreground", "Background", "Orphan", "nil"'}],
            "meta.k8s.io",
        )
    if opts.grace_period_seconds is not None and opts.grace_period_seconds < 0:
        opts.grace_period_seconds = 1
    return opts


def _check_delete_body(body: Obj) -> None:
    """Wrong JSON types in DeleteOptions are a 400, worded like Go's decoder."""
    from k3py.server.registry import schema as schemas

    sch = schemas.definitions().get("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions")
    problems = body_decode.type_errors(body, sch) if sch else []
    if problems:
        raise errors.bad_request(problems[0])


IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")


async def delete(request: web.Request, st: APIState, ri: RequestInfo, info: ResourceInfo, out: Output) -> web.StreamResponse:
    if info.group == "" and info.plural == "namespaces" and ri.name in IMMORTAL_NAMESPACES:
        raise errors.APIError(
            403, "Forbidden", f'namespaces "{ri.name}" is forbidden: this namespace may not be deleted',
            details={"name": ri.name, "kind": "namespaces"},
        )
    opts = await _delete_options(request)
    obj, deleted = await st.store.delete(info, ri.namespace, ri.name, opts=opts)
    if not deleted:
        return encode.json_response(obj, status=202)
    if (info.group, info.plural) in _RETURNS_DELETED or info.crd is not None:
        return encode.json_response(obj, status=200)
    meta = obj.get("metadata") or {}
    details = {"name": ri.name, "group": info.group, "kind": info.plural, "uid": meta.get("uid", "")}
    if not info.group:
        del details["group"]
    return encode.json_response(encode.success_status(details=details))


async def delete_collection(request: web.Request, st: APIState, ri: RequestInfo, info: ResourceInfo, out: Output) -> web.StreamResponse:
    from k3py.server.api.reads import Matcher

    opts = await _delete_options(request)
    matcher = Matcher(info, request.query)
    page = await st.store.list(info, ri.namespace, match=None if matcher.everything else matcher.matches)
    items = []
    for rec in page.records:
        meta = orjson.loads(rec.value)["metadata"]
        try:
            obj, _ = await st.store.delete(info, meta.get("namespace", ""), meta["name"], opts=opts)
        except errors.APIError as e:
            if e.code == 404:
                continue
            raise
        items.append(orjson.dumps(obj))
    return encode.raw_response(encode.list_body(info, items, revision=st.store.ds.current_revision(), continue_token=""))
