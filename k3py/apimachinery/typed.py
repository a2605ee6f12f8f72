"""Schema-aware walks over JSON objects for server-side apply (structured-merge-diff's ``typed``).

An :class:`Atom` says how a schema node takes part in field ownership, derived from the
OpenAPI extensions the way kube-openapi's ``schemaconv`` derives it:

* lists: ``x-kubernetes-list-type`` ``atomic`` / ``set`` / ``map`` (keys from
  ``x-kubernetes-list-map-keys``); without it a ``merge`` patch strategy makes a list-map
  keyed by the patch merge key (or a set of primitives), anything else is atomic;
* maps and structs: granular unless ``x-kubernetes-map-type: atomic``;
* no usable schema (RawExtension, free-form JSON): "deduced" from the value — maps are
  granular, lists atomic, everything else a scalar.

The walkers transcribe upstream's: :func:`to_field_set` (what a configuration sets),
:func:`compare` (added / modified / removed between two objects), :func:`merge` (apply a
configuration onto a live object, keeping the live list order as upstream does) and
:func:`remove_items`.  ``MISSING`` stands for an absent value (Go's nil ``Value``), as
opposed to ``None``, a JSON null.

Every write records field ownership through :func:`compare`, so it takes two shortcuts
that give the same sets as the plain walk: a subtree present on one side only (all of
a create) is added to (removed from) the trie in one pass by :func:`_all_of`, and
subtrees equal on both sides (most of an update) are skipped after one C-level
comparison (bytes-equal orjson encodings rule out ``True == 1``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from k3py.apimachinery.fieldpath import PE, FieldSet, field_pe, key_pe, pe_string, value_pe
from k3py.apimachinery.gofmt import go_json
from k3py.server.registry import schema as sch

Schema = dict[str, Any]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

# Key fields with a schema default upstream (our schema copy carries no defaults).
_KEY_DEFAULTS = {"protocol": "TCP"}


@dataclass(slots=True, eq=False)
class Atom:
    kind: str  # "scalar" | "map" | "list" | "deduced"
    fields: dict[str, Schema] = field(default_factory=dict)
    elem: Schema | None = None
    atomic: bool = False
    keys: tuple[str, ...] = ()
    is_set: bool = False
    preserve_unknown: bool = False
    item_fields: dict[str, Schema] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    # field_atom's answers by member name (schemas are long-lived, so are atoms).
    members: dict[str, tuple[Atom, bool]] = field(default_factory=dict, repr=False)


SCALAR = Atom("scalar")
DEDUCED = Atom("deduced")
_DEDUCED_MAP = Atom("map", preserve_unknown=True)
_DEDUCED_LIST = Atom("list", atomic=True)

_cache: dict[int, tuple[Schema, Atom]] = {}


def atom_of(raw: Schema | None) -> Atom:
    """The atom of a (possibly unresolved) schema node; cached per schema object."""
    if raw is None:
        return DEDUCED
    hit = _cache.get(id(raw))
    if hit is not None and hit[0] is raw:
        return hit[1]
    atom = _classify(raw)
    if len(_cache) > 50_000:  # schemas are long-lived; this only bounds pathological churn
        _cache.clear()
    _cache[id(raw)] = (raw, atom)
    return atom


def _ext(raw: Schema, resolved: Schema, name: str) -> Any:
    value = raw.get(name)
    return value if value is not None else resolved.get(name)


def _classify(raw: Schema) -> Atom:
    resolved = sch.resolve(raw)
    types = sch.types_of(resolved)
    shaped = types or any(k in resolved for k in ("properties", "items", "additionalProperties"))
    if _ext(raw, resolved, "x-kubernetes-int-or-string") or (
        not shaped and ("oneOf" in resolved or "anyOf" in resolved)
    ):
        return SCALAR
    if "array" in types or "items" in resolved:
        return _classify_list(raw, resolved)
    props = resolved.get("properties") or {}
    extra = resolved.get("additionalProperties")
    preserve = bool(_ext(raw, resolved, "x-kubernetes-preserve-unknown-fields"))
    if props or isinstance(extra, dict) or ("object" in types and preserve):
        atomic = _ext(raw, resolved, "x-kubernetes-map-type") == "atomic"
        elem = extra if isinstance(extra, dict) else None
        return Atom(
            "map",
            fields=props,
            elem=elem,
            atomic=atomic,
            preserve_unknown=preserve or extra is True,
            required=frozenset(resolved.get("required") or ()),
        )
    if types & {"string", "integer", "number", "boolean"}:
        return SCALAR
    return DEDUCED


def _classify_list(raw: Schema, resolved: Schema) -> Atom:
    elem = resolved.get("items") if isinstance(resolved.get("items"), dict) else None
    list_type = _ext(raw, resolved, "x-kubernetes-list-type")
    keys: tuple[str, ...] = ()
    if list_type is None:
        merge_key, strategies = sch.patch_info(raw)
        if "merge" in strategies:
            list_type = "map" if merge_key else "set"
            keys = (merge_key,) if merge_key else ()
        else:
            list_type = "atomic"
    elif list_type == "map":
        keys = tuple(_ext(raw, resolved, "x-kubernetes-list-map-keys") or ())
    item_fields = (sch.resolve(elem).get("properties") or {}) if elem is not None else {}
    return Atom(
        "list",
        elem=elem,
        atomic=list_type == "atomic" or (list_type == "map" and not keys),
        keys=keys,
        is_set=list_type == "set",
        item_fields=item_fields,
    )


def effective(atom: Atom, value: Any) -> Atom:
    """Resolve a deduced atom against the value it describes."""
    if atom.kind != "deduced":
        return atom
    if isinstance(value, dict):
        return _DEDUCED_MAP
    if isinstance(value, list):
        return _DEDUCED_LIST
    return SCALAR


def field_atom(atom: Atom, name: str) -> tuple[Atom, bool]:
    """(atom of a map member, whether it is a declared struct field)."""
    hit = atom.members.get(name)
    if hit is not None:
        return hit
    raw = atom.fields.get(name)
    if raw is not None:
        out = atom_of(raw), True
    elif atom.elem is not None:
        out = atom_of(atom.elem), False
    else:
        out = DEDUCED, False
    if raw is not None or len(atom.members) < 256:  # free-form maps: bounded
        atom.members[name] = out
    return out


def elem_atom(atom: Atom) -> Atom:
    return atom_of(atom.elem)


class TypedError(ValueError):
    """A value that does not fit its schema, formatted like upstream's ValidationErrors."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__(self.render())

    def render(self) -> str:
        def one(path: str, msg: str) -> str:
            return f"{path}: {msg}" if path else msg

        if len(self.errors) == 1:
            return one(*self.errors[0])
        return "\n".join(["errors:", *("  " + one(p, m) for p, m in self.errors)])


