"""Quota arithmetic, LimitRange checks, PDB arithmetic and the eviction check, against
upstream's numbers and messages (no server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from k3py.server import errors, policy
from k3py.server.controllers import disruption
from k3py.server.controllers import resourcequota as rq
from k3py.server.datastore import open_datastore
from k3py.server.registry.catalog import Catalog
from k3py.server.registry.store import ObjectStore, WriteContext

Obj = dict[str, Any]


def container(
    name: str, *, requests: Obj | None = None, limits: Obj | None = None, **kw: Any
) -> Obj:
    return {"name": name, "resources": {"requests": requests or {}, "limits": limits or {}}, **kw}


def fmt(rl: rq.ResourceList) -> dict[str, str]:
    return rq.format_list(rl)


# ---- quota usage ----------------------------------------------------------------------


def test_pod_requests_take_init_containers_and_sidecars_into_account() -> None:
    spec = {
        "containers": [
            container("a", requests={"cpu": "100m"}),
            container("b", requests={"cpu": "200m"}),
        ],
        "initContainers": [
            container("init", requests={"cpu": "1"}),
            container("sidecar", requests={"cpu": "50m"}, restartPolicy="Always"),
        ],
        "overhead": {"cpu": "10m"},
    }
    # max(sum(containers)+sidecar = 350m, init = 1) + overhead
    assert fmt(rq.pod_aggregate(spec, "requests")) == {"cpu": "1010m"}
    pod = {"metadata": {}, "spec": spec}
    usage = fmt(rq.pod_usage(pod, 0.0))
    assert usage["requests.cpu"] == usage["cpu"] == "1010m"
    assert usage["pods"] == usage["count/pods"] == "1"
    done = {"metadata": {}, "spec": spec, "status": {"phase": "Succeeded"}}
    assert fmt(rq.pod_usage(done, 0.0)) == {"count/pods": "1"}


def test_service_usage_counts_node_ports_and_load_balancers() -> None:
    lb: Obj = {
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 443, "nodePort": 30001}]}
    }
    assert fmt(rq.service_usage(lb, 0))["services.nodeports"] == "2"
    lb["spec"]["allocateLoadBalancerNodePorts"] = False
    usage = fmt(rq.service_usage(lb, 0))
    assert (usage["services.nodeports"], usage["services.loadbalancers"]) == ("1", "1")


def quota(hard: Obj, used: Obj | None = None, **spec: Any) -> Obj:
    q: Obj = {"metadata": {"name": "q"}, "spec": {"hard": hard, **spec}, "status": {"hard": hard}}
    if used is not None:
        q["status"]["used"] = used
    return q


def test_check_request_charges_and_rejects_like_upstream() -> None:
    pod = {
        "metadata": {"name": "p"},
        "spec": {"containers": [container("c", requests={"cpu": "600m", "memory": "1Gi"})]},
    }
    q = quota(
        {"requests.cpu": "1", "requests.memory": "2Gi"},
        {"requests.cpu": "300m", "requests.memory": "512Mi"},
    )
    charge = rq.check_request([q], ev=rq.PODS_EVALUATOR, obj=pod, old=None, now=0)
    assert fmt(charge.used[0]) == {"requests.cpu": "900m", "requests.memory": "1536Mi"}
    q["status"]["used"]["requests.cpu"] = "500m"
    with pytest.raises(rq.QuotaRejected) as e:
        rq.check_request([q], ev=rq.PODS_EVALUATOR, obj=pod, old=None, now=0)
    assert str(e.value) == (
        "exceeded quota: q, requested: requests.cpu=600m, used: requests.cpu=500m, limited: requests.cpu=1"
    )
    with pytest.raises(
        rq.QuotaRejected, match="status unknown for quota: q, resources: requests.cpu"
    ):
        rq.check_request(
            [quota({"requests.cpu": "1"})], ev=rq.PODS_EVALUATOR, obj=pod, old=None, now=0
        )
    with pytest.raises(rq.QuotaRejected) as e:
        rq.check_request(
            [quota({"limits.cpu": "1"}, {"limits.cpu": "0"})],
            ev=rq.PODS_EVALUATOR,
            obj=pod,
            old=None,
            now=0,
        )
    assert str(e.value) == "failed quota: q: must specify limits.cpu for: c"


def test_check_request_scopes_and_unrelated_quotas() -> None:
    best_effort: Obj = {"metadata": {"name": "p"}, "spec": {"containers": [container("c")]}}
    scoped = quota({"pods": "1"}, {"pods": "1"}, scopes=["NotBestEffort"])
    assert (
        rq.check_request([scoped], ev=rq.PODS_EVALUATOR, obj=best_effort, old=None, now=0).used
        == {}
    )
    unrelated = quota({"services": "1"}, {"services": "1"})
    assert (
        rq.check_request([unrelated], ev=rq.PODS_EVALUATOR, obj=best_effort, old=None, now=0).used
        == {}
    )
    sel = {
        "matchExpressions": [{"scopeName": "PriorityClass", "operator": "NotIn", "values": ["low"]}]
    }
    by_class = quota({"pods": "1"}, {"pods": "1"}, scopeSelector=sel)
    with pytest.raises(rq.QuotaRejected):
        rq.check_request([by_class], ev=rq.PODS_EVALUATOR, obj=best_effort, old=None, now=0)
    low = {**best_effort, "spec": {**best_effort["spec"], "priorityClassName": "low"}}
    assert rq.check_request([by_class], ev=rq.PODS_EVALUATOR, obj=low, old=None, now=0).used == {}


def test_service_update_is_charged_by_delta() -> None:
    old = {
        "metadata": {"name": "s", "resourceVersion": "5"},
        "spec": {"type": "ClusterIP", "ports": [{"port": 80}]},
    }
    new = {"metadata": {"name": "s"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}}
    q = quota(
        {"services": "2", "services.nodeports": "1"}, {"services": "2", "services.nodeports": "0"}
    )
    charge = rq.check_request([q], ev=rq.SERVICES_EVALUATOR, obj=new, old=old, now=0)
    assert fmt(charge.used[0]) == {"services": "2", "services.nodeports": "1"}


def test_calculate_usage_and_object_count_names() -> None:
    pods = [
        {
            "metadata": {"name": "a"},
            "spec": {"containers": [container("c", requests={"memory": "1Gi"})]},
        },
        {
            "metadata": {"name": "b"},
            "spec": {"containers": [container("c")]},
            "status": {"phase": "Failed"},
        },
    ]
    q = {
        "spec": {
            "hard": {
                "pods": "9",
                "requests.memory": "9Gi",
                "count/pods": "9",
                "count/jobs.batch": "1",
                "x": "1",
            }
        }
    }

    def objects(ev: rq.Evaluator) -> list[Obj]:
        return pods if ev.resource == "pods" else []

    usage = fmt(rq.calculate_usage(q, objects=objects, now=0))
    assert usage == {
        "count/jobs.batch": "0",
        "count/pods": "2",
        "pods": "1",
        "requests.memory": "1Gi",
    }
    assert rq.parse_count_name("count/deployments.apps") == ("apps", "deployments")
    assert rq.evaluator_for("", "configmaps").names == ("count/configmaps", "configmaps")


# ---- LimitRange -------------------------------------------------------------------------


def test_limit_range_defaults_and_messages() -> None:
    lr = {"spec": {"limits": [{"type": "Container", "default": {"memory": "256Mi"}, "defaultRequest": {"memory": "128Mi"},
                               "max": {"memory": "1Gi"}, "maxLimitRequestRatio": {"memory": "2"}}]}}  # fmt: skip
    pod: Obj = {
        "metadata": {},
        "spec": {
            "containers": [{"name": "app"}],
            "initContainers": [container("init", limits={"memory": "64Mi"})],
        },
    }
    policy.merge_pod_defaults(lr, pod)
    assert pod["spec"]["containers"][0]["resources"] == {
        "requests": {"memory": "128Mi"},
        "limits": {"memory": "256Mi"},
    }
    assert pod["metadata"]["annotations"][policy.LIMIT_RANGER_ANNOTATION] == (
        "LimitRanger plugin set: memory request for container app; memory limit for container app; "
        "memory request for init container init"
    )
    assert policy.validate_pod(lr, pod) == []
    bad = {
        "spec": {
            "containers": [container("c", requests={"memory": "100Mi"}, limits={"memory": "2Gi"})]
        }
    }
    assert policy.validate_pod(lr, bad) == [
        "maximum memory usage per Container is 1Gi, but limit is 2Gi",
        "memory max limit to request ratio per Container is 2, but provided ratio is 20.480000",
    ]
    assert policy.aggregate(["a", "b", "a"]) == "[a, b]"
    assert policy.aggregate(["a", "a"]) == "a"


# ---- PDB arithmetic ----------------------------------------------------------------------


def test_scaled_values_round_up_like_intstr() -> None:
    assert disruption.scaled_value("25%", 5, round_up=True) == 2
    assert disruption.scaled_value("50%", 3, round_up=True) == 2
    assert disruption.scaled_value(4, 10, round_up=True) == 4
    with pytest.raises(disruption.SyncError):
        disruption.scaled_value("abc%", 3, round_up=True)


# ---- eviction check against a store ---------------------------------------------------------


@pytest.fixture
async def store() -> AsyncIterator[tuple[ObjectStore, Catalog, Any]]:
    ds = open_datastore("sqlite://", compaction_interval=None)
    await ds.start()
    catalog = Catalog()
    st = ObjectStore(datastore=ds)
    state = SimpleNamespace(caches={})
    policy.install(store=st, catalog=catalog, state=state)
    ns = catalog.get("", "v1", "namespaces")
    assert ns is not None
    await st.create(ns, {"metadata": {"name": "default"}}, ctx=WriteContext())
    yield st, catalog, state
    await ds.close()


async def _put(
    st: ObjectStore, catalog: Catalog, plural: str, group: str, obj: Obj, status: Obj | None = None
) -> Obj:
    info = catalog.get(group, "v1", plural)
    assert info is not None
    obj = await st.create(info, obj, ctx=WriteContext())
    if status is not None:
        obj["status"] = status
        obj = await st.update(
            info, "default", obj["metadata"]["name"], obj, ctx=WriteContext(subresource="status")
        )
    return obj


async def test_eviction_check_decrements_and_refuses(
    store: tuple[ObjectStore, Catalog, Any],
) -> None:
    st, catalog, state = store
    check = state.caches["eviction_check"]
    ready = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    for name in ("a", "b"):
        await _put(st, catalog, "pods", "", {"metadata": {"name": name, "namespace": "default", "labels": {"app": "x"}},
                                              "spec": {"containers": [{"name": "c", "image": "i"}]}}, ready)  # fmt: skip
    budget = {
        "metadata": {"name": "x", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "minAvailable": 1},
    }
    await _put(st, catalog, "poddisruptionbudgets", "policy", budget,
               {"observedGeneration": 1, "disruptionsAllowed": 1, "currentHealthy": 2, "desiredHealthy": 1, "expectedPods": 2})  # fmt: skip
    await check("default", "a", dry_run=True)  # dry run: nothing recorded
    info = catalog.get("policy", "v1", "poddisruptionbudgets")
    assert info is not None
    assert (await st.get(info, "default", "x"))["status"]["disruptionsAllowed"] == 1
    await check("default", "a")
    status = (await st.get(info, "default", "x"))["status"]
    assert status["disruptionsAllowed"] == 0 and list(status["disruptedPods"]) == ["a"]
    cond = status["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"]) == (
        "DisruptionAllowed",
        "False",
        "InsufficientPods",
    )
    with pytest.raises(errors.APIError) as e:
        await check("default", "b")
    assert e.value.code == 429
    assert e.value.status()["details"] == {
        "causes": [
            {
                "reason": "DisruptionBudget",
                "message": "The disruption budget x needs 1 healthy pods and has 2 currently",
            }
        ]
    }
    # A budget whose spec the controller has not seen yet: retry later.
    pdb = await st.get(info, "default", "x")
    pdb["spec"]["minAvailable"] = 0
    await st.update(info, "default", "x", pdb, ctx=WriteContext())
    with pytest.raises(errors.APIError) as e:
        await check("default", "b")
    assert e.value.code == 429 and e.value.headers == {"Retry-After": "10"}
    assert e.value.status()["details"]["retryAfterSeconds"] == 10
    await check("default", "gone")  # no such pod: left to the delete (404)
