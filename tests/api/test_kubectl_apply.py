"""The real kubectl's write paths: apply (client- and server-side), create, replace, diff,
edit, dry runs, and how validation and strict decoding errors reach the user."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.kubectl_util import (
    EXAMPLES,
    apply_text,
    configmap,
    crontab,
    ensure_crd,
    get_json,
    kubectl_env,
    unique,
)
from tests.conftest import ServerHandle

pytestmark = pytest.mark.timeout(180)

# What `kubectl apply -f examples/<file>` reports on a fresh namespace, in file order.
# crd.yaml and daemonset.yaml are cluster-scoped / kube-system and may already exist.
EXAMPLE_FILES: list[tuple[str, list[str]]] = [
    ("crd.yaml", ["customresourcedefinition.apiextensions.k8s.io/crontabs.stable.example.com"]),
    ("config.yaml", ["configmap/app-config", "secret/app-secret", "pod/config-demo"]),
    ("web.yaml", ["deployment.apps/web", "service/web", "ingress.networking.k8s.io/web"]),
    ("daemonset.yaml", ["daemonset.apps/node-agent"]),
    ("hpa.yaml", ["horizontalpodautoscaler.autoscaling/web"]),
    ("jobs.yaml", ["job.batch/pi", "cronjob.batch/tick"]),
    ("networkpolicy.yaml", ["networkpolicy.networking.k8s.io/web-allow-frontend"]),
    ("statefulset.yaml", ["service/db", "statefulset.apps/db"]),
    ("crontab.yaml", ["crontab.stable.example.com/nightly"]),
]
SHARED = {"crd.yaml", "daemonset.yaml"}
NAMESPACED_KINDS = "configmaps,secrets,pods,deployments,services,ingresses,horizontalpodautoscalers,jobs,cronjobs,networkpolicies,statefulsets,crontabs"


def _apply_file(server: ServerHandle, ns: str, fname: str, *extra: str) -> str:
    args = ["apply", "-f", str(EXAMPLES / fname), *extra]
    if fname not in SHARED:
        args += ["-n", ns]
    return server.kubectl(*args).stdout


@pytest.fixture(scope="module")
def examples_ns(server: ServerHandle) -> Iterator[tuple[str, dict[str, str]]]:
    ns = unique("kx")
    apply_text(server, f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n")
    outputs = {fname: _apply_file(server, ns, fname) for fname, _ in EXAMPLE_FILES}
    yield ns, outputs
    server.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    server.kubectl("delete", "-f", str(EXAMPLES / "daemonset.yaml"), "--wait=false", check=False)


def _resource_versions(server: ServerHandle, ns: str) -> dict[str, str]:
    items = get_json(server, NAMESPACED_KINDS, "-n", ns)["items"]
    items += [get_json(server, "daemonset", "node-agent", "-n", "kube-system")]
    items += [get_json(server, "crd", "crontabs.stable.example.com")]
    return {f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["resourceVersion"] for o in items}


def test_apply_every_example_file(
    server: ServerHandle, examples_ns: tuple[str, dict[str, str]]
) -> None:
    ns, outputs = examples_ns
    for fname, refs in EXAMPLE_FILES:
        lines = outputs[fname].splitlines()
        verbs = "(created|unchanged|configured)" if fname in SHARED else "created"
        assert len(lines) == len(refs), (fname, lines)
        for line, ref in zip(lines, refs, strict=True):
            assert re.fullmatch(re.escape(ref) + " " + verbs, line), (fname, line)
    # What the server stored, read back.
    ct = get_json(server, "crontab", "nightly", "-n", ns)
    assert ct["spec"] == {
        "cronSpec": "0 3 * * *",
        "image": "busybox:1.36",
        "replicas": 1,
    }  # schema default
    secret = get_json(server, "secret", "app-secret", "-n", ns)
    assert secret["data"] == {"password": "czNjcjN0", "username": "YWRtaW4="}  # stringData merged
    assert "stringData" not in secret
    svc = get_json(server, "service", "web", "-n", ns)
    assert re.fullmatch(r"10\.43\.\d+\.\d+", svc["spec"]["clusterIP"])
    assert get_json(server, "service", "db", "-n", ns)["spec"]["clusterIP"] == "None"
    dep = get_json(server, "deployment", "web", "-n", ns)
    assert dep["spec"]["strategy"]["type"] == "RollingUpdate"  # defaulted
    annotation = dep["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert json.loads(annotation)["spec"]["replicas"] == 2


def test_reapply_examples_is_a_no_op(
    server: ServerHandle, examples_ns: tuple[str, dict[str, str]]
) -> None:
    ns, _ = examples_ns
    before = _resource_versions(server, ns)
    # kubectl's three-way patch is never empty for these two (as upstream): a Secret's
    # stringData is not stored, and volumeClaimTemplates (an atomic list) get defaults.
    quirks = {"secret/app-secret", "statefulset.apps/db"}
    for fname, refs in EXAMPLE_FILES:
        lines = _apply_file(server, ns, fname).splitlines()
        expected = [f"{r} {'configured' if r in quirks else 'unchanged'}" for r in refs]
        assert lines == expected, fname
    # ... and the server saw nothing new for any of them.
    assert _resource_versions(server, ns) == before


def test_apply_change_reports_configured(server: ServerHandle, namespace: str) -> None:
    text = (EXAMPLES / "web.yaml").read_text()
    out = apply_text(server, text, "-n", namespace).stdout
    assert "deployment.apps/web created" in out
    before = get_json(server, "deployment", "web", "-n", namespace)
    out = apply_text(server, text.replace("replicas: 2", "replicas: 5"), "-n", namespace).stdout
    assert out.splitlines() == [
        "deployment.apps/web configured",
        "service/web unchanged",
        "ingress.networking.k8s.io/web unchanged",
    ]
    after = get_json(server, "deployment", "web", "-n", namespace)
    assert after["spec"]["replicas"] == 5
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    # A field dropped from the manifest is removed (it was in last-applied).
    text2 = text.replace("  labels:\n    app: web\nspec:\n  replicas: 2", "spec:\n  replicas: 5", 1)
    assert text2 != text
    out = apply_text(server, text2, "-n", namespace).stdout
    assert "deployment.apps/web configured" in out
    assert "labels" not in get_json(server, "deployment", "web", "-n", namespace)["metadata"]


def test_create_existing_is_already_exists(server: ServerHandle, namespace: str) -> None:
    server.kubectl("create", "-f", str(EXAMPLES / "web.yaml"), "-n", namespace)
    res = server.kubectl("create", "-f", str(EXAMPLES / "web.yaml"), "-n", namespace, check=False)
    assert res.returncode == 1
    path = EXAMPLES / "web.yaml"
    assert (
        f'Error from server (AlreadyExists): error when creating "{path}": deployments.apps "web" already exists'
        in res.stderr
    )
    assert (
        f'Error from server (AlreadyExists): error when creating "{path}": services "web" already exists'
        in res.stderr
    )
    assert 'ingresses.networking.k8s.io "web" already exists' in res.stderr


def test_replace(server: ServerHandle, namespace: str) -> None:
    apply_text(server, configmap("rep", {"level": "info"}), "-n", namespace)
    live = server.kubectl("get", "configmap", "rep", "-n", namespace, "-o", "yaml").stdout
    res = server.kubectl("replace", "-f", "-", input=live.replace("level: info", "level: warn"))
    assert res.stdout.strip() == "configmap/rep replaced"
    assert get_json(server, "configmap", "rep", "-n", namespace)["data"] == {"level": "warn"}
    # The resourceVersion in the body is a precondition: the old one now conflicts.
    res = server.kubectl("replace", "-f", "-", input=live, check=False)
    assert res.returncode == 1
    assert (
        'Operation cannot be fulfilled on configmaps "rep": the object has been modified'
        in res.stderr
    )
    missing = configmap("rep-missing", {"a": "1"})
    res = server.kubectl("replace", "-f", "-", "-n", namespace, input=missing, check=False)
    assert res.returncode == 1
    assert (
        'Error from server (NotFound): error when replacing "STDIN": configmaps "rep-missing" not found'
        in res.stderr
    )


def test_validation_errors_name_fields(server: ServerHandle, namespace: str) -> None:
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "bad"},
        "spec": {
            "replicas": -1,
            "selector": {"matchLabels": {"app": "one"}},
            "template": {
                "metadata": {"labels": {"app": "two"}},
                "spec": {"containers": [{"name": "c", "image": ""}]},
            },
        },
    }
    res = apply_text(server, json.dumps(bad), "-n", namespace, check=False)
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    assert lines[0].startswith('The Deployment "bad" is invalid: ')
    assert "* spec.replicas: Invalid value: -1: must be greater than or equal to 0" in lines
    assert "* spec.template.spec.containers[0].image: Required value" in lines
    assert any(
        line.startswith("* spec.template.metadata.labels: Invalid value:")
        and "`selector` does not match template `labels`" in line
        for line in lines
    ), lines
    res = apply_text(server, configmap("Bad_Name"), "-n", namespace, check=False)
    assert res.returncode == 1
    assert res.stderr.startswith(
        'The ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain'
    )


def test_custom_resource_validation(server: ServerHandle, namespace: str) -> None:
    ensure_crd(server)
    doc = json.loads(crontab("bad-ct", spec="nope", replicas=-2))
    res = apply_text(server, json.dumps(doc), "-n", namespace, check=False)
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    assert lines[0].startswith('The CronTab "bad-ct" is invalid: ')
    assert any(
        line.startswith(
            '* spec.cronSpec: Invalid value: "nope": spec.cronSpec in body should match'
        )
        for line in lines
    ), lines
    assert (
        "* spec.replicas: Invalid value: -2: spec.replicas in body should be greater than or equal to 0"
        in lines
    )


def test_unknown_fields_are_strict_decoding_errors(server: ServerHandle, namespace: str) -> None:
    ensure_crd(server)
    cm: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "unk"},
        "bogus": 1,
    }
    res = apply_text(server, json.dumps(cm), "-n", namespace, check=False)
    assert res.returncode == 1
    assert res.stderr.strip() == (
        'Error from server (BadRequest): error when creating "STDIN": ConfigMap in version "v1" '
        'cannot be handled as a ConfigMap: strict decoding error: unknown field "bogus"'
    )
    dep = json.loads(
        json.dumps(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "unk"},
                "spec": {
                    "selector": {"matchLabels": {"a": "b"}},
                    "template": {
                        "metadata": {"labels": {"a": "b"}},
                        "spec": {"containers": [{"name": "c", "image": "i", "imagePolicy": "x"}]},
                    },
                },
            }
        )
    )
    res = apply_text(server, json.dumps(dep), "-n", namespace, check=False)
    assert res.returncode == 1
    assert (
        'strict decoding error: unknown field "spec.template.spec.containers[0].imagePolicy"'
        in res.stderr
    )
    ct = json.loads(crontab("unk"))
    ct["spec"]["color"] = "red"
    res = apply_text(server, json.dumps(ct), "-n", namespace, check=False)
    assert res.returncode == 1
    assert (
        'CronTab in version "v1" cannot be handled as a CronTab: strict decoding error: unknown field "spec.color"'
        in res.stderr
    )
    # --validate=warn stores the object without the field and prints a warning.
    res = apply_text(server, json.dumps(cm), "-n", namespace, "--validate=warn")
    assert res.stdout.strip() == "configmap/unk created"
    assert 'Warning: unknown field "bogus"' in res.stderr
    assert "bogus" not in get_json(server, "configmap", "unk", "-n", namespace)


def test_diff(server: ServerHandle, namespace: str) -> None:
    text = (EXAMPLES / "web.yaml").read_text()
    apply_text(server, text, "-n", namespace)
    res = server.kubectl("diff", "-n", namespace, "-f", "-", input=text, check=False)
    assert (res.returncode, res.stdout) == (0, "")
    res = server.kubectl(
        "diff",
        "-n",
        namespace,
        "-f",
        "-",
        input=text.replace("replicas: 2", "replicas: 6"),
        check=False,
    )
    assert res.returncode == 1, res.stderr
    changed = [
        line
        for line in res.stdout.splitlines()
        if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert "-  replicas: 2" in changed and "+  replicas: 6" in changed
    assert "-  generation: 1" in changed and "+  generation: 2" in changed  # a server-side dry run
    assert "apps.v1.Deployment." + namespace + ".web" in res.stdout
    assert get_json(server, "deployment", "web", "-n", namespace)["spec"]["replicas"] == 2


def test_edit_with_editor_script(server: ServerHandle, namespace: str, tmp_path: Path) -> None:
    apply_text(server, configmap("ed", {"LOG_LEVEL": "info"}), "-n", namespace)
    env = {
        "KUBE_EDITOR": "sed -i -e s/LOG_LEVEL:\\ info/LOG_LEVEL:\\ debug/",
        "TMPDIR": str(tmp_path),
    }
    res = kubectl_env(server, "edit", "configmap", "ed", "-n", namespace, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "configmap/ed edited"
    assert get_json(server, "configmap", "ed", "-n", namespace)["data"] == {"LOG_LEVEL": "debug"}
    # The same script again changes nothing.
    res = kubectl_env(server, "edit", "configmap", "ed", "-n", namespace, env=env)
    assert res.returncode == 0
    assert "Edit cancelled, no changes made." in res.stderr + res.stdout
    # An edit the server rejects: kubectl keeps a copy annotated with the server's causes.
    env["KUBE_EDITOR"] = "sed -i -e s/LOG_LEVEL:\\ debug/bad\\ key:\\ debug/"
    res = kubectl_env(server, "edit", "configmap", "ed", "-n", namespace, env=env)
    assert res.returncode == 1
    assert 'error: configmaps "ed" is invalid' in res.stderr
    assert "error: Edit cancelled, no valid changes were saved." in res.stderr
    copy = re.search(r'A copy of your changes has been stored to "([^"]+)"', res.stderr)
    assert copy is not None, res.stderr
    saved = Path(copy.group(1)).read_text().splitlines()
    assert '# configmaps "ed" was not valid:' in saved
    assert any(
        line.startswith('# * data[bad key]: Invalid value: "bad key": a valid config key')
        for line in saved
    ), saved
    assert get_json(server, "configmap", "ed", "-n", namespace)["data"] == {"LOG_LEVEL": "debug"}


# ---- server-side apply ----------------------------------------------------------


def test_server_side_apply_conflicts(server: ServerHandle, namespace: str) -> None:
    name = unique("ssa")
    doc = configmap(name, {"k": "v1", "j": "x"})
    assert (
        apply_text(server, doc, "-n", namespace, "--server-side").stdout.strip()
        == f"configmap/{name} serverside-applied"
    )
    assert (
        apply_text(server, doc, "-n", namespace, "--server-side").stdout.strip()
        == f"configmap/{name} serverside-applied"
    )
    other = configmap(name, {"k": "v2"})
    res = apply_text(
        server, other, "-n", namespace, "--server-side", "--field-manager=other", check=False
    )
    assert res.returncode == 1
    assert res.stderr.startswith(
        'error: Apply failed with 1 conflict: conflict with "kubectl": .data.k'
    )
    assert get_json(server, "configmap", name, "-n", namespace)["data"] == {"k": "v1", "j": "x"}
    apply_text(
        server,
        other,
        "-n",
        namespace,
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
    )
    obj = get_json(server, "configmap", name, "-n", namespace, "--show-managed-fields")
    assert obj["data"] == {"k": "v2", "j": "x"}
    managers = {m["manager"]: m for m in obj["metadata"]["managedFields"]}
    assert set(managers) == {"kubectl", "other"}
    assert managers["other"]["operation"] == "Apply"
    assert managers["other"]["fieldsV1"] == {"f:data": {"f:k": {}}}
    assert managers["kubectl"]["fieldsV1"] == {"f:data": {"f:j": {}}}
    # A field the applier no longer sends goes away.
    apply_text(server, configmap(name, {}), "-n", namespace, "--server-side")
    assert get_json(server, "configmap", name, "-n", namespace)["data"] == {"k": "v2"}


def test_server_side_apply_migrates_client_side_apply(server: ServerHandle, namespace: str) -> None:
    name = unique("mig")
    apply_text(server, configmap(name, {"a": "1", "b": "2"}), "-n", namespace)
    obj = get_json(server, "configmap", name, "-n", namespace, "--show-managed-fields")
    assert [m["manager"] for m in obj["metadata"]["managedFields"]] == ["kubectl-client-side-apply"]
    res = apply_text(
        server, configmap(name, {"a": "1", "b": "2"}), "-n", namespace, "--server-side"
    )
    assert res.stdout.strip() == f"configmap/{name} serverside-applied"
    obj = get_json(server, "configmap", name, "-n", namespace, "--show-managed-fields")
    managers = {m["manager"]: m["operation"] for m in obj["metadata"]["managedFields"]}
    assert "kubectl-client-side-apply" not in managers
    assert managers["kubectl"] == "Apply"
    # Ownership moved to the server-side applier: dropping a field removes it.
    apply_text(server, configmap(name, {"a": "1"}), "-n", namespace, "--server-side")
    assert get_json(server, "configmap", name, "-n", namespace)["data"] == {"a": "1"}


# ---- server-side dry run ---------------------------------------------------------


def _missing(server: ServerHandle, namespace: str, name: str) -> bool:
    res = server.kubectl("get", "configmap", name, "-n", namespace, check=False)
    return res.returncode == 1 and f'configmaps "{name}" not found' in res.stderr


def test_dry_run_server_stores_nothing(server: ServerHandle, namespace: str) -> None:
    name = unique("dry")
    doc = configmap(name, {"a": "1"})
    res = server.kubectl("create", "-f", "-", "-n", namespace, "--dry-run=server", input=doc)
    assert res.stdout.strip() == f"configmap/{name} created (server dry run)"
    assert _missing(server, namespace, name)
    res = apply_text(server, doc, "-n", namespace, "--dry-run=server")
    assert res.stdout.strip() == f"configmap/{name} created (server dry run)"
    res = apply_text(
        server, doc, "-n", namespace, "--dry-run=server", "--server-side", "-o", "json"
    )
    dry = json.loads(res.stdout)
    assert dry["data"] == {"a": "1"} and dry["metadata"]["uid"]
    assert _missing(server, namespace, name)
    apply_text(server, doc, "-n", namespace)
    rv = get_json(server, "configmap", name, "-n", namespace)["metadata"]["resourceVersion"]
    res = server.kubectl(
        "patch",
        "configmap",
        name,
        "-n",
        namespace,
        "-p",
        '{"data":{"a":"2"}}',
        "--dry-run=server",
        "-o",
        "jsonpath={.data.a}",
    )
    assert res.stdout == "2"
    res = apply_text(server, configmap(name, {"a": "3"}), "-n", namespace, "--dry-run=server")
    assert res.stdout.strip() == f"configmap/{name} configured (server dry run)"
    res = server.kubectl("delete", "configmap", name, "-n", namespace, "--dry-run=server")
    assert res.stdout.strip() == f'configmap "{name}" deleted (server dry run)'
    res = server.kubectl("label", "configmap", name, "-n", namespace, "x=y", "--dry-run=server")
    assert res.stdout.strip() == f"configmap/{name} labeled (server dry run)"
    obj = get_json(server, "configmap", name, "-n", namespace)
    assert obj["data"] == {"a": "1"}
    assert "labels" not in obj["metadata"]
    assert obj["metadata"]["resourceVersion"] == rv
