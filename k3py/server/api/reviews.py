"""Virtual resources that answer a create without storing anything: reviews and bindings."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from k3py.server import errors
from k3py.server.api import encode, writes
from k3py.server.api.requestinfo import RequestInfo
from k3py.server.api.state import USER, APIState
from k3py.server.registry.catalog import ResourceInfo

Obj = dict[str, Any]


def _user_info(user: Any) -> Obj:
    out: Obj = {"username": user.name, "groups": list(user.groups)}
    if getattr(user, "uid", ""):
        out["uid"] = user.uid
    if getattr(user, "extra", None):
        out["extra"] = user.extra
    return out


async def review(request: web.Request, st: APIState, ri: RequestInfo, info: ResourceInfo) -> web.StreamResponse:
    raw = await writes.read_body(request, st)
    body = writes._decode_object(raw, writes.media_type(request)) if raw.strip() else {}
    user = request[USER]
    body["apiVersion"] = info.group_version
    body["kind"] = info.kind
    body.setdefault("metadata", {})["creationTimestamp"] = None
    if info.kind == "SelfSubjectReview":
        body["status"] = {"userInfo": _user_info(user)}
    elif info.kind == "TokenReview":
        token = (body.get("spec") or {}).get("token", "")
        reviewed = await st.token_reviewer(token) if st.token_reviewer else None
        if reviewed is None:
            body["status"] = {"authenticated": False, "user": {}}
        else:
            body["status"] = {"authenticated": True, "user": _user_info(reviewed), "audiences": (body.get("spec") or {}).get("audiences") or []}
    elif info.kind in ("SelfSubjectAccessReview", "SubjectAccessReview", "LocalSubjectAccessReview"):
        body["status"] = await _access_review(st, user, body, info, ri)
    elif info.kind == "SelfSubjectRulesReview":
        allowed = "system:masters" in user.groups
        body["status"] = {
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}] if allowed else [],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}] if allowed else [],
            "incomplete": False,
        }
    elif info.kind == "Binding":
        return await _binding(request, st, ri, body)
    else:
        raise errors.method_not_allowed()
    return encode.json_response(body, status=201)


async def _access_review(st: APIState, user: Any, body: Obj, info: ResourceInfo, ri: RequestInfo) -> Obj:
    from k3py.server.auth.authn import UserInfo
    from k3py.server.auth.authz import RequestAttributes

    spec = body.get("spec") or {}
    subject = user
    if info.kind != "SelfSubjectAccessReview":
        subject = UserInfo(name=spec.get("user", ""), uid=spec.get("uid", ""), groups=tuple(spec.get("groups") or ()), extra=spec.get("extra") or {})
    ra = spec.get("resourceAttributes")
    na = spec.get("nonResourceAttributes")
    if ra:
        attrs = RequestAttributes(
            user=subject, verb=ra.get("verb", ""), namespace=ra.get("namespace", "") or (ri.namespace if info.kind == "LocalSubjectAccessReview" else ""),
            api_group=ra.get("group", ""), resource=ra.get("resource", ""), subresource=ra.get("subresource", ""),
            name=ra.get("name", ""), path="", resource_request=True,
        )
    elif na:
        attrs = RequestAttributes(user=subject, verb=na.get("verb", ""), namespace="", api_group="", resource="", subresource="", name="", path=na.get("path", ""), resource_request=False)
    else:
        raise errors.invalid(info.kind, "", [{"reason": "FieldValueRequired", "field": "spec.resourceAttributes", "message": "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified"}], info.group)
    decision = await st.authorize(attrs)
    out: Obj = {"allowed": bool(decision.allowed)}
    if decision.reason:
        out["reason"] = decision.reason
    return out


async def _binding(request: web.Request, st: APIState, ri: RequestInfo, body: Obj) -> web.StreamResponse:
    from k3py.server.api import subresources

    ctx = writes.write_context(request, st, ri)
    await subresources.bind_pod(st, namespace=ri.namespace, name=(body.get("metadata") or {}).get("name", ""), body=body, ctx=ctx)
    return encode.json_response(encode.success_status(), status=201)
