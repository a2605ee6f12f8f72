"""Field sets of server-side apply and their ``fieldsV1`` encoding.

A path element is kept as its serialized text, exactly as it appears in ``fieldsV1``:
``f:<field>`` (a map key or struct field), ``k:{"name":"x"}`` (a list-map item by its key
fields: compact JSON, names sorted), ``v:<json>`` (an item of a set) and ``i:<n>`` (a list
index).  Strings hash fast and compare cheaply; the ordering upstream uses for
serialization (fields < keys < values < indexes, each with its own ordering) is computed
from the text on demand and cached.

:class:`FieldSet` is a trie: ``members`` are the paths that end at this node, ``children``
the sub-sets below a path element.  The operations are those of structured-merge-diff's
``fieldpath.Set`` with the same (sometimes surprising) semantics, e.g. ``difference``
removes members level by level and never removes a subtree because its parent is a
member of the other set; ``recursive_difference`` does.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from k3py.apimachinery.gofmt import go_float, go_json, go_quote

PE = str
Path = tuple[PE, ...]


def field_pe(name: str) -> PE:
    return "f:" + name


def key_pe(fields: Mapping[str, Any]) -> PE:
    return "k:" + go_json(dict(sorted(fields.items())), sort_keys=False)


def value_pe(value: Any) -> PE:
    return "v:" + go_json(value)


def index_pe(index: int) -> PE:
    return f"i:{index}"


def _value_sort_key(v: Any) -> tuple[Any, ...]:
    """structured-merge-diff's total order: numbers < strings < bools < lists < maps < null."""
    if isinstance(v, bool):
        return (2, v)
    if isinstance(v, (int, float)):
        return (0, v)
    if isinstance(v, str):
        return (1, v)
    if isinstance(v, list):
        return (3, tuple(_value_sort_key(x) for x in v))
    if isinstance(v, dict):
        return (4, tuple((k, _value_sort_key(v[k])) for k in sorted(v)))
    return (5,)


@functools.lru_cache(maxsize=1 << 16)
def pe_sort_key(pe: PE) -> tuple[Any, ...]:
    kind, body = pe[0], pe[2:]
    if kind == "f":
        return (0, body)
    if kind == "k":
        fields = json.loads(body)
        return (1, tuple((k, _value_sort_key(fields[k])) for k in sorted(fields)))
    if kind == "v":
        return (2, _value_sort_key(json.loads(body)))
    return (3, int(body))


