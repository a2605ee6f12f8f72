"""``metadata.managedFields``: decoding, encoding, manager identities and their upkeep.

Internally the managers of an object are a dict keyed by a *manager identifier*: the
compact JSON of a ManagedFieldsEntry holding only manager, operation, apiVersion (blank
for Apply) and subresource, exactly as apimachinery builds it.  The same manager may
therefore own one Apply entry and one Update entry per apiVersion.  Each identifier maps
to a :class:`VersionedSet` (its fields, the apiVersion they were recorded at, whether
they were applied) and to a time (RFC 3339 text, as passed in by the caller).

Encoding sorts entries as upstream does (operation, time, manager, apiVersion,
subresource); updaters beyond ten are folded into ``ancient-changes`` oldest first.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from k3py.apimachinery.fieldpath import FieldSet, field_pe
from k3py.apimachinery.gofmt import go_json, go_quote

APPLY, UPDATE = "Apply", "Update"
FIELDS_V1 = "FieldsV1"
MAX_UPDATE_MANAGERS = 10
ANCIENT_CHANGES = "ancient-changes"
BEFORE_FIRST_APPLY = "before-first-apply"
CURRENT_OPERATION = "current-operation"


@dataclass(slots=True)
class VersionedSet:
    set: FieldSet
    api_version: str
    applied: bool


Managers = dict[str, VersionedSet]
Times = dict[str, str | None]


class ManagedFieldsError(ValueError):
    pass


def build_identifier(
    *, manager: str, operation: str, api_version: str, subresource: str = ""
) -> str:
    """``BuildManagerIdentifier``: compact JSON of the identifying fields, Go field order."""
    return _identifier(manager, operation, api_version, subresource)


@functools.lru_cache(maxsize=4096)
def _identifier(manager: str, operation: str, api_version: str, subresource: str) -> str:
    entry: dict[str, str] = {}
    if manager:
        entry["manager"] = manager
    if operation:
        entry["operation"] = operation
    if api_version and operation != APPLY:
        entry["apiVersion"] = api_version
    if subresource:
        entry["subresource"] = subresource
    return go_json(entry, sort_keys=False)


def parse_identifier(identifier: str) -> dict[str, Any]:
    return dict(_parsed_identifier(identifier))


@functools.lru_cache(maxsize=4096)
def _parsed_identifier(identifier: str) -> dict[str, Any]:
    """Shared: callers only read it (``parse_identifier`` hands out copies)."""
    try:
        parsed = json.loads(identifier)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def print_manager(identifier: str) -> str:
    """How conflict messages name a manager: ``"kubectl" using apps/v1``."""
    entry = parse_identifier(identifier)
    if not entry:
        return go_quote(identifier)
    text = go_quote(str(entry.get("manager", "")))
    if entry.get("subresource"):
        text += f" with subresource {go_quote(str(entry['subresource']))}"
    if entry.get("operation") == UPDATE:
        return f"{text} using {entry.get('apiVersion', '')}"
    return text


def decode(entries: Any) -> tuple[Managers, Times]:
    """Decode ``metadata.managedFields``; raises ManagedFieldsError with upstream's texts."""
    managers: Managers = {}
    times: Times = {}
    if entries is None:
        return managers, times
    if not isinstance(entries, list):
        raise ManagedFieldsError("managedFields must be a list")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ManagedFieldsError(f"invalid managed fields entry {i}")
        operation = entry.get("operation")
        if operation not in (APPLY, UPDATE):
            raise ManagedFieldsError("operation must be `Apply` or `Update`")
        api_version = entry.get("apiVersion") or ""
        if not api_version:
            raise ManagedFieldsError("apiVersion must not be empty")
        fields_type = entry.get("fieldsType") or ""
        if fields_type == "":
            raise ManagedFieldsError(f"missing fieldsType in managed fields entry {i}")
        if fields_type != FIELDS_V1:
            raise ManagedFieldsError(
                f'invalid fieldsType "{fields_type}" in managed fields entry {i}'
            )
        identifier = build_identifier(
            manager=str(entry.get("manager") or ""),
            operation=operation,
            api_version=api_version,
            subresource=str(entry.get("subresource") or ""),
        )
        try:
            fs = FieldSet.from_fields_v1(entry.get("fieldsV1"))
        except (ValueError, TypeError) as e:
            raise ManagedFieldsError(
                f"error decoding versioned set: error decoding set: {e}"
            ) from None
        managers[identifier] = VersionedSet(fs, api_version, operation == APPLY)
        times[identifier] = entry.get("time")
    return managers, times


