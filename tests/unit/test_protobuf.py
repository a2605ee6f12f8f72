"""Decoding Kubernetes protobuf request bodies into JSON-API objects.

Bodies are built with a tiny wire encoder below, using upstream's field numbers
written out by hand (so the committed table is checked against them), plus bodies
captured from kubectl 1.32 itself.
"""

from __future__ import annotations

import base64
import gzip
import struct
from importlib import resources
from typing import Any

import orjson
import pytest

from k3py.server import errors
from k3py.server.registry import protobuf
from k3py.server.registry import schema as schemas
from k3py.server.registry.catalog import BUILTINS

# ---- a test-only encoder: (field number, value) -> bytes ----------------------------------


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative numbers: two's complement, ten bytes
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | 0x80 if n else low)
        if not n:
            return bytes(out)


def tag(num: int, wire: int) -> bytes:
    return varint(num << 3 | wire)


def i(num: int, value: int) -> bytes:
    return tag(num, 0) + varint(value)


def boolean(num: int, value: bool) -> bytes:
    return i(num, int(value))


def ln(num: int, data: bytes) -> bytes:
    return tag(num, 2) + varint(len(data)) + data


def s(num: int, text: str) -> bytes:
    return ln(num, text.encode())


def m(num: int, *parts: bytes) -> bytes:
    return ln(num, b"".join(parts))


def entry(num: int, key: str, value: bytes) -> bytes:
    """A map entry: key is field 1, ``value`` is already encoded as field 2."""
    return m(num, s(1, key), value)


def double(num: int, value: float) -> bytes:
    return tag(num, 1) + struct.pack("<d", value)


def packed(num: int, values: list[int]) -> bytes:
    return ln(num, b"".join(varint(v) for v in values))


def envelope(api_version: str, kind: str, *raw: bytes, encoding: str = "") -> bytes:
    type_meta = m(1, s(1, api_version), s(2, kind))
    return protobuf.MAGIC + type_meta + ln(2, b"".join(raw)) + s(3, encoding) + s(4, "")


def meta(*parts: bytes) -> bytes:
    """ObjectMeta (field 1 of every kind)."""
    return m(1, *parts)


def time(num: int, seconds: int, nanos: int = 0) -> bytes:
    return m(num, i(1, seconds), i(2, nanos))


def bad(body: bytes, **kw: Any) -> errors.APIError:
    with pytest.raises(errors.APIError) as info:
        protobuf.decode_object(body, **kw)
    assert info.value.code == 400
    return info.value


# ---- bodies kubectl 1.32 sent -------------------------------------------------------------

# kubectl create namespace x
KUBECTL_NAMESPACE = bytes.fromhex(
    "6b3873000a0f0a02763112094e616d65737061636512190a110a017812001a0022002a003200380042001200"
    "1a020a001a002200"
)
# kubectl create deployment d --image=busybox --replicas=0 --port=80
KUBECTL_DEPLOYMENT = bytes.fromhex(
    "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412b4010a1b0a016412001a0022002a0032"
    "00380042005a080a036170701201641286010800120a0a080a036170701201641a6e0a1a0a0012001a002200"
    "2a003200380042005a080a03617070120164125012320a0762757379626f78120762757379626f782a00320a"
    "0a001000185022002a0042006a007200800100880100900100a201001a00320042004a005200580060006800"
    "8201008a01009a0100c2010022020a00280038001a0c0800100018002000280038001a002200"
)
# kubectl auth can-i get pods
KUBECTL_CAN_I = bytes.fromhex(
    "6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a656374"
    "416363657373526576696577123c0a100a0012001a0022002a00320038004200121e0a1c0a0764656661756c"
    "7412036765741a0022002a04706f647332003a001a08080012001a0020001a002200"
)


def test_kubectl_namespace() -> None:
    # What `kubectl create namespace x --dry-run=client -o json` prints, key order included.
    assert orjson.dumps(protobuf.decode_object(KUBECTL_NAMESPACE)) == (
        b'{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"x","creationTimestamp":null},'
        b'"spec":{},"status":{}}'
    )


def test_kubectl_deployment() -> None:
    assert protobuf.decode_object(KUBECTL_DEPLOYMENT) == {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {"name": "d", "creationTimestamp": None, "labels": {"app": "d"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"creationTimestamp": None, "labels": {"app": "d"}},
                "spec": {
                    "containers": [
                        {
                            "name": "busybox",
                            "image": "busybox",
                            "ports": [{"containerPort": 80}],
                            "resources": {},
                        }
                    ]
                },
            },
            "strategy": {},
        },
        "status": {},
    }


