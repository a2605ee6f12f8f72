"""JSON merge patch: the RFC 7386 appendix examples and library behaviour."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from k3py.apimachinery.mergepatch import create_merge_patch, merge_patch
from k3py.server.errors import APIError

RFC_EXAMPLES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("doc", "patch", "expected"), RFC_EXAMPLES)
def test_rfc7386_examples(doc: Any, patch: Any, expected: Any) -> None:
    before = copy.deepcopy(doc)
    assert merge_patch(doc, patch) == expected
    assert doc == before


def test_nulls_pruned_inside_new_values() -> None:
    out = merge_patch({"spec": {}}, {"spec": {"list": [{"a": None, "b": 1}], "m": {"x": None}}})
    assert out == {"spec": {"list": [{"b": 1}], "m": {}}}


@pytest.mark.parametrize("patch", [None, "x", 5])
def test_invalid_patch_is_400(patch: Any) -> None:
    with pytest.raises(APIError) as info:
        merge_patch({"a": 1}, patch)
    assert info.value.code == 400 and info.value.message == "Invalid JSON Patch"


def test_create_merge_patch_round_trip() -> None:
    original = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1]}
    modified = {"a": 1, "b": {"c": 5}, "e": [2], "f": "x"}
    patch = create_merge_patch(original, modified)
    assert patch == {"b": {"c": 5, "d": None}, "e": [2], "f": "x"}
    assert merge_patch(original, patch) == modified