def item_pe(atom: Atom, item: Any) -> PE:
    """The path element of a list item (``listItemToPathElement``); raises ValueError."""
    if atom.keys:
        if item is None:
            raise ValueError("associative list with keys may not have a null element")
        if not isinstance(item, dict):
            raise ValueError("associative list with keys may not have non-map elements")
        fields = {}
        for key in atom.keys:
            if key in item:
                fields[key] = item[key]
            elif key in _KEY_DEFAULTS and key in atom.item_fields:
                fields[key] = _KEY_DEFAULTS[key]
        if not fields:
            shown = "[" + " ".join(f'"{k}"' for k in atom.keys) + "]"
            raise ValueError(
                f"associative list with keys has an element that omits all key fields {shown} "
                "(and doesn't have default values for any key fields)"
            )
        return key_pe(fields)
    if isinstance(item, dict):
        raise ValueError("associative list without keys has an element that's a map type")
    if isinstance(item, list):
        raise ValueError("not supported: associative list with lists as elements")
    return value_pe(item)


def _item_pes(atom: Atom, items: list[Any]) -> list[PE | None]:
    out: list[PE | None] = []
    for item in items:
        try:
            out.append(item_pe(atom, item))
        except ValueError:
            out.append(None)
    return out


def json_equal(a: Any, b: Any) -> bool:
    """Deep equality where numbers compare numerically but booleans are not numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict):
        return (
            isinstance(b, dict) and a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
        )
    if isinstance(a, list):
        return (
            isinstance(b, list)
            and len(a) == len(b)
            and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def _container_kind(atom: Atom, value: Any) -> str:
    if atom.kind == "map":
        return "map" if value is None or isinstance(value, dict) else "scalar"
    if atom.kind == "list":
        return "list" if value is None or isinstance(value, list) else "scalar"
    return "scalar"


# --- to_field_set -------------------------------------------------------------------


def to_field_set(value: Any, atom: Atom) -> FieldSet:
    """The fields a value sets (``TypedValue.ToFieldSet``); duplicates are tolerated."""
    out = FieldSet()
    _tfs(value, atom, path=[], out=out)
    return out


def _tfs(value: Any, atom: Atom, *, path: list[PE], out: FieldSet) -> None:
    atom = effective(atom, value)
    kind = _container_kind(atom, value)
    if kind == "scalar" or atom.atomic:
        out.insert(path)
        return
    if value is None:
        return
    if kind == "list":
        _tfs_list(value, atom, path=path, out=out)
        return
    for key, child in value.items():
        child_atom, declared = field_atom(atom, key)
        path.append(field_pe(key))
        _tfs(child, child_atom, path=path, out=out)
        if child is None or (isinstance(child, dict) and not child) or not declared:
            out.insert(path)
        path.pop()


def _tfs_list(items: list[Any], atom: Atom, *, path: list[PE], out: FieldSet) -> None:
    pes = _item_pes(atom, items)
    counts = Counter(pe for pe in pes if pe is not None)
    child_atom = elem_atom(atom)
    for item, pe in zip(items, pes, strict=True):
        if pe is None:
            continue
        path.append(pe)
        if counts[pe] > 1:
            out.insert(path)
        else:
            _tfs(item, child_atom, path=path, out=out)
            out.insert(path)
        path.pop()


def validate(value: Any, atom: Atom) -> None:
    """Check an applied configuration against the schema; raises TypedError."""
    errors: list[tuple[str, str]] = []
    _validate(value, atom, "", errors)
    if errors:
        raise TypedError(errors)


def _validate(value: Any, atom: Atom, path: str, errors: list[tuple[str, str]]) -> None:
    atom = effective(atom, value)
    if atom.kind == "map" and isinstance(value, dict) and not atom.atomic:
        for key, child in value.items():
            child_atom, declared = field_atom(atom, key)
            child_path = f"{path}.{key}"
            if not declared and atom.elem is None and not atom.preserve_unknown:
                errors.append((child_path, "field not declared in schema"))
                break
            _validate(child, child_atom, child_path, errors)
    elif atom.kind == "list" and isinstance(value, list) and not atom.atomic:
        seen: set[PE] = set()
        child_atom = elem_atom(atom)
        for i, item in enumerate(value):
            try:
                pe = item_pe(atom, item)
            except ValueError as e:
                errors.append((path, f"element {i}: {e}"))
                continue
            if pe in seen:
                errors.append((path, f"duplicate entries for key {pe_string(pe)}"))
                continue
            seen.add(pe)
            _validate(item, child_atom, path + pe_string(pe), errors)


# --- compare ------------------------------------------------------------------------


@dataclass(slots=True)
class Comparison:
    added: FieldSet = field(default_factory=FieldSet)
    modified: FieldSet = field(default_factory=FieldSet)
    removed: FieldSet = field(default_factory=FieldSet)

    def exclude(self, ignored: FieldSet) -> Comparison:
        if ignored.empty():
            return self
        return Comparison(
            self.added.recursive_difference(ignored),
            self.modified.recursive_difference(ignored),
            self.removed.recursive_difference(ignored),
        )

    def is_same(self) -> bool:
        return self.added.empty() and self.modified.empty() and self.removed.empty()


def compare(lhs: Any, rhs: Any, atom: Atom) -> Comparison:
    """What changed from ``lhs`` to ``rhs`` (``TypedValue.Compare``)."""
    cmp = Comparison()
    _cmp(lhs, rhs, atom, path=[], cmp=cmp)
    return cmp


def _cmp(lhs: Any, rhs: Any, atom: Atom, *, path: list[PE], cmp: Comparison) -> None:
    if path and (lhs is MISSING or rhs is MISSING):
        # One side absent: the whole subtree is added (removed); build it in place.
        present, into = (rhs, cmp.added) if lhs is MISSING else (lhs, cmp.removed)
        _all_of(present, atom, parent=_node(into, path[:-1]), pe=path[-1])
        return
    if (
        isinstance(lhs, (dict, list))
        and type(lhs) is type(rhs)
        and lhs == rhs
        and _same_json(lhs, rhs)
    ):
        return  # equal subtrees add, modify and remove nothing
    probe = rhs if rhs is not MISSING else lhs
    atom = effective(atom, probe)
    kind = _container_kind(atom, probe)
    if lhs is not MISSING and _container_kind(atom, lhs) != kind:
        kind = "scalar"  # the value changed its shape: compare it as a whole
    lval: Any = lhs if isinstance(lhs, (dict, list)) else None
    rval: Any = rhs if isinstance(rhs, (dict, list)) else None
    leaf = kind == "scalar" or atom.atomic or (not lval and not rval)
    if leaf:
        if lhs is MISSING:
            cmp.added.insert(path)
        elif rhs is MISSING:
            cmp.removed.insert(path)
        elif not json_equal(lhs, rhs):
            cmp.modified.insert(path)
        return
    if kind == "list":
        _cmp_list(lval or [], rval or [], atom, path=path, cmp=cmp)
    else:
        _cmp_map(lval or {}, rval or {}, atom, path=path, cmp=cmp)
    if lhs is MISSING:
        cmp.added.insert(path)
    elif rhs is MISSING:
        cmp.removed.insert(path)


def _same_json(a: Any, b: Any) -> bool:
    """Equal (``==``) values are json_equal unless a bool met a number: same bytes say not."""
    try:
        return orjson.dumps(a) == orjson.dumps(b)
    except (TypeError, orjson.JSONEncodeError):
        return False


def _node(fs: FieldSet, path: list[PE]) -> FieldSet:
    """The trie node of ``path`` in ``fs``, created as needed."""
    node = fs
    for pe in path:
        child = node.children.get(pe)
        if child is None:
            child = node.children[pe] = FieldSet()
        node = child
    return node


def _all_of(value: Any, atom: Atom, *, parent: FieldSet, pe: PE) -> None:
    """``_cmp`` of ``value`` against an absent other side, at ``parent``/``pe``: the path
    and, below a granular map or list, every path the value has (duplicated list items
    only as their own element)."""
    parent.members.add(pe)
    atom = effective(atom, value)
    if atom.atomic or not value:
        return
    if atom.kind == "map":
        if not isinstance(value, dict):
            return
        node = parent.children.get(pe)
        if node is None:
            node = parent.children[pe] = FieldSet()
        for key, child in value.items():
            if child and isinstance(child, (dict, list)):
                _all_of(child, field_atom(atom, key)[0], parent=node, pe="f:" + key)
            else:  # a scalar or an empty container is a leaf whatever its schema
                node.members.add("f:" + key)
        return
    if atom.kind != "list" or not isinstance(value, list):
        return
    groups = _group(atom, value)
    if not groups:
        return
    node = parent.children.get(pe)
    if node is None:
        node = parent.children[pe] = FieldSet()
    child_atom = elem_atom(atom)
    for item_pe_, items in groups.items():
        if len(items) == 1:
            _all_of(items[0], child_atom, parent=node, pe=item_pe_)
        else:
            node.members.add(item_pe_)


def _cmp_map(
    lhs: dict[str, Any], rhs: dict[str, Any], atom: Atom, *, path: list[PE], cmp: Comparison
) -> None:
    added: FieldSet | None = None
    removed: FieldSet | None = None
    for key in _union_keys(lhs, rhs):
        child_atom = field_atom(atom, key)[0]
        pe = "f:" + key
        lv = lhs.get(key, MISSING)
        rv = rhs.get(key, MISSING)
        if lv is MISSING:  # what _cmp does for a one-sided member, without the detour
            added = added if added is not None else _node(cmp.added, path)
            if rv and isinstance(rv, (dict, list)):
                _all_of(rv, child_atom, parent=added, pe=pe)
            else:  # a scalar or an empty container is a leaf whatever its schema
                added.members.add(pe)
        elif rv is MISSING:
            removed = removed if removed is not None else _node(cmp.removed, path)
            _all_of(lv, child_atom, parent=removed, pe=pe)
        else:
            path.append(pe)
            _cmp(lv, rv, child_atom, path=path, cmp=cmp)
            path.pop()


def _union_keys(lhs: dict[str, Any], rhs: dict[str, Any]) -> list[str]:
    return [*lhs, *(k for k in rhs if k not in lhs)]


def _group(atom: Atom, items: list[Any]) -> dict[PE, list[Any]]:
    groups: dict[PE, list[Any]] = {}
    for item, pe in zip(items, _item_pes(atom, items), strict=True):
        if pe is not None:
            groups.setdefault(pe, []).append(item)
    return groups


def _cmp_list(
    lhs: list[Any], rhs: list[Any], atom: Atom, *, path: list[PE], cmp: Comparison
) -> None:
    left, right = _group(atom, lhs), _group(atom, rhs)
    child_atom = elem_atom(atom)
    for pe in [*left, *(p for p in right if p not in left)]:
        lv, rv = left.get(pe, []), right.get(pe, [])
        path.append(pe)
        if len(lv) <= 1 and len(rv) <= 1:
            _cmp(lv[0] if lv else MISSING, rv[0] if rv else MISSING, child_atom, path=path, cmp=cmp)
        elif len(lv) >= 2 and len(rv) >= 2:
            if not json_equal(lv, rv):
                cmp.modified.insert(path)
        elif len(lv) >= 2:
            if rv:
                _cmp(MISSING, rv[0], child_atom, path=path, cmp=cmp)
            cmp.removed.insert(path)
        else:
            if lv:
                _cmp(lv[0], MISSING, child_atom, path=path, cmp=cmp)
            cmp.added.insert(path)
        path.pop()


# --- merge --------------------------------------------------------------------------


def merge(lhs: Any, rhs: Any, atom: Atom) -> Any:
    """Apply configuration ``rhs`` onto ``lhs`` (``TypedValue.Merge``); MISSING if empty."""
    return _merge(lhs, rhs, atom)


def _merge(lhs: Any, rhs: Any, atom: Atom) -> Any:
    probe = rhs if rhs is not MISSING else lhs
    atom = effective(atom, probe)
    kind = _container_kind(atom, probe)
    if lhs is not MISSING and _container_kind(atom, lhs) != kind:
        kind = "scalar"
    lval: Any = lhs if isinstance(lhs, (dict, list)) else None
    rval: Any = rhs if isinstance(rhs, (dict, list)) else None
    if kind == "scalar" or atom.atomic or (not lval and not rval):
        return rhs if rhs is not MISSING else lhs
    if kind == "list":
        out_list = _merge_list(lval or [], rval or [], atom)
        return out_list if out_list else MISSING
    out: dict[str, Any] = {}
    lmap: dict[str, Any] = lval or {}
    rmap: dict[str, Any] = rval or {}
    for key in _union_keys(lmap, rmap):
        child_atom, _ = field_atom(atom, key)
        merged = _merge(lmap.get(key, MISSING), rmap.get(key, MISSING), child_atom)
        if merged is not MISSING:
            out[key] = merged
    return out if out else MISSING


def _merge_list(lhs: list[Any], rhs: list[Any], atom: Atom) -> list[Any]:
    child_atom = elem_atom(atom)
    rhs_pes = _item_pes(atom, rhs)
    observed_rhs: dict[PE, Any] = {}
    for item, pe in zip(rhs, rhs_pes, strict=True):
        if pe is not None:
            observed_rhs.setdefault(pe, item)
    rhs_pes_v = [p for p in rhs_pes if p is not None]
    lhs_pairs = [
        (pe, item) for item, pe in zip(lhs, _item_pes(atom, lhs), strict=True) if pe is not None
    ]
    lhs_pes = [pe for pe, _ in lhs_pairs]
    observed_lhs: dict[PE, Any] = {}
    for pe, item in lhs_pairs:
        observed_lhs[pe] = None if pe in observed_lhs else item
    shared = [pe for pe in rhs_pes_v if pe in observed_lhs]
    next_shared = shared.pop(0) if shared else None
    merged_rhs: set[PE] = set()
    out: list[Any] = []

    def emit(value: Any) -> None:
        if value is not MISSING:
            out.append(value)

    li = ri = 0
    n_l, n_r = len(lhs_pes), len(rhs_pes_v)
    guard = 0
    while li < n_l or ri < n_r:
        guard += 1
        if guard > 4 * (n_l + n_r) + 4:
            break
        if li < n_l and ri < n_r:
            pe = lhs_pes[li]
            if pe == rhs_pes_v[ri]:
                merged_rhs.add(pe)
                emit(_merge(observed_lhs[pe], observed_rhs[pe], child_atom))
                li += 1
                ri += 1
                next_shared = shared.pop(0) if shared else None
                continue
            if pe in observed_rhs and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < n_l:
            pe = lhs_pes[li]
            if pe not in observed_rhs:
                emit(_merge(lhs_pairs[li][1], MISSING, child_atom))
                li += 1
                continue
            if pe in merged_rhs:
                li += 1
        if ri < n_r:
            pe = rhs_pes_v[ri]
            merged_rhs.add(pe)
            emit(_merge(observed_lhs.get(pe, MISSING), observed_rhs[pe], child_atom))
            ri += 1
            if next_shared is not None and next_shared == pe:
                next_shared = shared.pop(0) if shared else None
    return out


# --- remove_items -------------------------------------------------------------------


def remove_items(value: Any, to_remove: FieldSet, atom: Atom) -> Any:
    """A copy of ``value`` without the given fields and items (``TypedValue.RemoveItems``).

    A map or list emptied by the removal disappears from its parent (upstream turns it
    into null, which the typed round-trip then drops).
    """
    out = _remove(value, to_remove, atom)
    return {} if out is MISSING else out


def _remove(value: Any, to_remove: FieldSet, atom: Atom) -> Any:
    atom = effective(atom, value)
    if atom.atomic or to_remove.empty():
        return value
    if atom.kind == "list" and isinstance(value, list) and value:
        items = []
        for item, pe in zip(value, _item_pes(atom, value), strict=True):
            if pe is not None and pe in to_remove.members:
                continue
            sub = to_remove.with_prefix(pe) if pe is not None else None
            if sub is not None and not sub.empty():
                item = _remove(item, sub, elem_atom(atom))
                if item is MISSING:
                    continue
            items.append(item)
        return items if items else MISSING
    if atom.kind == "map" and isinstance(value, dict) and value:
        out = {}
        for key, child in value.items():
            pe = field_pe(key)
            if pe in to_remove.members:
                continue
            sub = to_remove.with_prefix(pe)
            if not sub.empty():
                child_atom, _ = field_atom(atom, key)
                child = _remove(child, sub, child_atom)
                if child is MISSING:
                    continue
            out[key] = child
        return out if out else MISSING
    return value


def ensure_named_fields_are_members(fs: FieldSet, atom: Atom) -> FieldSet:
    """Make every declared struct field with owned children a member itself."""
    members = set(fs.members)
    children: dict[PE, FieldSet] = {}
    for pe, child in fs.children.items():
        sub_atom: Atom | None = None
        if pe.startswith("f:") and atom.kind == "map":
            name = pe[2:]
            if name in atom.fields:
                members.add(pe)
                sub_atom = atom_of(atom.fields[name])
            else:
                sub_atom = atom_of(atom.elem) if atom.elem is not None else None
        elif pe.startswith("k:") and atom.kind == "list":
            sub_atom = elem_atom(atom)
        children[pe] = (
            ensure_named_fields_are_members(child, sub_atom) if sub_atom is not None else child
        )
    return FieldSet(members, children)


def canonical_json(value: Any) -> str:
    return go_json(value)
