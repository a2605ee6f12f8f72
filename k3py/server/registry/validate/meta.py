"""ObjectMeta, labels, annotations and label selectors (apimachinery's api/validation).

Differences from upstream, all because our pipeline may run validation before the
registry fills in system fields: an empty ``name`` with a ``generateName`` is
accepted (the server generates the name), and updates are not required to carry a
``resourceVersion`` (unconditional updates are resolved by the caller).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from k3py.apimachinery import names
from k3py.server.errors import Cause

from . import formats
from .access import get_list, get_map, get_str, has
from .field import (
    GoValue,
    Path,
    duplicate,
    forbidden,
    go_map,
    go_quote,
    go_slice,
    invalid,
    not_supported,
    required,
    too_long,
)

TOTAL_ANNOTATION_SIZE = 256 * 1024
STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})
IMMUTABLE_MSG = "field is immutable"
NEGATIVE_MSG = "must be greater than or equal to 0"

META = Path("metadata")


def nonnegative(path: Path, value: int | None) -> list[Cause]:
    if value is not None and value < 0:
        return [invalid(path, value, NEGATIVE_MSG)]
    return []


def validate_label_name(key: str, path: Path) -> list[Cause]:
    return [invalid(path, key, m) for m in names.check_qualified_name(key)]


def validate_labels(labels: dict[str, Any], path: Path) -> list[Cause]:
    out: list[Cause] = []
    for k, v in labels.items():
        out += validate_label_name(k, path)
        value = v if isinstance(v, str) else ""
        out += [invalid(path, value, m) for m in names.check_label_value(value)]
    return out


def validate_annotations(annotations: dict[str, Any], path: Path) -> list[Cause]:
    out: list[Cause] = []
    size = 0
    for k, v in annotations.items():
        out += [invalid(path, k, m) for m in names.check_qualified_name(k.lower())]
        size += len(k.encode()) + len(v.encode() if isinstance(v, str) else b"")
    if size > TOTAL_ANNOTATION_SIZE:
        out.append(too_long(path, TOTAL_ANNOTATION_SIZE))
    return out


def _gvk_of(api_version: str, kind: str) -> tuple[str, str, str]:
    parts = api_version.split("/")
    if api_version == "":
        return "", "", kind
    if len(parts) == 1:
        return "", parts[0], kind
    if len(parts) == 2:
        return parts[0], parts[1], kind
    return "", "", kind


def _owner_ref_text(ref: dict[str, Any]) -> GoValue:
    fields = ", ".join(
        f"{go_name}:{go_quote(get_str(ref, key))}"
        for go_name, key in (("APIVersion", "apiVersion"), ("Kind", "kind"), ("Name", "name"))
    )
    return GoValue(f"v1.OwnerReference{{{fields}, UID:{go_quote(get_str(ref, 'uid'))}}}")


def validate_owner_references(refs: list[Any], path: Path) -> list[Cause]:
    out: list[Cause] = []
    first_controller = ""
    for raw in refs:
        ref = raw if isinstance(raw, dict) else {}
        group, version, kind = _gvk_of(get_str(ref, "apiVersion"), get_str(ref, "kind"))
        if not version:
            out.append(
                invalid(
                    path.child("apiVersion"),
                    get_str(ref, "apiVersion"),
                    "version must not be empty",
                )
            )
        for key in ("kind", "name", "uid"):
            if not get_str(ref, key):
                out.append(invalid(path.child(key), "", "must not be empty"))
        if (group, version, kind) == ("", "v1", "Event"):
            out.append(
                invalid(
                    path, _owner_ref_text(ref), "/v1, Kind=Event is disallowed from being an owner"
                )
            )
        if ref.get("controller") is True:
            current = f"{kind}/{get_str(ref, 'name')}"
            if first_controller:
                msg = (
                    'Only one reference can have Controller set to true. Found "true" in '
                    f"references for {first_controller} and {current}"
                )
                out.append(invalid(path, GoValue("[]v1.OwnerReference{...}"), msg))
            else:
                first_controller = current
    return out


def validate_finalizers(finalizers: list[Any], path: Path, *, builtin: bool) -> list[Cause]:
    out: list[Cause] = []
    items = [f if isinstance(f, str) else "" for f in finalizers]
    for item in items:
        out += [invalid(path, item, m) for m in names.check_qualified_name(item)]
    if "orphan" in items and "foregroundDeletion" in items:
        msg = "finalizer orphan and foregroundDeletion cannot be both set"
        out.append(invalid(path, go_slice(items), msg))
    if builtin:
        for i, item in enumerate(items):
            if "/" not in item and item not in STANDARD_FINALIZERS:
                msg = "name is neither a standard finalizer name nor is it fully qualified"
                out.append(invalid(path.at(i), item, msg))
    return out


def validate_managed_fields(entries: list[Any], path: Path) -> list[Cause]:
    out: list[Cause] = []
    for i, raw in enumerate(entries):
        entry = raw if isinstance(raw, dict) else {}
        p = path.at(i)
        op = get_str(entry, "operation")
        if op not in ("Apply", "Update"):
            out.append(not_supported(p.child("operation"), op, ["Apply", "Update"]))
        ftype = get_str(entry, "fieldsType")
        if ftype != "FieldsV1":
            out.append(not_supported(p.child("fieldsType"), ftype, ["FieldsV1"]))
    return out


def _common(meta: dict[str, Any], *, namespaced: bool, builtin: bool) -> list[Cause]:
    out: list[Cause] = []
    ns = get_str(meta, "namespace")
    if namespaced:
        if not ns:
            out.append(required(META.child("namespace")))
        else:
            out += [invalid(META.child("namespace"), ns, m) for m in names.check_dns1123_label(ns)]
    elif ns:
        out.append(forbidden(META.child("namespace"), "not allowed on this type"))
    gen = meta.get("generation")
    if isinstance(gen, int):
        out += nonnegative(META.child("generation"), gen)
    out += validate_meta_lists(meta, builtin=builtin)
    return out


_LABELS, _ANNOTATIONS = META.child("labels"), META.child("annotations")
_OWNERS, _FINALIZERS = META.child("ownerReferences"), META.child("finalizers")
_MANAGED_FIELDS = META.child("managedFields")


def validate_meta_lists(meta: dict[str, Any], *, builtin: bool) -> list[Cause]:
    # Each check finds nothing in an empty map or list: skip those (most of them).
    labels, annotations = get_map(meta, "labels"), get_map(meta, "annotations")
    out = validate_labels(labels, _LABELS) if labels else []
    if annotations:
        out += validate_annotations(annotations, _ANNOTATIONS)
    owners, finalizers = get_list(meta, "ownerReferences"), get_list(meta, "finalizers")
    if owners:
        out += validate_owner_references(owners, _OWNERS)
    if finalizers:
        out += validate_finalizers(finalizers, _FINALIZERS, builtin=builtin)
    managed = get_list(meta, "managedFields")
    if managed:
        out += validate_managed_fields(managed, _MANAGED_FIELDS)
    return out


def validate_object_meta(
    obj: dict[str, Any],
    *,
    namespaced: bool,
    name_fn: Callable[[str, bool], list[str]],
    builtin: bool = True,
) -> list[Cause]:
    """``ValidateObjectMeta`` on create."""
    meta = get_map(obj, "metadata")
    out: list[Cause] = []
    generate = get_str(meta, "generateName")
    if generate:
        out += [invalid(META.child("generateName"), generate, m) for m in name_fn(generate, True)]
    name = get_str(meta, "name")
    if not name:
        if not generate:
            out.append(required(META.child("name"), "name or generateName is required"))
    else:
        out += [invalid(META.child("name"), name, m) for m in name_fn(name, False)]
    return out + _common(meta, namespaced=namespaced, builtin=builtin)


def _time_text(value: str) -> GoValue | str:
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return GoValue(t.strftime("%Y-%m-%d %H:%M:%S +0000 UTC"))


def semantic(value: Any) -> Any:
    """``value`` with null, empty maps and empty lists dropped: Go's semantic equality
    treats a nil slice or map like an empty one, and a missing field like a nil one."""
    if isinstance(value, dict):
        out = {k: semantic(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [semantic(v) for v in value]
    return value


def semantic_equal(a: Any, b: Any) -> bool:
    return bool(semantic(a) == semantic(b)) or (a in (None, {}, []) and b in (None, {}, []))


def _immutable(path: Path, new: Any, old: Any, *, show: Any = None) -> list[Cause]:
    if not semantic_equal(new, old):
        return [invalid(path, new if show is None else show, IMMUTABLE_MSG)]
    return []


def validate_object_meta_update(
    obj: dict[str, Any], old: dict[str, Any], *, builtin: bool = True
) -> list[Cause]:
    """``ValidateObjectMetaUpdate``; uid and timestamps are compared only when sent."""
    meta, old_meta = get_map(obj, "metadata"), get_map(old, "metadata")
    out: list[Cause] = []
    if has(old_meta, "deletionTimestamp"):
        extra = sorted(set(get_list(meta, "finalizers")) - set(get_list(old_meta, "finalizers")))
        if extra:
            msg = (
                "no new finalizers can be added if the object is being deleted, "
                "found new finalizers"
            )
            out.append(forbidden(META.child("finalizers"), f"{msg} {go_slice(extra).text}"))
    for key in ("name", "namespace"):
        out += _immutable(META.child(key), get_str(meta, key), get_str(old_meta, key))
    if get_str(meta, "uid"):
        out += _immutable(META.child("uid"), get_str(meta, "uid"), get_str(old_meta, "uid"))
    for key in ("creationTimestamp", "deletionTimestamp"):
        if has(meta, key):
            new_t = get_str(meta, key)
            out += _immutable(
                META.child(key), new_t, get_str(old_meta, key), show=_time_text(new_t)
            )
    if has(meta, "deletionGracePeriodSeconds"):
        out += _immutable(
            META.child("deletionGracePeriodSeconds"),
            meta.get("deletionGracePeriodSeconds"),
            old_meta.get("deletionGracePeriodSeconds"),
        )
    return out + validate_meta_lists(meta, builtin=builtin)


def immutable_field(path: Path, new: Any, old: Any, *, show: Any = None) -> list[Cause]:
    """``ValidateImmutableField`` (null and missing are the same)."""
    return _immutable(path, new, old, show=show)


# -- label selectors ----------------------------------------------------------------

SELECTOR_OPS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector(
    selector: Any, path: Path, *, allow_invalid_values: bool = False
) -> list[Cause]:
    if not isinstance(selector, dict):
        return []
    out = validate_labels(get_map(selector, "matchLabels"), path.child("matchLabels"))
    for i, raw in enumerate(get_list(selector, "matchExpressions")):
        req = raw if isinstance(raw, dict) else {}
        p = path.child("matchExpressions").at(i)
        op, values = get_str(req, "operator"), get_list(req, "values")
        if op in ("In", "NotIn"):
            if not values:
                detail = "must be specified when `operator` is 'In' or 'NotIn'"
                out.append(required(p.child("values"), detail))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                detail = "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                out.append(forbidden(p.child("values"), detail))
        else:
            out.append(invalid(p.child("operator"), op, "not a valid selector operator"))
        out += validate_label_name(get_str(req, "key"), p.child("key"))
        if not allow_invalid_values:
            for j, v in enumerate(values):
                text = v if isinstance(v, str) else ""
                out += [
                    invalid(p.child("values").at(j), text, m) for m in names.check_label_value(text)
                ]
    return out


class Selector:
    """``labels.Selector`` from a ``LabelSelector``; ``None`` selects nothing."""

    def __init__(self, selector: Any) -> None:
        self.nothing = not isinstance(selector, dict)
        self.requirements: list[tuple[str, str, list[str]]] = []
        if self.nothing:
            return
        for k, v in get_map(selector, "matchLabels").items():
            self.requirements.append((k, "In", [v]))
        for raw in get_list(selector, "matchExpressions"):
            req = raw if isinstance(raw, dict) else {}
            op, values = get_str(req, "operator"), [str(v) for v in get_list(req, "values")]
            if op not in SELECTOR_OPS:
                raise ValueError(f'"{op}" is not a valid label selector operator')
            if op in ("In", "NotIn") and not values:
                raise ValueError("for 'in', 'notin' operators, values set can't be empty")
            if op in ("Exists", "DoesNotExist") and values:
                raise ValueError("values set must be empty for exists and does not exist")
            self.requirements.append((get_str(req, "key"), op, values))

    @property
    def empty(self) -> bool:
        return not self.nothing and not self.requirements

    def matches(self, labels: dict[str, Any]) -> bool:
        if self.nothing:
            return False
        for key, op, values in self.requirements:
            present = key in labels
            if op == "In" and not (present and labels[key] in values):
                return False
            if op == "NotIn" and present and labels[key] in values:
                return False
            if op == "Exists" and not present:
                return False
            if op == "DoesNotExist" and present:
                return False
        return True


def as_selector(selector: Any) -> Selector | None:
    """The selector, or None when it cannot be converted (invalid operator...)."""
    try:
        return Selector(selector)
    except ValueError:
        return None


def labels_value(labels: Any) -> GoValue:
    return go_map(labels if isinstance(labels, dict) else None)


def label_selector_value(selector: Any) -> GoValue:
    """``%#v`` of a ``*metav1.LabelSelector`` as seen in upstream messages."""
    if not isinstance(selector, dict):
        return GoValue("null")
    ml = selector.get("matchLabels")
    labels = go_map(ml if isinstance(ml, dict) else None).text
    exprs = get_list(selector, "matchExpressions")
    if exprs:
        items = ", ".join(
            f"v1.LabelSelectorRequirement{{Key:{go_quote(get_str(e, 'key'))}, "
            f"Operator:{go_quote(get_str(e, 'operator'))}, "
            f"Values:{go_slice(get_list(e, 'values')).text}}}"
            for e in exprs
            if isinstance(e, dict)
        )
        expr_text = f"[]v1.LabelSelectorRequirement{{{items}}}"
    else:
        expr_text = "[]v1.LabelSelectorRequirement(nil)"
    return GoValue(f"v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{expr_text}}}")


def unique(items: list[str], path_of: Callable[[int], Path]) -> list[Cause]:
    seen: set[str] = set()
    out: list[Cause] = []
    for i, item in enumerate(items):
        if item in seen:
            out.append(duplicate(path_of(i), item))
        seen.add(item)
    return out


def name_errors(path: Path, value: str, fn: formats.NameFn) -> list[Cause]:
    return [invalid(path, value, m) for m in fn(value, False)]
