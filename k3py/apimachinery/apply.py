"""Server-side apply, and field ownership tracking for every other write.

This mirrors kube-apiserver's field manager stack (apimachinery ``managedfields/internal``
over structured-merge-diff's ``merge.Updater``), outermost first:

* ``lastAppliedUpdater`` / ``lastAppliedManager`` — for the manager ``kubectl``, conflicts
  with fields whose live value still equals the ``last-applied-configuration`` annotation
  are forgiven (client-side → server-side apply migration), and that annotation is kept
  in sync with the applied configuration when present;
* ``skipNonApplied`` — an object without managedFields gets them on create; the first
  apply to an untracked object first records its content as ``before-first-apply``;
* ``capManagers`` (at most ten updaters), ``buildManagerInfo`` (manager identity),
  ``managedFieldsUpdater`` (timestamps), ``stripMeta`` (no ownership of name, uid,
  resourceVersion...);
* the updater: Apply merges the configuration into the live object, records the
  configuration's field set for the manager, prunes what the manager applied last time
  but dropped now (unless someone else owns it), and fails with 409 on fields another
  manager owns with a different value (``force`` takes them over); Update gives whatever
  changed to the manager and takes it from everyone else.

There is one apiVersion per resource here, so no conversion between versions happens.
The caller passes the resolved schema of the kind, the RFC 3339 ``now`` and whether the
main endpoint ignores ``status`` (status subresource).  A field manager is a plain
string (the caller derives the default from the user agent).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from k3py.apimachinery import managedfields as mf
from k3py.apimachinery.fieldpath import PE, FieldSet, field_pe, path_string
from k3py.apimachinery.gofmt import go_json
from k3py.apimachinery.jsoncopy import clone
from k3py.apimachinery.typed import (
    MISSING,
    Atom,
    TypedError,
    atom_of,
    compare,
    ensure_named_fields_are_members,
    json_equal,
    merge,
    remove_items,
    to_field_set,
    validate,
)
from k3py.server.errors import APIError, Cause, bad_request

Schema = dict[str, Any]
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024

# Struct fields that are Go values, not pointers: present (empty) in a zero object, so
# their appearance is not an "addition" of the field itself (no "." in fieldsV1).
_VALUE_STRUCTS = frozenset(
    {"metadata", "spec", "status", "template", "strategy", "updateStrategy", "jobTemplate"}
)
_META_DEFS = {
    "apiVersion": {"type": "string"},
    "kind": {"type": "string"},
    "metadata": {"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
}


@dataclass(frozen=True, slots=True)
class Conflict:
    manager: str
    path: tuple[PE, ...]


class ConflictsError(Exception):
    def __init__(self, conflicts: list[Conflict]) -> None:
        super().__init__(f"{len(conflicts)} conflicts")
        self.conflicts = conflicts


@dataclass(frozen=True, slots=True)
class _Ctx:
    atom: Atom
    ignore: FieldSet
    version: str
    now: str
    subresource: str


# --- helpers ------------------------------------------------------------------------

_root_cache: dict[int, tuple[Schema, Atom]] = {}
_UNTYPED: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def _root_atom(schema: Schema | None) -> Atom:
    """The kind's atom, with apiVersion/kind/metadata declared even if the schema lacks them."""
    if schema is None:
        schema = _UNTYPED
    hit = _root_cache.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    atom = atom_of(schema)
    meta = atom.fields.get("metadata") if atom.kind == "map" else None
    typed_meta = meta is not None and ("$ref" in meta or "properties" in meta)
    if atom.kind != "map" or not typed_meta or not all(k in atom.fields for k in _META_DEFS):
        fields = dict(atom.fields) if atom.kind == "map" else {}
        for name, default in _META_DEFS.items():
            if name not in fields or (name == "metadata" and not typed_meta):
                fields[name] = default
        atom = Atom(
            "map",
            fields=fields,
            elem=atom.elem,
            atomic=False,
            preserve_unknown=atom.preserve_unknown or atom.kind != "map",
        )
    if len(_root_cache) > 1024:
        _root_cache.clear()
    _root_cache[id(schema)] = (schema, atom)
    return atom


_ignore_cache: dict[tuple[bool, str], FieldSet] = {}


