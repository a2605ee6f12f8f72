"""PersistentVolumes, PersistentVolumeClaims and StorageClasses."""

from __future__ import annotations

import posixpath
from typing import Any

from k3py.apimachinery import names
from k3py.server.errors import Cause

from . import scheduling
from .access import get_list, get_map, get_str, has
from .field import GoValue, Path, forbidden, go_map, invalid, not_supported, required, too_long
from .meta import immutable_field, semantic_equal
from .resources import parse_field, positive
from .volumes import SOURCES, VOLUME_MODES, access_modes, csi_driver_name, no_backsteps, pvc_spec

SPEC = Path("spec")
RECLAIM = ["Delete", "Recycle", "Retain"]
PV_SOURCES = [
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "glusterfs",
    "flocker",
    "nfs",
    "rbd",
    "quobyte",
    "cephfs",
    "iscsi",
    "cinder",
    "fc",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "scaleIO",
    "local",
    "storageos",
    "csi",
]
_GO_NAMES = dict(SOURCES)


def _pv_source(spec: dict[str, Any], has_affinity: bool) -> list[Cause]:
    errs: list[Cause] = []
    found = 0
    for key in PV_SOURCES:
        src = spec.get(key)
        if not isinstance(src, dict):
            continue
        if found:
            errs.append(
                forbidden(
                    SPEC.child(_GO_NAMES.get(key, key)), "may not specify more than 1 volume type"
                )
            )
            continue
        found += 1
        errs += _pv_source_fields(key, src, SPEC.child(key), has_affinity)
    if not found:
        errs.append(required(SPEC, "must specify a volume type"))
    return errs


def _pv_source_fields(key: str, src: dict[str, Any], path: Path, has_affinity: bool) -> list[Cause]:
    if key in ("hostPath", "local"):
        target = get_str(src, "path")
        if not target:
            return [required(path.child("path"))]
        errs = no_backsteps(target, path.child("path"))
        if key == "local" and not has_affinity:
            errs.append(required(SPEC.child("nodeAffinity"), "Local volume requires node affinity"))
        return errs
    if key == "nfs":
        errs = [] if get_str(src, "server") else [required(path.child("server"))]
        target = get_str(src, "path")
        if not target:
            errs.append(required(path.child("path")))
        if not posixpath.isabs(target):
            errs.append(invalid(path.child("path"), target, "must be an absolute path"))
        return errs
    if key == "csi":
        errs = csi_driver_name(get_str(src, "driver"), path.child("driver"))
        if not get_str(src, "volumeHandle"):
            errs.append(required(path.child("volumeHandle")))
        return errs
    return []


def persistent_volume(obj: dict[str, Any]) -> list[Cause]:
    spec = get_map(obj, "spec")
    errs = access_modes(get_list(spec, "accessModes"), SPEC.child("accessModes"), detail="")
    capacity = get_map(spec, "capacity")
    cap_path = SPEC.child("capacity")
    if not capacity:
        errs.append(required(cap_path))
    if "storage" not in capacity or len(capacity) > 1:
        errs.append(not_supported(cap_path, go_map(capacity, "core.ResourceList"), ["storage"]))
    for name, raw in capacity.items():
        q, perr = parse_field(raw, cap_path.key(name))
        errs += perr
        if q is not None:
            if q.sign() < 0:
                errs.append(
                    invalid(cap_path.key(name), q.int_value(), "must be a valid resource quantity")
                )
            errs += positive(q, cap_path.key(name))
    policy = get_str(spec, "persistentVolumeReclaimPolicy")
    if policy and policy not in RECLAIM:
        errs.append(not_supported(SPEC.child("persistentVolumeReclaimPolicy"), policy, RECLAIM))
    affinity = spec.get("nodeAffinity")
    if isinstance(affinity, dict):
        if isinstance(affinity.get("required"), dict):
            errs += scheduling.node_selector(
                affinity["required"], SPEC.child("nodeAffinity", "required")
            )
        else:
            errs.append(
                required(
                    SPEC.child("nodeAffinity", "required"), "must specify required node constraints"
                )
            )
    errs += _pv_source(spec, isinstance(affinity, dict))
    host = get_map(spec, "hostPath")
    if host and posixpath.normpath(get_str(host, "path") or ".") == "/" and policy == "Recycle":
        msg = "may not be 'recycle' for a hostPath mount of '/'"
        errs.append(forbidden(SPEC.child("persistentVolumeReclaimPolicy"), msg))
    cls = get_str(spec, "storageClassName")
    if cls:
        errs += [
            invalid(SPEC.child("storageClassName"), cls, m)
            for m in names.check_dns1123_subdomain(cls)
        ]
    if has(spec, "volumeMode") and get_str(spec, "volumeMode") not in VOLUME_MODES:
        errs.append(
            not_supported(SPEC.child("volumeMode"), get_str(spec, "volumeMode"), VOLUME_MODES)
        )
    return errs


