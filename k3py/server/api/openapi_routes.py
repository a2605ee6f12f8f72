"""/openapi/v3 and its per-group-version documents, built on demand and cached."""

from __future__ import annotations

import hashlib

import orjson
from aiohttp import web

from k3py.server import errors
from k3py.server.api.state import APIState
from k3py.server.registry.catalog import ResourceInfo


def _gv_path(r: ResourceInfo) -> str:
    return f"api/{r.version}" if not r.group else f"apis/{r.group}/{r.version}"


def _documents(st: APIState) -> dict[str, bytes]:
    from k3py.server.registry import openapi

    key = f"openapi-{st.catalog.generation}"
    docs = st.caches.get(key)
    if docs is not None:
        return docs  # type: ignore[no-any-return]
    by_gv: dict[str, list[openapi.ResourceSpec]] = {}
    for r in st.catalog.all():
        by_gv.setdefault(_gv_path(r), []).append(openapi.resource_spec(r))
    docs = {}
    for gv, specs in by_gv.items():
        docs[gv] = orjson.dumps(openapi.group_version_document(gv, specs))
    st.caches[key] = docs
    return docs


def _serve_v2(request: web.Request, st: APIState) -> web.Response:
    """Swagger 2.0: gnostic protobuf when asked for (kubectl), JSON otherwise."""
    from k3py.server.registry import openapi, openapi_v2

    cached = st.caches.get("openapi-v2")
    if cached is None or cached[0] != st.catalog.generation:
        specs = [openapi.resource_spec(r) for r in st.catalog.all()]
        cached = (st.catalog.generation, openapi_v2.document(specs))
        st.caches["openapi-v2"] = cached
    doc: openapi_v2.V2Document = cached[1]
    accept = request.headers.get("Accept", "")
    if any(t in accept for t in openapi_v2.PROTOBUF_TYPES):
        return web.Response(body=doc.protobuf, headers={"Content-Type": openapi_v2.PROTOBUF_TYPE})
    return web.Response(body=doc.json, content_type="application/json")


async def serve(request: web.Request, st: APIState, path: str) -> web.StreamResponse:
    if path == "/openapi/v2":
        return _serve_v2(request, st)
    if path == "/openapi/v3":
        docs = _documents(st)
        index = {
            "paths": {
                gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash={hashlib.sha512(body).hexdigest()[:32].upper()}"}
                for gv, body in sorted(docs.items())
            }
        }
        return web.Response(body=orjson.dumps(index), content_type="application/json")
    if path.startswith("/openapi/v3/"):
        gv = path[len("/openapi/v3/") :]
        body = _documents(st).get(gv)
        if body is None:
            raise errors.APIError(404, "NotFound", "the server could not find the requested resource", details={})
        headers = {"Cache-Control": "public, immutable" if request.query.get("hash") else "no-cache, private"}
        return web.Response(body=body, content_type="application/json", headers=headers)
    raise errors.APIError(404, "NotFound", "the server could not find the requested resource", details={})
