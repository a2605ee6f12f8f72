"""The Job controller on simulated nodes, driven by kubectl: completions and parallelism,
Indexed Jobs, backoffLimit, podFailurePolicy, activeDeadlineSeconds, suspend/resume,
per-index back-off limits, ttlSecondsAfterFinished; plus its pure helpers."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from k3py.client import PODS
from k3py.server.controllers.job import (
    format_indexes,
    match_pod_failure_policy,
    match_success_policy,
    parse_indexes,
    remaining_backoff,
)
from tests.conftest import stop_server_thread
from tests.control.conftest import ClusterHandle, _ready_nodes, make_cluster

DURATION = "k3py.io/simulate-duration"
EXIT_CODE = "k3py.io/simulate-exit-code"


def job_manifest(
    name: str,
    *,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    pod: dict[str, Any] | None = None,
    **spec: Any,
) -> str:
    template: dict[str, Any] = {
        "metadata": {"annotations": annotations or {}, "labels": labels or {}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "work", "image": "busybox:1.36", "command": ["true"]}],
            **(pod or {}),
        },
    }
    body = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"template": template, **spec},
    }
    return json.dumps(body)


def apply_job(cluster: ClusterHandle, ns: str, name: str, **kw: Any) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=job_manifest(name, **kw))


def get_job(cluster: ClusterHandle, ns: str, name: str) -> dict[str, Any]:
    return cluster.get_json("job", name, "-n", ns)  # type: ignore[no-any-return]


def condition(job: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    for c in job.get("status", {}).get("conditions", []):
        if c["type"] == ctype:
            return c  # type: ignore[no-any-return]
    return None


def wait_condition(
    cluster: ClusterHandle, ns: str, name: str, ctype: str, timeout: float = 60
) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job = get_job(cluster, ns, name)
        c = condition(job, ctype)
        return job if c is not None and c["status"] == "True" else None

    job: dict[str, Any] = cluster.wait_for(done, timeout=timeout, what=f"job {name} {ctype}")
    return job


def job_pods(cluster: ClusterHandle, ns: str, name: str) -> list[dict[str, Any]]:
    out = cluster.call(
        cluster.client().list(
            PODS, namespace=ns, label_selector=f"batch.kubernetes.io/job-name={name}"
        )
    )
    return out.items  # type: ignore[no-any-return]


def events(cluster: ClusterHandle, ns: str, name: str) -> list[tuple[str, str]]:
    items = cluster.get_json("events", "-n", ns, "--field-selector", f"involvedObject.name={name}")[
        "items"
    ]
    return [(e["reason"], e["message"]) for e in items]


def wait_event(cluster: ClusterHandle, ns: str, name: str, reason: str) -> list[tuple[str, str]]:
    return cluster.wait_for(  # type: ignore[no-any-return]
        lambda: [e for e in events(cluster, ns, name) if e[0] == reason],
        timeout=30,
        what=f"{reason} event",
    )


# ---- on the cluster ----------------------------------------------------------------------


def test_completions_and_parallelism(cluster: ClusterHandle, ns: str) -> None:
    most_active = [0]
    stop = threading.Event()

    def watch_active() -> None:
        while not stop.is_set():
            pods = job_pods(cluster, ns, "batch")
            running = [
                p for p in pods if p.get("status", {}).get("phase") not in ("Succeeded", "Failed")
            ]
            most_active[0] = max(most_active[0], len(running))
            stop.wait(0.05)

    watcher = threading.Thread(target=watch_active)
    watcher.start()
    try:
        apply_job(
            cluster, ns, "batch", completions=4, parallelism=2, annotations={DURATION: "300ms"}
        )
        cluster.kubectl(
            "wait", "-n", ns, "--for=condition=complete", "job/batch", "--timeout=60s", timeout=70
        )
    finally:
        stop.set()
        watcher.join()
    job = get_job(cluster, ns, "batch")
    st = job["status"]
    assert st["succeeded"] == 4
    assert "active" not in st and "failed" not in st
    assert st["ready"] == 0 and st["terminating"] == 0 and st["uncountedTerminatedPods"] == {}
    assert st["startTime"] <= st["completionTime"]
    met = condition(job, "SuccessCriteriaMet")
    complete = condition(job, "Complete")
    assert met is not None and complete is not None
    assert (complete["reason"], complete["message"]) == (
        "CompletionsReached",
        "Reached expected number of succeeded pods",
    )
    assert 1 <= most_active[0] <= 2
    pods = job_pods(cluster, ns, "batch")
    assert len(pods) == 4
    uid = job["metadata"]["uid"]
    for p in pods:
        m = p["metadata"]
        assert m["name"].startswith("batch-")
        assert m["labels"]["batch.kubernetes.io/controller-uid"] == uid
        assert m["labels"]["controller-uid"] == uid
        assert m["labels"]["job-name"] == "batch"
        assert (
            m["ownerReferences"][0]["kind"] == "Job"
            and m["ownerReferences"][0]["controller"] is True
        )
        assert "batch.kubernetes.io/job-tracking" not in (m.get("finalizers") or [])  # counted
    evs = events(cluster, ns, "batch")
    assert (
        sum(1 for r, m in evs if r == "SuccessfulCreate" and m.startswith("Created pod: batch-"))
        >= 1
    )
    wait_event(cluster, ns, "batch", "Completed")
    described = cluster.kubectl("describe", "job", "batch", "-n", ns).stdout
    assert "job-controller  Job completed" in described
    assert "4 Succeeded" in described
    table = cluster.kubectl("get", "job", "batch", "-n", ns).stdout
    assert "Complete" in table and "4/4" in table


def test_indexed_job(cluster: ClusterHandle, ns: str) -> None:
    apply_job(
        cluster,
        ns,
        "idx",
        completions=4,
        parallelism=2,
        completionMode="Indexed",
        pod={"subdomain": "workers"},
    )
    job = wait_condition(cluster, ns, "idx", "Complete")
    assert job["status"]["completedIndexes"] == "0-3"
    assert job["status"]["succeeded"] == 4
    pods = job_pods(cluster, ns, "idx")
    seen = set()
    for p in pods:
        m, spec = p["metadata"], p["spec"]
        ix = m["annotations"]["batch.kubernetes.io/job-completion-index"]
        assert m["labels"]["batch.kubernetes.io/job-completion-index"] == ix
        assert m["name"].startswith(f"idx-{ix}-")
        assert spec["hostname"] == f"idx-{ix}"
        assert spec["subdomain"] == "workers"
        env = spec["containers"][0]["env"]
        path = "metadata.labels['batch.kubernetes.io/job-completion-index']"
        ref = {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}
        assert {"name": "JOB_COMPLETION_INDEX", "valueFrom": ref} in env
        seen.add(int(ix))
    assert seen == {0, 1, 2, 3}


def test_backoff_limit_exceeded(cluster: ClusterHandle, ns: str) -> None:
    apply_job(
        cluster,
        ns,
        "fails",
        completions=2,
        parallelism=2,
        backoffLimit=1,
        annotations={EXIT_CODE: "1"},
    )
    job = wait_condition(cluster, ns, "fails", "Failed")
    failed = condition(job, "Failed")
    assert failed is not None
    assert (failed["reason"], failed["message"]) == (
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    )
    target = condition(job, "FailureTarget")
    assert target is not None and target["reason"] == "BackoffLimitExceeded"
    assert condition(job, "Complete") is None
    assert job["status"]["failed"] == 2
    assert "completionTime" not in job["status"]
    wait_event(cluster, ns, "fails", "BackoffLimitExceeded")
    res = cluster.kubectl("wait", "-n", ns, "--for=condition=failed", "job/fails", "--timeout=10s")
    assert "condition met" in res.stdout


def test_pod_failure_policy_fail_job(cluster: ClusterHandle, ns: str) -> None:
    fail_on_42 = {"containerName": "work", "operator": "In", "values": [42]}
    policy = {
        "rules": [
            {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}},
            {"action": "FailJob", "onExitCodes": fail_on_42},
        ]
    }
    apply_job(
        cluster,
        ns,
        "policy",
        backoffLimit=6,
        podFailurePolicy=policy,
        annotations={EXIT_CODE: "42"},
    )
    job = wait_condition(cluster, ns, "policy", "Failed")
    failed = condition(job, "Failed")
    assert failed is not None and failed["reason"] == "PodFailurePolicy"
    pod = job_pods(cluster, ns, "policy")[0]["metadata"]["name"]
    want = f"Container work for pod {ns}/{pod} failed with exit code 42 matching FailJob rule"
    assert failed["message"] == want + " at index 1"
    assert job["status"]["failed"] == 1
    assert len(job_pods(cluster, ns, "policy")) == 1  # not retried


def test_active_deadline_seconds(cluster: ClusterHandle, ns: str) -> None:
    apply_job(
        cluster,
        ns,
        "slow",
        activeDeadlineSeconds=2,
        parallelism=2,
        completions=2,
        annotations={DURATION: "1h"},
    )
    job = wait_condition(cluster, ns, "slow", "Failed", timeout=60)
    failed = condition(job, "Failed")
    assert failed is not None
    assert (failed["reason"], failed["message"]) == (
        "DeadlineExceeded",
        "Job was active longer than specified deadline",
    )
    assert job["status"]["failed"] == 2  # the running pods were killed and counted
    assert "active" not in job["status"]
    cluster.wait_for(lambda: job_pods(cluster, ns, "slow") == [], timeout=30, what="pods gone")


def test_suspend_and_resume(cluster: ClusterHandle, ns: str) -> None:
    apply_job(
        cluster,
        ns,
        "later",
        suspend=True,
        parallelism=2,
        completions=2,
        annotations={DURATION: "1s"},
    )
    job = wait_condition(cluster, ns, "later", "Suspended")
    assert condition(job, "Suspended")["reason"] == "JobSuspended"  # type: ignore[index]
    assert "startTime" not in job["status"]
    assert job_pods(cluster, ns, "later") == []
    cluster.kubectl(
        "patch", "job", "later", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":false}}'
    )
    job = wait_condition(cluster, ns, "later", "Complete")
    resumed = condition(job, "Suspended")
    assert resumed is not None and (resumed["status"], resumed["reason"]) == ("False", "JobResumed")
    assert job["status"]["succeeded"] == 2
    reasons = [r for r, _ in events(cluster, ns, "later")]
    assert "Suspended" in reasons and "Resumed" in reasons


def test_suspend_deletes_running_pods(cluster: ClusterHandle, ns: str) -> None:
    apply_job(cluster, ns, "pause", parallelism=2, completions=4, annotations={DURATION: "1h"})
    cluster.wait_for(
        lambda: get_job(cluster, ns, "pause")["status"].get("active") == 2, what="2 active"
    )
    cluster.kubectl(
        "patch", "job", "pause", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":true}}'
    )
    wait_condition(cluster, ns, "pause", "Suspended")
    cluster.wait_for(lambda: job_pods(cluster, ns, "pause") == [], timeout=30, what="pods deleted")
    job = get_job(cluster, ns, "pause")
    assert "active" not in job["status"] and "failed" not in job["status"]
    assert any(r == "SuccessfulDelete" for r, _ in events(cluster, ns, "pause"))


def test_uncounted_pods_are_counted_once(cluster: ClusterHandle, ns: str) -> None:
    # as if the controller crashed after removing a finished pod's finalizer and before
    # moving its uid from uncountedTerminatedPods into the counters
    apply_job(cluster, ns, "recover", suspend=True, completions=2)
    wait_condition(cluster, ns, "recover", "Suspended")
    cluster.kubectl(
        "patch", "job", "recover", "-n", ns, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"uncountedTerminatedPods": {"succeeded": ["gone-pod-uid"]}}}),
    )  # fmt: skip
    cluster.wait_for(
        lambda: get_job(cluster, ns, "recover")["status"].get("succeeded") == 1, what="counted"
    )
    assert get_job(cluster, ns, "recover")["status"]["uncountedTerminatedPods"] == {}
    cluster.kubectl(
        "patch", "job", "recover", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":false}}'
    )
    job = wait_condition(cluster, ns, "recover", "Complete")
    assert job["status"]["succeeded"] == 2
    assert len(job_pods(cluster, ns, "recover")) == 1  # one more run was enough


def test_backoff_limit_per_index(cluster: ClusterHandle, ns: str) -> None:
    apply_job(
        cluster,
        ns,
        "perindex",
        completions=2,
        parallelism=2,
        completionMode="Indexed",
        backoffLimitPerIndex=0,
        annotations={EXIT_CODE: "1"},
    )
    job = wait_condition(cluster, ns, "perindex", "Failed")
    failed = condition(job, "Failed")
    assert failed is not None and failed["reason"] == "FailedIndexes"
    assert job["status"]["failedIndexes"] == "0,1"
    assert job["status"]["failed"] == 2


def test_success_policy_ends_an_indexed_job_early(cluster: ClusterHandle, ns: str) -> None:
    policy = {"rules": [{"succeededIndexes": "0", "succeededCount": 1}]}
    apply_job(
        cluster,
        ns,
        "leader",
        completions=3,
        parallelism=1,
        completionMode="Indexed",
        successPolicy=policy,
    )
    job = wait_condition(cluster, ns, "leader", "Complete")
    complete = condition(job, "Complete")
    met = condition(job, "SuccessCriteriaMet")
    assert complete is not None and met is not None
    assert (complete["reason"], complete["message"]) == (
        "SuccessPolicy",
        "Matched rules at index 0",
    )
    assert job["status"]["completedIndexes"] == "0"
    assert len(job_pods(cluster, ns, "leader")) == 1  # indexes 1 and 2 never ran


def test_pod_failure_back_off_between_retries(cluster: ClusterHandle, ns: str) -> None:
    ctrl = cluster.running.control.controllers.get("job")
    saved = ctrl.pod_failure_backoff
    ctrl.pod_failure_backoff = 0.3  # upstream's 10 s doubling would make this test slow
    try:
        cluster.kubectl(
            "apply",
            "-n",
            ns,
            "-f",
            "-",
            input=job_manifest("retry", backoffLimit=2, annotations={EXIT_CODE: "1"}),
        )
        job = wait_condition(cluster, ns, "retry", "Failed")
    finally:
        ctrl.pod_failure_backoff = saved
    assert condition(job, "Failed")["reason"] == "BackoffLimitExceeded"  # type: ignore[index]
    assert job["status"]["failed"] == 3
    pods = sorted(job_pods(cluster, ns, "retry"), key=lambda p: p["metadata"]["creationTimestamp"])
    assert len(pods) == 3 and all(p["status"]["phase"] == "Failed" for p in pods)


def test_deleting_a_job_releases_and_removes_its_pods(cluster: ClusterHandle, ns: str) -> None:
    apply_job(cluster, ns, "doomed", parallelism=2, completions=2, annotations={DURATION: "1h"})
    cluster.wait_for(
        lambda: get_job(cluster, ns, "doomed")["status"].get("active") == 2, what="2 active"
    )
    cluster.kubectl("delete", "job", "doomed", "-n", ns)
    # the garbage collector deletes the pods; the tracking finalizer must not hold them
    cluster.wait_for(lambda: job_pods(cluster, ns, "doomed") == [], timeout=30, what="pods gone")


def test_adopts_matching_orphan_pods(cluster: ClusterHandle, ns: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "stray",
            "labels": {"app": "adopt-me"},
            "annotations": {DURATION: "2s"},
        },
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "work", "image": "busybox:1.36"}],
        },
    }
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(pod))
    selector = {"matchLabels": {"app": "adopt-me"}}
    apply_job(
        cluster,
        ns,
        "adopter",
        manualSelector=True,
        selector=selector,
        pod={},
        labels={"app": "adopt-me"},
    )
    job = wait_condition(cluster, ns, "adopter", "Complete")
    assert job["status"]["succeeded"] == 1
    stray = cluster.get_json("pod", "stray", "-n", ns)
    ref = stray["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["uid"]) == ("Job", "adopter", job["metadata"]["uid"])
    assert "batch.kubernetes.io/job-tracking" not in (stray["metadata"].get("finalizers") or [])
    pods = cluster.get_json("pods", "-n", ns)["items"]
    assert [p["metadata"]["name"] for p in pods] == ["stray"]  # no pod of its own was needed


def test_ttl_seconds_after_finished(cluster: ClusterHandle, ns: str) -> None:
    apply_job(cluster, ns, "brief", ttlSecondsAfterFinished=1)
    uid = get_job(cluster, ns, "brief")["metadata"]["uid"]
    cluster.wait_for(
        lambda: (
            cluster.kubectl(
                "get", "job", "brief", "-n", ns, "--ignore-not-found", "-o", "name"
            ).stdout
            == ""
        ),
        timeout=30,
        what="job deleted by TTL",
    )
    wait_event(cluster, ns, "brief", "Completed")  # it finished first, then went away
    cluster.wait_for(
        lambda: (
            not [
                p
                for p in job_pods(cluster, ns, "brief")
                if p["metadata"]["labels"]["controller-uid"] == uid
            ]
        ),
        timeout=30,
        what="pods collected",
    )


def test_a_server_restart_mid_job_counts_each_pod_once(tmp_path: Path) -> None:
    first = make_cluster(tmp_path)
    try:
        first.wait_for(lambda: _ready_nodes(first) >= 3, timeout=30, what="Ready nodes")
        first.kubectl("create", "namespace", "r")
        apply_job(first, "r", "steady", completions=3, annotations={DURATION: "500ms"})
        first.wait_for(
            lambda: get_job(first, "r", "steady")["status"].get("succeeded"), what="a success"
        )
    finally:
        stop_server_thread(first)
    again = make_cluster(tmp_path)
    try:
        job = wait_condition(again, "r", "steady", "Complete")
        assert job["status"]["succeeded"] == 3
        pods = job_pods(again, "r", "steady")
        assert len(pods) == 3 and all(p["status"]["phase"] == "Succeeded" for p in pods)
    finally:
        stop_server_thread(again)


# ---- helpers ---------------------------------------------------------------------------------


def test_index_intervals() -> None:
    assert format_indexes([0, 1, 2, 4]) == "0-2,4"
    assert format_indexes([5, 6]) == "5,6"
    assert format_indexes([3, 1, 2, 7, 8, 9, 11]) == "1-3,7-9,11"
    assert format_indexes([]) == ""
    assert parse_indexes("0-2,4,7-9", limit=8) == {0, 1, 2, 4, 7}
    assert parse_indexes("1,x,3", limit=10) == {1, 3}


def test_pod_failure_policy_matching() -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "n"},
        "status": {
            "phase": "Failed",
            "conditions": [{"type": "DisruptionTarget", "status": "True"}],
            "containerStatuses": [{"name": "c", "state": {"terminated": {"exitCode": 5}}}],
        },
    }
    disrupted = {
        "rules": [
            {
                "action": "Ignore",
                "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
            }
        ]
    }
    m = match_pod_failure_policy(disrupted, pod)
    assert (m.count, m.action) == (False, "Ignore")
    not_in = {
        "rules": [{"action": "FailJob", "onExitCodes": {"operator": "NotIn", "values": [0, 1]}}]
    }
    assert match_pod_failure_policy(not_in, pod).fail_job_message == (
        "Container c for pod n/p failed with exit code 5 matching FailJob rule at index 0"
    )
    other = {
        "rules": [
            {
                "action": "Count",
                "onExitCodes": {"containerName": "x", "operator": "In", "values": [5]},
            }
        ]
    }
    assert match_pod_failure_policy(other, pod).action is None


def test_success_policy() -> None:
    policy = {"rules": [{"succeededIndexes": "0-2", "succeededCount": 2}, {"succeededCount": 4}]}
    assert match_success_policy(policy, completions=6, succeeded={5}) is None
    assert (
        match_success_policy(policy, completions=6, succeeded={0, 2}) == "Matched rules at index 0"
    )
    assert (
        match_success_policy(policy, completions=6, succeeded={3, 4, 5, 1})
        == "Matched rules at index 1"
    )


def test_pod_failure_backoff() -> None:
    assert remaining_backoff(failures=0, last_failure=None, now=100, base=10, cap=600) == 0
    assert remaining_backoff(failures=1, last_failure=100, now=104, base=10, cap=600) == 6
    assert remaining_backoff(failures=3, last_failure=100, now=100, base=10, cap=600) == 40
    assert remaining_backoff(failures=20, last_failure=100, now=100, base=10, cap=600) == 600
    assert remaining_backoff(failures=2, last_failure=100, now=200, base=10, cap=600) == 0
