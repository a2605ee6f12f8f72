"""The real kubectl's read paths: server-side Tables, selectors, watches, explain and
discovery commands."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.kubectl_util import (
    EXAMPLES,
    LineReader,
    apply_text,
    configmap,
    ensure_crd,
    kubectl_bg,
    rows_by_name,
    table,
    unique,
)
from tests.conftest import ServerHandle

pytestmark = pytest.mark.timeout(180)

AGE = re.compile(r"\d+(s|m\d*s?)")


@pytest.fixture(scope="module")
def ns(server: ServerHandle) -> Iterator[str]:
    """A namespace holding web.yaml, config.yaml, jobs.yaml, crontab.yaml and labelled ConfigMaps."""
    name = unique("kg")
    apply_text(server, f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
    ensure_crd(server)
    for f in ("web.yaml", "config.yaml", "jobs.yaml", "crontab.yaml"):
        server.kubectl("apply", "-n", name, "-f", str(EXAMPLES / f))
    docs = [
        configmap("sel-a", {"x": "1"}, {"tier": "fe", "env": "prod"}),
        configmap("sel-b", {"x": "1", "y": "2"}, {"tier": "be", "env": "dev"}),
        configmap("sel-c", {}, {"tier": "db"}),
        configmap("sel-d", {"x": "1"}),
    ]
    # A YAML stream of JSON documents.
    apply_text(server, "".join(f"---\n{d}\n" for d in docs), "-n", name)
    yield name
    server.kubectl("delete", "namespace", name, "--wait=false", check=False)


def _names(out: str) -> list[str]:
    return [r[0] for r in table(out)[1:]]


def test_get_pods_table(server: ServerHandle, ns: str) -> None:
    rows = table(server.kubectl("get", "pods", "-n", ns).stdout)
    assert rows[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert rows[1][:4] == ["config-demo", "0/1", "Pending", "0"]
    assert AGE.fullmatch(rows[1][4])
    rows = table(server.kubectl("get", "pods", "-n", ns, "-o", "wide").stdout)
    assert rows[0] == [
        "NAME",
        "READY",
        "STATUS",
        "RESTARTS",
        "AGE",
        "IP",
        "NODE",
        "NOMINATED NODE",
        "READINESS GATES",
    ]
    assert rows[1][:4] == ["config-demo", "0/1", "Pending", "0"]
    assert rows[1][5:] == ["<none>", "<none>", "<none>", "<none>"]


def test_get_deployments_table(server: ServerHandle, ns: str) -> None:
    rows = table(server.kubectl("get", "deployments", "-n", ns).stdout)
    assert rows[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert rows[1][:4] == ["web", "0/2", "0", "0"]
    rows = table(server.kubectl("get", "deploy", "web", "-n", ns, "-o", "wide").stdout)
    assert rows[0] == [
        "NAME",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]
    assert rows[1][5:] == ["httpd", "busybox:1.36", "app=web"]


def test_get_services_table(server: ServerHandle, ns: str) -> None:
    out = server.kubectl("get", "services", "-n", ns, "-o", "wide").stdout
    rows = table(out)
    assert rows[0] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]
    web = rows_by_name(out)["web"]
    assert web[1] == "ClusterIP"
    assert re.fullmatch(r"10\.43\.\d+\.\d+", web[2])
    assert web[3:5] == ["<none>", "80/TCP"]
    assert web[6] == "app=web"
    kube_dns = rows_by_name(server.kubectl("get", "svc", "kube-dns", "-n", "kube-system").stdout)[
        "kube-dns"
    ]
    assert kube_dns[1:5] == ["ClusterIP", "10.43.0.10", "<none>", "53/UDP,53/TCP,9153/TCP"]


def test_get_configmaps_table(server: ServerHandle, ns: str) -> None:
    out = server.kubectl("get", "configmaps", "-n", ns).stdout
    rows = table(out)
    assert rows[0] == ["NAME", "DATA", "AGE"]
    by = rows_by_name(out)
    assert by["app-config"][1] == "2"
    assert by["sel-b"][1] == "2"
    assert by["sel-c"][1] == "0"


def test_get_custom_resources_printer_columns(server: ServerHandle, ns: str) -> None:
    out = server.kubectl("get", "crontabs", "-n", ns).stdout
    rows = table(out)
    assert rows[0] == ["NAME", "SPEC", "REPLICAS", "AGE"]
    assert rows[1][:3] == ["nightly", "0 3 * * *", "1"]
    # Short name, `-o wide` (no extra priority columns) and --show-labels.
    rows = table(server.kubectl("get", "ct", "-n", ns, "-o", "wide", "--show-labels").stdout)
    assert rows[0] == ["NAME", "SPEC", "REPLICAS", "AGE", "LABELS"]
    assert rows[1][-1] == "<none>"


def test_get_all_namespaces_and_show_labels(server: ServerHandle, ns: str) -> None:
    out = server.kubectl("get", "configmaps", "-A", "--show-labels").stdout
    rows = table(out)
    assert rows[0] == ["NAMESPACE", "NAME", "DATA", "AGE", "LABELS"]
    mine = {r[1]: r for r in rows[1:] if r[0] == ns}
    assert set(mine) == {"app-config", "sel-a", "sel-b", "sel-c", "sel-d"}
    assert mine["sel-a"][2] == "1"
    assert mine["sel-a"][4] == "env=prod,tier=fe"
    assert mine["sel-d"][4] == "<none>"
    rows = table(server.kubectl("get", "deployments", "-A").stdout)
    assert rows[0] == ["NAMESPACE", "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert [ns, "web", "0/2", "0", "0"] in [r[:5] for r in rows]
    out = server.kubectl("get", "crontabs", "-A").stdout
    assert table(out)[0] == ["NAMESPACE", "NAME", "SPEC", "REPLICAS", "AGE"]
    assert [ns, "nightly", "0 3 * * *", "1"] in [r[:4] for r in table(out)]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("tier=fe", ["sel-a"]),
        ("tier==be", ["sel-b"]),
        ("tier!=fe", ["app-config", "sel-b", "sel-c", "sel-d"]),
        ("tier in (fe,be)", ["sel-a", "sel-b"]),
        ("tier notin (fe,be)", ["app-config", "sel-c", "sel-d"]),
        ("env", ["sel-a", "sel-b"]),
        ("!env", ["app-config", "sel-c", "sel-d"]),
        ("tier,env!=prod", ["sel-b", "sel-c"]),  # != also matches a missing key
    ],
)
def test_label_selectors(server: ServerHandle, ns: str, selector: str, expected: list[str]) -> None:
    res = server.kubectl("get", "configmaps", "-n", ns, "-l", selector)
    assert _names(res.stdout) == expected


def test_label_selector_without_match(server: ServerHandle, ns: str) -> None:
    res = server.kubectl("get", "configmaps", "-n", ns, "-l", "tier=nothing")
    assert res.stdout == ""
    assert res.stderr.strip() == f"No resources found in {ns} namespace."


def test_field_selectors(server: ServerHandle, ns: str) -> None:
    out = server.kubectl("get", "cm", "-n", ns, "--field-selector", "metadata.name=sel-b").stdout
    assert _names(out) == ["sel-b"]
    out = server.kubectl(
        "get", "cm", "-n", ns, "--field-selector", "metadata.name!=sel-b,metadata.name!=app-config"
    ).stdout
    assert _names(out) == ["sel-a", "sel-c", "sel-d"]
    out = server.kubectl(
        "get", "cm", "-A", "--field-selector", f"metadata.namespace={ns}", "-l", "tier"
    ).stdout
    assert [r[:2] for r in table(out)[1:]] == [[ns, "sel-a"], [ns, "sel-b"], [ns, "sel-c"]]
    out = server.kubectl("get", "pods", "-n", ns, "--field-selector", "status.phase=Pending").stdout
    assert _names(out) == ["config-demo"]
    res = server.kubectl("get", "pods", "-n", ns, "--field-selector", "status.phase!=Pending")
    assert res.stdout == ""
    res = server.kubectl("get", "cm", "-n", ns, "--field-selector", "data.x=1", check=False)
    assert res.returncode == 1
    assert (
        '"data.x" is not a known field selector: only "metadata.name", "metadata.namespace"'
        in res.stderr
    )


def test_get_watch_table(server: ServerHandle, namespace: str) -> None:
    apply_text(server, configmap("w-old", {"a": "1"}), "-n", namespace)
    reader = LineReader(
        kubectl_bg(server, "get", "configmaps", "-n", namespace, "-w", "--request-timeout=30s")
    )
    try:
        # The header and the synthetic ADDED of the existing object come first.
        lines = reader.wait_for(lambda ls: any(line.startswith("w-old") for line in ls))
        assert table(lines[0])[0] == ["NAME", "DATA", "AGE"]
        apply_text(server, configmap("w-new", {"a": "1"}), "-n", namespace)
        server.kubectl(
            "patch", "configmap", "w-new", "-n", namespace, "-p", '{"data":{"b":"2","c":"3"}}'
        )
        server.kubectl("delete", "configmap", "w-new", "-n", namespace)
        lines = reader.wait_for(lambda ls: sum(line.startswith("w-new") for line in ls) >= 3)
    finally:
        reader.stop()
    new_rows = [table(line)[0][:2] for line in lines if line.startswith("w-new")]
    assert new_rows == [["w-new", "1"], ["w-new", "3"], ["w-new", "3"]]
    assert sum(line.startswith("NAME") for line in lines) == 1


def test_get_watch_events_json(server: ServerHandle, namespace: str) -> None:
    apply_text(server, configmap("j-old", {"a": "1"}), "-n", namespace)
    proc = kubectl_bg(
        server,
        "get",
        "configmaps",
        "-n",
        namespace,
        "-w",
        "--output-watch-events",
        "-o",
        "json",
    )
    reader = LineReader(proc)
    try:
        reader.wait_for(lambda ls: any('"name":"j-old"' in line for line in ls))
        apply_text(server, configmap("j-new", {"a": "1"}), "-n", namespace)
        server.kubectl("label", "configmap", "j-new", "-n", namespace, "k=v")
        server.kubectl("delete", "configmap", "j-new", "-n", namespace)
        reader.wait_for(lambda ls: sum(line.startswith('{"type":') for line in ls) >= 4)
    finally:
        reader.stop()
    events = _json_stream("\n".join(reader.lines))
    summary = [(e["type"], e["object"]["metadata"]["name"]) for e in events]
    assert summary == [
        ("ADDED", "j-old"),
        ("ADDED", "j-new"),
        ("MODIFIED", "j-new"),
        ("DELETED", "j-new"),
    ]
    assert events[2]["object"]["metadata"]["labels"] == {"k": "v"}
    assert all(
        e["object"]["kind"] == "ConfigMap" and e["object"]["apiVersion"] == "v1" for e in events
    )
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events[1:]]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3


def _json_stream(text: str) -> list[dict[str, Any]]:
    dec = json.JSONDecoder()
    out = []
    i = 0
    text = text.strip()
    while i < len(text):
        obj, j = dec.raw_decode(text, i)
        out.append(obj)
        i = j
        while i < len(text) and text[i].isspace():
            i += 1
    return out


def test_get_watch_with_selector(server: ServerHandle, namespace: str) -> None:
    reader = LineReader(
        kubectl_bg(
            server, "get", "cm", "-n", namespace, "-w", "-l", "watch=me", "--output-watch-events"
        )
    )
    try:
        apply_text(server, configmap("sw-1", {"a": "1"}, {"watch": "me"}), "-n", namespace)
        reader.wait_for(lambda ls: any("sw-1" in line for line in ls))
        apply_text(server, configmap("sw-2", {"a": "1"}), "-n", namespace)
        server.kubectl("label", "cm", "sw-1", "-n", namespace, "watch-")  # leaves the selection
        server.kubectl("label", "cm", "sw-2", "-n", namespace, "watch=me")  # enters it
        lines = reader.wait_for(lambda ls: any("sw-2" in line for line in ls))
    finally:
        reader.stop()
    events = [table(line)[0][:2] for line in lines[1:]]
    assert events == [["ADDED", "sw-1"], ["DELETED", "sw-1"], ["ADDED", "sw-2"]]


def test_explain(server: ServerHandle) -> None:
    ensure_crd(server)
    out = server.kubectl("explain", "pods.spec.containers").stdout
    assert out.startswith("KIND:       Pod\nVERSION:    v1\n")
    assert "FIELD: containers <[]Container>" in out
    assert "List of containers belonging to the pod." in out
    assert re.search(r"^  image\t<string>$", out, re.M)
    assert re.search(r"^  name\t<string> -required-$", out, re.M)
    out = server.kubectl("explain", "deployments.spec.strategy").stdout
    assert "GROUP:      apps\nKIND:       Deployment\nVERSION:    v1" in out
    assert "FIELD: strategy <DeploymentStrategy>" in out
    assert re.search(r"^  rollingUpdate\t<RollingUpdateDeployment>$", out, re.M)
    assert re.search(r"^  type\t<string>$", out, re.M)
    out = server.kubectl("explain", "crontabs.spec").stdout
    assert "GROUP:      stable.example.com\nKIND:       CronTab\nVERSION:    v1" in out
    assert re.search(r"^  cronSpec\t<string> -required-$", out, re.M)
    assert re.search(r"^  replicas\t<integer>$", out, re.M)
    res = server.kubectl("explain", "pods.spec.nosuchfield", check=False)
    assert res.returncode == 1
    assert 'field "nosuchfield" does not exist' in res.stderr


def test_raw_endpoints(server: ServerHandle) -> None:
    version = json.loads(server.kubectl("get", "--raw", "/version").stdout)
    assert (version["major"], version["minor"]) == ("1", "32")
    assert version["gitVersion"].startswith("v1.32.")
    assert server.kubectl("get", "--raw", "/readyz").stdout == "ok"
    assert server.kubectl("get", "--raw", "/livez").stdout == "ok"
    v1 = json.loads(server.kubectl("get", "--raw", "/api/v1").stdout)
    assert v1["kind"] == "APIResourceList"
    pods = next(r for r in v1["resources"] if r["name"] == "pods")
    assert pods["shortNames"] == ["po"] and pods["categories"] == ["all"]
    res = server.kubectl("get", "--raw", "/api/v2", check=False)
    assert res.returncode == 1
    assert "the server could not find the requested resource" in res.stderr
    out = server.kubectl("version").stdout
    assert "Server Version: v1.32." in out


def test_api_resources(server: ServerHandle) -> None:
    ensure_crd(server)
    out = server.kubectl("api-resources").stdout
    rows = table(out)
    assert rows[0] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    by: dict[str, list[str]] = {}
    for r in rows[1:]:
        by.setdefault(r[0], r)  # the first row of a name (metrics.k8s.io also has nodes and pods)
    assert ["pods", "", "metrics.k8s.io/v1beta1", "true", "PodMetrics"] in [
        r[:1] + [""] + r[1:] for r in rows[1:] if len(r) == 4
    ]
    assert by["pods"] == ["pods", "po", "v1", "true", "Pod"]
    assert by["deployments"] == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    assert by["crontabs"] == ["crontabs", "ct", "stable.example.com/v1", "true", "CronTab"]
    assert by["namespaces"] == ["namespaces", "ns", "v1", "false", "Namespace"]
    assert by["customresourcedefinitions"][:3] == [
        "customresourcedefinitions",
        "crd,crds",
        "apiextensions.k8s.io/v1",
    ]
    wide: dict[str, list[str]] = {}
    for r in table(server.kubectl("api-resources", "-o", "wide").stdout)[1:]:
        wide.setdefault(r[0], r)
    assert wide["pods"][-1] == "all"
    assert wide["crontabs"][-1] == "all"
    verbs = {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
    assert set(wide["crontabs"][5].split(",")) == verbs
    names = server.kubectl(
        "api-resources", "--api-group=stable.example.com", "-o", "name"
    ).stdout.split()
    assert names == ["crontabs.stable.example.com"]
    cluster = _names(server.kubectl("api-resources", "--namespaced=false").stdout)
    assert "namespaces" in cluster and "nodes" in cluster and "pods" not in cluster


def test_api_versions(server: ServerHandle) -> None:
    ensure_crd(server)
    versions = server.kubectl("api-versions").stdout.split()
    for gv in (
        "v1",
        "apps/v1",
        "batch/v1",
        "autoscaling/v2",
        "networking.k8s.io/v1",
        "apiextensions.k8s.io/v1",
        "rbac.authorization.k8s.io/v1",
        "stable.example.com/v1",
    ):
        assert gv in versions
    assert versions == sorted(versions)


def test_get_all(server: ServerHandle, ns: str) -> None:
    out = server.kubectl("get", "all", "-n", ns).stdout
    names = {r[0] for r in table(out) if r[0] != "NAME"}
    assert {
        "pod/config-demo",
        "service/web",
        "deployment.apps/web",
        "job.batch/pi",
        "cronjob.batch/tick",
        "crontab.stable.example.com/nightly",
    } <= names
    assert not any(n.startswith("configmap/") for n in names)
    # Each kind is its own table with its own header.
    assert "NAME                  READY   UP-TO-DATE   AVAILABLE   AGE" in out
    assert re.search(r"^NAME\s+SPEC\s+REPLICAS\s+AGE$", out, re.M)


def test_get_watch_one_object(server: ServerHandle, namespace: str) -> None:
    apply_text(server, configmap("one", {}), "-n", namespace)
    reader = LineReader(kubectl_bg(server, "get", "configmap", "one", "-n", namespace, "-w"))
    try:
        reader.wait_for(lambda ls: any(line.startswith("one") for line in ls))
        apply_text(server, configmap("other", {}), "-n", namespace)
        apply_text(server, configmap("one", {"k": "v"}), "-n", namespace)
        lines = reader.wait_for(lambda ls: any(table(line)[0][:2] == ["one", "1"] for line in ls))
    finally:
        reader.stop()
    assert [table(line)[0][:2] for line in lines[1:]] == [["one", "0"], ["one", "1"]]