def _ignore_set(
    *, ignore_status: bool, reset_paths: Iterable[Sequence[str]], subresource: str
) -> FieldSet:
    """The fields no manager may own here.  Shared when cached: never mutate it."""
    if reset_paths == ():
        key = (ignore_status, subresource)
        hit = _ignore_cache.get(key)
        if hit is None:
            hit = _build_ignore_set(
                ignore_status=ignore_status, reset_paths=(), subresource=subresource
            )
            if len(_ignore_cache) < 64:
                _ignore_cache[key] = hit
        return hit
    return _build_ignore_set(
        ignore_status=ignore_status, reset_paths=reset_paths, subresource=subresource
    )


def _build_ignore_set(
    *, ignore_status: bool, reset_paths: Iterable[Sequence[str]], subresource: str
) -> FieldSet:
    paths = [tuple(p) for p in reset_paths]
    if ignore_status:
        paths.append(("status",))
    if subresource == "status" and not paths:
        paths.append(("spec",))
    return FieldSet.of(*(tuple(field_pe(n) for n in p) for p in paths))


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _without_managed_fields(obj: dict[str, Any] | None) -> dict[str, Any]:
    if obj is None:
        return {}
    out = dict(obj)
    meta = out.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        meta = dict(meta)
        del meta["managedFields"]
        out["metadata"] = meta
    return out


def _fill_zero(old: Any, new: Any, atom: Atom) -> Any:
    """``old`` as a Go object would show it: with the zero values ``new`` makes visible.

    Value structs (``spec``, ``template``...) exist empty in a zero object and required
    slices are ``null`` (not omitted), so their appearance is not an addition of the
    field itself; this keeps ``.`` out of ``fieldsV1`` where upstream has none.
    """
    if not isinstance(old, dict) or not isinstance(new, dict) or atom.kind != "map":
        return old
    out: dict[str, Any] | None = None
    for name, value in new.items():
        raw = atom.fields.get(name)
        if raw is None:
            continue
        sub = atom_of(raw)
        current = old.get(name, MISSING)
        struct = name in _VALUE_STRUCTS and isinstance(value, dict) and sub.kind == "map"
        if (
            struct
            and sub.fields
            and not sub.atomic
            and (current is MISSING or isinstance(current, dict))
        ):
            base = {} if current is MISSING else current
            filled = _fill_zero(base, value, sub)
            if filled is current:
                continue
        elif current is MISSING and name in atom.required and sub.kind == "list":
            filled = None
        else:
            continue
        out = out if out is not None else dict(old)
        out[name] = filled
    return out if out is not None else old


def _compare(ctx: _Ctx, old: Any, new: Any) -> Any:
    return compare(_fill_zero(old, new, ctx.atom), new, ctx.atom).exclude(ctx.ignore)


def _gvk_string(api_version: str, kind: str) -> str:
    group, _, version = api_version.rpartition("/")
    return f"{group}/{version}, Kind={kind}"


def _object_ref(obj: dict[str, Any], api_version: str) -> str:
    meta = _meta(obj)
    ns = meta.get("namespace", "") if meta else "<unknown>"
    name = meta.get("name", "") if meta else "<unknown>"
    return f"{ns}/{name}; {_gvk_string(api_version, str(obj.get('kind', '')))}"


def conflict_error(conflicts: list[Conflict]) -> APIError:
    """409 Conflict as ``NewApplyConflict`` builds it."""
    causes: list[Cause] = [
        {
            "reason": "FieldManagerConflict",
            "message": f"conflict with {mf.print_manager(c.manager)}",
            "field": path_string(c.path),
        }
        for c in conflicts
    ]
    if len(conflicts) == 1:
        c = conflicts[0]
        who, where = mf.print_manager(c.manager), path_string(c.path)
        message = f"Apply failed with 1 conflict: conflict with {who}: {where}"
    else:
        lines: list[str] = []
        for manager in sorted({c.manager for c in conflicts}):
            lines.append(f"conflicts with {mf.print_manager(manager)}:")
            lines.extend(f"- {path_string(c.path)}" for c in conflicts if c.manager == manager)
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return APIError(409, "Conflict", message, details={"causes": list(causes)})


def _unknown(message: str) -> APIError:
    """A plain Go error surfacing from the handler: 500 with an empty (Unknown) reason."""
    return APIError(500, "", message)


# --- the updater --------------------------------------------------------------------


