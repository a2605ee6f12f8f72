"""GET, LIST and WATCH handlers."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from k3py.server import errors
from k3py.server.api import encode, params
from k3py.server.api.negotiate import Output
from k3py.server.api.requestinfo import RequestInfo
from k3py.server.api.state import APIState
from k3py.server.datastore.types import Compacted, Event, Record, WatchCutOff
from k3py.server.registry.catalog import ResourceInfo

Obj = dict[str, Any]


class Matcher:
    """Label and field selectors compiled once per request; matches stored records."""

    def __init__(self, info: ResourceInfo, query: Any) -> None:
        from k3py.apimachinery import fieldselectors, selectors

        self.info = info
        ls = query.get("labelSelector", "")
        fs = query.get("fieldSelector", "")
        self.labels = selectors.parse(ls) if ls else None
        self.fields = fieldselectors.parse(fs) if fs else None
        if self.fields is not None:
            fieldselectors.check_supported(info.group, info.kind, self.fields)
        if self.labels is not None and self.labels.empty:
            self.labels = None
        if self.fields is not None and self.fields.empty:
            self.fields = None

    @property
    def everything(self) -> bool:
        return self.labels is None and self.fields is None

    def matches_obj(self, obj: Obj) -> bool:
        from k3py.apimachinery import fieldselectors

        if self.labels is not None and not self.labels.matches((obj.get("metadata") or {}).get("labels") or {}):
            return False
        if self.fields is not None:
            return bool(self.fields.matches(fieldselectors.fields_for(self.info.group, self.info.kind, obj)))
        return True

    def matches(self, rec: Record) -> bool:
        if self.labels is not None and not self.labels.may_match_json(rec.value):
            return False  # stored values are orjson's output: skip decoding non-matches
        return self.matches_obj(orjson.loads(rec.value))


def _timeout(query: Any) -> float:
    t = params.parse_int(query, "timeoutSeconds")
    if t is None or t <= 0:
        return 1800 * (1 + random.random())
    return float(t)


async def get(request: web.Request, st: APIState, ri: RequestInfo, info: ResourceInfo, out: Output) -> web.StreamResponse:
    rec = await st.store.get_record(info, ri.namespace, ri.name)
    if out.kind == "table":
        return encode.json_response(encode.table_for(info, [rec.obj()], out=out, revision=None))
    if out.kind == "partial":
        return encode.json_response(encode.partial_metadata(rec.obj(), version=out.table_version))
    return encode.raw_response(rec.value + b"\n")


async def list_(request: web.Request, st: APIState, ri: RequestInfo, info: ResourceInfo, out: Output) -> web.StreamResponse:
    q = request.query
    matcher = Matcher(info, q)
    limit = params.parse_int(q, "limit", 0) or 0
    if limit < 0:
        limit = 0
    limit = min(limit, 1 << 31)  # more than any store holds; keeps SQL integers in range
    page = await st.store.list(
        info,
        ri.namespace,
        limit=limit,
        continue_token=q.get("continue", ""),
        resource_version=q.get("resourceVersion", ""),
        resource_version_match=q.get("resourceVersionMatch", ""),
        match=None if matcher.everything else matcher.matches,
    )
    if out.kind == "table":
        objs = [r.obj() for r in page.records]
        return encode.json_response(
            encode.table_for(info, objs, out=out, revision=page.revision, continue_token=page.continue_token)
        )
    if out.kind == "partial":
        objs = [r.obj() for r in page.records]
        return encode.json_response(
            encode.partial_list(objs, revision=page.revision, continue_token=page.continue_token, version=out.table_version)
        )
    body = encode.list_body(
        info, (r.value for r in page.records), revision=page.revision, continue_token=page.continue_token
    )
    return encode.raw_response(body)


def _event_line(kind: str, value: bytes) -> bytes:
    return b'{"type":"' + kind.encode() + b'","object":' + value + b"}\n"


def transition(matcher: Matcher, ev: Event) -> tuple[str, Obj | None] | None:
    """What a watcher filtering with ``matcher`` sees of ``ev``: the event type (an object
    that starts matching is ADDED, one that stops is DELETED) and the decoded new object
    when matching decoded it; None when the watcher sees nothing.  The in-process
    transport's watch uses this too."""
    if matcher.everything:
        return ev.type, None
    new = orjson.loads(ev.value)
    now_match = matcher.matches_obj(new)
    if ev.type == "ADDED":
        return ("ADDED", new) if now_match else None
    was_match = False
    if ev.prev_value is not None:
        was_match = matcher.matches_obj(orjson.loads(ev.prev_value))
    if ev.type == "DELETED":
        return ("DELETED", new) if (now_match or was_match) else None
    if now_match and was_match:
        return "MODIFIED", new
    if now_match:
        return "ADDED", new
    if was_match:
        return "DELETED", new
    return None


