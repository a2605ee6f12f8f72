"""The node authorizer and NodeRestriction admission, on RequestAttributes alone."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from k3py.server.auth.authn import UserInfo
from k3py.server.auth.authz import ChainAuthorizer, MastersAuthorizer, RequestAttributes
from k3py.server.auth.nodeauthz import NodeAuthorizer, NodeRestriction, node_name_of
from k3py.server.errors import APIError

W1 = UserInfo(name="system:node:w1", groups=("system:nodes", "system:authenticated"))


class FakeLookup:
    """Pods: default/web-0 on w1, default/web-1 on w2, team-b/job on w2."""

    pods = {("default", "web-0"): "w1", ("default", "web-1"): "w2", ("team-b", "job"): "w2"}

    async def pod_node(self, namespace: str, name: str) -> str | None:
        return self.pods.get((namespace, name))

    async def node_has_pods_in(self, node: str, namespace: str) -> bool:
        return any(ns == namespace and n == node for (ns, _), n in self.pods.items())


async def allowed(authz: Any, *, user: UserInfo = W1, **kw: Any) -> bool:
    decision = await authz.authorize(RequestAttributes(user=user, **kw))
    return bool(decision.allowed)


@pytest.fixture
def authz() -> NodeAuthorizer:
    return NodeAuthorizer(lookup=FakeLookup())


def test_node_identity() -> None:
    assert node_name_of(W1) == "w1"
    assert node_name_of(UserInfo(name="system:node:w1", groups=("system:authenticated",))) is None
    assert node_name_of(UserInfo(name="alice", groups=("system:nodes",))) is None
    assert node_name_of(UserInfo(name="system:node:", groups=("system:nodes",))) is None


async def test_reads_every_kubelet_needs(authz: NodeAuthorizer) -> None:
    for group, resource in [("", "nodes"), ("", "pods"), ("", "services"), ("", "endpoints"),
                            ("discovery.k8s.io", "endpointslices"), ("", "namespaces"),
                            ("node.k8s.io", "runtimeclasses"), ("storage.k8s.io", "csidrivers"),
                            ("", "persistentvolumes")]:  # fmt: skip
        for verb in ("get", "list", "watch"):
            assert await allowed(authz, verb=verb, api_group=group, resource=resource), (verb, resource)
    assert not await allowed(authz, verb="delete", resource="services", namespace="default", name="x")
    assert not await allowed(authz, verb="create", resource="namespaces")


async def test_own_node_only(authz: NodeAuthorizer) -> None:
    assert await allowed(authz, verb="create", resource="nodes")  # the body's name: admission
    for verb in ("get", "update", "patch"):
        assert await allowed(authz, verb=verb, resource="nodes", name="w1")
        assert await allowed(authz, verb=verb, resource="nodes", subresource="status", name="w1")
    for verb in ("update", "patch"):
        assert not await allowed(authz, verb=verb, resource="nodes", name="w2")
        assert not await allowed(authz, verb=verb, resource="nodes", subresource="status", name="w2")
    assert not await allowed(authz, verb="delete", resource="nodes", name="w1")
    assert not await allowed(authz, verb="delete", resource="nodes", name="w2")


async def test_own_lease_only(authz: NodeAuthorizer) -> None:
    lease: dict[str, Any] = {"api_group": "coordination.k8s.io", "resource": "leases"}
    for verb in ("get", "update", "patch", "delete"):
        assert await allowed(authz, verb=verb, namespace="kube-node-lease", name="w1", **lease)
        assert not await allowed(authz, verb=verb, namespace="kube-node-lease", name="w2", **lease)
    assert await allowed(authz, verb="create", namespace="kube-node-lease", **lease)
    assert await allowed(authz, verb="watch", namespace="kube-node-lease", **lease)
    # Leader-election leases elsewhere are not a kubelet's business.
    assert not await allowed(authz, verb="get", namespace="kube-system", name="w1", **lease)
    assert not await allowed(authz, verb="create", namespace="kube-system", **lease)


async def test_events(authz: NodeAuthorizer) -> None:
    for verb in ("create", "update", "patch"):
        assert await allowed(authz, verb=verb, resource="events", namespace="default")
        assert await allowed(authz, verb=verb, api_group="events.k8s.io", resource="events",
                             namespace="default")  # fmt: skip
    assert not await allowed(authz, verb="delete", resource="events", namespace="default", name="e")


async def test_pods_bound_to_it_only(authz: NodeAuthorizer) -> None:
    mine: dict[str, Any] = {"resource": "pods", "namespace": "default", "name": "web-0"}
    theirs: dict[str, Any] = {"resource": "pods", "namespace": "default", "name": "web-1"}
    for verb in ("update", "patch", "get"):
        assert await allowed(authz, verb=verb, subresource="status", **mine)
    for verb in ("update", "patch"):
        assert not await allowed(authz, verb=verb, subresource="status", **theirs)
    assert await allowed(authz, verb="delete", **mine)
    assert not await allowed(authz, verb="delete", **theirs)
    assert not await allowed(authz, verb="delete", resource="pods", namespace="default", name="gone")
    assert not await allowed(authz, verb="update", **mine)  # spec: not a kubelet's to write
    assert not await allowed(authz, verb="create", resource="pods", namespace="default")
    assert not await allowed(authz, verb="create", subresource="eviction", **mine)
    assert not await allowed(authz, verb="deletecollection", resource="pods", namespace="default")


async def test_configmaps_secrets_claims_in_its_pods_namespaces(authz: NodeAuthorizer) -> None:
    for resource in ("configmaps", "secrets", "persistentvolumeclaims"):
        assert await allowed(authz, verb="get", resource=resource, namespace="default", name="x")
        assert not await allowed(authz, verb="get", resource=resource, namespace="team-b", name="x")
        assert not await allowed(authz, verb="list", resource=resource)
        assert not await allowed(authz, verb="watch", resource=resource, namespace="default")
        assert not await allowed(authz, verb="update", resource=resource, namespace="default", name="x")
        assert not await allowed(authz, verb="delete", resource=resource, namespace="default", name="x")


async def test_without_lookup_reads_are_open_but_writes_are_not() -> None:
    authz = NodeAuthorizer()
    assert await allowed(authz, verb="list", resource="secrets")
    assert await allowed(authz, verb="get", resource="configmaps", namespace="team-b", name="x")
    assert not await allowed(authz, verb="delete", resource="secrets", namespace="team-b", name="x")
    assert await allowed(authz, verb="delete", resource="pods", namespace="default", name="web-1")


async def test_tokens_and_reviews(authz: NodeAuthorizer) -> None:
    assert await allowed(authz, verb="create", resource="serviceaccounts", subresource="token",
                         namespace="default", name="default")  # fmt: skip
    assert not await allowed(authz, verb="create", resource="serviceaccounts", namespace="default")
    assert not await allowed(authz, verb="update", resource="serviceaccounts", namespace="default",
                             name="default")  # fmt: skip
    for group, resource in [("authentication.k8s.io", "tokenreviews"),
                            ("authorization.k8s.io", "subjectaccessreviews")]:  # fmt: skip
        assert await allowed(authz, verb="create", api_group=group, resource=resource)
    assert not await allowed(authz, verb="list", api_group="certificates.k8s.io",
                             resource="certificatesigningrequests")  # fmt: skip


async def test_everything_else_and_other_users(authz: NodeAuthorizer) -> None:
    assert not await allowed(authz, verb="create", api_group="apps", resource="deployments",
                             namespace="default")  # fmt: skip
    assert not await allowed(authz, verb="list", api_group="apps", resource="deployments")
    assert not await allowed(authz, verb="create", api_group="rbac.authorization.k8s.io",
                             resource="clusterrolebindings")  # fmt: skip
    for path in ("/api", "/version", "/healthz"):
        assert await allowed(authz, verb="get", path=path, resource_request=False)
    assert not await allowed(authz, verb="post", path="/api", resource_request=False)
    alice = UserInfo(name="alice", groups=("system:authenticated",))
    assert not await allowed(authz, user=alice, verb="list", resource="pods")
    impostor = UserInfo(name="system:node:w1", groups=("system:authenticated",))
    assert not await allowed(authz, user=impostor, verb="get", resource="nodes", name="w1")


async def test_chained_before_masters(authz: NodeAuthorizer) -> None:
    chain = ChainAuthorizer([authz, MastersAuthorizer()])
    assert await allowed(chain, verb="patch", resource="nodes", name="w1")
    assert not await allowed(chain, verb="patch", resource="nodes", name="w2")
    admin = UserInfo(name="admin", groups=("system:masters",))
    assert await allowed(chain, user=admin, verb="patch", resource="nodes", name="w2")


def _ctx(user: str = "system:node:w1", groups: tuple[str, ...] = ("system:nodes",)) -> Any:
    return SimpleNamespace(user=user, groups=groups, subresource="")


def _info(group: str, plural: str) -> Any:
    return SimpleNamespace(group=group, plural=plural)


async def test_node_restriction_admission() -> None:
    admit = NodeRestriction()
    nodes, leases, pods = _info("", "nodes"), _info("coordination.k8s.io", "leases"), _info("", "pods")
    await admit(nodes, {"metadata": {"name": "w1"}}, None, _ctx())
    await admit(leases, {"metadata": {"name": "w1"}}, None, _ctx())
    with pytest.raises(APIError) as e:
        await admit(nodes, {"metadata": {"name": "w2"}}, None, _ctx())
    assert e.value.code == 403 and 'not allowed to modify node "w2"' in e.value.message
    with pytest.raises(APIError):
        await admit(leases, {"metadata": {"name": "w2"}}, None, _ctx())
    pod = {"metadata": {"name": "p"}, "spec": {"nodeName": "w2"}}
    with pytest.raises(APIError):
        await admit(pods, pod, pod, _ctx())
    with pytest.raises(APIError):
        await admit(pods, {"metadata": {"name": "p"}, "spec": {}}, None, _ctx())
    own = {"metadata": {"name": "p"}, "spec": {"nodeName": "w1"}}
    await admit(pods, own, own, _ctx())
    # Others are not this hook's business.
    await admit(nodes, {"metadata": {"name": "w2"}}, None, _ctx(user="admin", groups=("system:masters",)))
