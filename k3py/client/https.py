"""The HTTPS transport: the API over the network (aiohttp), for remote agents and tools.

Built from a kubeconfig (``HTTPSTransport.from_kubeconfig``) or from explicit parts
(``HTTPSTransport.from_parts(url, ca_pem=..., cert_pem=..., key_pem=..., token=...)``).
The server's certificate is verified against the given CA; client certificates or a
bearer token authenticate.  One aiohttp session (a pool of keep-alive connections) is
opened lazily on the loop of the first request and closed by ``close()``.

Watches are ``?watch=1`` requests answered with chunked JSON lines, one event a line;
an ``ERROR`` event carries a ``Status`` and becomes the matching error (410 → ``Gone``).
Lines are split by hand rather than with ``StreamReader.readline`` because a single
object may exceed aiohttp's line limit.
"""

from __future__ import annotations

import logging
import os
import ssl
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from k3py.client import kubeconfig
from k3py.client.errors import ApiError, TransportError, from_status, status_for
from k3py.client.interface import (
    PATCH_CONTENT_TYPES,
    DeleteOptions,
    ListOptions,
    ObjectList,
    PatchType,
    Transport,
    WatchEvent,
    WatchOptions,
    WriteOptions,
)
from k3py.client.resources import Resource

Obj = dict[str, Any]
log = logging.getLogger("k3py.client")

_NET_ERRORS = (aiohttp.ClientError, TimeoutError, ssl.SSLError, OSError)


def ssl_context(creds: kubeconfig.Credentials) -> ssl.SSLContext:
    """Verify the server against ``ca_pem`` (system CAs without one); present the client
    certificate when there is one."""
    if creds.ca_pem and not creds.insecure:
        ctx = ssl.create_default_context(cadata=creds.ca_pem.decode())
    else:
        ctx = ssl.create_default_context()
    if creds.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if creds.cert_pem and creds.key_pem:
        # The ssl module loads key material from files only: a private, short-lived dir.
        with tempfile.TemporaryDirectory(prefix="k3py-client-") as d:
            cert, key = Path(d) / "cert.pem", Path(d) / "key.pem"
            for path, data in ((cert, creds.cert_pem), (key, creds.key_pem)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            ctx.load_cert_chain(cert, key)
    return ctx


def _write_params(opts: WriteOptions) -> dict[str, str]:
    params: dict[str, str] = {}
    if opts.field_manager:
        params["fieldManager"] = opts.field_manager
    if opts.dry_run:
        params["dryRun"] = "All"
    if opts.field_validation:
        params["fieldValidation"] = opts.field_validation
    return params


def _error(code: int, raw: bytes) -> ApiError:
    try:
        doc = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and doc.get("kind") == "Status":
        return from_status(doc, code=code)
    text = raw[:200].decode("utf-8", "replace").strip() or f"HTTP {code}"
    return from_status(status_for(code=code, message=text))


class HTTPSTransport:
    def __init__(
        self,
        creds: kubeconfig.Credentials,
        *,
        user_agent: str = "k3py-client/0.1",
        request_timeout: float = 30.0,
        max_connections: int = 32,
    ) -> None:
        self.creds = creds
        self.default_namespace = creds.namespace
        self._ssl = ssl_context(creds) if creds.server.startswith("https:") else None
        self._headers = {"Accept": "application/json", "User-Agent": user_agent}
        if creds.token:
            self._headers["Authorization"] = f"Bearer {creds.token}"
        self._timeout = request_timeout
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_kubeconfig(
        cls, path: str | Path | None = None, *, context: str | None = None, **kw: Any
    ) -> HTTPSTransport:
        return cls(kubeconfig.load(path, context=context), **kw)

    @classmethod
    def from_parts(
        cls,
        url: str,
        *,
        ca_pem: bytes | None = None,
        cert_pem: bytes | None = None,
        key_pem: bytes | None = None,
        token: str | None = None,
        namespace: str = "default",
        **kw: Any,
    ) -> HTTPSTransport:
        creds = kubeconfig.Credentials(
            server=url.rstrip("/"),
            ca_pem=ca_pem,
            cert_pem=cert_pem,
            key_pem=key_pem,
            token=token,
            namespace=namespace,
        )
        return cls(creds, **kw)

    # ---- plumbing ------------------------------------------------------------

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                ssl=self._ssl if self._ssl is not None else False, limit=self._max_connections
            )
            self._session = aiohttp.ClientSession(
                base_url=self.creds.server,
                connector=connector,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._timeout),
                json_serialize=lambda o: orjson.dumps(o).decode(),
            )
        return self._session

    def _kw(self) -> dict[str, Any]:
        return {"server_hostname": self.creds.tls_server_name} if self.creds.tls_server_name else {}

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        """One request; returns (status, decoded JSON body) or raises the error tree."""
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else None
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        try:
            async with self.session().request(
                method,
                path,
                params=params,
                data=data,
                headers=headers,
                timeout=timeout,
                **self._kw(),
            ) as resp:
                raw = await resp.read()
                status = resp.status
                for w in resp.headers.getall("Warning", []):
                    log.warning("%s %s: server warning: %s", method, path, w)
        except _NET_ERRORS as e:
            raise TransportError(f"{method} {path}: {type(e).__name__}: {e}") from e
        if status >= 400:
            raise _error(status, raw)
        try:
            return status, orjson.loads(raw) if raw.strip() else None
        except orjson.JSONDecodeError as e:
            raise TransportError(f"{method} {path}: answer is not JSON: {e}") from e

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ---- verbs ---------------------------------------------------------------

    async def get(self, res: Resource, *, namespace: str, name: str, subresource: str = "") -> Obj:
        _, doc = await self.request(
            "GET", res.path(namespace=namespace, name=name, subresource=subresource)
        )
        return _obj(doc)

    async def list(self, res: Resource, *, namespace: str, opts: ListOptions) -> ObjectList:
        params = {
            k: v
            for k, v in (
                ("labelSelector", opts.label_selector),
                ("fieldSelector", opts.field_selector),
                ("limit", str(opts.limit) if opts.limit else ""),
                ("continue", opts.continue_token),
                ("resourceVersion", opts.resource_version),
                ("resourceVersionMatch", opts.resource_version_match),
            )
            if v
        }
        _, doc = await self.request("GET", res.path(namespace=namespace), params=params)
        doc = _obj(doc)
        meta = doc.get("metadata") or {}
        items = doc.get("items") or []
        for item in items:  # upstream omits the items' type meta in typed lists
            item.setdefault("apiVersion", res.api_version)
            item.setdefault("kind", res.kind)
        return ObjectList(
            items=items,
            resource_version=str(meta.get("resourceVersion") or ""),
            continue_token=str(meta.get("continue") or ""),
            kind=str(doc.get("kind") or ""),
            api_version=str(doc.get("apiVersion") or ""),
        )

    def watch(self, res: Resource, *, namespace: str, opts: WatchOptions) -> HTTPWatch:
        params = {"watch": "1"}
        for k, v in (
            ("labelSelector", opts.label_selector),
            ("fieldSelector", opts.field_selector),
            ("resourceVersion", opts.resource_version),
        ):
            if v:
                params[k] = v
        if opts.timeout_seconds:
            params["timeoutSeconds"] = str(opts.timeout_seconds)
        if opts.allow_bookmarks:
            params["allowWatchBookmarks"] = "true"
        return HTTPWatch(self, res.path(namespace=namespace), params)

    async def create(self, res: Resource, obj: Obj, *, namespace: str, opts: WriteOptions) -> Obj:
        _, doc = await self.request(
            "POST", res.path(namespace=namespace), params=_write_params(opts), body=obj
        )
        return _obj(doc)

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
        path = res.path(namespace=namespace, name=name, subresource=subresource)
        _, doc = await self.request("PUT", path, params=_write_params(opts), body=obj)
        return _obj(doc)

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
        params = _write_params(opts)
        if force:
            params["force"] = "true"
        path = res.path(namespace=namespace, name=name, subresource=subresource)
        _, doc = await self.request(
            "PATCH", path, params=params, body=body, content_type=PATCH_CONTENT_TYPES[patch_type]
        )
        return _obj(doc)

    async def delete(
        self, res: Resource, *, namespace: str, name: str, opts: DeleteOptions
    ) -> Obj | None:
        path = res.path(namespace=namespace, name=name)
        status, doc = await self.request("DELETE", path, body=opts.body())
        # 202: accepted, the object stays (finalizers, grace); 200: it is gone.
        return _obj(doc) if status == 202 else None

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
        path = res.path(namespace=namespace, name=name, subresource=subresource)
        _, doc = await self.request("POST", path, params=_write_params(opts), body=body)
        return _obj(doc)


