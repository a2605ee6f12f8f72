"""Server-side Table printers against upstream kube-apiserver 1.32 behaviour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from k3py.server.errors import APIError
from k3py.server.registry import jsonpath, tables

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


def ts(**delta: float) -> str:
    """An RFC 3339 timestamp ``delta`` before NOW."""
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str = "x", **extra: Any) -> dict[str, Any]:
    return {"name": name, "creationTimestamp": ts(hours=3, minutes=4), **extra}


def columns(group: str, kind: str) -> list[tuple[str, str, str, int]]:
    return [
        (c["name"], c["type"], c["format"], c["priority"])
        for c in tables.column_definitions(group, kind)
    ]


def cells(group: str, kind: str, obj: dict[str, Any]) -> list[Any]:
    return tables.row_cells(group, kind, obj, now=NOW)


# ---------------------------------------------------------------------------
# Column definitions (name, type, format, priority) as upstream declares them

N = ("Name", "string", "name", 0)
AGE = ("Age", "string", "", 0)
CONTAINERS = ("Containers", "string", "", 1)
IMAGES = ("Images", "string", "", 1)
SELECTOR = ("Selector", "string", "", 1)


def s(name: str, priority: int = 0) -> tuple[str, str, str, int]:
    return (name, "string", "", priority)


def i(name: str) -> tuple[str, str, str, int]:
    return (name, "integer", "", 0)


EXPECTED_COLUMNS = {
    ("", "Pod"): [
        N,
        s("Ready"),
        s("Status"),
        s("Restarts"),
        AGE,
        s("IP", 1),
        s("Node", 1),
        s("Nominated Node", 1),
        s("Readiness Gates", 1),
    ],
    ("", "PodTemplate"): [N, s("Containers"), s("Images"), s("Pod Labels")],
    ("", "ReplicationController"): [
        N,
        i("Desired"),
        i("Current"),
        i("Ready"),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    ("", "Service"): [
        N,
        s("Type"),
        s("Cluster-IP"),
        s("External-IP"),
        s("Port(s)"),
        AGE,
        SELECTOR,
    ],
    ("", "Endpoints"): [N, s("Endpoints"), AGE],
    ("", "Node"): [
        N,
        s("Status"),
        s("Roles"),
        AGE,
        s("Version"),
        s("Internal-IP", 1),
        s("External-IP", 1),
        s("OS-Image", 1),
        s("Kernel-Version", 1),
        s("Container-Runtime", 1),
    ],
    ("", "Namespace"): [N, s("Status"), AGE],
    ("", "Event"): [
        s("Last Seen"),
        s("Type"),
        s("Reason"),
        s("Object"),
        s("Subobject", 1),
        s("Source", 1),
        s("Message"),
        s("First Seen", 1),
        s("Count", 1),
        ("Name", "string", "name", 1),
    ],
    ("", "ConfigMap"): [N, s("Data"), AGE],
    ("", "Secret"): [N, s("Type"), s("Data"), AGE],
    ("", "ServiceAccount"): [N, s("Secrets"), AGE],
    ("", "PersistentVolume"): [
        N,
        s("Capacity"),
        s("Access Modes"),
        s("Reclaim Policy"),
        s("Status"),
        s("Claim"),
        s("StorageClass"),
        s("VolumeAttributesClass"),
        s("Reason"),
        AGE,
        s("VolumeMode", 1),
    ],
    ("", "PersistentVolumeClaim"): [
        N,
        s("Status"),
        s("Volume"),
        s("Capacity"),
        s("Access Modes"),
        s("StorageClass"),
        s("VolumeAttributesClass"),
        AGE,
        s("VolumeMode", 1),
    ],
    ("", "ResourceQuota"): [N, s("Request"), s("Limit"), AGE],
    ("", "ComponentStatus"): [N, s("Status"), s("Message"), s("Error")],
    ("apps", "Deployment"): [
        N,
        s("Ready"),
        s("Up-to-date"),
        s("Available"),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    ("apps", "ReplicaSet"): [
        N,
        i("Desired"),
        i("Current"),
        i("Ready"),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    ("apps", "StatefulSet"): [N, s("Ready"), AGE, CONTAINERS, IMAGES],
    ("apps", "DaemonSet"): [
        N,
        i("Desired"),
        i("Current"),
        i("Ready"),
        i("Up-to-date"),
        i("Available"),
        s("Node Selector"),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    ("apps", "ControllerRevision"): [N, s("Controller"), s("Revision"), AGE],
    ("batch", "Job"): [
        N,
        s("Status"),
        s("Completions"),
        s("Duration"),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    ("batch", "CronJob"): [
        N,
        s("Schedule"),
        s("Timezone"),
        ("Suspend", "boolean", "", 0),
        i("Active"),
        s("Last Schedule"),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    ("autoscaling", "HorizontalPodAutoscaler"): [
        N,
        s("Reference"),
        s("Targets"),
        s("MinPods"),
        s("MaxPods"),
        s("Replicas"),
        AGE,
    ],
    ("policy", "PodDisruptionBudget"): [
        N,
        s("Min Available"),
        s("Max Unavailable"),
        i("Allowed Disruptions"),
        AGE,
    ],
    ("networking.k8s.io", "Ingress"): [
        N,
        s("Class"),
        s("Hosts"),
        s("Address"),
        s("Ports"),
        AGE,
    ],
    ("networking.k8s.io", "IngressClass"): [N, s("Controller"), s("Parameters"), AGE],
    ("networking.k8s.io", "NetworkPolicy"): [N, s("Pod-Selector"), AGE],
    ("discovery.k8s.io", "EndpointSlice"): [
        N,
        s("AddressType"),
        s("Ports"),
        s("Endpoints"),
        AGE,
    ],
    ("storage.k8s.io", "StorageClass"): [
        N,
        s("Provisioner"),
        s("ReclaimPolicy"),
        s("VolumeBindingMode"),
        s("AllowVolumeExpansion"),
        AGE,
    ],
    ("storage.k8s.io", "CSIDriver"): [
        N,
        ("AttachRequired", "boolean", "", 0),
        ("PodInfoOnMount", "boolean", "", 0),
        ("StorageCapacity", "boolean", "", 0),
        s("TokenRequests"),
        ("RequiresRepublish", "boolean", "", 0),
        s("Modes"),
        AGE,
    ],
    ("storage.k8s.io", "CSINode"): [N, i("Drivers"), AGE],
    ("storage.k8s.io", "VolumeAttachment"): [
        N,
        ("Attacher", "string", "name", 0),
        s("PV"),
        s("Node"),
        ("Attached", "boolean", "", 0),
        AGE,
    ],
    ("coordination.k8s.io", "Lease"): [N, s("Holder"), AGE],
    ("events.k8s.io", "Event"): None,  # same as core; checked below
    ("rbac.authorization.k8s.io", "RoleBinding"): [
        N,
        s("Role"),
        AGE,
        s("Users", 1),
        s("Groups", 1),
        s("ServiceAccounts", 1),
    ],
    ("certificates.k8s.io", "CertificateSigningRequest"): [
        N,
        AGE,
        s("SignerName"),
        s("Requestor"),
        s("RequestedDuration"),
        s("Condition"),
    ],
    ("scheduling.k8s.io", "PriorityClass"): [
        N,
        i("Value"),
        ("Global-Default", "boolean", "", 0),
        AGE,
        s("PreemptionPolicy"),
    ],
    ("node.k8s.io", "RuntimeClass"): [N, s("Handler"), AGE],
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): [N, i("Webhooks"), AGE],
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): [N, i("Webhooks"), AGE],
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): [
        N,
        i("Validations"),
        s("ParamKind"),
        AGE,
    ],
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"): [
        N,
        s("PolicyName"),
        s("ParamRef"),
        AGE,
    ],
    ("apiregistration.k8s.io", "APIService"): [N, s("Service"), s("Available"), AGE],
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"): [
        N,
        s("PriorityLevel"),
        s("MatchingPrecedence"),
        s("DistinguisherMethod"),
        AGE,
        s("MissingPL"),
    ],
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"): [
        N,
        s("Type"),
        s("NominalConcurrencyShares"),
        s("Queues"),
        s("HandSize"),
        s("QueueLengthLimit"),
        AGE,
    ],
}

DEFAULT = [N, ("Created At", "date", "", 0)]


@pytest.mark.parametrize("group,kind", sorted(EXPECTED_COLUMNS))
def test_columns_match_upstream(group: str, kind: str) -> None:
    expected = EXPECTED_COLUMNS[(group, kind)] or columns("", kind)
    assert columns(group, kind) == expected
    for col in tables.column_definitions(group, kind):
        assert list(col) == ["name", "type", "format", "description", "priority"]


@pytest.mark.parametrize(
    "group,kind",
    [
        ("rbac.authorization.k8s.io", "Role"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("", "LimitRange"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("example.com", "Unknown"),
    ],
)
def test_kinds_without_printer_use_name_and_created_at(group: str, kind: str) -> None:
    assert not tables.has_printer(group, kind)
    assert columns(group, kind) == DEFAULT
    obj = {"metadata": {"name": "admin", "creationTimestamp": "2024-05-01T10:00:00+02:00"}}
    assert cells(group, kind, obj) == ["admin", "2024-05-01T08:00:00Z"]
    assert cells(group, kind, {"metadata": {"name": "n"}}) == ["n", "0001-01-01T00:00:00Z"]


def test_descriptions_come_from_the_api_docs() -> None:
    pod = {c["name"]: c["description"] for c in tables.column_definitions("", "Pod")}
    assert pod["Name"].startswith("Name must be unique within a namespace.")
    assert pod["Age"].startswith("CreationTimestamp is a timestamp")
    assert "IP address allocated to the pod" in pod["IP"]
    assert pod["Ready"] == "The aggregate readiness state of this pod for accepting traffic."


def test_column_definitions_are_copies() -> None:
    first = tables.column_definitions("", "Pod")
    first[0]["name"] = "mutated"
    assert tables.column_definitions("", "Pod")[0]["name"] == "Name"


def test_every_printer_yields_one_cell_per_column() -> None:
    for (group, kind), printer in tables._PRINTERS.items():
        row = tables.row_cells(group, kind, {"metadata": {"name": "n"}}, now=NOW)
        width = len(printer.columns) + (1 if kind == "IPAddress" else 0)  # upstream quirk
        assert len(row) == width, (group, kind)


# ---------------------------------------------------------------------------
# HumanDuration


@pytest.mark.parametrize(
    "seconds,text",
    [
        (-5, "<invalid>"),
        (-1.5, "0s"),
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (125, "2m5s"),
        (599, "9m59s"),
        (600, "10m"),
        (179 * 60 + 59, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 4 * 60 + 30, "3h4m"),
        (8 * 3600 + 59 * 60, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (2 * 86400 + 3 * 3600, "2d3h"),
        (8 * 86400 + 5 * 3600, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (735 * 86400, "2y5d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert tables.human_duration(seconds) == text


def test_age_unknown_without_timestamp() -> None:
    assert tables.translate_timestamp_since(None, now=NOW) == "<unknown>"
    assert tables.translate_timestamp_since(ts(seconds=5), now=NOW) == "5s"
    row = cells("", "Namespace", {"metadata": {"name": "ns"}, "status": {"phase": "Active"}})
    assert row == ["ns", "Active", "<unknown>"]


# ---------------------------------------------------------------------------
# Pods


def pod(
    *,
    containers: int = 1,
    statuses: list[dict[str, Any]] | None = None,
    init: list[dict[str, Any]] | None = None,
    init_statuses: list[dict[str, Any]] | None = None,
    phase: str = "Running",
    conditions: list[dict[str, Any]] | None = None,
    **meta_extra: Any,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if statuses is not None:
        status["containerStatuses"] = statuses
    if init_statuses is not None:
        status["initContainerStatuses"] = init_statuses
    if conditions is not None:
        status["conditions"] = conditions
    spec: dict[str, Any] = {"containers": [{"name": f"c{n}"} for n in range(containers)]}
    if init is not None:
        spec["initContainers"] = init
    return {"metadata": meta("p", **meta_extra), "spec": spec, "status": status}


def running(name: str = "c0", *, ready: bool = True, restarts: int = 0) -> dict[str, Any]:
    return {"name": name, "ready": ready, "restartCount": restarts, "state": {"running": {}}}


def waiting(reason: str, name: str = "c0", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "ready": False,
        "restartCount": 0,
        "state": {"waiting": {"reason": reason}},
        **extra,
    }


def terminated(name: str = "c0", **term: Any) -> dict[str, Any]:
    return {"name": name, "ready": False, "restartCount": 0, "state": {"terminated": term}}


def status_of(p: dict[str, Any]) -> tuple[str, str]:
    row = cells("", "Pod", p)
    return row[1], row[2]


@pytest.mark.parametrize(
    "p,ready,status",
    [
        (pod(statuses=[running()]), "1/1", "Running"),
        (pod(phase="Pending"), "0/1", "Pending"),
        ({"metadata": meta("p"), "spec": {"containers": [{"name": "a"}]}}, "0/1", "Pending"),
        (pod(phase="Pending", statuses=[waiting("ContainerCreating")]), "0/1", "ContainerCreating"),
        (pod(statuses=[waiting("CrashLoopBackOff")]), "0/1", "CrashLoopBackOff"),
        (pod(statuses=[waiting("ImagePullBackOff")]), "0/1", "ImagePullBackOff"),
        (
            pod(phase="Succeeded", statuses=[terminated(reason="Completed", exitCode=0)]),
            "0/1",
            "Completed",
        ),
        (pod(phase="Failed", statuses=[terminated(reason="Error", exitCode=1)]), "0/1", "Error"),
        (pod(statuses=[terminated(reason="OOMKilled", exitCode=137)]), "0/1", "OOMKilled"),
        (pod(statuses=[terminated(exitCode=3)]), "0/1", "ExitCode:3"),
        (pod(statuses=[terminated(exitCode=0, signal=9)]), "0/1", "Signal:9"),
        (pod(containers=2, statuses=[running("c0"), running("c1", ready=False)]), "1/2", "Running"),
    ],
)
def test_pod_status(p: dict[str, Any], ready: str, status: str) -> None:
    assert status_of(p) == (ready, status)


def test_pod_status_reason_wins_and_node_lost() -> None:
    lost = pod(statuses=[running()])
    lost["status"]["reason"] = "NodeLost"
    assert status_of(lost)[1] == "NodeLost"
    lost["metadata"]["deletionTimestamp"] = ts(seconds=1)
    assert status_of(lost)[1] == "Unknown"
    evicted = pod(phase="Failed")
    evicted["status"]["reason"] = "Evicted"
    assert status_of(evicted)[1] == "Evicted"


def test_pod_terminating_unless_terminal() -> None:
    deleting = pod(statuses=[running()], deletionTimestamp=ts(seconds=3))
    assert status_of(deleting)[1] == "Terminating"
    done = pod(
        phase="Succeeded",
        statuses=[terminated(reason="Completed", exitCode=0)],
        deletionTimestamp=ts(seconds=3),
    )
    assert status_of(done)[1] == "Completed"


def test_pod_scheduling_gated() -> None:
    gated = pod(
        phase="Pending",
        conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}],
    )
    assert status_of(gated)[1] == "SchedulingGated"


def test_pod_init_containers() -> None:
    init = [{"name": "i0"}, {"name": "i1"}]
    first = pod(phase="Pending", init=init, init_statuses=[waiting("PodInitializing", "i0")])
    assert status_of(first) == ("0/1", "Init:0/2")
    second = pod(
        phase="Pending",
        init=init,
        init_statuses=[terminated("i0", exitCode=0), running("i1", ready=False)],
        statuses=[waiting("PodInitializing")],
    )
    assert status_of(second) == ("0/1", "Init:1/2")
    crash = pod(phase="Pending", init=init, init_statuses=[waiting("CrashLoopBackOff", "i0")])
    assert status_of(crash)[1] == "Init:CrashLoopBackOff"
    failed = pod(
        phase="Failed", init=init, init_statuses=[terminated("i0", reason="Error", exitCode=1)]
    )
    assert status_of(failed)[1] == "Init:Error"
    exit_code = pod(phase="Pending", init=init, init_statuses=[terminated("i0", exitCode=2)])
    assert status_of(exit_code)[1] == "Init:ExitCode:2"
    signal = pod(
        phase="Pending", init=init, init_statuses=[terminated("i0", exitCode=0, signal=15)]
    )
    # exit code 0 means the init container finished, whatever the signal
    assert status_of(signal)[1] == "Pending"


def test_pod_sidecar_counts_in_ready_and_total() -> None:
    init = [{"name": "side", "restartPolicy": "Always"}]
    started = running("side", restarts=2) | {"started": True}
    p = pod(
        init=init,
        init_statuses=[started],
        statuses=[running()],
        conditions=[{"type": "Initialized", "status": "True"}],
    )
    row = cells("", "Pod", p)
    assert row[1:4] == ["2/2", "Running", "2"]


def test_pod_completed_with_running_container() -> None:
    p = pod(
        containers=2, statuses=[terminated("c0", reason="Completed", exitCode=0), running("c1")]
    )
    assert status_of(p)[1] == "NotReady"
    p["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    assert status_of(p)[1] == "Running"


def test_pod_restarts_show_last_restart_age() -> None:
    c = running(restarts=3)
    c["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": ts(minutes=5)}}
    row = cells("", "Pod", pod(statuses=[c]))
    assert row[3] == "3 (5m ago)"
    assert cells("", "Pod", pod(statuses=[running(restarts=2)]))[3] == "2"


def test_pod_wide_cells() -> None:
    p = pod(statuses=[running()])
    p["spec"]["nodeName"] = "node-1"
    p["spec"]["readinessGates"] = [{"conditionType": "a"}, {"conditionType": "b"}]
    p["status"]["podIPs"] = [{"ip": "10.42.0.5"}, {"ip": "fd00::5"}]
    p["status"]["conditions"] = [{"type": "a", "status": "True"}, {"type": "b", "status": "False"}]
    row = cells("", "Pod", p)
    assert row[0] == "p" and row[4] == "3h4m"
    assert row[5:] == ["10.42.0.5", "node-1", "<none>", "1/2"]
    bare = cells("", "Pod", pod())
    assert bare[5:] == ["<none>", "<none>", "<none>", "<none>"]


def test_pod_row_conditions() -> None:
    done = pod(phase="Succeeded")
    assert tables.row_conditions("", "Pod", done) == [
        {
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }
    ]
    assert tables.row_conditions("", "Pod", pod()) == []
    assert tables.row_conditions("apps", "Deployment", {}) == []


# ---------------------------------------------------------------------------
# Services, endpoints, ingress


def svc(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": meta("web"), "spec": spec, "status": status or {}}


def test_service_cluster_ip() -> None:
    spec = {
        "type": "ClusterIP",
        "clusterIP": "10.43.0.10",
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
        "selector": {"k8s-app": "kube-dns"},
    }
    assert cells("", "Service", svc(spec)) == [
        "web",
        "ClusterIP",
        "10.43.0.10",
        "<none>",
        "53/UDP,53/TCP",
        "3h4m",
        "k8s-app=kube-dns",
    ]


def test_service_node_port_and_headless() -> None:
    spec = {
        "type": "NodePort",
        "clusterIP": "10.43.1.1",
        "ports": [{"port": 80, "nodePort": 30080}],
    }
    row = cells("", "Service", svc(spec))
    assert row[1:5] == ["NodePort", "10.43.1.1", "<none>", "80:30080/TCP"]
    assert row[6] == "<none>"
    headless = cells("", "Service", svc({"clusterIP": "None"}))
    assert headless[1:5] == ["ClusterIP", "None", "<none>", "<none>"]


def test_service_load_balancer() -> None:
    spec = {
        "type": "LoadBalancer",
        "clusterIP": "10.43.2.2",
        "ports": [{"port": 443, "nodePort": 31443}],
    }
    assert cells("", "Service", svc(spec))[3] == "<pending>"
    ingress = {
        "loadBalancer": {"ingress": [{"ip": "192.168.1.20"}, {"hostname": "lb.example.com"}]}
    }
    assert cells("", "Service", svc(spec, ingress))[3] == "192.168.1.20,lb.example.com"
    spec["externalIPs"] = ["1.2.3.4"]
    assert cells("", "Service", svc(spec, ingress))[3] == "192.168.1.20,lb.example.com,1.2.3.4"


def test_service_external_name_and_external_ips() -> None:
    row = cells("", "Service", svc({"type": "ExternalName", "externalName": "db.example.com"}))
    assert row[1:4] == ["ExternalName", "<none>", "db.example.com"]
    row = cells(
        "", "Service", svc({"clusterIP": "10.0.0.1", "externalIPs": ["5.6.7.8", "9.9.9.9"]})
    )
    assert row[3] == "5.6.7.8,9.9.9.9"


def test_endpoints() -> None:
    ep = {
        "metadata": meta("web"),
        "subsets": [
            {
                "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "fd00::3"}],
                "ports": [{"port": 80}, {"port": 443}],
            }
        ],
    }
    assert cells("", "Endpoints", ep)[1] == "10.0.0.1:80,10.0.0.2:80,[fd00::3]:80 + 3 more..."
    ep["subsets"] = [{"addresses": [{"ip": "10.0.0.9"}]}]
    assert cells("", "Endpoints", ep)[1] == "10.0.0.9"
    assert cells("", "Endpoints", {"metadata": meta("e")})[1] == "<none>"


def test_endpoint_slice() -> None:
    eps = {
        "metadata": meta("web-abc"),
        "addressType": "IPv4",
        "ports": [{"port": 80}, {"name": "http"}, {}],
        "endpoints": [{"addresses": [f"10.0.0.{n}"]} for n in range(5)],
    }
    assert cells("discovery.k8s.io", "EndpointSlice", eps) == [
        "web-abc",
        "IPv4",
        "80,http,*",
        "10.0.0.0,10.0.0.1,10.0.0.2 + 2 more...",
        "3h4m",
    ]
    empty = cells(
        "discovery.k8s.io", "EndpointSlice", {"metadata": meta("e"), "addressType": "IPv4"}
    )
    assert empty[2:4] == ["<unset>", "<unset>"]


def test_ingress() -> None:
    ing = {
        "metadata": meta("site"),
        "spec": {
            "ingressClassName": "traefik",
            "rules": [
                {"host": "a.example"},
                {"host": "b.example"},
                {},
                {"host": "d.example"},
                {"host": "e.example"},
            ],
            "tls": [{"hosts": ["a.example"]}],
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.5"}, {"ip": "10.0.0.4"}]}},
    }
    assert cells("networking.k8s.io", "Ingress", ing) == [
        "site",
        "traefik",
        "a.example,b.example,d.example + 2 more...",  # upstream counts rules
        "10.0.0.4,10.0.0.5",
        "80, 443",
        "3h4m",
    ]
    plain = cells("networking.k8s.io", "Ingress", {"metadata": meta("x"), "spec": {}})
    assert plain[1:5] == ["<none>", "*", "", "80"]


# ---------------------------------------------------------------------------
# Workloads


def test_deployment() -> None:
    dep = {
        "metadata": meta("web"),
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}},
        },
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    assert cells("apps", "Deployment", dep) == [
        "web",
        "2/3",
        3,
        2,
        "3h4m",
        "nginx",
        "nginx:1.27",
        "app=web",
    ]
    fresh = {"metadata": meta("new"), "spec": {}}
    assert cells("apps", "Deployment", fresh)[1:4] == ["0/1", 0, 0]


def test_replica_set_stateful_set_daemon_set() -> None:
    template = {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}
    rs = {
        "metadata": meta("rs"),
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "a"}}, "template": template},
        "status": {"replicas": 2, "readyReplicas": 1},
    }
    assert cells("apps", "ReplicaSet", rs) == ["rs", 2, 2, 1, "3h4m", "a,b", "x,y", "app=a"]
    sts = {
        "metadata": meta("db"),
        "spec": {"replicas": 3, "template": template},
        "status": {"readyReplicas": 3},
    }
    assert cells("apps", "StatefulSet", sts) == ["db", "3/3", "3h4m", "a,b", "x,y"]
    ds = {
        "metadata": meta("agent"),
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": []}},
        },
        "status": {
            "desiredNumberScheduled": 2,
            "currentNumberScheduled": 2,
            "numberReady": 1,
            "updatedNumberScheduled": 2,
            "numberAvailable": 1,
        },
    }
    assert cells("apps", "DaemonSet", ds) == [
        "agent",
        2,
        2,
        1,
        2,
        1,
        "kubernetes.io/os=linux",
        "3h4m",
        "",
        "",
        "app=agent",
    ]


def test_controller_revision() -> None:
    rev = {
        "metadata": meta(
            "agent-5d4f",
            ownerReferences=[
                {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "controller": True}
            ],
        ),
        "revision": 4,
    }
    assert cells("apps", "ControllerRevision", rev) == [
        "agent-5d4f",
        "daemonset.apps/agent",
        4,
        "3h4m",
    ]
    orphan = {"metadata": meta("o"), "revision": 1}
    assert cells("apps", "ControllerRevision", orphan)[1] == "<none>"


def job(**status: Any) -> dict[str, Any]:
    return {
        "metadata": meta("backup"),
        "spec": {"completions": 1, "parallelism": 1},
        "status": status,
    }


def test_job_status_completions_duration() -> None:
    running_job = job(startTime=ts(minutes=2, seconds=5), active=1)
    assert cells("batch", "Job", running_job)[1:5] == ["Running", "0/1", "2m5s", "3h4m"]
    done = job(
        succeeded=1,
        startTime=ts(minutes=10),
        completionTime=ts(minutes=9, seconds=30),
        conditions=[{"type": "Complete", "status": "True"}],
    )
    assert cells("batch", "Job", done)[1:4] == ["Complete", "1/1", "30s"]
    failed = job(
        conditions=[
            {"type": "FailureTarget", "status": "True"},
            {"type": "Failed", "status": "True"},
        ]
    )
    assert cells("batch", "Job", failed)[1] == "Failed"
    suspended = job(conditions=[{"type": "Suspended", "status": "True"}])
    assert cells("batch", "Job", suspended)[1:4] == ["Suspended", "0/1", ""]
    target = job(conditions=[{"type": "FailureTarget", "status": "True"}])
    assert cells("batch", "Job", target)[1] == "FailureTarget"
    deleting = job()
    deleting["metadata"]["deletionTimestamp"] = ts(seconds=1)
    assert cells("batch", "Job", deleting)[1] == "Terminating"
    parallel = {"metadata": meta("p"), "spec": {"parallelism": 3}, "status": {"succeeded": 1}}
    assert cells("batch", "Job", parallel)[2] == "1/1 of 3"


def test_cron_job() -> None:
    cj = {
        "metadata": meta("nightly"),
        "spec": {
            "schedule": "0 3 * * *",
            "suspend": False,
            "jobTemplate": {
                "spec": {"template": {"spec": {"containers": [{"name": "b", "image": "busybox"}]}}}
            },
        },
        "status": {"active": [{"name": "nightly-1"}], "lastScheduleTime": ts(hours=9)},
    }
    assert cells("batch", "CronJob", cj) == [
        "nightly",
        "0 3 * * *",
        "<none>",
        "False",
        1,
        "9h",
        "3h4m",
        "b",
        "busybox",
        "<none>",
    ]
    cj["spec"]["suspend"] = True
    cj["spec"]["timeZone"] = "Etc/UTC"
    del cj["status"]["lastScheduleTime"]
    assert cells("batch", "CronJob", cj)[2:6] == ["Etc/UTC", "True", 1, "<none>"]


# ---------------------------------------------------------------------------
# Nodes, config, events


def test_node() -> None:
    node = {
        "metadata": meta(
            "server-1",
            labels={
                "node-role.kubernetes.io/control-plane": "true",
                "node-role.kubernetes.io/master": "true",
                "kubernetes.io/role": "etcd",
            },
        ),
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True"},
            ],
            "addresses": [
                {"type": "InternalIP", "address": "192.168.1.10"},
                {"type": "Hostname", "address": "s"},
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.32.0+k3py",
                "osImage": "Debian GNU/Linux 12",
                "kernelVersion": "6.1.0",
                "containerRuntimeVersion": "containerd://1.7.24",
            },
        },
    }
    assert cells("", "Node", node) == [
        "server-1",
        "Ready,SchedulingDisabled",
        "control-plane,etcd,master",
        "3h4m",
        "v1.32.0+k3py",
        "192.168.1.10",
        "<none>",
        "Debian GNU/Linux 12",
        "6.1.0",
        "containerd://1.7.24",
    ]
    bare = cells("", "Node", {"metadata": meta("n")})
    assert bare[1:3] == ["Unknown", "<none>"]
    assert bare[5:] == ["<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"]
    node["status"]["conditions"][1]["status"] = "Unknown"
    node["spec"] = {}
    assert cells("", "Node", node)[1] == "NotReady"


def test_config_map_secret_service_account() -> None:
    cm = {"metadata": meta("cfg"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}
    assert cells("", "ConfigMap", cm) == ["cfg", 3, "3h4m"]
    secret = {
        "metadata": meta("tls"),
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "", "tls.key": ""},
    }
    assert cells("", "Secret", secret) == ["tls", "kubernetes.io/tls", 2, "3h4m"]
    assert cells("", "Secret", {"metadata": meta("o")})[1:3] == ["Opaque", 0]
    sa = {"metadata": meta("default"), "secrets": [{"name": "t"}]}
    assert cells("", "ServiceAccount", sa) == ["default", 1, "3h4m"]


def test_core_event() -> None:
    ev = {
        "metadata": meta("web.17a"),
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{nginx}"},
        "reason": "Pulled",
        "message": "  Successfully pulled image\n",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": ts(minutes=10),
        "lastTimestamp": ts(minutes=2),
        "count": 4,
        "type": "Normal",
    }
    assert cells("", "Event", ev) == [
        "2m",
        "Normal",
        "Pulled",
        "pod/web",
        "spec.containers{nginx}",
        "kubelet, node-1",
        "Successfully pulled image",
        "10m",
        4,
        "web.17a",
    ]


def test_new_style_event_in_both_groups() -> None:
    core_shape = {
        "metadata": meta("e2"),
        "involvedObject": {"kind": "Node"},
        "reason": "Starting",
        "eventTime": ts(seconds=30).replace("Z", ".000000Z"),
        "reportingComponent": "kube-proxy",
        "reportingInstance": "node-1",
        "type": "Normal",
    }
    row = cells("", "Event", core_shape)
    assert row[0] == "30s" and row[3] == "node" and row[5] == "kube-proxy, node-1"
    assert row[7:9] == ["30s", 1]
    events_v1 = {
        "metadata": meta("e3"),
        "regarding": {"kind": "Pod", "name": "web"},
        "note": "Back-off restarting",
        "reason": "BackOff",
        "type": "Warning",
        "eventTime": ts(minutes=30),
        "series": {"count": 7, "lastObservedTime": ts(seconds=20)},
        "reportingController": "kubelet",
    }
    assert cells("events.k8s.io", "Event", events_v1) == [
        "20s",
        "Warning",
        "BackOff",
        "pod/web",
        "",
        "kubelet",
        "Back-off restarting",
        "30m",
        7,
        "e3",
    ]


# ---------------------------------------------------------------------------
# Storage, quota, policy, autoscaling


@pytest.mark.parametrize(
    "raw,text",
    [
        ("10Gi", "10Gi"),
        ("1024Mi", "1Gi"),
        ("0.5Gi", "512Mi"),
        ("1000Mi", "1000Mi"),
        ("1536Mi", "1536Mi"),
        ("100m", "100m"),
        ("1000m", "1"),
        ("1.5", "1500m"),
        ("0.1", "100m"),
        ("1000000", "1M"),
        ("2048", "2048"),
        ("1e3", "1e3"),
        ("1.5e3", "1500"),
        ("500", "500"),
        ("0", "0"),
        (5, "5"),
        (None, "0"),
        ("-2048Ki", "-2Mi"),
        ("0.0000000001", "1n"),
        ("1.500", "1.500"),  # already canonical in Go's fast path: kept verbatim
        ("lots", "lots"),
    ],
)
def test_quantity_canonical_form(raw: Any, text: str) -> None:
    assert tables.format_quantity(raw) == text


def test_persistent_volume_and_claim() -> None:
    pv = {
        "metadata": meta("pv-1", annotations={"volume.beta.kubernetes.io/storage-class": "old"}),
        "spec": {
            "capacity": {"storage": "1024Mi"},
            "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "claimRef": {"namespace": "default", "name": "data"},
            "storageClassName": "local-path",
        },
        "status": {"phase": "Bound"},
    }
    assert cells("", "PersistentVolume", pv) == [
        "pv-1",
        "1Gi",
        "RWO,RWX",
        "Delete",
        "Bound",
        "default/data",
        "old",
        "<unset>",
        "",
        "3h4m",
        "Filesystem",
    ]
    pvc = {
        "metadata": meta("data"),
        "spec": {"storageClassName": "local-path", "volumeName": "pv-1", "volumeMode": "Block"},
        "status": {
            "phase": "Bound",
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOncePod"],
        },
    }
    assert cells("", "PersistentVolumeClaim", pvc) == [
        "data",
        "Bound",
        "pv-1",
        "1Gi",
        "RWOP",
        "local-path",
        "<unset>",
        "3h4m",
        "Block",
    ]
    pending = {"metadata": meta("p", deletionTimestamp=ts(seconds=1)), "spec": {}, "status": {}}
    assert cells("", "PersistentVolumeClaim", pending)[1:6] == ["Terminating", "", "", "", ""]


def test_storage_class_and_csi() -> None:
    sc = {
        "metadata": meta(
            "local-path", annotations={"storageclass.kubernetes.io/is-default-class": "true"}
        ),
        "provisioner": "rancher.io/local-path",
        "volumeBindingMode": "WaitForFirstConsumer",
    }
    assert cells("storage.k8s.io", "StorageClass", sc) == [
        "local-path (default)",
        "rancher.io/local-path",
        "Delete",
        "WaitForFirstConsumer",
        False,
        "3h4m",
    ]
    driver = {
        "metadata": meta("csi.example"),
        "spec": {"tokenRequests": [{"audience": "a"}, {"audience": "b"}]},
    }
    assert cells("storage.k8s.io", "CSIDriver", driver) == [
        "csi.example",
        True,
        False,
        False,
        "a,b",
        False,
        "Persistent",
        "3h4m",
    ]
    attachment = {
        "metadata": meta("csi-123"),
        "spec": {
            "attacher": "csi.example",
            "nodeName": "n1",
            "source": {"persistentVolumeName": "pv-1"},
        },
        "status": {"attached": True},
    }
    assert cells("storage.k8s.io", "VolumeAttachment", attachment) == [
        "csi-123",
        "csi.example",
        "pv-1",
        "n1",
        True,
        "3h4m",
    ]


def test_resource_quota() -> None:
    quota = {
        "metadata": meta("compute"),
        "status": {
            "hard": {"requests.cpu": "2", "limits.memory": "2Gi", "pods": "10", "limits.cpu": "4"},
            "used": {"requests.cpu": "500m", "limits.memory": "1024Mi", "pods": "3"},
        },
    }
    assert cells("", "ResourceQuota", quota) == [
        "compute",
        "pods: 3/10, requests.cpu: 500m/2",
        "limits.cpu: 0/4, limits.memory: 1Gi/2Gi",
        "3h4m",
    ]


def test_pod_disruption_budget() -> None:
    pdb = {
        "metadata": meta("web"),
        "spec": {"minAvailable": "50%"},
        "status": {"disruptionsAllowed": 1},
    }
    assert cells("policy", "PodDisruptionBudget", pdb) == ["web", "50%", "N/A", 1, "3h4m"]
    pdb["spec"] = {"maxUnavailable": 1}
    assert cells("policy", "PodDisruptionBudget", pdb)[1:3] == ["N/A", "1"]


def test_hpa_targets() -> None:
    hpa = {
        "metadata": meta("web"),
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": 1,
            "maxReplicas": 5,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 50},
                    },
                },
                {
                    "type": "Resource",
                    "resource": {
                        "name": "memory",
                        "target": {"type": "AverageValue", "averageValue": "1024Mi"},
                    },
                },
                {"type": "Pods", "pods": {"target": {"averageValue": "10"}}},
            ],
        },
        "status": {
            "currentReplicas": 2,
            "currentMetrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "current": {"averageUtilization": 12}},
                },
            ],
        },
    }
    assert cells("autoscaling", "HorizontalPodAutoscaler", hpa) == [
        "web",
        "Deployment/web",
        "cpu: 12%/50%, memory: <unknown>/1Gi + 1 more...",
        "1",
        5,
        2,
        "3h4m",
    ]
    v1 = {
        "metadata": meta("old"),
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "old"},
            "maxReplicas": 3,
            "targetCPUUtilizationPercentage": 80,
        },
        "status": {"currentReplicas": 1},
    }
    assert cells("autoscaling", "HorizontalPodAutoscaler", v1)[2:4] == [
        "cpu: <unknown>/80%",
        "<unset>",
    ]
    none = {"metadata": meta("n"), "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "n"}}}
    assert cells("autoscaling", "HorizontalPodAutoscaler", none)[2] == "<none>"


def test_hpa_metric_kinds() -> None:
    specs = [
        {"type": "External", "external": {"target": {"averageValue": "30"}}},
        {"type": "Object", "object": {"target": {"value": "2k"}}},
    ]
    statuses = [
        {"external": {"current": {"averageValue": "1500m"}}},
        {"object": {"current": {"value": "1000"}}},
    ]
    assert tables.format_hpa_metrics(specs, statuses) == "1500m/30 (avg), 1k/2k"
    odd = [
        {"type": "Other"},
        {"type": "ContainerResource", "containerResource": {"name": "cpu", "target": {}}},
    ]
    assert tables.format_hpa_metrics(odd, []) == "<unknown type>, cpu: <unknown>/<auto>"


# ---------------------------------------------------------------------------
# RBAC, certificates, misc


def test_role_binding() -> None:
    rb = {
        "metadata": meta("view"),
        "roleRef": {"kind": "ClusterRole", "name": "view"},
        "subjects": [
            {"kind": "User", "name": "alice"},
            {"kind": "Group", "name": "devs"},
            {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"},
            {"kind": "User", "name": "bob"},
        ],
    }
    expected = ["view", "ClusterRole/view", "3h4m", "alice, bob", "devs", "tools/ci"]
    assert cells("rbac.authorization.k8s.io", "RoleBinding", rb) == expected
    assert cells("rbac.authorization.k8s.io", "ClusterRoleBinding", rb) == expected


def test_certificate_signing_request() -> None:
    csr = {
        "metadata": meta("node-csr"),
        "spec": {
            "signerName": "kubernetes.io/kubelet-serving",
            "username": "system:node:n1",
            "expirationSeconds": 86400,
        },
        "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "LS0t"},
    }
    assert cells("certificates.k8s.io", "CertificateSigningRequest", csr) == [
        "node-csr",
        "3h4m",
        "kubernetes.io/kubelet-serving",
        "system:node:n1",
        "24h",
        "Approved,Issued",
    ]
    csr["status"] = {"conditions": [{"type": "Denied"}, {"type": "Failed"}]}
    csr["spec"] = {}
    assert cells("certificates.k8s.io", "CertificateSigningRequest", csr)[2:] == [
        "<none>",
        "",
        "<none>",
        "Denied,Failed",
    ]


def test_misc_cluster_kinds() -> None:
    lease = {"metadata": meta("n1"), "spec": {"holderIdentity": "n1"}}
    assert cells("coordination.k8s.io", "Lease", lease) == ["n1", "n1", "3h4m"]
    pc = {"metadata": meta("system-node-critical"), "value": 2000001000}
    assert cells("scheduling.k8s.io", "PriorityClass", pc) == [
        "system-node-critical",
        2000001000,
        False,
        "3h4m",
        "PreemptLowerPriority",
    ]
    rc = {"metadata": meta("runc"), "handler": "runc"}
    assert cells("node.k8s.io", "RuntimeClass", rc) == ["runc", "runc", "3h4m"]
    hook = {"metadata": meta("hooks"), "webhooks": [{}, {}]}
    group = "admissionregistration.k8s.io"
    assert cells(group, "MutatingWebhookConfiguration", hook) == ["hooks", 2, "3h4m"]
    vap = {
        "metadata": meta("p"),
        "spec": {"validations": [{}], "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}},
    }
    assert cells(group, "ValidatingAdmissionPolicy", vap) == ["p", 1, "v1/ConfigMap", "3h4m"]
    binding = {"metadata": meta("b"), "spec": {"policyName": "p", "paramRef": {"name": "cfg"}}}
    assert cells(group, "ValidatingAdmissionPolicyBinding", binding)[1:3] == ["p", "*/cfg"]
    binding["spec"]["paramRef"] = {"selector": {"matchLabels": {"a": "b"}}}
    assert cells(group, "ValidatingAdmissionPolicyBinding", binding)[2] == (
        "&LabelSelector{MatchLabels:map[string]string{a: b,},"
        "MatchExpressions:[]LabelSelectorRequirement{},}"
    )
    ingress_class = {
        "metadata": meta("traefik"),
        "spec": {
            "controller": "traefik.io/ingress-controller",
            "parameters": {"apiGroup": "k8s.example.com", "kind": "P", "name": "cfg"},
        },
    }
    assert cells("networking.k8s.io", "IngressClass", ingress_class)[1:3] == [
        "traefik.io/ingress-controller",
        "P.k8s.example.com/cfg",
    ]
    np = {"metadata": meta("deny"), "spec": {"podSelector": {}}}
    assert cells("networking.k8s.io", "NetworkPolicy", np) == ["deny", "<none>", "3h4m"]
    cs = {
        "metadata": {"name": "etcd-0"},
        "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}],
    }
    assert cells("", "ComponentStatus", cs) == ["etcd-0", "Healthy", "ok", ""]
    tmpl = {
        "metadata": meta("t"),
        "template": {
            "metadata": {"labels": {"b": "2", "a": "1"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
        },
    }
    assert cells("", "PodTemplate", tmpl) == ["t", "c", "i", "a=1,b=2"]


def test_api_service_and_flow_control() -> None:
    local = {
        "metadata": meta("v1.apps"),
        "spec": {},
        "status": {"conditions": [{"type": "Available", "status": "True"}]},
    }
    assert cells("apiregistration.k8s.io", "APIService", local) == [
        "v1.apps",
        "Local",
        "True",
        "3h4m",
    ]
    remote = {
        "metadata": meta("v1beta1.metrics.k8s.io"),
        "spec": {"service": {"namespace": "kube-system", "name": "metrics-server"}},
        "status": {
            "conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]
        },
    }
    assert cells("apiregistration.k8s.io", "APIService", remote)[1:3] == [
        "kube-system/metrics-server",
        "False (MissingEndpoints)",
    ]
    fs = {
        "metadata": meta("exempt"),
        "spec": {"priorityLevelConfiguration": {"name": "exempt"}, "matchingPrecedence": 1},
        "status": {"conditions": [{"type": "Dangling", "status": "False"}]},
    }
    assert cells("flowcontrol.apiserver.k8s.io", "FlowSchema", fs) == [
        "exempt",
        "exempt",
        1,
        "<none>",
        "3h4m",
        "False",
    ]
    plc = {
        "metadata": meta("workload-low"),
        "spec": {
            "type": "Limited",
            "limited": {
                "nominalConcurrencyShares": 100,
                "limitResponse": {
                    "queuing": {"queues": 128, "handSize": 6, "queueLengthLimit": 50}
                },
            },
        },
    }
    assert cells("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration", plc) == [
        "workload-low",
        "Limited",
        100,
        128,
        6,
        50,
        "3h4m",
    ]
    exempt = {"metadata": meta("exempt"), "spec": {"type": "Exempt"}}
    assert (
        cells("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration", exempt)[2:6]
        == ["<none>"] * 4
    )


# ---------------------------------------------------------------------------
# Labels and selectors


def test_label_formatting() -> None:
    assert tables.format_labels({}) == "<none>"
    # upstream sorts the "k=v" strings, so "a.b=…" precedes "a=…"
    assert tables.format_labels({"a": "2", "a.b": "1"}) == "a.b=1,a=2"
    selector = {
        "matchLabels": {"tier": "web", "app": "x"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "zone", "operator": "NotIn", "values": ["b"]},
            {"key": "gpu", "operator": "Exists"},
            {"key": "spot", "operator": "DoesNotExist"},
        ],
    }
    assert tables.format_label_selector(selector) == (
        "app=x,env in (dev,prod),gpu,!spot,tier=web,zone notin (b)"
    )
    assert tables.format_label_selector({}) == "<none>"
    assert tables.format_label_selector(None) == "<none>"
    assert (
        tables.format_label_selector({"matchExpressions": [{"key": "a", "operator": "Bad"}]})
        == "<error>"
    )


# ---------------------------------------------------------------------------
# Custom resources


CRD_VERSION = {
    "name": "v1",
    "additionalPrinterColumns": [
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {
            "name": "Ready",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
        },
        {"name": "Ratio", "type": "number", "jsonPath": ".status.ratio", "priority": 1},
        {
            "name": "Paused",
            "type": "boolean",
            "jsonPath": ".spec.paused",
            "description": "Is it paused",
        },
        {"name": "Since", "type": "date", "jsonPath": ".status.since"},
        {"name": "Extra", "type": "string", "jsonPath": ".spec.extra", "format": "byte"},
    ],
}


def crd_obj(**extra: Any) -> dict[str, Any]:
    obj = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": meta("w1"),
        "spec": {"replicas": 3, "paused": False, "extra": {"b": [1, 2.5], "a": "<x>"}},
        "status": {
            "ratio": 2,
            "since": ts(minutes=42),
            "conditions": [
                {"type": "Synced", "status": "False"},
                {"type": "Ready", "status": "True"},
            ],
        },
    }
    obj.update(extra)
    return obj


def test_crd_columns() -> None:
    defs = tables.crd_column_definitions(CRD_VERSION)
    assert [(c["name"], c["type"], c["format"], c["priority"]) for c in defs] == [
        ("Name", "string", "name", 0),
        ("Replicas", "integer", "", 0),
        ("Ready", "string", "", 0),
        ("Ratio", "number", "", 1),
        ("Paused", "boolean", "", 0),
        ("Since", "date", "", 0),
        ("Extra", "string", "byte", 0),
    ]
    assert (
        defs[1]["description"]
        == "Custom resource definition column (in JSONPath format): .spec.replicas"
    )
    assert defs[4]["description"] == "Is it paused"


def test_crd_cells() -> None:
    row = tables.crd_row_cells(CRD_VERSION, crd_obj(), now=NOW)
    assert row == ["w1", 3, "True", 2.0, False, "42m", '{"a":"\\u003cx\\u003e","b":[1,2.5]}']
    assert isinstance(row[3], float)


def test_crd_cells_missing_or_mistyped() -> None:
    obj = crd_obj(spec={"replicas": "three", "paused": "no"}, status={"since": "yesterday"})
    assert tables.crd_row_cells(CRD_VERSION, obj, now=NOW) == [
        "w1",
        None,
        None,
        None,
        None,
        "<invalid>",
        None,
    ]
    obj = crd_obj(spec={"replicas": 2.9, "paused": True, "extra": None}, status={"since": ""})
    assert tables.crd_row_cells(CRD_VERSION, obj, now=NOW) == [
        "w1",
        2,
        None,
        None,
        True,
        "<unknown>",
        "<no value>",
    ]


def test_crd_without_columns_gets_age_only() -> None:
    defs = tables.crd_column_definitions({"name": "v1"})
    assert [(c["name"], c["type"]) for c in defs] == [("Name", "string"), ("Age", "date")]
    assert defs[1]["description"].startswith("CreationTimestamp is a timestamp")
    assert tables.crd_row_cells({"name": "v1"}, crd_obj(), now=NOW) == ["w1", "3h4m"]


def test_crd_string_column_prints_first_match_only() -> None:
    version = {
        "additionalPrinterColumns": [
            {"name": "Types", "type": "string", "jsonPath": ".status.conditions[*].type"}
        ]
    }
    assert tables.crd_row_cells(version, crd_obj(), now=NOW) == ["w1", "Synced"]
    version["additionalPrinterColumns"][0]["jsonPath"] = ".status.conditions[5].type"
    assert tables.crd_row_cells(version, crd_obj(), now=NOW) == ["w1", None]


# ---------------------------------------------------------------------------
# JSONPath


DOC = {
    "metadata": {"name": "x", "labels": {"app.kubernetes.io/name": "web"}},
    "items": [
        {"n": 1, "tag": "a"},
        {"n": 2, "tag": "b"},
        {"n": 3, "tag": "c", "deep": {"tag": "d"}},
    ],
    "flag": True,
    "big": 1.5e6,
}


@pytest.mark.parametrize(
    "template,expected",
    [
        ("{.metadata.name}", [["x"]]),
        ("{.metadata.labels.app\\.kubernetes\\.io/name}", [["web"]]),
        ("{.metadata.labels['app.kubernetes.io/name']}", [["web"]]),
        ("{.items[0].n}", [[1]]),
        ("{.items[-1].tag}", [["c"]]),
        ("{.items[0:2].tag}", [["a", "b"]]),
        ("{.items[::2].tag}", [["a", "c"]]),
        ("{.items[*].n}", [[1, 2, 3]]),
        ("{.items[?(@.n > 1)].tag}", [["b", "c"]]),
        ("{.items[?(@.tag != 'a')].n}", [[2, 3]]),
        ("{.items[?(@.deep)].n}", [[3]]),
        ("{..tag}", [["a", "b", "c", "d"]]),
        ("{.metadata.*}", [["x", {"app.kubernetes.io/name": "web"}]]),
        ("{.missing}", [[]]),
        ("{.metadata.name,.flag}", [["x", True]]),
        ("name={.metadata.name}", [["name="], ["x"]]),
    ],
)
def test_jsonpath_find_results(template: str, expected: list[list[Any]]) -> None:
    assert jsonpath.find_results(template, DOC) == expected


@pytest.mark.parametrize(
    "template",
    [
        "{.items[7]}",  # out of bounds
        "{.metadata[0]}",  # not a list
        "{.items[?(@.n == 'a')]}",  # int compared with string
        "{.metadata[?(@.a == 1)]}",  # filtering a map
        "{metadata.name}",  # no leading dot
        "{.metadata.name",  # unclosed
    ],
)
def test_jsonpath_errors(template: str) -> None:
    with pytest.raises(jsonpath.JSONPathError):
        jsonpath.find_results(template, DOC)


def test_jsonpath_missing_keys_error_when_not_allowed() -> None:
    with pytest.raises(jsonpath.JSONPathError):
        jsonpath.find_results("{.missing}", DOC, allow_missing_keys=False)


def test_jsonpath_text_output() -> None:
    assert jsonpath.execute("{.items[*].tag}", DOC) == "a b c"
    assert jsonpath.execute("{.flag} {.big} {.items[0]}", DOC) == 'true 1.5e+06 {"n":1,"tag":"a"}'
    assert jsonpath.go_float_v(123456.0) == "123456"
    assert jsonpath.go_float_v(0.0001) == "0.0001"
    assert jsonpath.go_float_v(0.00001) == "1e-05"
    assert jsonpath.go_json([1.0, 1e21, 1e-7, 0.5]) == "[1,1e+21,1e-7,0.5]"


# ---------------------------------------------------------------------------
# Tables


def test_table_with_partial_object_metadata() -> None:
    obj = pod(statuses=[running()])
    result = tables.table_for(
        "", "Pod", [obj], now=NOW, resource_version="42", continue_token="abc"
    )
    assert list(result) == ["kind", "apiVersion", "metadata", "columnDefinitions", "rows"]
    assert result["kind"] == "Table" and result["apiVersion"] == "meta.k8s.io/v1"
    assert result["metadata"] == {"resourceVersion": "42", "continue": "abc"}
    assert [c["name"] for c in result["columnDefinitions"]][:3] == ["Name", "Ready", "Status"]
    row = result["rows"][0]
    assert list(row) == ["cells", "object"]
    assert row["cells"][:3] == ["p", "1/1", "Running"]
    assert row["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }


def test_table_include_object_variants() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("c"), "data": {}}
    full = tables.table_for(
        "", "ConfigMap", [obj], now=NOW, resource_version="7", include_object="Object"
    )
    assert full["rows"][0]["object"] is obj
    none = tables.table_for(
        "", "ConfigMap", [obj], now=NOW, resource_version="7", include_object="None"
    )
    assert none["rows"][0] == {"cells": ["c", 0, "3h4m"], "object": None}
    empty = tables.table_for(
        "", "ConfigMap", [obj], now=NOW, resource_version="7", include_object=""
    )
    assert empty["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    with pytest.raises(APIError) as err:
        tables.table_for(
            "", "ConfigMap", [obj], now=NOW, resource_version="7", include_object="All"
        )
    assert err.value.code == 400
    assert (
        'Unsupported value: "All": supported values: "Metadata", "None", "Object"'
        in err.value.message
    )


def test_table_watch_events_without_headers_and_conditions() -> None:
    done = pod(phase="Succeeded", statuses=[terminated(reason="Completed", exitCode=0)])
    result = tables.table_for("", "Pod", [done], now=NOW, resource_version="", no_headers=True)
    assert result["metadata"] == {}
    assert result["columnDefinitions"] is None
    assert result["rows"][0]["conditions"][0]["reason"] == "Succeeded"
    assert list(result["rows"][0]) == ["cells", "conditions", "object"]


def test_table_for_custom_resources_and_empty_lists() -> None:
    result = tables.table_for(
        "example.com", "Widget", [crd_obj()], now=NOW, resource_version="9", crd_version=CRD_VERSION
    )
    assert [c["name"] for c in result["columnDefinitions"]][:2] == ["Name", "Replicas"]
    assert result["rows"][0]["cells"][:3] == ["w1", 3, "True"]
    empty = tables.table(
        tables.column_definitions("", "Pod"), [], resource_version="1", remaining_item_count=0
    )
    assert empty["rows"] == [] and empty["metadata"] == {
        "resourceVersion": "1",
        "remainingItemCount": 0,
    }