def test_kubectl_can_i() -> None:
    assert protobuf.decode_object(KUBECTL_CAN_I) == {
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": {"resourceAttributes": {"namespace": "default", "verb": "get", "resource": "pods"}},
        "status": {"allowed": False},
    }


# ---- kinds built by hand ---------------------------------------------------------------------


def test_namespace() -> None:
    body = envelope(
        "v1",
        "Namespace",
        meta(s(1, "ns1"), entry(11, "team", s(2, "a")), entry(12, "note", s(2, "hi"))),
        m(2, s(1, "kubernetes"), s(1, "example.com/x")),  # spec.finalizers
    )
    assert protobuf.decode_object(body) == {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {"name": "ns1", "labels": {"team": "a"}, "annotations": {"note": "hi"}},
        "spec": {"finalizers": ["kubernetes", "example.com/x"]},
    }


def test_configmap_data_and_binary_data() -> None:
    blob = bytes(range(256))
    body = envelope(
        "v1",
        "ConfigMap",
        meta(s(1, "cm"), s(3, "default")),
        entry(2, "a", s(2, "b")),
        entry(2, "empty", b""),  # a map value left out is the zero value
        entry(3, "blob", ln(2, blob)),
        boolean(4, True),
    )
    assert protobuf.decode_object(body) == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "cm", "namespace": "default"},
        "immutable": True,
        "data": {"a": "b", "empty": ""},
        "binaryData": {"blob": base64.b64encode(blob).decode()},
    }


def test_secret_bytes_and_zero_values() -> None:
    body = envelope(
        "v1",
        "Secret",
        meta(s(1, "s"), s(2, ""), i(7, 0)),  # generateName "" and generation 0: omitempty
        entry(2, "password", ln(2, b"\x00\xffsecret")),
        s(3, "Opaque"),
        entry(4, "plain", s(2, "text")),
        boolean(5, False),  # immutable is a *bool: a present false stays
    )
    assert protobuf.decode_object(body) == {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {"name": "s"},
        "immutable": False,
        "data": {"password": base64.b64encode(b"\x00\xffsecret").decode()},
        "stringData": {"plain": "text"},
        "type": "Opaque",
    }


def _quantity(value: str) -> bytes:
    return s(1, value)


def _deployment_body(*, packed_groups: bool) -> bytes:
    groups = packed(4, [1000, 2000]) if packed_groups else i(4, 1000) + i(4, 2000)
    container = b"".join(
        [
            s(1, "web"),
            s(2, "nginx:1.27"),
            s(3, "nginx"),
            s(3, "-g"),
            m(6, s(1, "http"), i(2, 0), i(3, 8080), s(4, "TCP")),  # hostPort 0: omitempty
            m(6, i(3, 0)),  # containerPort has no omitempty: a zero stays
            m(7, s(1, "MODE"), s(2, "prod")),
            m(
                8,  # resources
                entry(1, "cpu", m(2, _quantity("500m"))),
                entry(1, "memory", m(2, _quantity("128Mi"))),
                entry(2, "cpu", m(2, _quantity("250m"))),
                entry(2, "nvidia.com/gpu", b""),  # no value: the zero Quantity
            ),
            m(10, m(1, m(2, s(1, "/healthz"), m(2, i(1, 1), s(3, "http")))), i(4, 10)),
            s(14, "IfNotPresent"),
            boolean(16, False),  # stdin: omitempty
        ]
    )
    pod_spec = b"".join(
        [
            m(1, s(1, "scratch"), m(2, m(2, s(1, "Memory"), m(2, _quantity("1Gi"))))),
            m(2, container),
            s(3, "Always"),
            i(4, 30),
            m(14, i(2, 1000), groups),  # securityContext.runAsUser, supplementalGroups
        ]
    )
    spec = b"".join(
        [
            i(1, 0),  # replicas is a *int32: zero stays
            m(2, entry(1, "app", s(2, "web"))),
            m(3, meta(entry(11, "app", s(2, "web"))), m(2, pod_spec)),
            m(4, s(1, "RollingUpdate"), m(2, m(1, i(1, 0), i(2, 1)), m(2, i(1, 1), s(3, "25%")))),
            i(5, 0),  # minReadySeconds: omitempty
            i(6, 10),
            boolean(7, False),  # paused: omitempty
        ]
    )
    return envelope(
        "apps/v1",
        "Deployment",
        meta(s(1, "web"), s(3, "prod"), time(8, 1704164645, 999), i(7, 3)),
        m(2, spec),
        m(3, i(1, 0), i(2, 0)),  # status: ints with omitempty
    )


