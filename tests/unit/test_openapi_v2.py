"""/openapi/v2: the Swagger 2.0 document and its gnostic protobuf encoding.

A tiny protobuf decoder below reads our bytes back by field number (openapi.v2
messages from gnostic-models) and turns Schema messages back into JSON form, so the
protobuf can be compared with the JSON document and checked against the rules
kubectl's reader (kube-openapi ``util/proto``) enforces.
"""

from __future__ import annotations

import struct
from typing import Any

import orjson
import pytest
import yaml

from k3py.server.registry import openapi_v2
from k3py.server.registry.openapi import ResourceSpec

Fields = dict[int, list[Any]]

# ---- a tiny protobuf decoder ----------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, pos


def fields(buf: bytes) -> Fields:
    """field number -> values (ints for varints, bytes for length-delimited, floats for fixed64)."""
    out: Fields = {}
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        val: Any
        if wire == 0:
            val, pos = _varint(buf, pos)
        elif wire == 2:
            n, pos = _varint(buf, pos)
            val = buf[pos : pos + n]
            pos += n
            assert len(val) == n, "truncated field"
        elif wire == 1:
            val = struct.unpack("<d", buf[pos : pos + 8])[0]
            pos += 8
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        out.setdefault(num, []).append(val)
    return out


def _s(f: Fields, num: int) -> str:
    vals = f.get(num, [b""])
    assert len(vals) == 1, f"field {num} repeated"
    return bytes(vals[0]).decode()


def _any_value(buf: bytes) -> Any:
    text = _s(fields(buf), 2)
    assert text.endswith("\n")
    return orjson.loads(text)


_STRINGS = {
    1: "$ref",
    2: "format",
    3: "title",
    4: "description",
    13: "pattern",
    26: "discriminator",
}
_DOUBLES = {6: "multipleOf", 7: "maximum", 9: "minimum"}
_BOOLS = {8: "exclusiveMaximum", 10: "exclusiveMinimum", 16: "uniqueItems", 27: "readOnly"}
_INTS = {
    11: "maxLength",
    12: "minLength",
    14: "maxItems",
    15: "minItems",
    17: "maxProperties",
    18: "minProperties",
}


def schema_json(buf: bytes) -> dict[str, Any]:
    """An openapi.v2.Schema message back in JSON form."""
    f = fields(buf)
    out: dict[str, Any] = {}
    for num, key in _STRINGS.items():
        if num in f:
            out[key] = _s(f, num)
    for table in (_DOUBLES, _BOOLS, _INTS):
        for num, key in table.items():
            if num in f:
                out[key] = (
                    f[num][0]
                    if table is _DOUBLES
                    else (bool(f[num][0]) if table is _BOOLS else f[num][0])
                )
    if 5 in f:
        out["default"] = _any_value(f[5][0])
    if 19 in f:
        out["required"] = [bytes(v).decode() for v in f[19]]
    if 20 in f:
        out["enum"] = [_any_value(v) for v in f[20]]
    if 21 in f:
        ap = fields(f[21][0])
        out["additionalProperties"] = schema_json(ap[1][0]) if 1 in ap else bool(ap[2][0])
    if 22 in f:
        types = [bytes(v).decode() for v in fields(f[22][0]).get(1, [])]
        assert len(types) == 1, "kubectl refuses several types"
        out["type"] = types[0]
    if 23 in f:
        items = fields(f[23][0]).get(1, [])
        assert len(items) == 1, "kubectl wants exactly one item schema"
        out["items"] = schema_json(items[0])
    if 25 in f:
        out["properties"] = dict(named(nb) for nb in fields(f[25][0]).get(1, []))
    if 30 in f:
        out["example"] = _any_value(f[30][0])
    for na in f.get(31, []):
        nf = fields(na)
        out[_s(nf, 1)] = _any_value(nf[2][0])
    return out


def named(buf: bytes) -> tuple[str, dict[str, Any]]:
    f = fields(buf)
    return _s(f, 1), schema_json(f[2][0])