def _to_string(v: Any) -> str:
    """structured-merge-diff's ``value.ToString``."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, str):
        return go_quote(v)
    if isinstance(v, list):
        return "[" + ",".join(_to_string(x) for x in v) + "]"
    if isinstance(v, dict):
        return "".join(f"{k}={_to_string(x)}" for k, x in v.items())
    return str(v)


@functools.lru_cache(maxsize=1 << 14)
def pe_string(pe: PE) -> str:
    """Human form used in conflict messages: ``.spec``, ``[name="x"]``, ``[="a"]``, ``[0]``."""
    kind, body = pe[0], pe[2:]
    if kind == "f":
        return "." + body
    if kind == "k":
        fields = json.loads(body)
        return "[" + ",".join(f"{k}={_to_string(fields[k])}" for k in sorted(fields)) + "]"
    if kind == "v":
        return f"[={_to_string(json.loads(body))}]"
    return f"[{body}]"


def path_string(path: Sequence[PE]) -> str:
    return "".join(pe_string(pe) for pe in path)


def parse_pe(text: str) -> PE | None:
    """Canonical PE for a ``fieldsV1`` key; None for unknown kinds (ignored, as upstream)."""
    if len(text) < 2:
        raise ValueError("key must be 2 characters long:")
    if text[1] != ":":
        raise ValueError(f"missing colon: {text}")
    kind, body = text[0], text[2:]
    if kind == "f":
        return text
    if kind == "k":
        fields = json.loads(body)
        if not isinstance(fields, dict):
            raise ValueError(f"invalid key element: {text}")
        return key_pe(fields)
    if kind == "v":
        return value_pe(json.loads(body))
    if kind == "i":
        return index_pe(int(body))
    return None


class FieldSet:
    __slots__ = ("members", "children")

    def __init__(
        self, members: set[PE] | None = None, children: dict[PE, FieldSet] | None = None
    ) -> None:
        self.members: set[PE] = members if members is not None else set()
        self.children: dict[PE, FieldSet] = children if children is not None else {}

    # --- building and querying ---

    @classmethod
    def of(cls, *paths: Sequence[PE]) -> FieldSet:
        s = cls()
        for p in paths:
            s.insert(p)
        return s

    def insert(self, path: Sequence[PE]) -> None:
        if not path:
            return
        node = self
        for pe in path[:-1]:
            child = node.children.get(pe)
            if child is None:
                child = node.children[pe] = FieldSet()
            node = child
        node.members.add(path[-1])

    def has(self, path: Sequence[PE]) -> bool:
        if not path:
            return False
        node: FieldSet | None = self
        for pe in path[:-1]:
            node = node.children.get(pe) if node is not None else None
            if node is None:
                return False
        return node is not None and path[-1] in node.members

    def empty(self) -> bool:
        return not self.members and all(c.empty() for c in self.children.values())

    def with_prefix(self, pe: PE) -> FieldSet:
        return self.children.get(pe) or _EMPTY

    def copy(self) -> FieldSet:
        return FieldSet(set(self.members), {pe: c.copy() for pe, c in self.children.items()})

    def paths(self, prefix: Path = ()) -> Iterator[Path]:
        """Every path, in upstream's iteration order (members, then children, sorted)."""
        for pe in sorted(self.members, key=pe_sort_key):
            yield (*prefix, pe)
        for pe in sorted(self.children, key=pe_sort_key):
            yield from self.children[pe].paths((*prefix, pe))

    def size(self) -> int:
        return len(self.members) + sum(c.size() for c in self.children.values())

    # --- set algebra ---

    def union(self, other: FieldSet) -> FieldSet:
        children = dict(self.children)
        for pe, c in other.children.items():
            mine = children.get(pe)
            children[pe] = c if mine is None else mine.union(c)
        return FieldSet(self.members | other.members, children)

    def intersection(self, other: FieldSet) -> FieldSet:
        children = {}
        for pe, c in self.children.items():
            theirs = other.children.get(pe)
            if theirs is not None:
                res = c.intersection(theirs)
                if not res.empty():
                    children[pe] = res
        return FieldSet(self.members & other.members, children)

    def difference(self, other: FieldSet) -> FieldSet:
        children = {}
        for pe, c in self.children.items():
            theirs = other.children.get(pe)
            if theirs is None:
                children[pe] = c
            else:
                res = c.difference(theirs)
                if not res.empty():
                    children[pe] = res
        return FieldSet(self.members - other.members, children)

    def recursive_difference(self, other: FieldSet) -> FieldSet:
        children = {}
        for pe, c in self.children.items():
            if pe in other.members:
                continue
            theirs = other.children.get(pe)
            if theirs is None:
                children[pe] = c
            else:
                res = c.recursive_difference(theirs)
                if not res.empty():
                    children[pe] = res
        return FieldSet(self.members - other.members, children)

    def leaves(self) -> FieldSet:
        members = {pe for pe in self.members if pe not in self.children}
        children = {pe: c.leaves() for pe, c in self.children.items()}
        return FieldSet(members, {pe: c for pe, c in children.items() if not c.empty()})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSet):
            return NotImplemented
        mine = {pe: c for pe, c in self.children.items() if not c.empty()}
        theirs = {pe: c for pe, c in other.children.items() if not c.empty()}
        return self.members == other.members and mine == theirs

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"FieldSet({[path_string(p) for p in self.paths()]})"

    # --- fieldsV1 ---

    def to_fields_v1(self) -> dict[str, Any]:
        """The ``fieldsV1`` object, keys in upstream's serialization order."""
        return self._emit(include_self=False)

    def _emit(self, *, include_self: bool) -> dict[str, Any]:
        # An empty child emits {} (whatever include_self), a non-empty one never does.
        members = self.members
        emitted = {}
        for pe, c in self.children.items():
            sub = c._emit(include_self=pe in members)
            if sub:
                emitted[pe] = sub
        out: dict[str, Any] = {}
        if include_self and (members or emitted):
            out["."] = {}
        keys = members | emitted.keys() if emitted else members
        for pe in sorted(keys, key=pe_sort_key) if len(keys) > 1 else keys:
            out[pe] = emitted.get(pe) or {}
        return out

    @classmethod
    def from_fields_v1(cls, data: Any) -> FieldSet:
        """Parse a ``fieldsV1`` object; raises ValueError on malformed keys."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ValueError("expected a fieldsV1 object")
        children, _ = _read(data)
        return children or cls()


def _read(data: dict[str, Any]) -> tuple[FieldSet | None, bool]:
    children: FieldSet | None = None
    is_member = False
    for key, value in data.items():
        if key == ".":
            is_member = True
            continue
        pe = parse_pe(key)
        if pe is None:
            continue
        if not isinstance(value, dict):
            raise ValueError(f"expected an object for {key}")
        grand, child_member = _read(value)
        if child_member:
            children = children or FieldSet()
            children.members.add(pe)
        if grand is not None:
            children = children or FieldSet()
            children.children[pe] = grand
    if children is None:
        is_member = True
    return children, is_member


_EMPTY = FieldSet()
