"""Typed state shared by the API handlers (kept under one web.AppKey)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from k3py.server.auth.authn import UserInfo
from k3py.server.registry.catalog import Catalog
from k3py.server.registry.store import ObjectStore


@dataclass
class APIState:
    catalog: Catalog
    store: ObjectStore
    authenticate: Callable[[web.Request], Awaitable[Any]]  # -> UserInfo | None
    authorize: Callable[[Any], Awaitable[Any]]  # RequestAttributes -> Decision
    server_address: str = "127.0.0.1:6443"
    ready: bool = False
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    # Set by the server: issue service-account tokens, review tokens.
    token_issuer: Any = None
    token_reviewer: Any = None
    # Node streams (log/exec/...): set when an agent layer serves them.
    stream_proxy: Any = None
    # Agent joins (/cacerts, /v1-k3py/...): set by the server (k3py.server.join).
    join: Any = None
    # Virtual API groups answered by a handler (request, ri, info): metrics.k8s.io.
    virtual_handlers: dict[str, Any] = field(default_factory=dict)
    caches: dict[str, Any] = field(default_factory=dict)
    max_body_bytes: int = 3 * 1024 * 1024


STATE = web.AppKey("k3py_api_state", APIState)
# The authenticated user of a request (k3py.server.auth.UserInfo).
USER = web.RequestKey("k3py_user", UserInfo)
