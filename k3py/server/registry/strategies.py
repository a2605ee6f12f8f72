"""Per-kind rules the generic store applies around every write.

Upstream keeps these in each resource's ``strategy.go``: what happens to
``status`` on create and update, which changes bump ``generation``, how a status
update is cut out of an object, and which kinds are deleted gracefully.  They are
kept here as small pure functions keyed by (group, kind).
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

# Kinds whose status survives a create (the creator owns it: the kubelet registers
# its Node with status; nothing else does).
_KEEP_STATUS_ON_CREATE = {("", "Node")}

# Metadata fields a status write may not change (ResetObjectMetaForStatus).
_STATUS_RESET_META = (
    "deletionTimestamp",
    "generation",
    "labels",
    "annotations",
    "finalizers",
    "ownerReferences",
)


def qos_class(pod: Obj) -> str:
    """BestEffort, Burstable or Guaranteed, from requests and limits as upstream."""
    containers = list((pod.get("spec") or {}).get("containers") or []) + list(
        (pod.get("spec") or {}).get("initContainers") or []
    )
    requests_any = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req = res.get("requests") or {}
        lim = res.get("limits") or {}
        req = {k: v for k, v in req.items() if k in ("cpu", "memory")}
        lim = {k: v for k, v in lim.items() if k in ("cpu", "memory")}
        if req or lim:
            requests_any = True
        for r in ("cpu", "memory"):
            if r not in lim or str(req.get(r, lim.get(r))) != str(lim[r]):
                guaranteed = False
    if not requests_any:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def initial_status(group: str, kind: str, obj: Obj, *, has_status: bool, custom: bool) -> None:
    """What ``status`` looks like right after a create."""
    gk = (group, kind)
    if not has_status or gk in _KEEP_STATUS_ON_CREATE:
        return
    if gk == ("", "Pod"):
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(obj)}
    elif gk == ("", "Namespace"):
        obj["status"] = {"phase": "Active"}
    elif gk in (("", "PersistentVolume"), ("", "PersistentVolumeClaim")):
        obj["status"] = {"phase": "Pending"}
    elif gk == ("", "Service"):
        obj["status"] = {"loadBalancer": {}}
    elif custom:
        obj.pop("status", None)
    else:
        obj["status"] = {}


DS_TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"


def template_generation(group: str, kind: str, obj: Obj, old: Obj | None) -> None:
    """A DaemonSet's template generation (upstream's spec.templateGeneration, served in
    apps/v1 as an annotation): 1 on create, +1 whenever the pod template changes."""
    if (group, kind) != ("apps", "DaemonSet"):
        return
    ann = obj.setdefault("metadata", {}).setdefault("annotations", {})
    if old is None:
        ann[DS_TEMPLATE_GENERATION] = "1"
        return
    prev = ((old.get("metadata") or {}).get("annotations") or {}).get(DS_TEMPLATE_GENERATION)
    try:
        gen = int(prev or 0)
    except ValueError:
        gen = 0
    old_tpl = (old.get("spec") or {}).get("template")
    if (obj.get("spec") or {}).get("template") != old_tpl:
        gen += 1
    ann[DS_TEMPLATE_GENERATION] = str(max(gen, 1))


def spec_changed(new: Obj, old: Obj, *, group: str = "", kind: str = "") -> bool:
    """True when anything outside metadata and status differs (bumps generation).  A
    Deployment's annotations count too: they are copied to its ReplicaSets (upstream)."""
    keys = (set(new) | set(old)) - {"metadata", "status", "apiVersion", "kind"}
    if any(new.get(k) != old.get(k) for k in keys):
        return True
    if (group, kind) == ("apps", "Deployment"):
        return bool(
            (new.get("metadata") or {}).get("annotations")
            != (old.get("metadata") or {}).get("annotations")
        )
    return False


def carry_status(new: Obj, old: Obj) -> None:
    """A write to the main resource may not change status (status subresource split)."""
    if "status" in old:
        new["status"] = old["status"]
    else:
        new.pop("status", None)


# Kinds whose status writes may change annotations (upstream's status strategies for
# these reset spec and labels only: the Deployment controller records its revision so).
_STATUS_KEEPS_ANNOTATIONS = {("apps", "Deployment")}


def status_only(new: Obj, old: Obj, *, group: str = "", kind: str = "") -> Obj:
    """A write to ``/status``: everything but status comes from the stored object."""
    out = {k: v for k, v in old.items() if k != "status"}
    if "status" in new:
        out["status"] = new["status"]
    meta = dict(new.get("metadata") or {})
    old_meta = old.get("metadata") or {}
    for f in _STATUS_RESET_META:
        if f == "annotations" and (group, kind) in _STATUS_KEEPS_ANNOTATIONS:
            continue
        if f in old_meta:
            meta[f] = old_meta[f]
        else:
            meta.pop(f, None)
    for f in ("uid", "creationTimestamp", "name", "namespace", "deletionGracePeriodSeconds"):
        if f in old_meta:
            meta[f] = old_meta[f]
    out["metadata"] = meta
    return out


def graceful_period(group: str, kind: str, obj: Obj, requested: int | None) -> int:
    """Seconds a delete waits for someone (the kubelet) to finish; 0 deletes at once."""
    if (group, kind) != ("", "Pod"):
        return 0
    spec = obj.get("spec") or {}
    phase = (obj.get("status") or {}).get("phase")
    # Pods no node has picked up, and finished pods, go at once (as upstream).
    if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
        return 0
    if requested is not None:
        return max(0, requested)
    grace = spec.get("terminationGracePeriodSeconds")
    return int(grace) if grace is not None else 30
