"""Request body decoding and upstream's strict decoding checks."""

from __future__ import annotations

from typing import Any

import pytest

from k3py.server import errors
from k3py.server.registry import decode
from k3py.server.registry import schema as schemas

JSON = "application/json"
YAML = "application/yaml"


def bad(body: bytes, ct: str = JSON, **kw: Any) -> errors.APIError:
    with pytest.raises(errors.APIError) as info:
        decode.decode_body(body, ct, **kw)
    return info.value


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "labels": {"app": "web"},
            "managedFields": [{"fieldsV1": {"f:x": {}}}],
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "image": "nginx",
                            "ports": [{"containerPort": 80}],
                            "resources": {"limits": {"cpu": "500m", "memory": 1024}},
                        }
                    ]
                },
            },
        },
    }


DEPLOY = schemas.schema_for_kind("apps", "v1", "Deployment") or {}
POD = schemas.schema_for_kind("", "v1", "Pod") or {}


# ---- decoding ------------------------------------------------------------------------------------


def test_json_and_media_type_parameters() -> None:
    assert decode.decode_body(
        b'{"a": [1, 2.5, null, true]}', "application/json; charset=utf-8"
    ) == {"a": [1, 2.5, None, True]}
    assert decode.decode_body(b'{"a":1}', "application/merge-patch+json") == {"a": 1}


def test_yaml_becomes_plain_json() -> None:
    body = b"a: 1\nwhen: 2024-01-02\nok: yes\n1: one\nx: &x {k: v}\ny: *x\n"
    value = decode.decode_body(body, YAML)
    assert value == {
        "a": 1,
        "when": "2024-01-02",
        "ok": True,
        "1": "one",
        "x": {"k": "v"},
        "y": {"k": "v"},
    }
    value["x"]["k"] = "changed"
    assert value["y"]["k"] == "v", "aliases must not share nodes"


def test_apply_patch_json_body_goes_through_yaml_path() -> None:
    assert decode.decode_body(b'{"kind":"Pod"}', "application/apply-patch+yaml") == {"kind": "Pod"}


def test_unsupported_media_type() -> None:
    err = bad(b"{}", "application/vnd.kubernetes.protobuf")
    assert err.code == 415


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"a":', "unexpected end of JSON input"),
        (b"", "unexpected end of JSON input"),
        (b'{"a" 1}', "invalid character '1' after object key"),
        (b'{"a":1 "b":2}', "invalid character '\"' after object key:value pair"),
        (b"[1 2]", "invalid character '2' after array element"),
        (b'{"a":1}x', "invalid character 'x' after top-level value"),
        (b"{,}", "invalid character ',' looking for beginning of object key string"),
        (b"NaN", "invalid character 'N' looking for beginning of value"),
    ],
)
def test_json_syntax_errors_are_worded_like_go(body: bytes, message: str) -> None:
    err = bad(body)
    assert err.code == 400 and err.reason == "BadRequest"
    assert err.message == "couldn't get version/kind; json parse error: " + message


def test_syntax_error_names_the_kind_and_summarizes_the_body() -> None:
    err = bad(b'{"apiVersion":"v1","kind":"Pod","metadata":', kind="Pod")
    assert err.message == (
        "the object provided is unrecognized (must be of type Pod): couldn't get version/kind; "
        'json parse error: unexpected end of JSON input ({"apiVersion":"v1","kind":"Pod ...)'
    )


def test_invalid_utf8_is_refused() -> None:
    assert bad(b'{"a":"\xff"}').code == 400
    assert bad(b"a: \xff\n", YAML).code == 400
    assert bad(b"\xef\xbb\xbf{}").message.endswith(
        "invalid character '\u00ef' looking for beginning of value"
    )


def test_lone_surrogates_become_replacement_characters() -> None:
    assert decode.decode_body(b'{"a":"x\\ud800"}', JSON) == {"a": "x\ufffd"}


def test_number_overflow() -> None:
    assert "cannot unmarshal number 1e400" in bad(b"[1e400]").message


