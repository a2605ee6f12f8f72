"""fieldsV1 sets: parsing, serialization order, set algebra."""

from __future__ import annotations

import orjson
import pytest

from k3py.apimachinery.fieldpath import FieldSet, field_pe, index_pe, key_pe, path_string, value_pe

# A fieldsV1 document written by kube-apiserver (keys in its serialization order).
UPSTREAM = (
    b'{"f:metadata":{"f:finalizers":{".":{},"v:\\"a\\"":{},"v:\\"b\\"":{}},'
    b'"f:labels":{".":{},"f:app":{}}},'
    b'"f:spec":{"f:ports":{"k:{\\"port\\":80,\\"protocol\\":\\"TCP\\"}":{".":{},"f:port":{}}},'
    b'"f:template":{"f:spec":{"f:containers":{"k:{\\"name\\":\\"a\\"}":{".":{},"f:image":{}}}}}}}'
)


def test_round_trip_keeps_upstream_bytes() -> None:
    fs = FieldSet.from_fields_v1(orjson.loads(UPSTREAM))
    assert orjson.dumps(fs.to_fields_v1()) == UPSTREAM
    shuffled = dict(reversed(list(orjson.loads(UPSTREAM).items())))
    assert orjson.dumps(FieldSet.from_fields_v1(shuffled).to_fields_v1()) == UPSTREAM


def test_paths_and_membership() -> None:
    fs = FieldSet.from_fields_v1(orjson.loads(UPSTREAM))
    labels = (field_pe("metadata"), field_pe("labels"))
    assert fs.has(labels) and fs.has((*labels, field_pe("app")))
    assert not fs.has((field_pe("metadata"),))
    port = (field_pe("spec"), field_pe("ports"), key_pe({"protocol": "TCP", "port": 80}))
    assert fs.has(port)
    assert path_string(port) == '.spec.ports[port=80,protocol="TCP"]'
    assert (
        path_string((field_pe("metadata"), field_pe("finalizers"), value_pe("a")))
        == '.metadata.finalizers[="a"]'
    )
    assert path_string((field_pe("x"), index_pe(3))) == ".x[3]"


def test_key_canonical_form() -> None:
    assert key_pe({"name": "x", "a": 1}) == 'k:{"a":1,"name":"x"}'
    assert key_pe({"name": "<x>"}) == 'k:{"name":"\\u003cx\\u003e"}'
    assert value_pe(1.0) == "v:1"


def test_serialization_order() -> None:
    fs = FieldSet.of(
        ("i:1",),
        (value_pe("b"),),
        (value_pe(2),),
        (key_pe({"name": "z"}),),
        (field_pe("b"),),
        (field_pe("a"), field_pe("x")),
        (field_pe("a"),),
    )
    assert list(fs.to_fields_v1()) == ["f:a", "f:b", 'k:{"name":"z"}', "v:2", 'v:"b"', "i:1"]
    assert fs.to_fields_v1()["f:a"] == {".": {}, "f:x": {}}


def test_set_algebra() -> None:
    a = FieldSet.of(("f:a", "f:b"), ("f:a", "f:c"), ("f:d",))
    b = FieldSet.of(("f:a", "f:b"), ("f:a",))
    assert a.union(b) == FieldSet.of(("f:a", "f:b"), ("f:a", "f:c"), ("f:d",), ("f:a",))
    assert a.intersection(b) == FieldSet.of(("f:a", "f:b"))
    assert a.difference(b) == FieldSet.of(("f:a", "f:c"), ("f:d",))
    assert a.recursive_difference(FieldSet.of(("f:a",))) == FieldSet.of(("f:d",))
    assert a.difference(a).empty()
    assert [path_string(p) for p in a.paths()] == [".d", ".a.b", ".a.c"]


@pytest.mark.parametrize("bad", [{"x": {}}, {"k:[1]": {}}, {"f:a": 1}])
def test_malformed(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FieldSet.from_fields_v1(bad)


def test_unknown_element_kinds_are_ignored() -> None:
    assert FieldSet.from_fields_v1({"z:future": {}, "f:a": {}}) == FieldSet.of(("f:a",))