def decode_document(buf: bytes) -> dict[str, Any]:
    f = fields(buf)
    info = fields(f[2][0])
    assert fields(f[8][0]) == {}  # paths: present, empty
    defs = [named(nb) for nb in fields(f[9][0])[1]]
    names = [n for n, _ in defs]
    assert names == sorted(names) and len(set(names)) == len(names)
    return {
        "swagger": _s(f, 1),
        "info": {"title": _s(info, 1), "version": _s(info, 2)},
        "paths": {},
        "definitions": dict(defs),
    }


# ---- fixtures -------------------------------------------------------------------------

CRD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size", "note"],
            "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3},
                "note": {"type": "string", "nullable": True},
                "port": {
                    "x-kubernetes-int-or-string": True,
                    "anyOf": [{"type": "integer"}, {"type": "string"}],
                },
                "blob": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {"a": {"type": "string"}},
                },
                "tags": {
                    "type": "array",
                    "items": {"type": "string"},
                    "maxItems": 5,
                    "x-kubernetes-list-type": "set",
                },
                "mode": {"type": "string", "enum": ["a", "b"]},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "x-kubernetes-validations": [{"rule": "self.size > 0"}],
        }
    },
}
WIDGET = ResourceSpec(
    group="example.com",
    version="v1",
    kind="Widget",
    plural="widgets",
    namespaced=True,
    schema=CRD_SCHEMA,
)


@pytest.fixture(scope="module")
def decoded() -> dict[str, Any]:
    return decode_document(openapi_v2.encode_protobuf([WIDGET]))


# ---- tests ----------------------------------------------------------------------------------


def test_document_head(decoded: dict[str, Any]) -> None:
    assert decoded["swagger"] == "2.0"
    assert decoded["info"] == {"title": "Kubernetes", "version": "v1.32.0"}
    raw = openapi_v2.encode_protobuf([])
    assert raw.startswith(b"\x0a\x032.0\x12")  # field 1 "2.0", then field 2 (info)


def test_protobuf_matches_json_form(decoded: dict[str, Any]) -> None:
    assert decoded == openapi_v2.build_document([WIDGET])
    assert orjson.loads(openapi_v2.document([WIDGET]).json) == decoded


