"""Subresources other than status: scale, binding, eviction, token, finalize, node streams."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from k3py.server import errors
from k3py.server.api import encode, params, writes
from k3py.server.api.negotiate import Output
from k3py.server.api.requestinfo import RequestInfo
from k3py.server.api.state import APIState
from k3py.server.registry.catalog import ResourceInfo
from k3py.server.registry.store import DeleteOptions, now_rfc3339

Obj = dict[str, Any]

STREAMS = ("log", "exec", "attach", "portforward", "proxy")


# ---- scale ----------------------------------------------------------------


def _scale_paths(info: ResourceInfo) -> tuple[str, str, str | None]:
    if info.crd is not None:
        sc = ((info.crd.get("subresources") or {}).get("scale")) or {}
        return (
            sc.get("specReplicasPath", ".spec.replicas"),
            sc.get("statusReplicasPath", ".status.replicas"),
            sc.get("labelSelectorPath"),
        )
    return ".spec.replicas", ".status.replicas", None


def _get_path(obj: Obj, path: str) -> Any:
    cur: Any = obj
    for part in path.strip(".").split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _set_path(obj: Obj, path: str, value: Any) -> None:
    parts = path.strip(".").split(".")
    cur = obj
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value


def selector_string(sel: Any) -> str:
    if not isinstance(sel, dict):
        return ""
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for e in sel.get("matchExpressions") or []:
        op = e.get("operator")
        vals = ",".join(sorted(e.get("values") or []))
        if op == "In":
            parts.append(f"{e['key']} in ({vals})")
        elif op == "NotIn":
            parts.append(f"{e['key']} notin ({vals})")
        elif op == "Exists":
            parts.append(e["key"])
        elif op == "DoesNotExist":
            parts.append("!" + e["key"])
    return ",".join(sorted(parts))


def to_scale(info: ResourceInfo, obj: Obj) -> Obj:
    spec_path, status_path, sel_path = _scale_paths(info)
    meta = obj["metadata"]
    if info.crd is not None:
        selector = _get_path(obj, sel_path) if sel_path else ""
    elif info.kind == "ReplicationController":
        selector = ",".join(f"{k}={v}" for k, v in sorted(((obj.get("spec") or {}).get("selector") or {}).items()))
    else:
        selector = selector_string((obj.get("spec") or {}).get("selector"))
    scale_meta = {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta}
    status: Obj = {"replicas": int(_get_path(obj, status_path) or 0)}
    if selector:
        status["selector"] = selector
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": {"replicas": int(_get_path(obj, spec_path) or 0)},
        "status": status,
    }


async def scale(request: web.Request, st: APIState, ri: RequestInfo, info: ResourceInfo, out: Output) -> web.StreamResponse:
    if request.method == "GET":
        obj = await st.store.get(info, ri.namespace, ri.name)
        return encode.json_response(to_scale(info, obj))
    raw = await writes.read_body(request, st)
    ctx = writes.write_context(request, st, ri)
    ctx.subresource = "scale"  # managedFields record the subresource, as upstream
    ptype = writes.media_type(request)
    spec_path = _scale_paths(info)[0]
    if request.method == "PUT":
        body = writes._decode_object(raw, ptype)
        if body.get("kind") not in (None, "Scale"):
            raise errors.bad_request(f"the kind in the data ({body.get('kind')}) does not match the expected kind (Scale)")
        replicas_doc = body
        rv = (body.get("metadata") or {}).get("resourceVersion")
    else:
        replicas_doc = None
        rv = None
        if ptype not in (writes.JSON_PATCH, writes.MERGE_PATCH, writes.STRATEGIC_PATCH):
            raise errors.unsupported_media_type(ptype)
        doc = writes._parse_patch(raw, ptype)

    def mutate(current: Obj) -> Obj:
        nonlocal replicas_doc
        cur_scale = to_scale(info, current)
        if replicas_doc is None:
            from k3py.apimachinery import jsonpatch, mergepatch

            if ptype == writes.JSON_PATCH:
                new_scale = jsonpatch.apply_patch(cur_scale, doc)
            else:
                new_scale = mergepatch.merge_patch(cur_scale, doc)
        else:
            new_scale = replicas_doc
            if rv and rv != cur_scale["metadata"].get("resourceVersion"):
                raise errors.conflict(info.plural, ri.name, info.group)
        replicas = (new_scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid(
                "Scale", ri.name,
                [{"reason": "FieldValueInvalid", "field": "spec.replicas",
                  "message": f"Invalid value: {orjson.dumps(replicas).decode()}: must be greater than or equal to 0"}],
                "autoscaling",
            )
        _set_path(current, spec_path, replicas)
        current["metadata"].pop("resourceVersion", None)
        return current

    result = await st.store.modify(info, ri.namespace, ri.name, mutate, ctx=ctx)
    return encode.json_response(to_scale(info, result))


# ---- pods/binding ----------------------------------------------------------


async def binding(request: web.Request, st: APIState, ri: RequestInfo, info: ResourceInfo, out: Output | None) -> web.StreamResponse:
    raw = await writes.read_body(request, st)
    body = writes._decode_object(raw, writes.media_type(request))
    ctx = writes.write_context(request, st, ri)
    await bind_pod(st, namespace=ri.namespace, name=ri.name or (body.get("metadata") or {}).get("name", ""), body=body, ctx=ctx)
    return encode.json_response(encode.success_status(), status=201)


async def bind_pod(st: APIState, *, namespace: str, name: str, body: Obj, ctx: Any) -> None:
    """Set spec.nodeName and the PodScheduled condition in one write (as upstream's
    binding REST does: it is allowed to touch both spec and status)."""
    node = (body.get("target") or {}).get("name")
    if not node:
        raise errors.invalid("Binding", name, [{"reason": "FieldValueRequired", "field": "target.name", "message": "Required value"}])
    pods = st.catalog.get("", "v1", "pods")
    assert pods is not None
    ctx.subresource = "binding"

    def mutate(pod: Obj) -> Obj:
        spec = pod.setdefault("spec", {})
        if pod["metadata"].get("deletionTimestamp"):
            raise errors.conflict("pods", name, "", f"pod {name} is being deleted, cannot be assigned to a host")
        if spec.get("nodeName"):
            raise errors.conflict("pods", name, "", f'pod {name} is already assigned to node "{spec["nodeName"]}"')
        spec["nodeName"] = node
        status = pod.setdefault("status", {})
        conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                      "lastTransitionTime": now_rfc3339(st.clock())})
        status["conditions"] = conds
        return pod

    await st.store.modify(pods, namespace, name, mutate, ctx=ctx, retry=True)


# ---- pods/eviction ---------------------------------------------------------


async def eviction(request: web.Request, st: APIState, ri: RequestInfo, info: ResourceInfo, out: Output) -> web.StreamResponse:
    raw = await writes.read_body(request, st)
    body = writes._decode_object(raw, writes.media_type(request)) if raw.strip() else {}
    d = body.get("deleteOptions") or {}
    dry = d.get("dryRun")
    if dry and dry != ["All"]:
        raise errors.bad_request(f'Invalid dryRun value {dry}: supported values: "All"')
    opts = DeleteOptions(dry_run=params.dry_run(request.query) or bool(dry))
    if d.get("gracePeriodSeconds") is not None:
        opts.grace_period_seconds = int(d["gracePeriodSeconds"])
    checker = st.caches.get("eviction_check")
    if checker is not None:
        await checker(ri.namespace, ri.name, dry_run=opts.dry_run)
    await st.store.delete(info, ri.namespace, ri.name, opts=opts)
    return encode.json_response(encode.success_status(), status=201)


# ---- serviceaccounts/token ----------------------------------------------------


async def token(request: web.Request, st: APIState, ri: RequestInfo, info: ResourceInfo, out: Output) -> web.StreamResponse:
    raw = await writes.read_body(request, st)
    body = writes._decode_object(raw, writes.media_type(request)) if raw.strip() else {}
    sa = await st.store.get(info, ri.namespace, ri.name)
    spec = body.get("spec") or {}
    expiration = int(spec.get("expirationSeconds") or 3600)
    if expiration < 600:
        raise errors.invalid("TokenRequest", ri.name, [{"reason": "FieldValueInvalid", "field": "spec.expirationSeconds", "message": f"Invalid value: {expiration}: may not specify a duration less than 10 minutes"}], "authentication.k8s.io")
    audiences = spec.get("audiences") or ["https://kubernetes.default.svc.cluster.local", "k3s"]
    if st.token_issuer is None:
        raise errors.service_unavailable("token issuing is not configured")
    tok, exp = await st.token_issuer(
        namespace=ri.namespace, sa_name=ri.name, sa_uid=sa["metadata"]["uid"],
        audiences=audiences, expiration_seconds=expiration, bound_object=spec.get("boundObjectRef"),
    )
    resp = {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": ri.name, "namespace": ri.namespace, "creationTimestamp": None},
        "spec": {"audiences": audiences, "expirationSeconds": expiration, "boundObjectRef": spec.get("boundObjectRef")},
        "status": {"token": tok, "expirationTimestamp": exp},
    }
    return encode.json_response(resp, status=201)


# ---- namespaces/finalize ----------------------------------------------------


async def finalize(request: web.Request, st: APIState, ri: RequestInfo, info: ResourceInfo, out: Output) -> web.StreamResponse:
    raw = await writes.read_body(request, st)
    body = writes._decode_object(raw, writes.media_type(request))
    finalizers = (body.get("spec") or {}).get("finalizers") or []
    ctx = writes.write_context(request, st, ri)
    ctx.subresource = "finalize"

    def mutate(ns: Obj) -> Obj:
        ns.setdefault("spec", {})["finalizers"] = list(finalizers)
        return ns

    result = await st.store.modify(info, "", ri.name, mutate, ctx=ctx)
    return encode.json_response(result)


# ---- streams (served by the node's agent) -------------------------------------


async def stream(request: web.Request, st: APIState, ri: RequestInfo, info: ResourceInfo, out: Output) -> web.StreamResponse:
    if st.stream_proxy is not None:
        resp: web.StreamResponse = await st.stream_proxy(request, ri, info)
        return resp
    obj = await st.store.get(info, ri.namespace, ri.name)
    node = (obj.get("spec") or {}).get("nodeName") if info.kind == "Pod" else ri.name
    if info.kind == "Pod" and not node:
        raise errors.bad_request(f'pod {ri.name} does not have a host assigned')
    raise errors.service_unavailable(
        f'{info.plural}/{ri.subresource} is not served yet: no agent is serving node "{node}"'
    )