DEPLOYMENT = {
    "kind": "Deployment",
    "apiVersion": "apps/v1",
    "metadata": {
        "name": "web",
        "namespace": "prod",
        "generation": 3,
        "creationTimestamp": "2024-01-02T03:04:05Z",
    },
    "spec": {
        "replicas": 0,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "volumes": [
                    {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}
                ],
                "containers": [
                    {
                        "name": "web",
                        "image": "nginx:1.27",
                        "command": ["nginx", "-g"],
                        "ports": [
                            {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                            {"containerPort": 0},
                        ],
                        "env": [{"name": "MODE", "value": "prod"}],
                        "resources": {
                            "limits": {"cpu": "500m", "memory": "128Mi"},
                            "requests": {"cpu": "250m", "nvidia.com/gpu": "0"},
                        },
                        "livenessProbe": {
                            "httpGet": {"path": "/healthz", "port": "http"},
                            "periodSeconds": 10,
                        },
                        "imagePullPolicy": "IfNotPresent",
                    }
                ],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30,
                "securityContext": {"runAsUser": 1000, "supplementalGroups": [1000, 2000]},
            },
        },
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"},
        },
        "revisionHistoryLimit": 10,
    },
    "status": {},
}


@pytest.mark.parametrize("packed_groups", [False, True])
def test_deployment(packed_groups: bool) -> None:
    assert protobuf.decode_object(_deployment_body(packed_groups=packed_groups)) == DEPLOYMENT


def test_deployment_key_order_follows_go_structs() -> None:
    obj = protobuf.decode_object(_deployment_body(packed_groups=False))
    assert list(obj) == ["kind", "apiVersion", "metadata", "spec", "status"]
    assert list(obj["metadata"]) == ["name", "namespace", "generation", "creationTimestamp"]
    container = obj["spec"]["template"]["spec"]["containers"][0]
    assert list(container)[:6] == ["name", "image", "command", "ports", "env", "resources"]


def test_message_given_twice_is_merged() -> None:
    body = envelope(
        "v1", "Namespace", meta(s(1, "a")), meta(entry(11, "k", s(2, "v"))), meta(s(1, "b"))
    )
    assert protobuf.decode_object(body)["metadata"] == {"name": "b", "labels": {"k": "v"}}


def test_unknown_fields_are_skipped() -> None:
    unknown = b"".join(
        [
            i(99, 12345),
            ln(100, b"\x01\x02\x03"),
            tag(101, 1) + b"12345678",
            tag(102, 5) + b"1234",
            tag(103, 3) + i(1, 5) + tag(104, 3) + s(2, "x") + tag(104, 4) + tag(103, 4),  # groups
        ]
    )
    body = envelope("v1", "Namespace", unknown, meta(unknown, s(1, "ns")), unknown)
    assert protobuf.decode_object(body) == {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {"name": "ns"},
    }


def test_negative_ints() -> None:
    body = envelope("v1", "Pod", meta(s(1, "p"), i(10, -5)), m(2, i(4, -1), i(25, -7)))
    obj = protobuf.decode_object(body)
    assert obj["metadata"]["deletionGracePeriodSeconds"] == -5
    assert obj["spec"]["terminationGracePeriodSeconds"] == -1
    assert obj["spec"]["priority"] == -7


# ---- types with their own JSON form ----------------------------------------------------------


def test_times() -> None:
    event = envelope(
        "events.k8s.io/v1",
        "Event",
        meta(s(1, "e"), time(8, 0), m(9)),  # deletionTimestamp: empty message, the zero time
        time(2, 1704164645, 123456789),  # eventTime is a MicroTime
        s(7, "Started"),
        time(14, -62135596800),  # Go's zero time written out
    )
    obj = protobuf.decode_object(event)
    assert obj["eventTime"] == "2024-01-02T03:04:05.123456Z"
    assert obj["metadata"]["creationTimestamp"] == "1970-01-01T00:00:00Z"
    assert obj["metadata"]["deletionTimestamp"] is None
    assert obj["deprecatedLastTimestamp"] is None


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1500, "1.5µs"),
        (100_000_000, "100ms"),
        (1_500_000_000, "1.5s"),
        (60_000_000_000, "1m0s"),
        (3_723_500_000_000, "1h2m3.5s"),
        (-90_000_000_000, "-1m30s"),
        (72 * 3_600_000_000_000, "72h0m0s"),
    ],
)
def test_duration(ns: int, text: str) -> None:
    assert protobuf.go_duration(ns) == text
    assert (
        protobuf.decode_message(i(1, ns), message="k8s.io.apimachinery.pkg.apis.meta.v1.Duration")
        == text
    )