def test_configmap_model(decoded: dict[str, Any]) -> None:
    cm = decoded["definitions"]["io.k8s.api.core.v1.ConfigMap"]
    assert cm["type"] == "object"
    assert cm["x-kubernetes-group-version-kind"] == [
        {"group": "", "kind": "ConfigMap", "version": "v1"}
    ]
    assert cm["properties"]["data"] == {
        "additionalProperties": {"type": "string"},
        "description": cm["properties"]["data"]["description"],
        "type": "object",
    }
    assert (
        cm["properties"]["metadata"]["$ref"]
        == "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    )
    assert "enum" not in cm["properties"]["apiVersion"]


def test_special_models(decoded: dict[str, Any]) -> None:
    defs = decoded["definitions"]
    ios = defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert (ios["type"], ios["format"]) == ("string", "int-or-string")
    assert defs["io.k8s.apimachinery.pkg.api.resource.Quantity"]["type"] == "string"
    containers = defs["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["items"] == {"$ref": "#/definitions/io.k8s.api.core.v1.Container"}
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert "name" in defs["io.k8s.api.core.v1.Container"]["required"]
    dep = defs["io.k8s.api.apps.v1.Deployment"]
    assert dep["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}
    ]


def _walk(node: dict[str, Any], path: str, defs: dict[str, Any], problems: list[str]) -> None:
    ref = node.get("$ref")
    if ref is not None:
        if not ref.startswith("#/definitions/") or ref[len("#/definitions/") :] not in defs:
            problems.append(f"{path}: dangling {ref}")
        if set(node) - {"$ref", "description"}:
            problems.append(f"{path}: $ref with siblings {sorted(node)}")
    t = node.get("type")
    if t is not None and t not in ("object", "array", "string", "number", "integer", "boolean"):
        problems.append(f"{path}: type {t}")
    if t == "array" and not isinstance(node.get("items"), dict):
        problems.append(f"{path}: array without items")
    for k, sub in (node.get("properties") or {}).items():
        _walk(sub, f"{path}.{k}", defs, problems)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            _walk(node[key], f"{path}[{key}]", defs, problems)


def test_every_model_is_readable_by_kubectl(decoded: dict[str, Any]) -> None:
    defs = decoded["definitions"]
    assert len(defs) > 600
    problems: list[str] = []
    for name, sch in defs.items():
        _walk(sch, name, defs, problems)
    assert problems == []


def test_vendor_extensions_are_yaml(decoded: dict[str, Any]) -> None:
    # kubectl reads Any.yaml with a YAML parser: our JSON text must parse as YAML to the same value.
    buf = openapi_v2.encode_schema(
        openapi_v2.builtin_definitions()["io.k8s.api.apps.v1.Deployment"]
    )
    exts = [fields(na) for na in fields(buf)[31]]
    by_name = {_s(f, 1): _s(fields(f[2][0]), 2) for f in exts}
    gvk = yaml.safe_load(by_name["x-kubernetes-group-version-kind"])
    assert gvk == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    core = openapi_v2.encode_schema(openapi_v2.builtin_definitions()["io.k8s.api.core.v1.Pod"])
    ext = {_s(fields(na), 1): _s(fields(fields(na)[2][0]), 2) for na in fields(core)[31]}
    # kubectl skips GVK entries without a string "group": core kinds carry "".
    assert yaml.safe_load(ext["x-kubernetes-group-version-kind"]) == [
        {"group": "", "kind": "Pod", "version": "v1"}
    ]


def test_custom_resource_models(decoded: dict[str, Any]) -> None:
    defs = decoded["definitions"]
    item = defs["com.example.v1.Widget"]
    assert item["x-kubernetes-group-version-kind"] == [
        {"group": "example.com", "kind": "Widget", "version": "v1"}
    ]
    assert sorted(item["properties"]) == ["apiVersion", "kind", "metadata", "spec"]
    spec = item["properties"]["spec"]
    assert spec["required"] == ["size"]  # nullable fields are not required in v2
    props = spec["properties"]
    assert props["size"] == {"default": 3, "maximum": 10.0, "minimum": 1.0, "type": "integer"}
    assert props["note"] == {}  # nullable: untyped
    assert props["port"] == {"x-kubernetes-int-or-string": True}  # anyOf dropped
    assert props["blob"] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    assert props["tags"]["items"] == {"type": "string"} and props["tags"]["maxItems"] == 5
    assert props["mode"]["enum"] == ["a", "b"]
    assert props["labels"]["additionalProperties"] == {"type": "string"}
    assert spec["x-kubernetes-validations"] == [{"rule": "self.size > 0"}]
    lst = defs["com.example.v1.WidgetList"]
    assert lst["properties"]["items"]["items"] == {"$ref": "#/definitions/com.example.v1.Widget"}


def test_preserve_unknown_root_stays_open() -> None:
    spec = ResourceSpec(
        group="example.com",
        version="v1",
        kind="Blob",
        plural="blobs",
        namespaced=False,
        schema={"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    )
    doc = decode_document(openapi_v2.encode_protobuf([spec]))
    blob = doc["definitions"]["com.example.v1.Blob"]
    assert "properties" not in blob and blob["type"] == "object"


def test_encoder_scalars() -> None:
    buf = openapi_v2.encode_schema(
        {
            "minLength": 0,
            "maxLength": 2**40,
            "minimum": -1.5,
            "exclusiveMinimum": True,
            "uniqueItems": False,
        }
    )
    f = fields(buf)
    assert 12 not in f and 16 not in f  # proto3 zero values are not written
    assert f[11] == [2**40] and f[9] == [-1.5] and f[10] == [1]
    neg = fields(openapi_v2.encode_schema({"minItems": -1}))
    assert neg[15] == [2**64 - 1]  # int64 -1 as a 10-byte varint


def test_document_cache() -> None:
    first = openapi_v2.document([WIDGET])
    assert openapi_v2.document([WIDGET]) is first
    assert first.protobuf is first.protobuf
    changed = ResourceSpec(
        group="example.com",
        version="v1",
        kind="Widget",
        plural="widgets",
        namespaced=True,
        schema={"type": "object"},
    )
    assert openapi_v2.document([changed]) is not first
    builtin_only = ResourceSpec(
        group="", version="v1", kind="ConfigMap", plural="configmaps", namespaced=True
    )
    assert openapi_v2.document([builtin_only]) is openapi_v2.document([])
