"""The seam between the client and its two transports.

A ``Transport`` speaks the API's verbs on one resource at a time — get, list, watch,
create, update (and the status subresource), patch (json, merge, strategic, apply),
delete, and POSTs to subresources such as ``pods/binding`` and ``pods/eviction``.
Two implementations exist:

* ``k3py.client.https.HTTPSTransport`` for remote processes (kubeconfig, TLS, aiohttp);
* ``k3py.server.inprocess.InProcessTransport`` inside the server process, built by the
  server at boot: it calls the API's write pipeline and the datastore's watch hub
  directly (no socket, no JSON encoding of requests).  ``k3py.client`` never imports it.

Contract, whatever the transport:

* Objects handed in are never kept or mutated; objects handed out are the caller's own
  (fresh dicts), never shared with the server, a cache or another caller.
* Errors are ``k3py.client.errors`` (``NotFound``, ``Conflict``, ``Gone``, ...).
* ``watch`` returns an event stream at once; the request is made on first iteration.
  With ``resource_version`` "" or "0" it starts with an ADDED event per existing
  object; otherwise it resumes after that revision, or raises ``Gone`` when the log no
  longer holds it.  Selectors filter as the API server does: an object that stops
  matching is DELETED for the watcher, one that starts matching is ADDED.  The stream
  ends (StopAsyncIteration) when the server ends the watch (timeout, slow consumer):
  resume from the last resourceVersion seen.  Always ``aclose()`` a stream you leave.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from k3py.client.resources import Resource

Obj = dict[str, Any]

PatchType = Literal["json", "merge", "strategic", "apply"]
EventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]

PATCH_CONTENT_TYPES: dict[str, str] = {
    "json": "application/json-patch+json",
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}


@dataclass(frozen=True, slots=True)
class ListOptions:
    label_selector: str = ""
    field_selector: str = ""
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""
    resource_version_match: str = ""  # "" | Exact | NotOlderThan


@dataclass(frozen=True, slots=True)
class WatchOptions:
    label_selector: str = ""
    field_selector: str = ""
    resource_version: str = ""
    timeout_seconds: int | None = None
    allow_bookmarks: bool = False


@dataclass(frozen=True, slots=True)
class WriteOptions:
    field_manager: str = ""
    dry_run: bool = False
    field_validation: str = ""  # "" (the server's default, Warn) | Ignore | Warn | Strict


@dataclass(frozen=True, slots=True)
class DeleteOptions:
    grace_period_seconds: int | None = None
    propagation_policy: str | None = None  # Background | Foreground | Orphan
    preconditions_uid: str | None = None
    preconditions_resource_version: str | None = None
    dry_run: bool = False

    def body(self) -> Obj:
        """As a ``meta/v1 DeleteOptions`` document."""
        out: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if self.grace_period_seconds is not None:
            out["gracePeriodSeconds"] = self.grace_period_seconds
        if self.propagation_policy:
            out["propagationPolicy"] = self.propagation_policy
        pre: Obj = {}
        if self.preconditions_uid:
            pre["uid"] = self.preconditions_uid
        if self.preconditions_resource_version:
            pre["resourceVersion"] = self.preconditions_resource_version
        if pre:
            out["preconditions"] = pre
        if self.dry_run:
            out["dryRun"] = ["All"]
        return out


@dataclass(slots=True)
class ObjectList:
    items: list[Obj]
    resource_version: str  # the revision the list is consistent with
    continue_token: str = ""
    kind: str = ""
    api_version: str = ""


@dataclass(slots=True)
class WatchEvent:
    type: EventType
    object: Obj = field(repr=False)

    @property
    def resource_version(self) -> str:
        return str((self.object.get("metadata") or {}).get("resourceVersion") or "")


class EventStream(Protocol):
    """An async iterator of watch events that must be closed when left early."""

    def __aiter__(self) -> AsyncIterator[WatchEvent]: ...

    async def __anext__(self) -> WatchEvent: ...

    async def aclose(self) -> None: ...


class Transport(Protocol):
    """Request-level verbs; see the module notes for the contract."""

    async def get(
        self, res: Resource, *, namespace: str, name: str, subresource: str = ""
    ) -> Obj: ...

    async def list(self, res: Resource, *, namespace: str, opts: ListOptions) -> ObjectList: ...

    def watch(self, res: Resource, *, namespace: str, opts: WatchOptions) -> EventStream: ...

    async def create(
        self, res: Resource, obj: Obj, *, namespace: str, opts: WriteOptions
    ) -> Obj: ...

    async def update(
        self,
        res: Resource,
        obj: Obj,
        *,
        namespace: str,
        name: str,
        subresource: str = "",
        opts: WriteOptions,
    ) -> Obj: ...

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
    ) -> Obj: ...

    async def delete(
        self, res: Resource, *, namespace: str, name: str, opts: DeleteOptions
    ) -> Obj | None:
        """The object as it stays (deletion pending on finalizers or a grace period), or
        None when it is gone."""
        ...

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
        """POST to a subresource (``pods/binding``, ``pods/eviction``); returns the answer
        (a success ``Status`` for those two)."""
        ...

    async def close(self) -> None: ...