def _update(
    ctx: _Ctx, old: Any, new: Any, managers: mf.Managers, *, workflow: str, force: bool
) -> tuple[mf.Managers, Any]:
    """Take changed fields from other managers; raise ConflictsError unless forced."""
    cmp = _compare(ctx, old, new)
    changed = cmp.modified.union(cmp.added)
    conflicts: dict[str, FieldSet] = {}
    for manager, vs in managers.items():
        if manager == workflow:
            continue
        owned = vs.set.intersection(changed)
        if not owned.empty():
            conflicts[manager] = owned
    if conflicts and not force:
        raise ConflictsError(
            [Conflict(m, p) for m in sorted(conflicts) for p in conflicts[m].paths()]
        )
    out: mf.Managers = {}
    for manager, vs in managers.items():
        fs = vs.set
        if manager != workflow:
            if manager in conflicts:
                fs = fs.difference(conflicts[manager])
            if not cmp.removed.empty():
                fs = fs.difference(cmp.removed)
        if not fs.empty():
            out[manager] = mf.VersionedSet(fs, vs.api_version, vs.applied)
    return out, cmp


def _structured_update(
    ctx: _Ctx, old: Any, new: Any, managers: mf.Managers, manager: str
) -> mf.Managers:
    managers, cmp = _update(ctx, old, new, managers, workflow=manager, force=True)
    current = managers.get(manager)
    fs = current.set if current is not None else FieldSet()
    fs = fs.difference(cmp.removed).union(cmp.modified).union(cmp.added)
    fs = fs.recursive_difference(ctx.ignore)
    if fs.empty():
        managers.pop(manager, None)
    else:
        managers[manager] = mf.VersionedSet(fs, ctx.version, False)
    return managers


def _prune(ctx: _Ctx, merged: Any, managers: mf.Managers, last: mf.VersionedSet | None) -> Any:
    """Remove what the applier owned last time and no longer applies, unless owned elsewhere."""
    if last is None or last.set.empty():
        return merged
    atom = ctx.atom

    def named(fs: FieldSet) -> FieldSet:
        return ensure_named_fields_are_members(fs, atom)

    pruned = remove_items(merged, named(last.set), atom)
    managed = FieldSet()
    for vs in managers.values():
        managed = managed.union(vs.set)
    merged_set = named(to_field_set(merged, atom))
    pruned_set = named(to_field_set(pruned, atom))
    pruned = remove_items(merged, merged_set.difference(pruned_set.union(named(managed))), atom)
    pruned_set = named(to_field_set(pruned, atom))
    return remove_items(
        merged, merged_set.difference(pruned_set).intersection(named(last.set)), atom
    )


def _structured_apply(
    ctx: _Ctx,
    live: dict[str, Any],
    config: dict[str, Any],
    managers: mf.Managers,
    *,
    manager: str,
    force: bool,
) -> tuple[dict[str, Any] | None, mf.Managers]:
    try:
        validate(config, ctx.atom)
    except TypedError as e:
        raise _unknown(
            f"failed to create typed patch object ({_object_ref(config, ctx.version)}): {e}"
        ) from None
    merged = merge(live, config, ctx.atom)
    new: dict[str, Any] = {} if merged is MISSING else merged
    last = managers.get(manager)
    applied_set = to_field_set(config, ctx.atom).recursive_difference(ctx.ignore)
    managers = dict(managers)
    managers[manager] = mf.VersionedSet(applied_set, ctx.version, True)
    new = _prune(ctx, new, managers, last)
    managers, _ = _update(ctx, live, new, managers, workflow=manager, force=force)
    if json_equal(live, new):
        return None, managers
    return new, managers


# --- the manager stack --------------------------------------------------------------


def _update_stack(
    ctx: _Ctx, live: Any, new: Any, managers: mf.Managers, times: mf.Times, manager: str
) -> None:
    """capManagers > buildManagerInfo > managedFieldsUpdater > stripMeta > updater.Update."""
    identifier = mf.build_identifier(
        manager=manager or "unknown",
        operation=mf.UPDATE,
        api_version=ctx.version,
        subresource=ctx.subresource,
    )
    updated = _structured_update(ctx, live, new, dict(managers), mf.CURRENT_OPERATION)
    mf.strip_meta(updated, mf.CURRENT_OPERATION)
    current = updated.pop(mf.CURRENT_OPERATION, None)
    if current is not None:
        previous = updated.get(identifier)
        fs = current.set.union(previous.set) if previous is not None else current.set
        updated[identifier] = mf.VersionedSet(fs, current.api_version, current.applied)
        times[identifier] = ctx.now
    managers.clear()
    managers.update(updated)
    mf.cap_update_managers(managers, times)