def test_int_or_string() -> None:
    name = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
    assert protobuf.decode_message(i(1, 0) + i(2, 5), message=name) == 5
    assert protobuf.decode_message(b"", message=name) == 0
    assert protobuf.decode_message(i(1, 1) + s(3, "25%"), message=name) == "25%"
    with pytest.raises(errors.APIError) as info:
        protobuf.decode_message(i(1, 7), message=name)
    assert "impossible IntOrString.Type 7" in info.value.message


def test_raw_extension_and_fields_v1() -> None:
    managed = m(17, s(1, "kubectl"), s(2, "Update"), m(7, ln(1, b'{"f:metadata":{"f:labels":{}}}')))
    body = envelope(
        "apps/v1",
        "ControllerRevision",
        meta(s(1, "rev"), managed),
        m(2, ln(1, b'{"spec":{"template":{"x":[1,2]}}}')),
        i(3, 4),
    )
    assert protobuf.decode_object(body) == {
        "kind": "ControllerRevision",
        "apiVersion": "apps/v1",
        "metadata": {
            "name": "rev",
            "managedFields": [
                {
                    "manager": "kubectl",
                    "operation": "Update",
                    "fieldsV1": {"f:metadata": {"f:labels": {}}},
                }
            ],
        },
        "data": {"spec": {"template": {"x": [1, 2]}}},
        "revision": 4,
    }


def test_list_wrapper_values() -> None:
    # SubjectAccessReview.spec.extra is map[string]ExtraValue, ExtraValue is []string.
    spec = m(
        2,
        m(2, s(1, "/healthz"), s(2, "get")),
        s(3, "bob"),
        entry(5, "scopes", m(2, s(1, "a"), s(1, "b"))),
    )
    body = envelope("authorization.k8s.io/v1", "SubjectAccessReview", meta(), spec)
    assert protobuf.decode_object(body)["spec"] == {
        "nonResourceAttributes": {"path": "/healthz", "verb": "get"},
        "user": "bob",
        "extra": {"scopes": ["a", "b"]},
    }


def test_csr_approval() -> None:
    """What ``kubectl certificate approve`` PUTs: bytes, []string map values, conditions."""
    spec = b"".join(
        [
            ln(1, b"-----BEGIN CERTIFICATE REQUEST-----"),
            s(2, "bob"),
            s(4, "dev"),
            s(5, "client auth"),
            entry(6, "scopes", m(2, s(1, "a"), s(1, "b"))),
            s(7, "kubernetes.io/kube-apiserver-client"),
            i(8, 600),
        ]
    )
    condition = m(1, s(1, "Approved"), s(2, "KubectlApprove"), time(4, 1704164645), s(6, "True"))
    body = envelope(
        "certificates.k8s.io/v1",
        "CertificateSigningRequest",
        meta(s(1, "csr")),
        m(2, spec),
        m(3, condition, ln(2, b"")),
    )
    obj = protobuf.decode_object(body)
    assert obj["spec"] == {
        "request": base64.b64encode(b"-----BEGIN CERTIFICATE REQUEST-----").decode(),
        "signerName": "kubernetes.io/kube-apiserver-client",
        "expirationSeconds": 600,
        "usages": ["client auth"],
        "username": "bob",
        "groups": ["dev"],
        "extra": {"scopes": ["a", "b"]},
    }
    assert obj["status"] == {  # certificate: an empty []byte with omitempty is left out
        "conditions": [
            {
                "type": "Approved",
                "status": "True",
                "reason": "KubectlApprove",
                "lastUpdateTime": "2024-01-02T03:04:05Z",
            }
        ]
    }


