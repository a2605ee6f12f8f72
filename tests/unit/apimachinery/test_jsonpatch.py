"""JSON patch (RFC 6902) with evanphx/json-patch v4 behaviour and apiserver statuses."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from k3py.apimachinery.jsonpatch import apply_json_patch, apply_patch
from k3py.server.errors import APIError

DOC: dict[str, Any] = {
    "metadata": {"name": "x", "finalizers": ["a", "b"], "labels": {"k/v": "1"}},
    "spec": {"n": 1},
}


def run(ops: Any, doc: dict[str, Any] | None = None) -> Any:
    return apply_json_patch(doc if doc is not None else DOC, ops)


def test_operations() -> None:
    out = run(
        [
            {"op": "add", "path": "/metadata/finalizers/-", "value": "c"},
            {"op": "add", "path": "/metadata/finalizers/0", "value": "z"},
            {"op": "remove", "path": "/metadata/finalizers/1"},
            {"op": "replace", "path": "/spec/n", "value": 2},
            {"op": "copy", "from": "/spec/n", "path": "/spec/m"},
            {"op": "move", "from": "/spec/m", "path": "/spec/o"},
            {"op": "add", "path": "/metadata/labels/k~1v", "value": "2"},
            {"op": "add", "path": "/metadata/annotations", "value": {"a~b": "c"}},
            {"op": "test", "path": "/metadata/annotations/a~0b", "value": "c"},
            {"op": "remove", "path": "/metadata/finalizers/-1"},
        ]
    )
    assert out["metadata"]["finalizers"] == ["z", "b"]
    assert out["spec"] == {"n": 2, "o": 2}
    assert out["metadata"]["labels"] == {"k/v": "2"}
    assert DOC["metadata"]["finalizers"] == ["a", "b"]  # input untouched


def test_input_not_mutated() -> None:
    before = copy.deepcopy(DOC)
    value = {"deep": [1]}
    run(
        [
            {"op": "add", "path": "/spec/x", "value": value},
            {"op": "add", "path": "/spec/x/deep/-", "value": 2},
        ]
    )
    assert DOC == before and value == {"deep": [1]}


def test_failed_test_is_422() -> None:
    with pytest.raises(APIError) as info:
        run([{"op": "test", "path": "/metadata/finalizers", "value": ["a"]}])
    err = info.value
    assert err.code == 422 and err.reason == "Invalid"
    assert err.message == "the server rejected our request due to an error in our request"
    assert err.details == {
        "causes": [
            {
                "reason": "UnexpectedServerResponse",
                "message": "testing value /metadata/finalizers failed: test failed",
            }
        ]
    }


def test_test_semantics() -> None:
    run([{"op": "test", "path": "/metadata/missing", "value": None}])
    run([{"op": "test", "path": "/spec/n", "value": 1}])
    with pytest.raises(APIError):
        run([{"op": "test", "path": "/spec/n", "value": 1.0}])
    with pytest.raises(APIError):
        run([{"op": "test", "path": "/spec/n", "value": True}])
    with pytest.raises(APIError):
        run([{"op": "test", "path": "/spec/missing", "value": 1}])


@pytest.mark.parametrize(
    ("ops", "cause"),
    [
        (
            [{"op": "remove", "path": "/spec/missing"}],
            "error in remove for path: '/spec/missing': "
            "Unable to remove nonexistent key: missing: missing value",
        ),
        (
            [{"op": "add", "path": "/nope/x", "value": 1}],
            'add operation does not apply: doc is missing path: "/nope/x": missing value',
        ),
        (
            [{"op": "add", "path": "/metadata/finalizers/5", "value": "c"}],
            "error in add for path: '/metadata/finalizers/5': "
            "Unable to access invalid index: 5: invalid index referenced",
        ),
        (
            [{"op": "replace", "path": "/metadata/finalizers/9", "value": "c"}],
            "replace operation does not apply: "
            "doc is missing key: /metadata/finalizers/9: missing value",
        ),
        ([{"op": "frob", "path": "/spec"}], "Unexpected kind: frob"),
        ([{"path": "/spec"}], "Unexpected kind: unknown"),
        (
            [{"op": "remove", "path": "/metadata/finalizers/x"}],
            "error in remove for path: '/metadata/finalizers/x': "
            'strconv.Atoi: parsing "x": invalid syntax',
        ),
    ],
)
def test_apply_failures_are_422(ops: list[dict[str, Any]], cause: str) -> None:
    with pytest.raises(APIError) as info:
        run(ops)
    assert info.value.code == 422
    assert info.value.details == {
        "causes": [{"reason": "UnexpectedServerResponse", "message": cause}]
    }


def test_library_quirks() -> None:
    # replace on a missing object key adds it (v4 behaviour)
    assert run([{"op": "replace", "path": "/spec/new", "value": 3}])["spec"]["new"] == 3
    assert run([{"op": "replace", "path": "", "value": {"a": 1}}]) == {"a": 1}
    assert run(None) == DOC


def test_malformed_body_is_400() -> None:
    with pytest.raises(APIError) as info:
        run({"op": "add"})
    assert info.value.code == 400
    assert (
        info.value.message == "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
    )
    with pytest.raises(APIError) as info:
        run(["add"])
    assert info.value.code == 400


def test_too_many_operations_is_413() -> None:
    with pytest.raises(APIError) as info:
        run([{"op": "test", "path": "/spec/n", "value": 1}] * 10001)
    assert info.value.code == 413


def test_alias() -> None:
    assert apply_patch is apply_json_patch
