"""The aiohttp application: one middleware chain, one dispatcher.

    request → errors (any APIError becomes a Status) → authentication → routing
            → authorization → verb handler

Routing is our own (``requestinfo.parse``) rather than aiohttp's router: the API's
paths are data (the catalogue), and custom resources come and go at run time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from k3py.server import errors
from k3py.server.api import discovery, encode, openapi_routes, reads, reviews, subresources, writes
from k3py.server.api.negotiate import Output, choose
from k3py.server.api.requestinfo import RequestInfo, parse
from k3py.server.api.state import STATE, USER, APIState
from k3py.server.registry.catalog import ResourceInfo

log = logging.getLogger("k3py.api")

Handler = Callable[[web.Request, APIState, RequestInfo, ResourceInfo, Output], Awaitable[web.StreamResponse]]

_HEALTH = {"/healthz", "/livez", "/readyz"}
_PUBLIC_PREFIXES = ("/healthz/", "/livez/", "/readyz/")

VERB_HANDLERS: dict[str, Handler] = {
    "get": reads.get,
    "list": reads.list_,
    "watch": reads.watch,
    "create": writes.create,
    "update": writes.update,
    "patch": writes.patch,
    "delete": writes.delete,
    "deletecollection": writes.delete_collection,
}


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        resp: web.StreamResponse = await handler(request)
        return resp
    except errors.APIError as e:
        return encode.status_response(e)
    except web.HTTPRequestEntityTooLarge:
        return encode.status_response(errors.too_large())
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except web.HTTPException:
        raise
    except RecursionError:
        return encode.status_response(errors.bad_request("the request is nested too deeply"))
    except Exception as e:  # noqa: BLE001 - the server must keep serving
        log.exception("internal error serving %s %s", request.method, request.path)
        return encode.status_response(errors.internal(f"{type(e).__name__}: {e}"))


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    st = request.app[STATE]
    path = request.path
    if path in _HEALTH or path.startswith(_PUBLIC_PREFIXES):
        resp: web.StreamResponse = await handler(request)
        return resp
    if st.join is not None and st.join.handles(path):
        resp = await st.join(request)  # token-authenticated, for agents without certificates
        return resp
    user = await st.authenticate(request)
    if user is None:
        raise errors.unauthorized()
    request[USER] = user
    resp = await handler(request)
    return resp


async def _authorize(request: web.Request, st: APIState, ri: RequestInfo, info: ResourceInfo | None) -> None:
    from k3py.server.auth.authz import RequestAttributes

    user = request[USER]
    attrs = RequestAttributes(
        user=user,
        verb=ri.verb if ri.is_resource else request.method.lower(),
        namespace=ri.namespace,
        api_group=ri.group,
        resource=ri.resource,
        subresource=ri.subresource,
        name=ri.name,
        path=ri.path,
        resource_request=ri.is_resource,
    )
    decision = await st.authorize(attrs)
    if not decision.allowed:
        if ri.is_resource:
            raise errors.forbidden(user.name, ri.verb, ri.resource, ri.group, ri.name, ri.namespace)
        raise errors.APIError(403, "Forbidden", f'forbidden: User "{user.name}" cannot {request.method.lower()} path "{ri.path}"', details={})


async def health(request: web.Request) -> web.StreamResponse:
    st = request.app[STATE]
    if request.path.startswith("/readyz") and not st.ready:
        return web.Response(status=503, text="[-]ready failed: not ready\nreadyz check failed\n")
    return web.Response(text="ok")


async def dispatch(request: web.Request) -> web.StreamResponse:
    st = request.app[STATE]
    path = request.path
    if path in _HEALTH or path.startswith(_PUBLIC_PREFIXES):
        return await health(request)
    ri = parse(path, request.method, watch_param=_watch_param(request))
    if not ri.is_resource:
        await _authorize(request, st, ri, None)
        return await non_resource(request, st, ri)
    info = st.catalog.get(ri.group, ri.version, ri.resource)
    if info is None:
        raise errors.APIError(404, "NotFound", "the server could not find the requested resource", details={})
    if not info.namespaced and ri.namespace:
        raise errors.APIError(404, "NotFound", "the server could not find the requested resource", details={})
    out = choose(request.headers.get("Accept", ""), include_object=request.query.get("includeObject", ""))
    await _authorize(request, st, ri, info)
    if ri.subresource:
        return await _subresource(request, st, ri, info, out)
    if ri.verb not in info.verbs or _no_route(ri):
        raise errors.method_not_allowed()
    if info.virtual:
        if info.group in st.virtual_handlers:  # served by the server itself (metrics.k8s.io)
            resp: web.StreamResponse = await st.virtual_handlers[info.group](request, ri, info)
            return resp
        return await reviews.review(request, st, ri, info)
    handler = VERB_HANDLERS.get(ri.verb)
    if handler is None:
        raise errors.method_not_allowed()
    return await handler(request, st, ri, info, out)


def _no_route(ri: RequestInfo) -> bool:
    """Upstream has no POST on an item path and no PUT/PATCH on a collection path."""
    if ri.verb == "create":
        return bool(ri.name)
    return ri.verb in ("update", "patch") and not ri.name


def _watch_param(request: web.Request) -> bool:
    from k3py.server.api.params import parse_bool

    return parse_bool(request.query, "watch")


async def _subresource(request: web.Request, st: APIState, ri: RequestInfo, info: ResourceInfo, out: Output) -> web.StreamResponse:
    sub = ri.subresource
    if sub not in info.subresources:
        raise errors.APIError(404, "NotFound", "the server could not find the requested resource", details={})
    if sub == "approval":
        # CSR approval writes status.conditions only: the status path of the store.
        ri = RequestInfo(**{**ri.__dict__, "subresource": "status"})
        sub = "status"
    if sub == "status":
        if ri.verb == "get":
            return await reads.get(request, st, ri, info, out)
        if ri.verb == "update":
            return await writes.update(request, st, ri, info, out)
        if ri.verb == "patch":
            return await writes.patch(request, st, ri, info, out)
        raise errors.method_not_allowed()
    if sub == "scale":
        if request.method not in ("GET", "PUT", "PATCH"):
            raise errors.method_not_allowed()
        return await subresources.scale(request, st, ri, info, out)
    if sub == "binding" and request.method == "POST":
        return await subresources.binding(request, st, ri, info, out)
    if sub == "eviction" and request.method == "POST":
        return await subresources.eviction(request, st, ri, info, out)
    if sub == "token" and request.method == "POST":
        return await subresources.token(request, st, ri, info, out)
    if sub == "finalize" and request.method == "PUT":
        return await subresources.finalize(request, st, ri, info, out)
    if sub in subresources.STREAMS:
        return await subresources.stream(request, st, ri, info, out)
    if sub in ("ephemeralcontainers", "resize"):
        if ri.verb == "get":
            return await reads.get(request, st, ri, info, out)
        ri2 = RequestInfo(**{**ri.__dict__, "subresource": ""})
        if ri.verb == "update":
            return await writes.update(request, st, ri2, info, out)
        if ri.verb == "patch":
            return await writes.patch(request, st, ri2, info, out)
    raise errors.method_not_allowed()


async def non_resource(request: web.Request, st: APIState, ri: RequestInfo) -> web.StreamResponse:
    path = ri.path.rstrip("/") or "/"
    accept = request.headers.get("Accept", "")
    if request.method not in ("GET", "HEAD"):
        raise errors.method_not_allowed()
    if path == "/version":
        return encode.json_response(discovery.version_info())
    if path == "/api":
        if _wants_v2(accept):
            return _discovery_v2(st, core=True, accept=accept)
        return encode.json_response(discovery.api_versions(st.server_address))
    if path == "/apis":
        if _wants_v2(accept):
            return _discovery_v2(st, core=False, accept=accept)
        return encode.json_response(discovery.api_group_list(st.catalog))
    if ri.api_prefix == "apis" and ri.group and not ri.version:
        doc = discovery.api_group(st.catalog, ri.group)
        if doc is None:
            raise errors.APIError(404, "NotFound", "the server could not find the requested resource", details={})
        return encode.json_response(doc)
    if ri.api_prefix and ri.version:
        doc = discovery.resource_list(st.catalog, ri.group, ri.version)
        if doc is None:
            raise errors.APIError(404, "NotFound", "the server could not find the requested resource", details={})
        return encode.json_response(doc)
    if path.startswith("/openapi/"):
        return await openapi_routes.serve(request, st, path)
    if path == "/":
        paths = ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/openapi/v3", "/readyz", "/version"]
        return encode.json_response({"paths": paths})
    raise errors.APIError(404, "NotFound", "the server could not find the requested resource", details={})


def _wants_v2(accept: str) -> bool:
    try:
        return choose(accept).kind == "discovery-v2"
    except errors.APIError:
        return False


def _discovery_v2(st: APIState, *, core: bool, accept: str) -> web.Response:
    version = choose(accept).discovery_version
    key = f"disc-v2-{core}-{version}-{st.catalog.generation}"
    body = st.caches.get(key)
    if body is None:
        body = encode.dumps(discovery.aggregated(st.catalog, core=core, version=version)) + b"\n"
        st.caches[key] = body
    ct = f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
    return web.Response(body=body, headers={"Content-Type": ct})


def build_app(state: APIState) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, auth_middleware],
        client_max_size=state.max_body_bytes,
        handler_args={"max_field_size": 65536, "max_line_size": 65536},
    )
    app[STATE] = state
    app.router.add_route("*", r"/{tail:[\s\S]*}", dispatch)  # also paths holding %0A
    return app
