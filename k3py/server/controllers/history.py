"""ControllerRevisions: the template history of StatefulSets and DaemonSets, as upstream's
``pkg/controller/history`` and the two controllers' ``getPatch``/``snapshot``.

A revision's ``data`` is the strategic merge patch that puts the owner's pod template
back: ``{"spec":{"template":{"$patch":"replace", ...template}}}``, encoded as Go's
``json.Marshal`` of a map would (keys sorted, ``<>&`` escaped), so that
``kubectl rollout undo`` (which PATCHes the owner with that data, strategic merge) and
``kubectl rollout history --revision=N`` (which applies it to the owner locally) work
unchanged.  ``kubectl`` finds the revisions by the owner's selector and keeps those the
owner controls, so a revision carries the template's labels plus
``controller-revision-hash`` and a controller reference to its owner.

Names are ``<owner>-<hash>``; a StatefulSet's hash is upstream's
``HashControllerRevision`` (FNV-32 of the data and the collision count, in
``SafeEncodeString`` letters), a DaemonSet's a hash of its template.  Two revisions are
equal when their hashes and decoded data are (decoding makes equality immune to
encoding details).  ``revision`` numbers grow by one per template change; going back to
an old template re-numbers the old revision instead of making a new one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from k3py.client import AlreadyExists, ApiError, Client, Conflict, NotFound
from k3py.client.resources import CONTROLLERREVISIONS, Resource
from k3py.server.controllers.base import is_controlled_by, meta

Obj = dict[str, Any]
log = logging.getLogger("k3py.controllers.history")

REVISION_HASH_LABEL = "controller-revision-hash"
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"  # rand.SafeEncodeString's alphabet
_GO_ESCAPES = ((b"&", b"\\u0026"), (b"<", b"\\u003c"), (b">", b"\\u003e"))


# ---- encoding and hashing --------------------------------------------------------------


def go_json(value: Any) -> bytes:
    """``json.Marshal`` of decoded JSON in Go: sorted keys, compact, HTML-escaped."""
    raw = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    for plain, escaped in _GO_ESCAPES:
        raw = raw.replace(plain, escaped)
    return raw.replace("\u2028".encode(), b"\\u2028").replace("\u2029".encode(), b"\\u2029")


def safe_encode(text: str) -> str:
    """apimachinery's ``rand.SafeEncodeString``: no vowels, no look-alike characters."""
    return "".join(_ALPHANUMS[ord(c) % len(_ALPHANUMS)] for c in text)


