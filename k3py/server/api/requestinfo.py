"""Turn a request path into what it addresses, like apiserver's RequestInfoFactory.

    /api/v1/namespaces/default/pods/web/log
        → group "", version v1, namespace default, resource pods, name web, subresource log
    /apis/apps/v1/deployments             → list across namespaces
    /api/v1/namespaces/default            → the Namespace "default" itself
    /api/v1/watch/namespaces/x/pods       → legacy watch path
"""

from __future__ import annotations

from dataclasses import dataclass

from k3py.server import errors


@dataclass
class RequestInfo:
    path: str
    is_resource: bool = False
    verb: str = ""  # get list watch create update patch delete deletecollection (or http verb)
    group: str = ""
    version: str = ""
    namespace: str = ""
    resource: str = ""
    name: str = ""
    subresource: str = ""
    api_prefix: str = ""  # "api" | "apis" | ""
    legacy_watch: bool = False
    parts_after: tuple[str, ...] = ()  # proxy paths after the subresource


_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def parse(path: str, method: str, *, watch_param: bool) -> RequestInfo:
    info = RequestInfo(path=path)
    parts = [p for p in path.split("/") if p != ""]
    if not parts or parts[0] not in ("api", "apis"):
        info.verb = method.lower()
        return info
    info.api_prefix = parts[0]
    rest = parts[1:]
    if info.api_prefix == "api":
        if not rest:
            return info  # /api
        info.version = rest[0]
        rest = rest[1:]
    else:
        if len(rest) < 2:
            if rest:
                info.group = rest[0]
            return info  # /apis or /apis/<group>
        info.group, info.version = rest[0], rest[1]
        rest = rest[2:]
    if not rest:
        return info  # group-version discovery
    info.is_resource = True
    if rest[0] == "watch":
        info.legacy_watch = True
        rest = rest[1:]
    if len(rest) >= 2 and rest[0] == "namespaces" and not (len(rest) == 2 or (len(rest) == 3 and rest[2] in ("status", "finalize"))):
        info.namespace = rest[1]
        rest = rest[2:]
    elif rest and rest[0] == "namespaces":
        # /namespaces, /namespaces/<name>, /namespaces/<name>/status|finalize
        info.resource = "namespaces"
        if len(rest) >= 2:
            info.name = rest[1]
        if len(rest) == 3:
            info.subresource = rest[2]
        rest = []
    if rest:
        info.resource = rest[0]
        if len(rest) >= 2:
            info.name = rest[1]
        if len(rest) >= 3:
            info.subresource = rest[2]
            info.parts_after = tuple(rest[3:])
    if not info.resource:
        raise errors.not_found("", path)
    if method == "GET" or method == "HEAD":
        if info.legacy_watch or watch_param:
            info.verb = "watch"
        elif info.name:
            info.verb = "get"
        else:
            info.verb = "list"
    elif method == "DELETE" and not info.name:
        info.verb = "deletecollection"
    else:
        info.verb = _METHOD_VERBS.get(method, method.lower())
    return info