def _apply_stack(
    ctx: _Ctx,
    live: dict[str, Any],
    config: dict[str, Any],
    managers: mf.Managers,
    times: mf.Times,
    *,
    manager: str,
    force: bool,
) -> dict[str, Any]:
    """skipNonApplied > buildManagerInfo > managedFieldsUpdater > stripMeta > updater.Apply."""
    if not managers:
        _update_stack(ctx, {}, live, managers, times, mf.BEFORE_FIRST_APPLY)
    identifier = mf.build_identifier(
        manager=manager or "unknown",
        operation=mf.APPLY,
        api_version=ctx.version,
        subresource=ctx.subresource,
    )
    new, updated = _structured_apply(ctx, live, config, managers, manager=identifier, force=force)
    mf.strip_meta(updated, identifier)
    managers.clear()
    managers.update(updated)
    if new is None:
        return clone(live)
    times[identifier] = ctx.now
    return new


def _allowed_by_last_applied(ctx: _Ctx, live: dict[str, Any]) -> FieldSet | None:
    """Fields whose live value still equals kubectl's last-applied-configuration."""
    text = (_meta(live).get("annotations") or {}).get(LAST_APPLIED)
    if not text:
        return None
    try:
        last = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(last, dict) or last.get("apiVersion") != ctx.version:
        return None
    try:
        validate(last, ctx.atom)
    except TypedError:
        return None
    fs = to_field_set(last, ctx.atom)
    cmp = compare(last, live, ctx.atom)
    return fs.difference(cmp.modified).difference(cmp.added).difference(cmp.removed)


def _apply_forgiving_last_applied(
    ctx: _Ctx,
    live: dict[str, Any],
    config: dict[str, Any],
    managers: mf.Managers,
    times: mf.Times,
    *,
    manager: str,
    force: bool,
) -> tuple[dict[str, Any], mf.Managers, mf.Times]:
    def attempt(forced: bool) -> tuple[dict[str, Any], mf.Managers, mf.Times]:
        m, t = dict(managers), dict(times)
        obj = _apply_stack(ctx, live, config, m, t, manager=manager, force=forced)
        return obj, m, t

    try:
        return attempt(force)
    except ConflictsError as e:
        if manager != "kubectl":
            raise
        allowed = _allowed_by_last_applied(ctx, live)
        if allowed is None:
            raise
        remaining = [c for c in e.conflicts if not allowed.has(c.path)]
        if remaining:
            raise ConflictsError(remaining) from None
        return attempt(True)


def _annotations_size(annotations: dict[str, Any]) -> int:
    return sum(len(k) + len(v) for k, v in annotations.items() if isinstance(v, str))


def _update_last_applied(obj: dict[str, Any], config: dict[str, Any]) -> None:
    annotations = _meta(obj).get("annotations")
    if not isinstance(annotations, dict) or not annotations.get(LAST_APPLIED):
        return
    last = clone(config)
    last_meta = last.get("metadata")
    if isinstance(last_meta, dict) and isinstance(last_meta.get("annotations"), dict):
        last_meta["annotations"].pop(LAST_APPLIED, None)
    annotations = dict(annotations)
    annotations[LAST_APPLIED] = go_json(last) + "\n"
    if _annotations_size(annotations) > TOTAL_ANNOTATION_SIZE_LIMIT:
        del annotations[LAST_APPLIED]
    obj["metadata"] = {**_meta(obj), "annotations": annotations}


def _drop_nulls(obj: Any) -> Any:
    """Nulls set by a configuration decode to unset fields upstream; do not store them."""
    if isinstance(obj, dict):
        for key in [k for k, v in obj.items() if v is None]:
            del obj[key]
        for value in obj.values():
            _drop_nulls(value)
    elif isinstance(obj, list):
        for value in obj:
            _drop_nulls(value)
    return obj


def _set_managed_fields(
    obj: dict[str, Any], managers: mf.Managers, times: mf.Times
) -> dict[str, Any]:
    meta = dict(_meta(obj))
    if managers:
        meta["managedFields"] = mf.encode(managers, times)
    else:
        meta.pop("managedFields", None)
    obj["metadata"] = meta
    return obj


# --- public API ---------------------------------------------------------------------


def apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    *,
    manager: str,
    force: bool,
    schema: Schema | None,
    now: str,
    subresource: str = "",
    ignore_status: bool = False,
    reset_paths: Iterable[Sequence[str]] = (),
    api_version: str | None = None,
    kind: str | None = None,
) -> dict[str, Any]:
    """Server-side apply ``applied`` onto ``live`` (None: create) for ``manager``.

    Returns the new object with ``metadata.managedFields`` updated; raises APIError 409
    on conflicts (unless ``force``), 400 for a wrong kind or a request carrying
    managedFields, 500 (empty reason) for a configuration that does not fit the schema.
    ``api_version``/``kind`` are the endpoint's; when given, the configuration must match.
    """
    if not isinstance(applied, dict):
        raise bad_request("error decoding YAML: the apply configuration must be an object")
    gv, kd = str(applied.get("apiVersion", "")), str(applied.get("kind", ""))
    if api_version is not None and kind is not None and (gv, kd) != (api_version, kind):
        raise bad_request(f"invalid object type: {_gvk_string(gv, kd)}")
    if _meta(applied).get("managedFields") is not None:
        raise bad_request("metadata.managedFields must be nil")
    ctx = _Ctx(
        atom=_root_atom(schema),
        ignore=_ignore_set(
            ignore_status=ignore_status, reset_paths=reset_paths, subresource=subresource
        ),
        version=api_version or gv,
        now=now,
        subresource=subresource,
    )
    try:
        managers, times = mf.decode(_meta(live or {}).get("managedFields"))
    except mf.ManagedFieldsError as e:
        raise _unknown(f"failed to decode managed fields: {e}") from None
    base = clone(_without_managed_fields(live))
    try:
        obj, managers, times = _apply_forgiving_last_applied(
            ctx, base, applied, managers, times, manager=manager, force=force
        )
    except ConflictsError as e:
        raise conflict_error(e.conflicts) from None
    obj = _drop_nulls(clone(obj))
    if manager == "kubectl":
        _update_last_applied(obj, applied)
    return _set_managed_fields(obj, managers, times)


def _decode_live_or_new(
    old: dict[str, Any] | None, new: dict[str, Any], *, ignore_request: bool
) -> tuple[mf.Managers, mf.Times]:
    def from_live() -> tuple[mf.Managers, mf.Times]:
        try:
            return mf.decode(_meta(old or {}).get("managedFields"))
        except mf.ManagedFieldsError:
            return {}, {}

    if ignore_request:
        return from_live()
    requested = _meta(new).get("managedFields")
    if mf.is_reset(requested):
        return {}, {}
    try:
        managers, times = mf.decode(requested)
    except mf.ManagedFieldsError:
        return from_live()
    return (managers, times) if managers else from_live()


def update_managed_fields(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    schema: Schema | None,
    now: str,
    operation: str = mf.UPDATE,
    subresource: str = "",
    ignore_status: bool = False,
    reset_paths: Iterable[Sequence[str]] = (),
    api_version: str | None = None,
) -> dict[str, Any]:
    """Record a non-apply write (POST, PUT, PATCH) of ``new`` over ``old`` (None: create).

    The fields that changed go to ``manager`` (operation Update) and leave every other
    manager.  ``managedFields`` sent by the client are honoured as upstream does: a valid
    non-empty list replaces the recorded one, ``[]`` resets it (and an existing object
    then stays untracked); on a subresource they are ignored.  Never raises for bad
    managedFields: on internal failure the old managedFields are kept.
    """
    if operation != mf.UPDATE:
        raise ValueError("update_managed_fields records Update operations only")
    result = clone(_without_managed_fields(new))
    try:
        managers, times = _decode_live_or_new(old, new, ignore_request=bool(subresource))
        if not managers and old is not None and _meta(old).get("uid"):
            return _set_managed_fields(result, {}, {})
        ctx = _Ctx(
            atom=_root_atom(schema),
            ignore=_ignore_set(
                ignore_status=ignore_status, reset_paths=reset_paths, subresource=subresource
            ),
            version=api_version
            or str(new.get("apiVersion") or (old or {}).get("apiVersion") or ""),
            now=now,
            subresource=subresource,
        )
        _update_stack(ctx, _without_managed_fields(old), result, managers, times, manager)
    except (ValueError, TypeError, KeyError, RecursionError):
        meta = dict(_meta(result))
        previous = _meta(old or {}).get("managedFields")
        if previous:
            meta["managedFields"] = clone(previous)
        result["metadata"] = meta
        return result
    return _set_managed_fields(result, managers, times)


__all__ = ["Conflict", "ConflictsError", "apply", "conflict_error", "update_managed_fields"]