def test_deep_json_is_refused_without_recursion_errors() -> None:
    ok = b"[" * decode.MAX_DEPTH + b"]" * decode.MAX_DEPTH
    assert decode.decode_body(ok, JSON) is not None
    for depth in (decode.MAX_DEPTH + 1, 5000, 100_000):
        err = bad(b"[" * depth + b"]" * depth)
        assert "exceeded max depth" in err.message


def test_deep_yaml_is_refused() -> None:
    assert "exceeded max depth" in bad(b"[" * 100_000, YAML).message
    assert "exceeded max depth" in bad(b"- " * 500 + b"x\n", YAML).message
    nested = "".join("  " * i + f"k{i}:\n" for i in range(300)) + "  " * 300 + "v\n"
    assert "exceeded max depth" in bad(nested.encode(), YAML).message


def test_yaml_alias_bombs_are_refused() -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    err = bad("\n".join(lines).encode(), YAML)
    assert "excessive aliasing" in err.message


def test_yaml_documents() -> None:
    assert decode.decode_body(b"---\na: 1\n---\n", YAML) == {"a": 1}
    assert decode.decode_body(b"", YAML) is None
    err = bad(b"a: 1\n---\nb: 2\n", YAML)
    assert "single document" in err.message


def test_yaml_syntax_error() -> None:
    err = bad(b"a: b: c\n", YAML, kind="ConfigMap")
    assert err.message.startswith(
        "the object provided is unrecognized (must be of type ConfigMap): error converting YAML to JSON: yaml: line 1: "
    )
    assert err.message.endswith("(613a20623a20630a)")


def test_yaml_non_finite_floats_are_refused() -> None:
    assert "unsupported value" in bad(b"a: .inf\n", YAML).message


# ---- duplicate fields -------------------------------------------------------------------------------


def test_duplicates_in_document_order() -> None:
    body = (
        b'{"metadata":{"name":"a","name":"b"},"spec":{"c":[{"x":1,"x":2}]},"kind":"A","kind":"B"}'
    )
    assert decode.find_duplicate_fields(body, JSON) == ["metadata.name", "spec.c[0].x", "kind"]
    assert decode.find_duplicate_fields(b'{"a":1}', JSON) == []


def test_duplicates_with_tricky_strings() -> None:
    body = b'{"a\\":":1,"v":"x\\":","a\\":":2,"w":"\\"a\\":"}'
    assert decode.find_duplicate_fields(body, JSON) == ['a":']
    assert decode.find_duplicate_fields(b'{"k":"\\"k\\":","j":{"k":1}}', JSON) == []


def test_duplicates_in_yaml() -> None:
    body = b"metadata:\n  name: a\n  name: b\nspec:\n  c:\n  - x: 1\n    x: 2\nkind: A\nkind: B\n"
    assert decode.find_duplicate_fields(body, YAML) == ["metadata.name", "spec.c[0].x", "kind"]


def test_duplicate_key_keeps_last_value() -> None:
    assert decode.decode_body(b'{"a":1,"a":2}', JSON) == {"a": 2}


# ---- unknown fields ---------------------------------------------------------------------------------


def test_known_object_has_no_unknown_fields() -> None:
    assert decode.unknown_fields(deployment(), DEPLOY) == []


def test_unknown_field_paths() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"][0]["imagePulPolicy"] = "Always"
    obj["spec"]["bogus"] = {"x": 1}
    obj["metadata"]["foo"] = 1
    obj["metadata"]["labels"]["anything.goes/here"] = "x"
    assert decode.unknown_fields(obj, DEPLOY) == [
        "metadata.foo",
        "spec.bogus",
        "spec.template.spec.containers[0].imagePulPolicy",
    ]
    assert decode.unknown_fields(obj["spec"], schemas.field(DEPLOY, "spec") or {}, path="spec") == [
        "spec.bogus",
        "spec.template.spec.containers[0].imagePulPolicy",
    ]


def test_drop_unknown_removes_them() -> None:
    obj = deployment()
    obj["spec"]["bogus"] = 1
    assert decode.drop_unknown(obj, DEPLOY) == ["spec.bogus"]
    assert "bogus" not in obj["spec"]
    assert decode.unknown_fields(obj, DEPLOY) == []