class WatchStream:
    """Writes watch events to one HTTP response, filtering and converting as asked."""

    def __init__(self, *, resp: web.StreamResponse, info: ResourceInfo, matcher: Matcher, out: Output) -> None:
        self.resp = resp
        self.info = info
        self.matcher = matcher
        self.out = out
        self.sent_headers = False

    def _render(self, etype: str, value: bytes, obj: Obj | None) -> bytes:
        if self.out.kind == "json":
            return _event_line(etype, value)
        o = obj if obj is not None else orjson.loads(value)
        if self.out.kind == "table":
            t = encode.table_for(self.info, [o], out=self.out, revision=None, headers=not self.sent_headers)
            self.sent_headers = True
            return _event_line(etype, orjson.dumps(t))
        return _event_line(etype, orjson.dumps(encode.partial_metadata(o, version=self.out.table_version)))

    def render_event(self, ev: Event) -> bytes | None:
        seen = transition(self.matcher, ev)
        return None if seen is None else self._render(seen[0], ev.value, seen[1])

    def render_initial(self, rec: Record) -> bytes:
        return self._render("ADDED", rec.value, None)

    def render_bookmark(self, revision: int) -> bytes:
        body = {"kind": self.info.kind, "apiVersion": self.info.group_version, "metadata": {"resourceVersion": str(revision)}}
        return _event_line("BOOKMARK", orjson.dumps(body))


async def watch(request: web.Request, st: APIState, ri: RequestInfo, info: ResourceInfo, out: Output) -> web.StreamResponse:
    q = request.query
    matcher = Matcher(info, q)
    if ri.name:
        # /watch/.../pods/NAME (legacy) means a field selector on the name.
        from k3py.apimachinery import fieldselectors

        matcher.fields = fieldselectors.parse(f"metadata.name={ri.name}")
    rv = q.get("resourceVersion", "")
    timeout = _timeout(q)
    bookmarks = params.parse_bool(q, "allowWatchBookmarks")
    send_initial = q.get("sendInitialEvents")
    prefix = info.prefix(ri.namespace)
    initial: list[Record] = []
    if rv in ("", "0") or (send_initial and params.parse_bool(q, "sendInitialEvents")):
        page = await st.store.list(info, ri.namespace, match=None if matcher.everything else matcher.matches)
        initial = page.records
        after = page.revision
    else:
        try:
            after = int(rv)
        except ValueError as e:
            raise errors.bad_request(f'invalid resource version: "{rv}"') from e
        if not 0 <= after < 2**63:
            raise errors.bad_request(f'invalid resource version: "{rv}"')
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json", "Cache-Control": "no-cache, private"})
    resp.enable_chunked_encoding()
    stream = WatchStream(resp=resp, info=info, matcher=matcher, out=out)
    try:
        w = st.store.ds.watch(prefix, after_revision=after)
    except Compacted as e:
        await resp.prepare(request)
        status = errors.gone(f"too old resource version: {after} ({e.compact_revision})").status()
        await resp.write(_event_line("ERROR", orjson.dumps(status)))
        await resp.write_eof()
        return resp
    await resp.prepare(request)
    deadline = time.monotonic() + timeout
    last = after
    try:
        if initial:
            await resp.write(b"".join(stream.render_initial(r) for r in initial))
        if send_initial and bookmarks:
            bm = {"kind": info.kind, "apiVersion": info.group_version, "metadata": {"resourceVersion": str(after), "annotations": {"k8s.io/initial-events-end": "true"}}}
            await resp.write(_event_line("BOOKMARK", orjson.dumps(bm)))
        it = w.__aiter__()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch = await asyncio.wait_for(it.__anext__(), timeout=min(remaining, 60.0 if bookmarks else remaining))
            except TimeoutError:
                if bookmarks and time.monotonic() < deadline:
                    await resp.write(stream.render_bookmark(last))
                    continue
                break
            except (StopAsyncIteration, WatchCutOff):
                break
            chunks = []
            for ev in batch:
                line = stream.render_event(ev)
                last = ev.revision
                if line is not None:
                    chunks.append(line)
            if chunks:
                await resp.write(b"".join(chunks))
    except ConnectionResetError:
        return resp  # the client went away (kubectl get -w killed): nothing to report
    finally:
        with contextlib.suppress(Exception):
            await w.close()
    with contextlib.suppress(ConnectionResetError):
        await resp.write_eof()
    return resp


ReadHandler = Callable[[web.Request, APIState, RequestInfo, ResourceInfo, Output], Any]