def is_reset(entries: Any) -> bool:
    """A client asks to clear managedFields with ``[]`` or ``[{}]``."""
    if not isinstance(entries, list):
        return False
    return len(entries) == 0 or (len(entries) == 1 and entries[0] == {})


def _seconds(time: str | None) -> int:
    if not time:
        return 0
    try:
        return int(datetime.fromisoformat(time.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def encode(managers: Managers, times: Times) -> list[dict[str, Any]]:
    """The ``managedFields`` list, sorted like upstream."""
    entries: list[dict[str, Any]] = []
    for identifier, vs in managers.items():
        ident = _parsed_identifier(identifier)
        entry: dict[str, Any] = {}
        if ident.get("manager"):
            entry["manager"] = ident["manager"]
        entry["operation"] = APPLY if vs.applied else ident.get("operation", UPDATE)
        entry["apiVersion"] = vs.api_version
        if times.get(identifier):
            entry["time"] = times[identifier]
        entry["fieldsType"] = FIELDS_V1
        entry["fieldsV1"] = vs.set.to_fields_v1()
        if ident.get("subresource"):
            entry["subresource"] = ident["subresource"]
        entries.append(entry)
    if len(entries) < 2:
        return entries
    entries.sort(
        key=lambda e: (
            e["operation"],
            _seconds(e.get("time")),
            e.get("manager", ""),
            e["apiVersion"],
            e.get("subresource", ""),
        )
    )
    return entries


def cap_update_managers(
    managers: Managers, times: Times, *, limit: int = MAX_UPDATE_MANAGERS
) -> None:
    """Fold the oldest updaters into ``ancient-changes`` until at most ``limit`` remain."""
    updaters = [m for m, vs in managers.items() if not vs.applied]
    if len(updaters) <= limit:
        return
    updaters.sort(key=lambda m: (_seconds(times.get(m)), m))
    first_by_version: dict[str, str] = {}
    length = len(updaters)
    for manager in updaters:
        if length <= limit:
            break
        vs = managers[manager]
        bucket = build_identifier(
            manager=ANCIENT_CHANGES, operation=UPDATE, api_version=vs.api_version
        )
        first = first_by_version.get(vs.api_version)
        if first is None:
            first_by_version[vs.api_version] = manager
            continue
        if bucket not in managers:
            managers[bucket] = managers.pop(first)
        managers[bucket] = VersionedSet(
            vs.set.union(managers[bucket].set), vs.api_version, vs.applied
        )
        del managers[manager]
        length -= 1
        times[bucket] = times.get(manager)


def _strip_set() -> FieldSet:
    fs = FieldSet.of(*((field_pe(n),) for n in ("apiVersion", "kind", "metadata")))
    for name in (
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ):
        fs.insert((field_pe("metadata"), field_pe(name)))
    return fs


STRIP_SET = _strip_set()


def strip_meta(managers: Managers, identifier: str) -> None:
    """Drop the fields the apiserver resets itself (name, uid, resourceVersion...)."""
    vs = managers.get(identifier)
    if vs is None:
        return
    remaining = vs.set.difference(STRIP_SET)
    if remaining.empty():
        del managers[identifier]
    else:
        managers[identifier] = VersionedSet(remaining, vs.api_version, vs.applied)


def update_managed_fields(
    old: dict[str, Any] | None, new: dict[str, Any], **kwargs: Any
) -> dict[str, Any]:
    """See :func:`k3py.apimachinery.apply.update_managed_fields` (re-exported here)."""
    from k3py.apimachinery.apply import update_managed_fields as update

    return update(old, new, **kwargs)
