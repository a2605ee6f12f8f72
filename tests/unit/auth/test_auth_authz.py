from __future__ import annotations

import pytest

from k3py.server.auth.authn import ANONYMOUS, UserInfo
from k3py.server.auth.authz import (
    ALLOW,
    NO_OPINION,
    ChainAuthorizer,
    Decision,
    MastersAuthorizer,
    RequestAttributes,
    non_resource_match,
)

ADMIN = UserInfo("system:admin", groups=("system:masters", "system:authenticated"))
ALICE = UserInfo("alice", groups=("devs", "system:authenticated"))


def resource(
    user: UserInfo,
    verb: str,
    resource: str,
    group: str = "",
    *,
    namespace: str = "",
    name: str = "",
    subresource: str = "",
) -> RequestAttributes:
    return RequestAttributes(
        user=user,
        verb=verb,
        api_group=group,
        resource=resource,
        namespace=namespace,
        name=name,
        subresource=subresource,
    )


def path(user: UserInfo, p: str, verb: str = "get") -> RequestAttributes:
    return RequestAttributes(user=user, verb=verb, path=p, resource_request=False)


@pytest.mark.parametrize(
    "attrs",
    [
        resource(ADMIN, "delete", "nodes", name="n1"),
        resource(ADMIN, "create", "pods", namespace="kube-system", subresource="exec"),
        path(ADMIN, "/metrics"),
        path(ADMIN, "/logs/x", verb="post"),
    ],
)
async def test_masters_may_do_anything(attrs: RequestAttributes) -> None:
    assert (await MastersAuthorizer().authorize(attrs)).allowed


@pytest.mark.parametrize(
    ("attrs", "allowed"),
    [
        (path(ALICE, "/api"), True),
        (path(ALICE, "/apis/apps/v1"), True),
        (path(ALICE, "/version"), True),
        (path(ALICE, "/openapi/v3/apis/apps/v1"), True),
        (path(ALICE, "/healthz"), True),
        (path(ALICE, "/readyz?verbose"), True),
        (path(ALICE, "/livez"), True),
        (path(ALICE, "/metrics"), False),
        (path(ALICE, "/api", verb="post"), False),
        (path(ALICE, "/apiextras"), False),
        (resource(ALICE, "create", "selfsubjectaccessreviews", "authorization.k8s.io"), True),
        (resource(ALICE, "create", "selfsubjectrulesreviews", "authorization.k8s.io"), True),
        (resource(ALICE, "create", "selfsubjectreviews", "authentication.k8s.io"), True),
        (resource(ALICE, "create", "subjectaccessreviews", "authorization.k8s.io"), False),
        (resource(ALICE, "delete", "selfsubjectreviews", "authentication.k8s.io"), False),
        (resource(ALICE, "get", "pods", namespace="default"), False),
        (resource(ALICE, "list", "namespaces"), False),
        (path(ANONYMOUS, "/healthz"), True),
        (path(ANONYMOUS, "/version"), True),
        (path(ANONYMOUS, "/api"), False),
        (resource(ANONYMOUS, "create", "selfsubjectreviews", "authentication.k8s.io"), False),
    ],
)
async def test_everyone_else(attrs: RequestAttributes, allowed: bool) -> None:
    decision = await MastersAuthorizer().authorize(attrs)
    assert decision.allowed is allowed
    assert not decision.denied  # the masters authorizer never vetoes: RBAC may still allow


class Fixed:
    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        self.asked = 0

    async def authorize(self, attrs: RequestAttributes) -> Decision:
        self.asked += 1
        return self.decision


async def test_chain_first_opinion_wins() -> None:
    attrs = resource(ALICE, "get", "pods", namespace="default")
    deny = Fixed(Decision(allowed=False, reason="node may not", denied=True))
    allow = Fixed(ALLOW)
    assert not (await ChainAuthorizer([deny, allow]).authorize(attrs)).allowed
    assert allow.asked == 0
    assert (await ChainAuthorizer([Fixed(NO_OPINION), allow]).authorize(attrs)).allowed


async def test_chain_without_opinions_refuses_with_reasons() -> None:
    attrs = resource(ALICE, "get", "pods", namespace="default")
    chain = ChainAuthorizer([Fixed(Decision(False, "no RBAC rule")), MastersAuthorizer()])
    decision = await chain.authorize(attrs)
    assert not decision.allowed and decision.reason == "no RBAC rule"


async def test_rbac_like_authorizer_drops_in_before_masters() -> None:
    class PodReader:
        async def authorize(self, attrs: RequestAttributes) -> Decision:
            ok = "devs" in attrs.user.groups and attrs.resource == "pods" and attrs.verb == "get"
            return ALLOW if ok else NO_OPINION

    chain = ChainAuthorizer([MastersAuthorizer()])
    chain.add(PodReader())
    assert (await chain.authorize(resource(ALICE, "get", "pods", namespace="default"))).allowed
    assert not (
        await chain.authorize(resource(ALICE, "delete", "pods", namespace="default"))
    ).allowed


def test_non_resource_match() -> None:
    assert non_resource_match(["/apis/*"], "/apis/apps")
    assert non_resource_match(["*"], "/anything")
    assert not non_resource_match(["/apis/*"], "/apis")
    assert non_resource_match(["/apis"], "/apis")