def test_schemaless_objects_take_anything() -> None:
    rev = schemas.schema_for_kind("apps", "v1", "ControllerRevision") or {}
    obj = {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "revision": 1,
        "data": {"any": {"thing": [1]}},
    }
    assert decode.unknown_fields(obj, rev) == []
    crd = schemas.schema_for_kind("apiextensions.k8s.io", "v1", "CustomResourceDefinition") or {}
    obj = {
        "spec": {
            "versions": [
                {
                    "name": "v1",
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "default": {"free": "form"},
                            "proprties": {},
                        }
                    },
                }
            ]
        }
    }
    assert decode.unknown_fields(obj, crd) == ["spec.versions[0].schema.openAPIV3Schema.proprties"]


# ---- type errors ---------------------------------------------------------------------------------------


def test_well_typed_object() -> None:
    assert decode.type_errors(deployment(), DEPLOY) == []


def test_type_errors_worded_like_go() -> None:
    obj = deployment()
    spec = obj["spec"]
    spec["replicas"] = "3"
    spec["template"]["metadata"]["labels"]["n"] = 1
    spec["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "80"
    assert decode.type_errors(obj, DEPLOY) == [
        "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32",
        "json: cannot unmarshal number into Go struct field ObjectMeta.spec.template.metadata.labels of type string",
        "json: cannot unmarshal string into Go struct field ContainerPort.spec.template.spec.containers.ports.containerPort of type int32",
    ]


def test_type_errors_for_containers() -> None:
    assert decode.type_errors({"spec": {"containers": "x"}}, POD) == [
        "json: cannot unmarshal string into Go struct field PodSpec.spec.containers of type []v1.Container"
    ]
    assert decode.type_errors({"spec": {"containers": [1]}}, POD) == [
        "json: cannot unmarshal number into Go struct field PodSpec.spec.containers of type v1.Container"
    ]
    assert decode.type_errors(
        {"spec": {"containers": [{"ports": [{"containerPort": 1.5}]}]}}, POD
    ) == [
        "json: cannot unmarshal number 1.5 into Go struct field ContainerPort.spec.containers.ports.containerPort of type int32"
    ]
    assert decode.type_errors(
        {"spec": {"containers": [{"ports": [{"containerPort": 2**40}]}]}}, POD
    )


def test_special_types() -> None:
    bad_qty = {"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "lots"}}}]}}
    assert decode.type_errors(bad_qty, POD) == [
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    ]
    probe = {"spec": {"containers": [{"name": "c", "livenessProbe": {"httpGet": {"port": True}}}]}}
    assert decode.type_errors(probe, POD) == [
        "json: cannot unmarshal bool into Go struct field HTTPGetAction.spec.containers.livenessProbe.httpGet.port of type int32"
    ]
    ok_probe = {
        "spec": {"containers": [{"name": "c", "livenessProbe": {"httpGet": {"port": "http"}}}]}
    }
    assert decode.type_errors(ok_probe, POD) == []
    assert decode.type_errors({"metadata": {"creationTimestamp": "yesterday"}}, POD) == [
        'parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006"'
    ]
    secret = schemas.schema_for_kind("", "v1", "Secret") or {}
    assert decode.type_errors({"data": {"a": "aGk="}}, secret) == []
    assert decode.type_errors({"data": {"a": "!!"}}, secret) == [
        "illegal base64 data at input byte 0"
    ]


def test_quantity_parsing() -> None:
    for good in ("1", "1.5", "500m", "1Gi", "1e3", "-2Ki", 3, 0.5):
        assert decode.quantity_error(good) is None, good
    for wrong in ("", "abc", "1..2", "1Xi", True, None, [1]):
        assert decode.quantity_error(wrong) is not None, wrong


# ---- strict errors and warnings -----------------------------------------------------------------------


def test_strict_error() -> None:
    problems = decode.strict_problems(unknown=["spec.foo"], duplicate=["metadata.name"])
    err = decode.strict_error(kind="Deployment", version="v1", problems=problems)
    assert (err.code, err.reason) == (400, "BadRequest")
    assert err.message == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.foo", duplicate field "metadata.name"'
    )


def test_warning_headers() -> None:
    assert decode.warning_headers(['unknown field "spec.foo"']) == [
        '299 - "unknown field \\"spec.foo\\""'
    ]
