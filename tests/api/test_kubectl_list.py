"""The real kubectl applying a ``kind: List`` (saved ``kubectl get ... -o yaml`` output).

kubectl validates a List on the client against the OpenAPI v2 models, which it asks
for only as gnostic protobuf (``/openapi/v2``); before that endpoint existed every
such apply failed with "the server could not find the requested resource".
"""

from __future__ import annotations

import json

import pytest

from tests.api.kubectl_util import ensure_crd
from tests.conftest import ServerHandle

pytestmark = pytest.mark.timeout(120)


def _list_yaml(*, ns: str, cm_extra: str = "") -> str:
    return f"""apiVersion: v1
kind: List
metadata:
  resourceVersion: ""
items:
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: listed-config
    namespace: {ns}
  data:
    greeting: hello
{cm_extra}- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: listed-web
    namespace: {ns}
  spec:
    replicas: 1
    selector:
      matchLabels:
        app: listed-web
    template:
      metadata:
        labels:
          app: listed-web
      spec:
        containers:
        - name: web
          image: nginx:1.27
          ports:
          - containerPort: 80
"""


def test_apply_list_creates_every_item(server: ServerHandle, namespace: str) -> None:
    res = server.kubectl("apply", "-f", "-", input=_list_yaml(ns=namespace))
    assert "configmap/listed-config created" in res.stdout
    assert "deployment.apps/listed-web created" in res.stdout
    cm = json.loads(
        server.kubectl("get", "configmap", "listed-config", "-n", namespace, "-o", "json").stdout
    )
    assert cm["data"] == {"greeting": "hello"}
    dep = json.loads(
        server.kubectl("get", "deployment", "listed-web", "-n", namespace, "-o", "json").stdout
    )
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    # Applying the same List again is a no-op, not an error.
    again = server.kubectl("apply", "-f", "-", input=_list_yaml(ns=namespace))
    assert "configmap/listed-config unchanged" in again.stdout


def test_apply_saved_get_output_round_trips(server: ServerHandle, namespace: str) -> None:
    server.kubectl("apply", "-f", "-", input=_list_yaml(ns=namespace))
    saved = server.kubectl("get", "configmap,deployment", "-n", namespace, "-o", "yaml").stdout
    assert "kind: List" in saved
    res = server.kubectl("apply", "-f", "-", input=saved)
    assert "configmap/listed-config" in res.stdout
    assert "deployment.apps/listed-web" in res.stdout


def test_list_item_with_unknown_field_is_rejected(server: ServerHandle, namespace: str) -> None:
    bad = _list_yaml(ns=namespace, cm_extra="  bogusField: 1\n")
    res = server.kubectl("apply", "-f", "-", input=bad, check=False)
    assert res.returncode != 0
    assert 'unknown field "bogusField"' in res.stderr
    assert "io.k8s.api.core.v1.ConfigMap" in res.stderr
    assert "could not find the requested resource" not in res.stderr
    missing = server.kubectl("get", "configmap", "listed-config", "-n", namespace, check=False)
    assert missing.returncode != 0


def test_list_validation_can_be_turned_off(server: ServerHandle, namespace: str) -> None:
    bad = _list_yaml(ns=namespace, cm_extra="  bogusField: 1\n")
    res = server.kubectl("apply", "--validate=false", "-f", "-", input=bad)
    assert "configmap/listed-config created" in res.stdout


def test_openapi_v2_json_form(server: ServerHandle) -> None:
    # `kubectl get --raw` asks for JSON; kubectl's protobuf request is what the applies use.
    doc = json.loads(server.kubectl("get", "--raw", "/openapi/v2").stdout)
    assert doc["swagger"] == "2.0"
    cm = doc["definitions"]["io.k8s.api.core.v1.ConfigMap"]
    assert cm["x-kubernetes-group-version-kind"] == [
        {"group": "", "kind": "ConfigMap", "version": "v1"}
    ]
    assert (
        cm["properties"]["metadata"]["$ref"]
        == "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    )


def _crontab_list(*, ns: str, spec_extra: str = "") -> str:
    return f"""apiVersion: v1
kind: List
items:
- apiVersion: stable.example.com/v1
  kind: CronTab
  metadata:
    name: listed-tab
    namespace: {ns}
  spec:
    cronSpec: "*/5 * * * *"
{spec_extra}"""


def test_list_of_custom_resources_is_validated(server: ServerHandle, namespace: str) -> None:
    ensure_crd(server)
    doc = json.loads(server.kubectl("get", "--raw", "/openapi/v2").stdout)
    tab = doc["definitions"]["com.example.stable.v1.CronTab"]
    assert tab["x-kubernetes-group-version-kind"] == [
        {"group": "stable.example.com", "kind": "CronTab", "version": "v1"}
    ]
    bad = _crontab_list(ns=namespace, spec_extra="    bogusSetting: true\n")
    res = server.kubectl("apply", "-f", "-", input=bad, check=False)
    assert res.returncode != 0
    assert 'unknown field "bogusSetting"' in res.stderr
    assert "com.example.stable.v1.CronTab.spec" in res.stderr
    ok = server.kubectl("apply", "-f", "-", input=_crontab_list(ns=namespace))
    assert "crontab.stable.example.com/listed-tab created" in ok.stdout