def test_inline_ingress_rule_value() -> None:
    backend = m(4, s(1, "svc"), m(2, i(2, 8080)))  # service.name, service.port.number
    path = m(1, s(1, "/api"), m(2, backend), s(3, "Prefix"))
    body = envelope(
        "networking.k8s.io/v1",
        "Ingress",
        meta(s(1, "ing")),
        m(2, m(3, s(1, "example.com"), m(2, m(1, path)))),
    )
    assert protobuf.decode_object(body)["spec"] == {
        "rules": [
            {
                "host": "example.com",
                "http": {
                    "paths": [
                        {
                            "path": "/api",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "svc", "port": {"number": 8080}}},
                        }
                    ]
                },
            }
        ]
    }


def test_crd_schema_unions() -> None:
    leaf = m(2, s(5, "string"), m(8, ln(1, b'"x"')), m(20, ln(1, b'"x"')), m(20, ln(1, b'"y"')))
    props = b"".join(
        [
            s(5, "object"),
            entry(29, "name", leaf),
            entry(29, "tags", m(2, s(5, "array"), m(24, m(1, s(5, "string"))))),
            entry(
                29, "pair", m(2, s(5, "array"), m(24, m(2, s(5, "string")), m(2, s(5, "integer"))))
            ),
            entry(29, "free", m(2, s(5, "object"), m(30, boolean(1, True)))),
            entry(29, "typed", m(2, s(5, "object"), m(30, m(2, s(5, "integer"), double(9, 10.5))))),
            entry(29, "closed", m(2, s(5, "object"), m(30))),
            entry(29, "any", m(2, boolean(38, True), boolean(40, False), s(3, "#/x"))),
            entry(32, "a", m(2, s(2, "b"))),
        ]
    )
    version = b"".join([s(1, "v1"), boolean(2, True), boolean(3, True), m(4, m(1, props))])
    spec = b"".join(
        [
            s(1, "example.com"),
            m(3, s(1, "widgets"), s(2, "widget"), s(4, "Widget")),
            s(4, "Namespaced"),
            m(7, version),
        ]
    )
    body = envelope(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        meta(s(1, "widgets.example.com")),
        m(2, spec),
    )
    schema = protobuf.decode_object(body)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert schema == {
        "type": "object",
        "properties": {
            "name": {"type": "string", "default": "x", "enum": ["x", "y"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "pair": {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]},
            "free": {"type": "object", "additionalProperties": True},
            "typed": {
                "type": "object",
                "additionalProperties": {"type": "integer", "maximum": 10.5},
            },
            "closed": {"type": "object", "additionalProperties": False},
            "any": {"$ref": "#/x", "x-kubernetes-preserve-unknown-fields": True},
        },
        "dependencies": {"a": ["b"]},
    }


def test_delete_options_and_eviction() -> None:
    opts = protobuf.decode_object(
        envelope("v1", "DeleteOptions", i(1, 0), s(4, "Foreground"), s(5, "All"))
    )
    assert opts == {
        "kind": "DeleteOptions",
        "apiVersion": "v1",
        "gracePeriodSeconds": 0,
        "propagationPolicy": "Foreground",
        "dryRun": ["All"],
    }
    eviction = protobuf.decode_object(
        envelope(
            "policy/v1",
            "Eviction",
            meta(s(1, "p"), s(3, "ns")),
            m(2, i(1, 30), m(2, s(1, "uid-1"))),
        )
    )
    assert eviction["deleteOptions"] == {
        "gracePeriodSeconds": 30,
        "preconditions": {"uid": "uid-1"},
    }


def test_expected_gvk_fills_a_missing_type_meta() -> None:
    body = protobuf.MAGIC + ln(2, meta(s(1, "x")))
    assert protobuf.decode_object(body, expected_gvk=("", "v1", "Namespace")) == {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {"name": "x"},
    }
    assert "Object 'Kind' is missing" in bad(body).message


def test_body_kind_wins_over_expected() -> None:
    body = envelope("v1", "ConfigMap", meta(s(1, "x")))
    obj = protobuf.decode_object(body, expected_gvk=("apps", "v1", "Deployment"))
    assert (obj["apiVersion"], obj["kind"]) == (
        "v1",
        "ConfigMap",
    )  # the caller rejects the mismatch


# ---- malformed bodies --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", "empty data"),
        (b'{"kind":"Namespace"}', "does not appear to be a protobuf message"),
        (protobuf.MAGIC, "empty body"),
        (protobuf.MAGIC + b"\x0a\x40abc", "unexpected EOF"),
        (protobuf.MAGIC + b"\x48" + b"\xff" * 11, "integer overflow"),
        (envelope("v1", "Namespace", meta(s(1, "x"))[:-1]), "unexpected EOF"),
        (envelope("v1", "Namespace", i(1, 5)), "wrong wireType = 0 for field metadata"),
        (envelope("v1", "Namespace", tag(7, 7)), "illegal wireType 7"),
        (envelope("v1", "Namespace", b"\x00\x00"), "illegal tag 0"),
        (
            envelope("v1", "Namespace", meta(s(1, "x")), encoding="gzip"),
            "unsupported content encoding",
        ),
        (envelope("v1", "Nope"), 'no kind "Nope" is registered for version "v1"'),
        (
            envelope("apps/v1", "ControllerRevision", m(2, ln(1, b"{nope"))),
            "embedded JSON does not parse",
        ),
        (
            envelope(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                m(2, m(7, m(4, m(1, double(9, float("nan")))))),
            ),
            "NaN or Inf",
        ),
        (envelope("v1", "Pod", meta(time(8, 10**15))), "time out of range"),
    ],
)
def test_malformed(body: bytes, words: str) -> None:
    assert words in bad(body).message