def _obj(doc: Any) -> Obj:
    if not isinstance(doc, dict):
        raise TransportError(f"expected a JSON object, got {type(doc).__name__}")
    return doc


class HTTPWatch:
    """A watch request's event stream (see ``interface.EventStream``)."""

    def __init__(self, transport: HTTPSTransport, path: str, params: dict[str, str]) -> None:
        self._transport = transport
        self._path = path
        self._params = params
        self._resp: aiohttp.ClientResponse | None = None
        self._buf = b""
        self._done = False

    def __aiter__(self) -> HTTPWatch:
        return self

    async def _open(self) -> aiohttp.ClientResponse:
        t = self._transport
        try:
            resp = await t.session().get(
                self._path,
                params=self._params,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=t._timeout),  # noqa: SLF001
                **t._kw(),  # noqa: SLF001
            )
        except _NET_ERRORS as e:
            raise TransportError(f"watch {self._path}: {type(e).__name__}: {e}") from e
        if resp.status >= 400:
            raw = await resp.read()
            resp.release()
            raise _error(resp.status, raw)
        return resp

    async def _line(self) -> bytes | None:
        assert self._resp is not None
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line, self._buf = self._buf[:nl], self._buf[nl + 1 :]
                if line.strip():
                    return line
                continue
            try:
                chunk = await self._resp.content.readany()
            except _NET_ERRORS as e:
                raise TransportError(f"watch {self._path}: {type(e).__name__}: {e}") from e
            if not chunk:
                rest, self._buf = self._buf.strip(), b""
                return rest or None
            self._buf += chunk

    async def __anext__(self) -> WatchEvent:
        if self._done:
            raise StopAsyncIteration
        try:
            if self._resp is None:
                self._resp = await self._open()
            line = await self._line()
            if line is None:
                raise StopAsyncIteration
            try:
                ev = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                raise TransportError(f"watch {self._path}: bad event line: {e}") from e
            if ev.get("type") == "ERROR":
                raise from_status(ev.get("object") or {})
            return WatchEvent(ev["type"], ev["object"])
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        self._done = True
        if self._resp is not None:
            self._resp.close()
            self._resp = None


if TYPE_CHECKING:

    def _implements_transport(t: HTTPSTransport) -> Transport:
        return t  # mypy checks the protocol here