def fnv32(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = (h * 0x01000193) & 0xFFFFFFFF
        h ^= b
    return h


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def hash_revision_data(raw: bytes, *, collision_count: int | None) -> str:
    """``HashControllerRevision``: FNV-32 of the data (and the collision count)."""
    if collision_count is not None:
        raw = raw + str(collision_count).encode()
    return safe_encode(str(fnv32(raw)))


def hash_template(template: Obj, *, collision_count: int | None) -> str:
    """A DaemonSet's template hash (upstream's ``ComputeHash``, over the JSON form)."""
    raw = go_json(template)
    if collision_count is not None:
        raw = raw + str(collision_count).encode()
    return safe_encode(str(fnv32a(raw)))


def revision_name(prefix: str, hash_: str) -> str:
    return f"{prefix[:223]}-{hash_}"


def template_patch(owner: Obj) -> bytes:
    """The revision data of ``owner``: a patch replacing ``spec.template``."""
    template = dict((owner.get("spec") or {}).get("template") or {})
    # Go encodes the template's zero creationTimestamp as null: kubectl compares bytes.
    template["metadata"] = {"creationTimestamp": None, **(template.get("metadata") or {})}
    template["$patch"] = "replace"
    return go_json({"spec": {"template": template}})


def template_from_data(data: Any) -> Obj | None:
    """The pod template a revision's data holds (None if it holds none)."""
    if isinstance(data, (bytes, str)):
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
    if not isinstance(data, dict):
        return None
    template = (data.get("spec") or {}).get("template")
    if not isinstance(template, dict):
        return None
    out = {k: v for k, v in template.items() if k != "$patch"}
    tmeta = out.get("metadata")
    if isinstance(tmeta, dict) and tmeta.get("creationTimestamp", "") is None:
        out["metadata"] = {k: v for k, v in tmeta.items() if k != "creationTimestamp"}
    return out


def apply_revision(owner: Obj, revision: Obj) -> Obj:
    """``owner`` with the template of ``revision`` (upstream's ``ApplyRevision``)."""
    out = orjson.loads(orjson.dumps(owner))
    template = template_from_data(revision.get("data"))
    if template is not None:
        out.setdefault("spec", {})["template"] = template
    return out  # type: ignore[no-any-return]


# ---- revision objects --------------------------------------------------------------------


def new_revision(
    owner: Obj,
    *,
    owner_res: Resource,
    revision: int,
    collision_count: int | None,
    name_hash: str | None = None,
    annotations: bool = True,
) -> Obj:
    """A ControllerRevision of ``owner``'s current template (not yet created).

    ``name_hash`` overrides the hash of the data (DaemonSets hash the template)."""
    m = meta(owner)
    spec = owner.get("spec") or {}
    labels = dict(((spec.get("template") or {}).get("metadata") or {}).get("labels") or {})
    raw = template_patch(owner)
    hash_ = name_hash or hash_revision_data(raw, collision_count=collision_count)
    labels[REVISION_HASH_LABEL] = hash_
    rmeta: Obj = {
        "name": revision_name(str(m.get("name") or ""), hash_),
        "namespace": m.get("namespace") or "default",
        "labels": labels,
        "ownerReferences": [
            {
                "apiVersion": owner_res.api_version,
                "kind": owner_res.kind,
                "name": m.get("name"),
                "uid": m.get("uid"),
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    if annotations and m.get("annotations"):
        rmeta["annotations"] = dict(m["annotations"])
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": rmeta,
        "data": orjson.loads(raw),
        "revision": revision,
    }


def revision_number(rev: Obj) -> int:
    try:
        return int(rev.get("revision") or 0)
    except (TypeError, ValueError):
        return 0


def sort_revisions(revisions: list[Obj]) -> list[Obj]:
    """Oldest first: by revision, then creation time, then name (as upstream)."""
    return sorted(
        revisions,
        key=lambda r: (
            revision_number(r),
            str(meta(r).get("creationTimestamp") or ""),
            str(meta(r).get("name") or ""),
        ),
    )


def next_revision(revisions: list[Obj]) -> int:
    return max((revision_number(r) for r in revisions), default=0) + 1


def hash_of(rev: Obj) -> str:
    return str((meta(rev).get("labels") or {}).get(REVISION_HASH_LABEL) or "")


def _data(rev: Obj) -> Any:
    data = rev.get("data")
    if isinstance(data, (bytes, str)):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            return data
    return data


def equal_revision(a: Obj | None, b: Obj | None) -> bool:
    """``EqualRevision``: same hash label (when both have one) and the same data."""
    if a is None or b is None:
        return a is b
    ha, hb = hash_of(a), hash_of(b)
    if ha and hb and ha != hb:
        return False
    return bool(_data(a) == _data(b))


def same_template(rev: Obj, owner: Obj) -> bool:
    """Whether ``rev`` holds ``owner``'s current template (DaemonSet's ``Match``)."""
    return bool(_data(rev) == orjson.loads(template_patch(owner)))


def find_equal(revisions: list[Obj], needle: Obj) -> list[Obj]:
    return [r for r in revisions if equal_revision(r, needle)]


def owned_revisions(revisions: list[Obj], owner: Obj) -> list[Obj]:
    return [r for r in revisions if is_controlled_by(r, owner)]


# ---- writes ------------------------------------------------------------------------------


class HistoryWriter:
    """Creates, re-numbers and deletes ControllerRevisions (``history.Interface``)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def create(
        self, rev: Obj, *, owner: Obj, collision_count: int, rename: bool = True
    ) -> tuple[Obj, int]:
        """Create ``rev``; on a name taken by a different revision bump the collision
        count and try the next name (``rename=False``: return the revision in the way,
        for the caller to resolve).  Returns (the revision, the collision count)."""
        while True:
            try:
                created = await self.client.create(CONTROLLERREVISIONS, rev)
                return created, collision_count
            except AlreadyExists:
                m = meta(rev)
                existing = await self.client.get_or_none(
                    CONTROLLERREVISIONS, m["name"], namespace=m["namespace"]
                )
                if existing is not None and equal_revision(existing, rev):
                    if is_controlled_by(existing, owner) or not existing.get("metadata", {}).get(
                        "ownerReferences"
                    ):
                        return existing, collision_count
                if existing is None:
                    continue
                if not rename:
                    return existing, collision_count
                collision_count += 1
                rev = _renamed(rev, collision_count=collision_count)

    async def set_revision(self, rev: Obj, revision: int) -> Obj:
        """Give ``rev`` a new revision number (rolling back to an old template)."""
        if revision_number(rev) == revision:
            return rev
        m = meta(rev)
        return await self.client.patch(
            CONTROLLERREVISIONS, m["name"], {"revision": revision}, namespace=m["namespace"]
        )

    async def delete(self, rev: Obj) -> None:
        m = meta(rev)
        try:
            await self.client.delete(CONTROLLERREVISIONS, m["name"], namespace=m["namespace"])
        except NotFound:
            pass


def _renamed(rev: Obj, *, collision_count: int) -> Obj:
    raw = go_json(rev["data"])
    hash_ = hash_revision_data(raw, collision_count=collision_count)
    owner_name = str(meta(rev)["ownerReferences"][0]["name"])
    out = orjson.loads(orjson.dumps(rev))
    out["metadata"]["name"] = revision_name(owner_name, hash_)
    out["metadata"]["labels"][REVISION_HASH_LABEL] = hash_
    return out  # type: ignore[no-any-return]


async def claim_revisions(
    client: Client,
    *,
    owner: Obj,
    owner_res: Resource,
    selector: Any,
    candidates: list[Obj],
    can_adopt: Callable[[], Awaitable[bool]],
) -> list[Obj]:
    """The revisions ``owner`` controls after adopting matching orphans and releasing
    owned ones whose labels stopped matching (``ClaimControllerRevisions``).

    Owner references are written with JSON merge patches: a strategic merge patch would
    have to walk ``data``, which holds patch directives of its own."""
    owner_uid = str(meta(owner).get("uid") or "")
    deleting = bool(meta(owner).get("deletionTimestamp"))
    adopt_ok: bool | None = None
    claimed: list[Obj] = []
    for rev in candidates:
        refs = list(meta(rev).get("ownerReferences") or [])
        ctrl = next((r for r in refs if r.get("controller")), None)
        matches = selector.matches(meta(rev).get("labels") or {})
        if ctrl is not None:
            if ctrl.get("uid") != owner_uid:
                continue
            if matches:
                claimed.append(rev)
            elif not deleting:
                kept = [r for r in refs if r.get("uid") != owner_uid]
                await _set_owner_refs(client, rev, kept)
            continue
        if deleting or not matches or meta(rev).get("deletionTimestamp"):
            continue
        if adopt_ok is None:
            adopt_ok = await can_adopt()
        if not adopt_ok:
            continue
        ref = {
            "apiVersion": owner_res.api_version,
            "kind": owner_res.kind,
            "name": meta(owner).get("name"),
            "uid": owner_uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
        adopted = await _set_owner_refs(client, rev, [*refs, ref])
        if adopted is not None:
            claimed.append(adopted)
    return claimed


async def _set_owner_refs(client: Client, rev: Obj, refs: list[Obj]) -> Obj | None:
    m = meta(rev)
    patch = {"metadata": {"ownerReferences": refs or None, "uid": m.get("uid")}}
    try:
        return await client.patch(
            CONTROLLERREVISIONS, str(m["name"]), patch, namespace=str(m.get("namespace") or "")
        )
    except (NotFound, Conflict):
        return None
    except ApiError as e:
        log.info("owner references of ControllerRevision %s: %s", m.get("name"), e)
        return None


def revisions_to_truncate(revisions: list[Obj], *, live: set[str], limit: int) -> list[Obj]:
    """The oldest revisions beyond ``limit`` among those no pod (nor the current or
    update revision) uses; ``live`` holds names or hashes of revisions in use."""
    history = [
        r for r in sort_revisions(revisions)
        if str(meta(r).get("name")) not in live and hash_of(r) not in live
    ]  # fmt: skip
    excess = len(history) - max(0, limit)
    return history[:excess] if excess > 0 else []


__all__ = [
    "REVISION_HASH_LABEL",
    "HistoryWriter",
    "apply_revision",
    "claim_revisions",
    "equal_revision",
    "find_equal",
    "go_json",
    "hash_of",
    "hash_revision_data",
    "hash_template",
    "new_revision",
    "next_revision",
    "owned_revisions",
    "revision_name",
    "revision_number",
    "revisions_to_truncate",
    "safe_encode",
    "same_template",
    "sort_revisions",
    "template_from_data",
    "template_patch",
]
