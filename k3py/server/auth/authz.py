"""May this user do this: request attributes, decisions, and a chain of authorizers.

Shaped like kube-apiserver's authorizer union so RBAC and the node authorizer drop in:
each authorizer answers allow, deny (stop the chain) or no opinion (``allowed=False``,
``denied=False``: ask the next one).  The chain allows on the first allow, refuses on
the first explicit deny, and refuses when nobody had an opinion.

Until RBAC lands, :class:`MastersAuthorizer` is the whole policy: ``system:masters``
may do anything; authenticated users may read discovery, OpenAPI, version and health
paths and create the self-review objects (what upstream's ``system:discovery``,
``system:basic-user`` and ``system:public-info-viewer`` roles grant); unauthenticated
users may read the public health and version paths.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from k3py.server.auth.authn import AUTHENTICATED, MASTERS, UNAUTHENTICATED, UserInfo


@dataclass(frozen=True)
class RequestAttributes:
    user: UserInfo
    verb: str  # get list watch create update patch delete deletecollection; http verb otherwise
    namespace: str = ""
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""
    resource_request: bool = True
    api_version: str = ""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""
    denied: bool = False  # an explicit deny: later authorizers are not asked

    @property
    def no_opinion(self) -> bool:
        return not self.allowed and not self.denied


ALLOW = Decision(allowed=True)
NO_OPINION = Decision(allowed=False)


class Authorizer(Protocol):
    async def authorize(self, attrs: RequestAttributes) -> Decision: ...


class ChainAuthorizer:
    """Ask each authorizer in order (e.g. Node, RBAC, then masters)."""

    def __init__(self, authorizers: Iterable[Authorizer] = ()) -> None:
        self._authorizers = list(authorizers)

    def add(self, authorizer: Authorizer) -> None:
        self._authorizers.append(authorizer)

    async def authorize(self, attrs: RequestAttributes) -> Decision:
        reasons: list[str] = []
        for authorizer in self._authorizers:
            decision = await authorizer.authorize(attrs)
            if decision.allowed or decision.denied:
                return decision
            if decision.reason:
                reasons.append(decision.reason)
        return Decision(allowed=False, reason=", ".join(reasons))


def non_resource_match(patterns: Iterable[str], path: str) -> bool:
    """RBAC's nonResourceURLs rule: exact match, or prefix match for ``…*``; ``*`` is all."""
    for pattern in patterns:
        if pattern == "*" or pattern == path:
            return True
        if pattern.endswith("*") and path.startswith(pattern[:-1]):
            return True
    return False


# system:discovery + system:public-info-viewer (nonResourceURLs, verb get).
DISCOVERY_PATHS: Sequence[str] = (
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/openapi",
    "/openapi/*",
    "/readyz",
    "/version",
    "/version/",
)
PUBLIC_INFO_PATHS: Sequence[str] = ("/healthz", "/livez", "/readyz", "/version", "/version/")
# system:basic-user: (group, resource) any authenticated user may create.
SELF_REVIEWS = frozenset(
    {
        ("authentication.k8s.io", "selfsubjectreviews"),
        ("authorization.k8s.io", "selfsubjectaccessreviews"),
        ("authorization.k8s.io", "selfsubjectrulesreviews"),
    }
)
_READ_VERBS = frozenset({"get", "head"})


class MastersAuthorizer:
    async def authorize(self, attrs: RequestAttributes) -> Decision:
        groups = attrs.user.groups
        if MASTERS in groups:
            return ALLOW
        if not attrs.resource_request:
            if attrs.verb in _READ_VERBS and _may_read_path(groups, attrs.path):
                return ALLOW
            return NO_OPINION
        if (
            AUTHENTICATED in groups
            and attrs.verb == "create"
            and not attrs.subresource
            and (attrs.api_group, attrs.resource) in SELF_REVIEWS
        ):
            return ALLOW
        return NO_OPINION


def _may_read_path(groups: Sequence[str], path: str) -> bool:
    path = path.split("?", 1)[0]
    if AUTHENTICATED in groups and non_resource_match(DISCOVERY_PATHS, path):
        return True
    readable = AUTHENTICATED in groups or UNAUTHENTICATED in groups
    return readable and non_resource_match(PUBLIC_INFO_PATHS, path)
