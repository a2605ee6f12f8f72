"""The one API client everything in k3py uses: scheduler, controllers, ingress, agents.

    from k3py.client import Client, PODS
    async with Client.from_kubeconfig(path) as client:       # HTTPS, remote
        pod = await client.get(PODS, "web-0", namespace="default")

Inside the server process the same ``Client`` runs over the in-process transport the
server builds at boot (``RunningServer.transport``); see ``interface.py`` for the seam.
"""

from k3py.client.cache import (
    Cache,
    by_field,
    by_label,
    by_namespace,
    by_owner_uid,
    key_for,
    key_of,
    split_key,
)
from k3py.client.client import Client
from k3py.client.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    ClientError,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    MethodNotAllowed,
    NotFound,
    ServerError,
    TooManyRequests,
    TransportError,
    Unauthorized,
)
from k3py.client.informer import Informer
from k3py.client.interface import (
    DeleteOptions,
    EventStream,
    ListOptions,
    ObjectList,
    PatchType,
    Transport,
    WatchEvent,
    WatchOptions,
    WriteOptions,
)
from k3py.client.resources import *  # noqa: F403 - the resource constants
from k3py.client.resources import Resource
from k3py.client.workqueue import ShutDown, WorkQueue, process

__all__ = [
    "AlreadyExists",
    "ApiError",
    "BadRequest",
    "Cache",
    "Client",
    "ClientError",
    "Conflict",
    "DeleteOptions",
    "EventStream",
    "Forbidden",
    "Gone",
    "Informer",
    "Invalid",
    "ListOptions",
    "MethodNotAllowed",
    "NotFound",
    "ObjectList",
    "PatchType",
    "Resource",
    "ServerError",
    "ShutDown",
    "TooManyRequests",
    "Transport",
    "TransportError",
    "Unauthorized",
    "WatchEvent",
    "WatchOptions",
    "WorkQueue",
    "WriteOptions",
    "by_field",
    "by_label",
    "by_namespace",
    "by_owner_uid",
    "key_for",
    "key_of",
    "process",
    "split_key",
]