def persistent_volume_update(spec: dict[str, Any], old_spec: dict[str, Any]) -> list[Cause]:
    errs: list[Cause] = []
    new_src = {k: spec.get(k) for k in PV_SOURCES if spec.get(k) is not None}
    old_src = {k: old_spec.get(k) for k in PV_SOURCES if old_spec.get(k) is not None}
    csi, old_csi = new_src.get("csi"), old_src.get("csi")
    if (
        isinstance(csi, dict)
        and isinstance(old_csi, dict)
        and "controllerExpandSecretRef" not in old_csi
    ):
        new_src["csi"] = {k: v for k, v in csi.items() if k != "controllerExpandSecretRef"}
    if not semantic_equal(new_src, old_src):
        msg = "spec.persistentvolumesource is immutable after creation"
        errs.append(forbidden(SPEC.child("persistentvolumesource"), msg))
    errs += immutable_field(Path("volumeMode"), spec.get("volumeMode"), old_spec.get("volumeMode"))
    old_affinity = old_spec.get("nodeAffinity")
    if old_affinity is not None and not semantic_equal(spec.get("nodeAffinity"), old_affinity):
        shown = GoValue("&core.VolumeNodeAffinity{...}")
        errs.append(
            invalid(
                Path("nodeAffinity"),
                shown,
                "field is immutable, except for updating from beta label to GA",
            )
        )
    return errs


def pvc(obj: dict[str, Any]) -> list[Cause]:
    return pvc_spec(get_map(obj, "spec"), SPEC)


def _storage(spec: dict[str, Any]) -> Any:
    return get_map(get_map(spec, "resources"), "requests").get("storage")


def pvc_update(obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    spec, old_spec = get_map(obj, "spec"), get_map(old, "spec")
    new_cmp, old_cmp = dict(spec), dict(old_spec)
    if not get_str(old_spec, "volumeName"):
        old_cmp["volumeName"] = spec.get("volumeName")
    if old_spec.get("storageClassName") is None and spec.get("storageClassName") is not None:
        old_cmp["storageClassName"] = spec.get("storageClassName")
    for cmp in (new_cmp, old_cmp):
        resources = dict(get_map(cmp, "resources"))
        requests = {k: v for k, v in get_map(resources, "requests").items() if k != "storage"}
        resources["requests"] = requests
        cmp["resources"] = resources
        cmp.pop("volumeAttributesClassName", None)
    errs: list[Cause] = []
    clean = {k: v for k, v in new_cmp.items() if v is not None}
    old_clean = {k: v for k, v in old_cmp.items() if v is not None}
    if not semantic_equal(clean, old_clean):
        msg = (
            "spec is immutable after creation except resources.requests and "
            "volumeAttributesClassName for bound claims"
        )
        errs.append(forbidden(SPEC, msg))
    new_size, old_size = _parsed(_storage(spec)), _parsed(_storage(old_spec))
    if new_size is not None and old_size is not None and new_size < old_size:
        path = SPEC.child("resources", "requests", "storage")
        errs.append(forbidden(path, "field can not be less than previous value"))
    return errs + immutable_field(
        Path("volumeMode"), spec.get("volumeMode"), old_spec.get("volumeMode")
    )


def _parsed(raw: Any) -> Any:
    if raw is None:
        return None
    q, _ = parse_field(raw, Path(""))
    return q.value if q is not None else None


BINDING_MODES = ["Immediate", "WaitForFirstConsumer"]


def storage_class(obj: dict[str, Any]) -> list[Cause]:
    provisioner = get_str(obj, "provisioner")
    errs: list[Cause] = []
    if not provisioner:
        errs.append(required(Path("provisioner")))
    else:
        lowered = provisioner.lower()
        errs += [
            invalid(Path("provisioner"), lowered, m) for m in names.check_qualified_name(lowered)
        ]
    params = get_map(obj, "parameters")
    if len(params) > 512:
        errs.append(too_long(Path("parameters"), 512))
    else:
        size = 0
        for key, value in params.items():
            if not key:
                errs.append(invalid(Path("parameters"), key, "field can not be empty."))
            size += len(key) + len(value if isinstance(value, str) else "")
        if size > 256 * 1024:
            errs.append(too_long(Path("parameters"), 256 * 1024))
    policy = get_str(obj, "reclaimPolicy")
    if policy and policy not in ("Delete", "Retain"):
        errs.append(not_supported(Path("reclaimPolicy"), policy, ["Delete", "Retain"]))
    if not has(obj, "volumeBindingMode"):
        errs.append(required(Path("volumeBindingMode")))
    elif get_str(obj, "volumeBindingMode") not in BINDING_MODES:
        errs.append(
            not_supported(
                Path("volumeBindingMode"), get_str(obj, "volumeBindingMode"), BINDING_MODES
            )
        )
    return errs + _allowed_topologies(get_list(obj, "allowedTopologies"))


def _allowed_topologies(terms: list[Any]) -> list[Cause]:
    errs: list[Cause] = []
    for i, term in enumerate(terms):
        path = Path("allowedTopologies").at(i).child("matchLabelExpressions")
        for j, expr in enumerate(
            get_list(term if isinstance(term, dict) else {}, "matchLabelExpressions")
        ):
            expr = expr if isinstance(expr, dict) else {}
            if not get_list(expr, "values"):
                errs.append(required(path.at(j).child("values")))
            key = get_str(expr, "key")
            errs += [
                invalid(path.at(j).child("key"), key, m) for m in names.check_qualified_name(key)
            ]
    return errs


def storage_class_update(obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs: list[Cause] = []
    if get_map(obj, "parameters") != get_map(old, "parameters"):
        errs.append(forbidden(Path("parameters"), "updates to parameters are forbidden."))
    if get_str(obj, "provisioner") != get_str(old, "provisioner"):
        errs.append(forbidden(Path("provisioner"), "updates to provisioner are forbidden."))
    if get_str(obj, "reclaimPolicy") != get_str(old, "reclaimPolicy"):
        errs.append(forbidden(Path("reclaimPolicy"), "updates to reclaimPolicy are forbidden."))
    return errs + immutable_field(
        Path("volumeBindingMode"), obj.get("volumeBindingMode"), old.get("volumeBindingMode")
    )
