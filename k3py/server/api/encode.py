"""Building response bodies: objects, lists spliced from stored bytes, Tables, Status."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import orjson
from aiohttp import web

from k3py.server import errors
from k3py.server.api.negotiate import Output
from k3py.server.registry.catalog import ResourceInfo

JSON = "application/json"


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def json_response(obj: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(obj) + b"\n", status=status, content_type=JSON, headers=headers)


def raw_response(body: bytes, *, status: int = 200, content_type: str = JSON, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=body, status=status, content_type=content_type, headers=headers)


def status_response(err: errors.APIError) -> web.Response:
    # Compact, Go field order, trailing newline: clients compare it byte for byte.
    return web.Response(
        body=orjson.dumps(err.status()) + b"\n",
        status=err.code,
        content_type=JSON,
        headers=err.headers or None,
    )


def success_status(*, details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details:
        body["details"] = details
    return body


def list_kind(info: ResourceInfo) -> str:
    if info.crd is not None:
        return str(info.crd.get("_listKind") or info.kind + "List")
    return info.list_kind


def list_body(info: ResourceInfo, items: Iterable[bytes], *, revision: int, continue_token: str, remaining: int | None = None) -> bytes:
    meta: dict[str, Any] = {"resourceVersion": str(revision)}
    if continue_token:
        meta["continue"] = continue_token
        if remaining is not None:
            meta["remainingItemCount"] = remaining
    head = b'{"kind":' + orjson.dumps(list_kind(info)) + b',"apiVersion":' + orjson.dumps(info.group_version)
    return head + b',"metadata":' + orjson.dumps(meta) + b',"items":[' + b",".join(items) + b"]}\n"


def partial_metadata(obj: dict[str, Any], *, version: str = "v1") -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": obj.get("metadata") or {},
    }


def partial_list(objs: list[dict[str, Any]], *, revision: int, continue_token: str, version: str = "v1") -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": str(revision)}
    if continue_token:
        meta["continue"] = continue_token
    return {
        "kind": "PartialObjectMetadataList",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": meta,
        "items": [partial_metadata(o, version=version) for o in objs],
    }


def table_for(
    info: ResourceInfo,
    objs: list[dict[str, Any]],
    *,
    out: Output,
    revision: int | None,
    continue_token: str = "",
    now: dt.datetime | None = None,
    headers: bool = True,
) -> dict[str, Any]:
    from k3py.server.registry import tables

    result: dict[str, Any] = tables.table_for(
        info.group,
        info.kind,
        objs,
        now=now or dt.datetime.now(dt.UTC),
        resource_version=str(revision) if revision is not None else "",
        continue_token=continue_token or None,
        include_object=out.include_object,
        no_headers=not headers,
        crd_version=info.crd,
        api_version=f"meta.k8s.io/{out.table_version}",
    )
    return result
