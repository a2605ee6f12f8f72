"""Field selectors: parsing, per-kind labels, field sets."""

from __future__ import annotations

import pytest

from k3py.apimachinery import fieldselectors as fsel
from k3py.apimachinery.fieldselectors import FieldSelectorError
from k3py.server.errors import APIError

POD = {
    "metadata": {"name": "web-1", "namespace": "prod"},
    "spec": {"nodeName": "n1", "restartPolicy": "Always", "hostNetwork": True},
    "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.7"}]},
}


def test_parse_and_match() -> None:
    sel = fsel.parse("status.phase!=Failed,spec.nodeName=n1")
    assert str(sel) == "spec.nodeName=n1,status.phase!=Failed"
    fields = fsel.fields_for("", "Pod", POD)
    assert sel.matches(fields)
    assert not fsel.parse("spec.nodeName==n2").matches(fields)
    assert fsel.parse("").empty and fsel.parse("").matches({})
    assert fsel.parse("metadata.name=web-1").requires_exact_match("metadata.name") == "web-1"


def test_escaped_values() -> None:
    sel = fsel.parse(r"metadata.name=a\,b\=c")
    assert sel.terms[0].value == "a,b=c"
    assert sel.matches({"metadata.name": "a,b=c"})
    assert str(sel) == r"metadata.name=a\,b\=c"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("foo", "invalid selector: 'foo'; can't understand 'foo'"),
        (r"a=b\x", r"invalid field selector: invalid escape sequence: \x"),
        ("a=b=c", "invalid field selector: unescaped character in value: 61"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(FieldSelectorError) as info:
        fsel.parse(text)
    assert info.value.message == message and info.value.code == 400


def test_pod_field_set() -> None:
    fields = fsel.fields_for("", "Pod", POD)
    assert fields["spec.hostNetwork"] == "true"
    assert fields["status.podIP"] == "10.0.0.7"
    assert fields["spec.schedulerName"] == ""
    assert fields["metadata.namespace"] == "prod"
    assert fields["spec.host"] == "n1"


def test_supported_labels_and_errors() -> None:
    fsel.check_supported("", "Pod", fsel.parse("status.phase=Running,spec.nodeName=x"))
    converted = fsel.check_supported("", "Pod", fsel.parse("spec.host=n1"))
    assert converted.terms[0].field == "spec.nodeName"
    with pytest.raises(APIError) as info:
        fsel.check_supported("", "Pod", fsel.parse("spec.foo=x"))
    assert info.value.code == 400 and info.value.message == "field label not supported: spec.foo"
    with pytest.raises(APIError) as info:
        fsel.check_supported("apps", "Deployment", fsel.parse("spec.replicas=1"))
    assert (
        info.value.message == '"spec.replicas" is not a known field selector: '
        'only "metadata.name", "metadata.namespace"'
    )
    with pytest.raises(APIError, match='field label "spec.x" not supported for batchv1.Job'):
        fsel.check_supported("batch", "Job", fsel.parse("spec.x=1"))
    fsel.check_supported("apps", "Deployment", fsel.parse("metadata.name=a,metadata.namespace=b"))


def test_events() -> None:
    core = {
        "metadata": {"name": "e", "namespace": "ns"},
        "involvedObject": {"kind": "Pod", "name": "web-1", "uid": "u1"},
        "reason": "Started",
        "source": {"component": "kubelet"},
        "type": "Normal",
    }
    fields = fsel.fields_for("", "Event", core)
    assert fsel.parse("involvedObject.kind=Pod,involvedObject.name=web-1,source=kubelet").matches(
        fields
    )
    v1 = {
        "metadata": {"name": "e", "namespace": "ns"},
        "regarding": {"kind": "Pod", "name": "web-1"},
        "reportingController": "kubelet",
        "type": "Warning",
    }
    sel = fsel.check_supported(
        "events.k8s.io", "Event", fsel.parse("regarding.name=web-1,type=Warning")
    )
    assert [t.field for t in sel.terms] == ["involvedObject.name", "type"]
    fields = fsel.fields_for("events.k8s.io", "Event", v1)
    assert sel.matches(fields)
    assert fsel.parse("regarding.name=web-1,reportingController=kubelet").matches(fields)
    with pytest.raises(APIError, match="field label not supported: involvedObject.name"):
        fsel.check_supported("events.k8s.io", "Event", fsel.parse("involvedObject.name=x"))


def test_other_kinds() -> None:
    assert fsel.fields_for("", "Secret", {"metadata": {}, "type": "Opaque"})["type"] == "Opaque"
    assert (
        fsel.fields_for("", "Node", {"metadata": {"name": "n"}, "spec": {}})["spec.unschedulable"]
        == "false"
    )
    assert (
        fsel.fields_for("", "Namespace", {"metadata": {}, "status": {"phase": "Active"}})[
            "status.phase"
        ]
        == "Active"
    )
    assert (
        fsel.fields_for("batch", "Job", {"metadata": {}, "status": {"succeeded": 2}})[
            "status.successful"
        ]
        == "2"
    )
    assert (
        fsel.fields_for("apps", "ReplicaSet", {"metadata": {}, "status": {}})["status.replicas"]
        == "0"
    )
    with pytest.raises(APIError):
        fsel.check_supported("", "Namespace", fsel.parse("metadata.namespace=x"))
