"""Tolerant readers for decoded JSON objects.

Validation runs after a schema type check, so values have the right JSON type
or are missing/null; these readers turn missing/null into Go's zero values.
"""

from __future__ import annotations

from typing import Any


def get_map(obj: Any, key: str) -> dict[str, Any]:
    if isinstance(obj, dict):
        v = obj.get(key)
        if isinstance(v, dict):
            return v
    return {}


def get_list(obj: Any, key: str) -> list[Any]:
    if isinstance(obj, dict):
        v = obj.get(key)
        if isinstance(v, list):
            return v
    return []


def get_str(obj: Any, key: str) -> str:
    if isinstance(obj, dict):
        v = obj.get(key)
        if isinstance(v, str):
            return v
    return ""


def get_int(obj: Any, key: str, default: int = 0) -> int:
    if isinstance(obj, dict):
        v = obj.get(key)
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        if isinstance(v, float) and v.is_integer():
            return int(v)
    return default


def get_opt_int(obj: Any, key: str) -> int | None:
    if isinstance(obj, dict) and obj.get(key) is not None:
        return get_int(obj, key)
    return None


def get_bool(obj: Any, key: str) -> bool:
    return isinstance(obj, dict) and obj.get(key) is True


def has(obj: Any, key: str) -> bool:
    """Set (present and not null), like a non-nil Go pointer."""
    return isinstance(obj, dict) and obj.get(key) is not None


def str_map(obj: Any, key: str) -> dict[str, str]:
    return {k: v for k, v in get_map(obj, key).items() if isinstance(v, str)}


def dicts(items: list[Any]) -> list[dict[str, Any]]:
    """List items as dicts (null items become empty structs)."""
    return [i if isinstance(i, dict) else {} for i in items]
