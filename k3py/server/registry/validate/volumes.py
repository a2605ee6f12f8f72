"""Pod volumes and their sources (``ValidateVolumes`` and friends).

Exactly one source per volume; the common sources are checked field by field, the
rarely used in-tree cloud sources only for their required fields (one table).
"""

from __future__ import annotations

import posixpath
from typing import Any

from k3py.apimachinery import names
from k3py.server.errors import Cause

from .access import get_int, get_list, get_map, get_opt_int, get_str, has
from .field import Path, duplicate, forbidden, invalid, not_supported, required, too_long
from .meta import validate_annotations, validate_label_selector, validate_labels
from .resources import parse_field, positive

FILE_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"
HOST_PATH_TYPES = sorted(
    [
        "",
        "DirectoryOrCreate",
        "Directory",
        "FileOrCreate",
        "File",
        "Socket",
        "CharDevice",
        "BlockDevice",
    ]
)
ACCESS_MODES = sorted(["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"])
VOLUME_MODES = ["Block", "Filesystem"]

# (json key, Go child name used in "more than 1 volume type" paths), upstream's order.
SOURCES = [
    ("emptyDir", "emptyDir"),
    ("hostPath", "hostPath"),
    ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"),
    ("nfs", "nfs"),
    ("iscsi", "iscsi"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"),
    ("rbd", "rbd"),
    ("cinder", "cinder"),
    ("cephfs", "cephFS"),
    ("quobyte", "quobyte"),
    ("downwardAPI", "downwarAPI"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("configMap", "configMap"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("storageos", "storageos"),
    ("projected", "projected"),
    ("scaleIO", "scaleIO"),
    ("csi", "csi"),
    ("ephemeral", "ephemeral"),
    ("image", "image"),
]

# Sources checked only for their required fields.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "gcePersistentDisk": ("pdName",),
    "awsElasticBlockStore": ("volumeID",),
    "iscsi": ("targetPortal", "iqn"),
    "glusterfs": ("endpoints", "path"),
    "rbd": ("monitors", "image"),
    "cinder": ("volumeID",),
    "cephfs": ("monitors",),
    "quobyte": ("registry", "volume"),
    "flexVolume": ("driver",),
    "azureFile": ("secretName", "shareName"),
    "azureDisk": ("diskName", "diskURI"),
    "vsphereVolume": ("volumePath",),
    "photonPersistentDisk": ("pdID",),
    "portworxVolume": ("volumeID",),
    "scaleIO": ("gateway", "system", "volumeName"),
    "storageos": ("volumeName",),
    "gitRepo": ("repository",),
}

VOLUME_DOWNWARD_FIELDS = sorted(
    [
        "metadata.name",
        "metadata.namespace",
        "metadata.labels",
        "metadata.annotations",
        "metadata.uid",
    ]
)


def file_mode(src: dict[str, Any], key: str, path: Path) -> list[Cause]:
    mode = get_opt_int(src, key)
    if mode is not None and not 0 <= mode <= 0o777:
        return [invalid(path.child(key), mode, FILE_MODE_MSG)]
    return []


def no_backsteps(target: str, path: Path) -> list[Cause]:
    if ".." in target.replace("\\", "/").split("/"):
        return [invalid(path, target, "must not contain '..'")]
    return []


def local_descending_path(target: str, path: Path) -> list[Cause]:
    errs = []
    if posixpath.isabs(target):
        errs.append(invalid(path, target, "must be a relative path"))
    return errs + no_backsteps(target, path)


def local_non_reserved_path(target: str, path: Path) -> list[Cause]:
    errs = local_descending_path(target, path)
    if target.startswith("..") and not target.startswith("../"):
        errs.append(invalid(path, target, "must not start with '..'"))
    return errs


def key_to_path(item: dict[str, Any], path: Path) -> list[Cause]:
    errs = []
    if not get_str(item, "key"):
        errs.append(required(path.child("key")))
    target = get_str(item, "path")
    if not target:
        errs.append(required(path.child("path")))
    errs += local_non_reserved_path(target, path.child("path"))
    return errs + file_mode(item, "mode", path)


def _items(src: dict[str, Any], path: Path) -> list[Cause]:
    errs: list[Cause] = []
    for i, item in enumerate(get_list(src, "items")):
        errs += key_to_path(item if isinstance(item, dict) else {}, path.child("items").at(i))
    return errs


def _secret(src: dict[str, Any], path: Path) -> list[Cause]:
    errs = [] if get_str(src, "secretName") else [required(path.child("secretName"))]
    return errs + file_mode(src, "defaultMode", path) + _items(src, path)


def _config_map(src: dict[str, Any], path: Path) -> list[Cause]:
    errs = [] if get_str(src, "name") else [required(path.child("name"))]
    return errs + file_mode(src, "defaultMode", path) + _items(src, path)


def _host_path(src: dict[str, Any], path: Path) -> list[Cause]:
    target = get_str(src, "path")
    if not target:
        return [required(path.child("path"))]
    errs = no_backsteps(target, path.child("path"))
    if has(src, "type") and get_str(src, "type") not in HOST_PATH_TYPES:
        errs.append(not_supported(path.child("type"), get_str(src, "type"), HOST_PATH_TYPES))
    return errs


def _empty_dir(src: dict[str, Any], path: Path) -> list[Cause]:
    if not has(src, "sizeLimit"):
        return []
    q, errs = parse_field(src["sizeLimit"], path.child("sizeLimit"))
    if q is not None and q.sign() < 0:
        errs.append(
            forbidden(path.child("sizeLimit"), "SizeLimit field must be a valid resource quantity")
        )
    return errs


def _nfs(src: dict[str, Any], path: Path) -> list[Cause]:
    errs = [] if get_str(src, "server") else [required(path.child("server"))]
    target = get_str(src, "path")
    if not target:
        errs.append(required(path.child("path")))
    if not posixpath.isabs(target):
        errs.append(invalid(path.child("path"), target, "must be an absolute path"))
    return errs


def csi_driver_name(driver: str, path: Path) -> list[Cause]:
    errs = [] if driver else [required(path)]
    if len(driver) > 63:
        errs.append(too_long(path, 63))
    return errs + [invalid(path, driver, m) for m in names.check_dns1123_subdomain(driver.lower())]


def _csi(src: dict[str, Any], path: Path) -> list[Cause]:
    errs = csi_driver_name(get_str(src, "driver"), path.child("driver"))
    ref = src.get("nodePublishSecretRef")
    if isinstance(ref, dict):
        if not get_str(ref, "name"):
            errs.append(required(path.child("nodePublishSecretRef", "name")))
        else:
            name = get_str(ref, "name")
            errs += [
                invalid(path.child("name"), name, m) for m in names.check_dns1123_subdomain(name)
            ]
    return errs


def field_selector(ref: dict[str, Any], valid: list[str], path: Path) -> list[Cause]:
    version, field_path = get_str(ref, "apiVersion"), get_str(ref, "fieldPath")
    if not version:
        return [required(path.child("apiVersion"))]
    if not field_path:
        return [required(path.child("fieldPath"))]
    if version != "v1":
        msg = f"error converting fieldPath: unsupported pod version: {version}"
        return [invalid(path.child("fieldPath"), field_path, msg)]
    base, subscript = split_subscript(field_path)
    if subscript is not None:
        if base not in ("metadata.annotations", "metadata.labels"):
            msg = (
                f"error converting fieldPath: field label does not support subscript: {field_path}"
            )
            return [invalid(path.child("fieldPath"), field_path, msg)]
        key = subscript.lower() if base == "metadata.annotations" else subscript
        return [invalid(path, key, m) for m in names.check_qualified_name(key)]
    if field_path == "spec.host":
        field_path = "spec.nodeName"
    if field_path not in DOWNWARD_LABELS:
        msg = f"error converting fieldPath: field label not supported: {field_path}"
        return [invalid(path.child("fieldPath"), field_path, msg)]
    if field_path not in valid:
        return [not_supported(path.child("fieldPath"), field_path, valid)]
    return []


DOWNWARD_LABELS = frozenset(
    {
        "metadata.annotations",
        "metadata.labels",
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.serviceAccountName",
        "spec.schedulerName",
        "status.phase",
        "status.hostIP",
        "status.hostIPs",
        "status.podIP",
        "status.podIPs",
    }
)


def split_subscript(field_path: str) -> tuple[str, str | None]:
    """``fieldpath.SplitMaybeSubscriptedPath``: ``metadata.labels['app']``."""
    if not field_path.endswith("']"):
        return field_path, None
    base, sep, sub = field_path[:-2].partition("['")
    if not sep or not base:
        return field_path, None
    return base, sub


CONTAINER_RESOURCE_FIELDS = sorted(
    [
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.ephemeral-storage",
    ]
)
_DIVISORS_CPU = {"1m", "1"}
_DIVISORS_BYTES = {
    "1",
    "1k",
    "1M",
    "1G",
    "1T",
    "1P",
    "1E",
    "1Ki",
    "1Mi",
    "1Gi",
    "1Ti",
    "1Pi",
    "1Ei",
}
_BYTES_LIST = "1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei"


def _divisor(resource: str, ref: dict[str, Any], path: Path) -> list[Cause]:
    if not has(ref, "divisor"):
        return []
    q, errs = parse_field(ref["divisor"], path.child("divisor"))
    if q is None or q.value == 0:
        return errs
    text = str(q)
    what = {"cpu": "cpu", "memory": "memory", "ephemeral-storage": "local ephemeral storage"}
    kind = resource.split(".", 1)[-1]
    if kind == "cpu" and text not in _DIVISORS_CPU:
        msg = "only divisor's values 1m and 1 are supported with the cpu resource"
        errs.append(invalid(path.child("divisor"), resource, msg))
    elif kind in ("memory", "ephemeral-storage") and text not in _DIVISORS_BYTES:
        msg = f"only divisor's values {_BYTES_LIST} are supported with the {what[kind]} resource"
        errs.append(invalid(path.child("divisor"), resource, msg))
    elif kind.startswith("hugepages-") and text not in _DIVISORS_BYTES:
        msg = f"only divisor's values {_BYTES_LIST} are supported with the hugepages resource"
        errs.append(invalid(path.child("divisor"), resource, msg))
    return errs


def resource_field_selector(ref: dict[str, Any], path: Path, *, volume: bool) -> list[Cause]:
    resource = get_str(ref, "resource")
    errs: list[Cause] = []
    if volume and not get_str(ref, "containerName"):
        errs.append(required(path.child("containerName")))
    elif not resource:
        errs.append(required(path.child("resource")))
    elif resource not in CONTAINER_RESOURCE_FIELDS and not resource.startswith(
        ("requests.hugepages-", "limits.hugepages-")
    ):
        errs.append(not_supported(path.child("resource"), resource, CONTAINER_RESOURCE_FIELDS))
    return errs + _divisor(resource, ref, path)


def downward_api_file(item: dict[str, Any], path: Path) -> list[Cause]:
    target = get_str(item, "path")
    errs = [] if target else [required(path.child("path"))]
    errs += local_non_reserved_path(target, path.child("path"))
    field_ref, res_ref = item.get("fieldRef"), item.get("resourceFieldRef")
    if isinstance(field_ref, dict):
        errs += field_selector(field_ref, VOLUME_DOWNWARD_FIELDS, path.child("fieldRef"))
        if isinstance(res_ref, dict):
            msg = "fieldRef and resourceFieldRef can not be specified simultaneously"
            errs.append(invalid(path, "resource", msg))
    elif isinstance(res_ref, dict):
        errs += resource_field_selector(res_ref, path.child("resourceFieldRef"), volume=True)
    else:
        errs.append(required(path, "one of fieldRef and resourceFieldRef is required"))
    return errs + file_mode(item, "mode", path)


def _downward_api(src: dict[str, Any], path: Path) -> list[Cause]:
    errs = file_mode(src, "defaultMode", path)
    for item in get_list(src, "items"):
        errs += downward_api_file(item if isinstance(item, dict) else {}, path)
    return errs


def _projected_source(
    source: dict[str, Any], path: Path, seen: set[str], base: Path
) -> list[Cause]:
    errs: list[Cause] = []
    count = 0
    for key in ("secret", "configMap"):
        sub = source.get(key)
        if not isinstance(sub, dict):
            continue
        count += 1
        if not get_str(sub, "name"):
            errs.append(required(path.child(key, "name")))
        for i, item in enumerate(get_list(sub, "items")):
            item = item if isinstance(item, dict) else {}
            errs += key_to_path(item, path.child(key, "items").at(i))
            target = get_str(item, "path")
            if target and target in seen:
                errs.append(invalid(base, get_str(sub, "name"), "conflicting duplicate paths"))
            seen.add(target)
    api = source.get("downwardAPI")
    if isinstance(api, dict):
        count += 1
        for item in get_list(api, "items"):
            item = item if isinstance(item, dict) else {}
            errs += downward_api_file(item, path.child("downwardAPI"))
            target = get_str(item, "path")
            if target and target in seen:
                errs.append(invalid(base, target, "conflicting duplicate paths"))
            seen.add(target)
    token = source.get("serviceAccountToken")
    if isinstance(token, dict):
        count += 1
        errs += _token(token, path.child("serviceAccountToken"), base)
    if isinstance(source.get("clusterTrustBundle"), dict):
        count += 1
    if count > 1:
        errs.append(forbidden(path, "may not specify more than 1 volume type per source"))
    return errs


def _token(token: dict[str, Any], path: Path, base: Path) -> list[Cause]:
    errs: list[Cause] = []
    seconds = get_int(token, "expirationSeconds")
    if seconds < 600:
        msg = "may not specify a duration less than 10 minutes"
        errs.append(invalid(path.child("expirationSeconds"), seconds, msg))
    if seconds > 1 << 32:
        msg = "may not specify a duration larger than 2^32 seconds"
        errs.append(invalid(path.child("expirationSeconds"), seconds, msg))
    target = get_str(token, "path")
    if not target:
        errs.append(required(base.child("path")))
    else:
        errs += local_non_reserved_path(target, base.child("path"))
    return errs


def _projected(src: dict[str, Any], path: Path) -> list[Cause]:
    errs = file_mode(src, "defaultMode", path)
    seen: set[str] = set()
    for i, source in enumerate(get_list(src, "sources")):
        source = source if isinstance(source, dict) else {}
        errs += _projected_source(source, path.child("sources").at(i), seen, path)
    return errs


def _pvc(src: dict[str, Any], path: Path) -> list[Cause]:
    return [] if get_str(src, "claimName") else [required(path.child("claimName"))]


def _ephemeral(src: dict[str, Any], path: Path) -> list[Cause]:
    template = src.get("volumeClaimTemplate")
    if not isinstance(template, dict):
        return [required(path.child("volumeClaimTemplate"))]
    return pvc_template(template, path.child("volumeClaimTemplate"))


def _image(src: dict[str, Any], path: Path) -> list[Cause]:
    errs = [] if get_str(src, "reference") else [required(path.child("reference"))]
    policy = get_str(src, "pullPolicy")
    if policy and policy not in ("Always", "IfNotPresent", "Never"):
        errs.append(
            not_supported(path.child("pullPolicy"), policy, ["Always", "IfNotPresent", "Never"])
        )
    return errs


def _required_only(key: str, src: dict[str, Any], path: Path) -> list[Cause]:
    errs: list[Cause] = []
    for name in REQUIRED_FIELDS[key]:
        value = src.get(name)
        if not value:
            errs.append(required(path.child(name)))
    return errs


def _fc(src: dict[str, Any], path: Path) -> list[Cause]:
    wwns, wwids = get_list(src, "targetWWNs"), get_list(src, "wwids")
    errs: list[Cause] = []
    if not wwns and not wwids:
        errs.append(
            required(
                path.child("targetWWNs"), "must specify either targetWWNs or wwids, but not both"
            )
        )
    if wwns and wwids:
        errs.append(
            invalid(
                path.child("targetWWNs"),
                wwns,
                "targetWWNs and wwids can not be specified simultaneously",
            )
        )
    if wwns and not has(src, "lun"):
        errs.append(required(path.child("lun"), "lun is required if targetWWNs is specified"))
    return errs


def _flocker(src: dict[str, Any], path: Path) -> list[Cause]:
    name, uuid = get_str(src, "datasetName"), get_str(src, "datasetUUID")
    if not name and not uuid:
        return [required(path, "one of datasetName and datasetUUID is required")]
    if name and uuid:
        return [
            invalid(
                path, "resource", "datasetName and datasetUUID can not be specified simultaneously"
            )
        ]
    return []


CHECKS = {
    "emptyDir": _empty_dir,
    "hostPath": _host_path,
    "secret": _secret,
    "nfs": _nfs,
    "persistentVolumeClaim": _pvc,
    "downwardAPI": _downward_api,
    "configMap": _config_map,
    "projected": _projected,
    "csi": _csi,
    "ephemeral": _ephemeral,
    "image": _image,
    "fc": _fc,
    "flocker": _flocker,
}


def volume_source(vol: dict[str, Any], path: Path, *, pod_name: str) -> list[Cause]:
    errs: list[Cause] = []
    found = 0
    for key, go_name in SOURCES:
        src = vol.get(key)
        if not isinstance(src, dict):
            continue
        if found:
            errs.append(forbidden(path.child(go_name), "may not specify more than 1 volume type"))
            continue
        found += 1
        sub = path.child(key)
        errs += CHECKS[key](src, sub) if key in CHECKS else _required_only(key, src, sub)
        if key == "ephemeral" and pod_name and get_str(vol, "name"):
            claim = f"{pod_name}-{get_str(vol, 'name')}"
            for m in names.check_dns1123_subdomain(claim):
                errs.append(
                    invalid(path.child("name"), get_str(vol, "name"), f'PVC name "{claim}": {m}')
                )
    if not found:
        errs.append(required(path, "must specify a volume type"))
    return errs


def validate_volumes(
    volumes: list[Any], path: Path, *, pod_name: str = ""
) -> tuple[dict[str, dict[str, Any]], list[Cause]]:
    """Errors, and the valid volumes by name (what mounts may refer to)."""
    errs: list[Cause] = []
    valid: dict[str, dict[str, Any]] = {}
    for i, raw in enumerate(volumes):
        vol = raw if isinstance(raw, dict) else {}
        p = path.at(i)
        name = get_str(vol, "name")
        verrs = volume_source(vol, p, pod_name=pod_name)
        if not name:
            verrs.append(required(p.child("name")))
        else:
            verrs += [invalid(p.child("name"), name, m) for m in names.check_dns1123_label(name)]
        if name in valid:
            verrs.append(duplicate(p.child("name"), name))
        if verrs:
            errs += verrs
        else:
            valid[name] = vol
    return valid, errs


# -- persistent volume claim specs (PVCs, templates, ephemeral volumes) ---------------


def access_modes(modes: list[Any], path: Path, *, detail: str) -> list[Cause]:
    errs: list[Cause] = []
    if not modes:
        errs.append(required(path, detail))
    rwop = other = False
    for mode in modes:
        if mode not in ACCESS_MODES:
            errs.append(not_supported(path, mode, ACCESS_MODES))
        elif mode == "ReadWriteOncePod":
            rwop = True
        else:
            other = True
    if rwop and other:
        errs.append(forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return errs


def _data_source(ref: dict[str, Any], path: Path) -> list[Cause]:
    errs: list[Cause] = []
    for key in ("name", "kind"):
        if not get_str(ref, key):
            errs.append(required(path.child(key)))
    group, kind = get_str(ref, "apiGroup"), get_str(ref, "kind")
    if not group and kind != "PersistentVolumeClaim":
        errs.append(
            invalid(
                path, kind, "must be 'PersistentVolumeClaim' when referencing the default apiGroup"
            )
        )
    if group:
        errs += [
            invalid(path.child("apiGroup"), group, m) for m in names.check_dns1123_subdomain(group)
        ]
    return errs


def pvc_spec(spec: dict[str, Any], path: Path) -> list[Cause]:
    """``ValidatePersistentVolumeClaimSpec``."""
    errs = access_modes(
        get_list(spec, "accessModes"),
        path.child("accessModes"),
        detail="at least 1 access mode is required",
    )
    errs += validate_label_selector(spec.get("selector"), path.child("selector"))
    storage_path = path.child("resources").key("storage")
    requests = get_map(get_map(spec, "resources"), "requests")
    if "storage" not in requests:
        errs.append(required(storage_path))
    else:
        q, perr = parse_field(requests["storage"], storage_path)
        errs += perr
        if q is not None:
            errs += positive(q, storage_path)
    cls = spec.get("storageClassName")
    if isinstance(cls, str) and cls:
        errs += [
            invalid(path.child("storageClassName"), cls, m)
            for m in names.check_dns1123_subdomain(cls)
        ]
    mode = spec.get("volumeMode")
    if isinstance(mode, str) and mode not in VOLUME_MODES:
        errs.append(not_supported(path.child("volumeMode"), mode, VOLUME_MODES))
    for key in ("dataSource", "dataSourceRef"):
        if isinstance(spec.get(key), dict):
            errs += _data_source(spec[key], path.child(key))
    return errs


def template_meta(meta: dict[str, Any], path: Path) -> list[Cause]:
    """``ValidateTemplateObjectMeta``: only labels and annotations may be set."""
    errs = validate_annotations(get_map(meta, "annotations"), path.child("annotations"))
    errs += validate_labels(get_map(meta, "labels"), path.child("labels"))
    for key, value in meta.items():
        if key not in ("labels", "annotations") and value not in (None, "", {}, [], 0):
            errs.append(forbidden(path.child(key), "cannot be set"))
    return errs


def pvc_template(template: dict[str, Any], path: Path) -> list[Cause]:
    errs = template_meta(get_map(template, "metadata"), path.child("metadata"))
    return errs + pvc_spec(get_map(template, "spec"), path.child("spec"))