def test_error_names_the_expected_kind() -> None:
    err = bad(protobuf.MAGIC + b"\x0a\x40abc", expected_gvk=("", "v1", "Namespace"))
    assert err.message.startswith(
        "the object provided is unrecognized (must be of type Namespace): "
    )


def _nested_schema(levels: int) -> bytes:
    inner = s(5, "object")
    for _ in range(levels):
        inner = s(5, "object") + m(28, inner)  # JSONSchemaProps.not
    return inner


def test_depth_is_bounded() -> None:
    def crd(levels: int) -> bytes:
        version = s(1, "v1") + m(4, m(1, _nested_schema(levels)))
        return envelope("apiextensions.k8s.io/v1", "CustomResourceDefinition", m(2, m(7, version)))

    obj = protobuf.decode_object(crd(150))
    assert obj["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["not"]["type"] == "object"
    assert "exceeded max depth" in bad(crd(5000)).message


def test_embedded_json_depth_is_bounded() -> None:
    deep = b"[" * 300 + b"]" * 300
    assert (
        "exceeded max depth"
        in bad(envelope("apps/v1", "ControllerRevision", m(2, ln(1, deep)))).message
    )


@pytest.mark.parametrize("cut", range(1, 60))
def test_truncated_bodies_never_crash(cut: int) -> None:
    body = _deployment_body(packed_groups=True)
    try:
        protobuf.decode_object(body[: len(body) * cut // 60])
    except errors.APIError as e:
        assert e.code == 400


# ---- the table ----------------------------------------------------------------------------------


def test_every_served_kind_has_a_message() -> None:
    for info in BUILTINS:
        name = protobuf.message_for(info.group, info.version, info.kind)
        assert name is not None and name.endswith("." + info.kind), info
    for gvk in [
        ("policy", "v1", "Eviction"),
        ("authentication.k8s.io", "v1", "TokenRequest"),
        ("autoscaling", "v1", "Scale"),
    ]:
        assert protobuf.message_for(*gvk) is not None
    assert (
        protobuf.message_for("apps", "v1", "DeleteOptions")
        == "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions"
    )


def _definition(message: str) -> str:
    name = "io.k8s." + message.removeprefix("k8s.io.")
    return name.replace("apiextensions_apiserver", "apiextensions-apiserver").replace(
        "kube_aggregator", "kube-aggregator"
    )


def test_table_names_match_the_json_schemas() -> None:
    data = orjson.loads(
        gzip.decompress(
            resources.files("k3py.server.registry").joinpath("protobuf_fields.json.gz").read_bytes()
        )
    )
    messages = data["messages"]

    def names(spec: Any) -> set[str]:
        out: set[str] = set()
        for _num, name, kind, flags in spec:
            out |= names(messages[kind][1]) if flags & 4 else {name}
        return out

    checked = 0
    for full, spec in messages:
        if isinstance(spec, str) or (spec and isinstance(spec[0], str)):
            continue  # types with their own JSON form
        definition = schemas.definitions().get(_definition(full))
        if definition is None:
            continue  # only ever inlined (VolumeSource, ProbeHandler, ...)
        props = set(definition.get("properties") or {})
        assert names(spec) <= props, full
        assert props - names(spec) <= {"apiVersion", "kind"}, full
        checked += 1
    assert checked > 400
