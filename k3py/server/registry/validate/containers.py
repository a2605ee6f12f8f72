"""Containers: ports, env, mounts, probes, lifecycle, security context (core validation)."""

from __future__ import annotations

from typing import Any

from k3py.apimachinery import names
from k3py.server.errors import Cause

from . import formats
from .access import dicts, get_int, get_list, get_map, get_opt_int, get_str, has
from .field import (
    GoValue,
    Path,
    duplicate,
    forbidden,
    invalid,
    not_found,
    not_supported,
    required,
    too_long,
)
from .meta import nonnegative
from .resources import validate_requirements
from .volumes import field_selector, local_descending_path, no_backsteps, resource_field_selector

PROTOCOLS = ["SCTP", "TCP", "UDP"]
PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
TERMINATION_POLICIES = ["File", "FallbackToLogsOnError"]
PROPAGATIONS = ["Bidirectional", "HostToContainer", "None"]
ENV_DOWNWARD_FIELDS = sorted(
    [
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
        "spec.nodeName",
        "spec.serviceAccountName",
        "status.hostIP",
        "status.hostIPs",
        "status.podIP",
        "status.podIPs",
    ]
)
MAX_ID = 2147483647


def port_num_or_name(value: Any, path: Path) -> list[Cause]:
    """``ValidatePortNumOrName`` for an IntOrString."""
    if isinstance(value, str):
        return [invalid(path, value, m) for m in formats.check_port_name(value)]
    num = value if isinstance(value, int) else 0
    return [invalid(path, num, m) for m in formats.check_port_num(num)]


def container_ports(ports: list[Any], path: Path) -> list[Cause]:
    errs: list[Cause] = []
    seen: set[str] = set()
    for i, port in enumerate(dicts(ports)):
        p = path.at(i)
        name = get_str(port, "name")
        if name:
            msgs = formats.check_port_name(name)
            if msgs:
                errs += [invalid(p.child("name"), name, m) for m in msgs]
            elif name in seen:
                errs.append(duplicate(p.child("name"), name))
            else:
                seen.add(name)
        number = get_int(port, "containerPort")
        if number == 0:
            errs.append(required(p.child("containerPort")))
        else:
            errs += [
                invalid(p.child("containerPort"), number, m) for m in formats.check_port_num(number)
            ]
        host = get_int(port, "hostPort")
        if host:
            errs += [invalid(p.child("hostPort"), host, m) for m in formats.check_port_num(host)]
        proto = get_str(port, "protocol")
        if not proto:
            errs.append(required(p.child("protocol")))
        elif proto not in PROTOCOLS:
            errs.append(not_supported(p.child("protocol"), proto, PROTOCOLS))
    return errs


def _key_selector(ref: dict[str, Any], path: Path) -> list[Cause]:
    name = get_str(ref, "name")
    errs = [invalid(path.child("name"), name, m) for m in names.check_dns1123_subdomain(name)]
    key = get_str(ref, "key")
    if not key:
        errs.append(required(path.child("key")))
    else:
        errs += [invalid(path.child("key"), key, m) for m in names.check_config_map_key(key)]
    return errs


def _value_from(env: dict[str, Any], path: Path) -> list[Cause]:
    source = env.get("valueFrom")
    if not isinstance(source, dict):
        return []
    errs: list[Cause] = []
    count = 0
    if isinstance(source.get("fieldRef"), dict):
        count += 1
        errs += field_selector(source["fieldRef"], ENV_DOWNWARD_FIELDS, path.child("fieldRef"))
    if isinstance(source.get("resourceFieldRef"), dict):
        count += 1
        errs += resource_field_selector(
            source["resourceFieldRef"], path.child("resourceFieldRef"), volume=False
        )
    for key in ("configMapKeyRef", "secretKeyRef"):
        if isinstance(source.get(key), dict):
            count += 1
            errs += _key_selector(source[key], path.child(key))
    if count == 0:
        msg = (
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or "
            "`secretKeyRef`"
        )
        errs.append(invalid(path, "", msg))
    elif get_str(env, "value"):
        errs.append(invalid(path, "", "may not be specified when `value` is not empty"))
    elif count > 1:
        errs.append(invalid(path, "", "may not have more than one field specified at a time"))
    return errs


def env_vars(env: list[Any], path: Path) -> list[Cause]:
    errs: list[Cause] = []
    for i, var in enumerate(dicts(env)):
        p = path.at(i)
        name = get_str(var, "name")
        if not name:
            errs.append(required(p.child("name")))
        else:
            errs += [
                invalid(p.child("name"), name, m) for m in formats.check_relaxed_env_var_name(name)
            ]
        errs += _value_from(var, p.child("valueFrom"))
    return errs


def env_from(sources: list[Any], path: Path) -> list[Cause]:
    errs: list[Cause] = []
    for i, src in enumerate(dicts(sources)):
        p = path.at(i)
        prefix = get_str(src, "prefix")
        if prefix:
            errs += [
                invalid(p.child("prefix"), prefix, m)
                for m in formats.check_relaxed_env_var_name(prefix)
            ]
        count = 0
        for key in ("configMapRef", "secretRef"):
            ref = src.get(key)
            if isinstance(ref, dict):
                count += 1
                name = get_str(ref, "name")
                if not name:
                    errs.append(required(p.child(key, "name")))
                else:
                    msgs = formats.name_is_dns_subdomain(name, True)
                    errs += [invalid(p.child(key, "name"), name, m) for m in msgs]
        if count == 0:
            errs.append(invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif count > 1:
            errs.append(invalid(path, "", "may not have more than one field specified at a time"))
    return errs


def _privileged(ctr: dict[str, Any]) -> bool:
    return get_map(ctr, "securityContext").get("privileged") is True


def volume_mounts(
    ctr: dict[str, Any], volumes: dict[str, dict[str, Any]], path: Path
) -> list[Cause]:
    errs: list[Cause] = []
    devices = {
        get_str(d, "name"): get_str(d, "devicePath") for d in dicts(get_list(ctr, "volumeDevices"))
    }
    seen_paths: set[str] = set()
    for i, mnt in enumerate(dicts(get_list(ctr, "volumeMounts"))):
        p = path.at(i)
        name, mount_path = get_str(mnt, "name"), get_str(mnt, "mountPath")
        if not name:
            errs.append(required(p.child("name")))
        if name not in volumes:
            errs.append(not_found(p.child("name"), name))
        if not mount_path:
            errs.append(required(p.child("mountPath")))
        if mount_path in seen_paths:
            errs.append(invalid(p.child("mountPath"), mount_path, "must be unique"))
        seen_paths.add(mount_path)
        if name in devices:
            errs.append(invalid(p.child("name"), name, "must not already exist in volumeDevices"))
        if mount_path in devices.values():
            errs.append(
                invalid(
                    p.child("mountPath"),
                    mount_path,
                    "must not already exist as a path in volumeDevices",
                )
            )
        errs += _sub_paths(mnt, p, path)
        errs += _propagation(mnt, ctr, path.child("mountPropagation"))
        errs += _recursive_read_only(mnt, path.child("recursiveReadOnly"))
    return errs


def _sub_paths(mnt: dict[str, Any], p: Path, list_path: Path) -> list[Cause]:
    errs: list[Cause] = []
    sub, expr = get_str(mnt, "subPath"), get_str(mnt, "subPathExpr")
    if sub:
        errs += local_descending_path(sub, list_path.child("subPath"))
    if expr:
        if sub:
            errs.append(
                invalid(
                    p.child("subPathExpr"), expr, "subPathExpr and subPath are mutually exclusive"
                )
            )
        errs += local_descending_path(expr, list_path.child("subPathExpr"))
    return errs


def _propagation(mnt: dict[str, Any], ctr: dict[str, Any], path: Path) -> list[Cause]:
    if not has(mnt, "mountPropagation"):
        return []
    mode = get_str(mnt, "mountPropagation")
    errs: list[Cause] = []
    if mode not in PROPAGATIONS:
        errs.append(not_supported(path, mode, PROPAGATIONS))
    if mode == "Bidirectional" and not _privileged(ctr):
        errs.append(
            forbidden(
                path, "Bidirectional mount propagation is available only to privileged containers"
            )
        )
    return errs


def _recursive_read_only(mnt: dict[str, Any], path: Path) -> list[Cause]:
    if not has(mnt, "recursiveReadOnly"):
        return []
    value = get_str(mnt, "recursiveReadOnly")
    if value == "Disabled":
        return []
    if value in ("Enabled", "IfPossible"):
        errs = []
        if mnt.get("readOnly") is not True:
            errs.append(forbidden(path, "may only be specified when readOnly is true"))
        if get_str(mnt, "mountPropagation") not in ("", "None"):
            errs.append(
                forbidden(
                    path, "may only be specified when mountPropagation is None or not specified"
                )
            )
        return errs
    return [not_supported(path, value, ["Disabled", "Enabled", "IfPossible"])]


def volume_devices(
    ctr: dict[str, Any], volumes: dict[str, dict[str, Any]], path: Path
) -> list[Cause]:
    errs: list[Cause] = []
    mounts = {
        get_str(m, "name"): get_str(m, "mountPath") for m in dicts(get_list(ctr, "volumeMounts"))
    }
    seen_names: set[str] = set()
    seen_paths: set[str] = set()
    for i, dev in enumerate(dicts(get_list(ctr, "volumeDevices"))):
        p = path.at(i)
        name, dev_path = get_str(dev, "name"), get_str(dev, "devicePath")
        vol = volumes.get(name)
        if not name:
            errs.append(required(p.child("name")))
        if name in seen_names:
            errs.append(invalid(p.child("name"), name, "must be unique"))
        if vol is not None and not (has(vol, "persistentVolumeClaim") or has(vol, "ephemeral")):
            msg = (
                "can only use volume source type of PersistentVolumeClaim or Ephemeral "
                "for block mode"
            )
            errs.append(invalid(p.child("name"), name, msg))
        if vol is None:
            errs.append(not_found(p.child("name"), name))
        if not dev_path:
            errs.append(required(p.child("devicePath")))
        if dev_path in seen_paths:
            errs.append(invalid(p.child("devicePath"), dev_path, "must be unique"))
        if dev_path and no_backsteps(dev_path, p):
            errs.append(
                invalid(p.child("devicePath"), dev_path, "can not contain backsteps ('..')")
            )
        else:
            seen_paths.add(dev_path)
        if name in mounts:
            errs.append(invalid(p.child("name"), name, "must not already exist in volumeMounts"))
        if dev_path in mounts.values():
            errs.append(
                invalid(
                    p.child("devicePath"),
                    dev_path,
                    "must not already exist as a path in volumeMounts",
                )
            )
        if name:
            seen_names.add(name)
    return errs


# -- probes and lifecycle handlers ---------------------------------------------------

HANDLERS_PROBE = ("exec", "httpGet", "tcpSocket", "grpc")
HANDLERS_LIFECYCLE = ("exec", "httpGet", "tcpSocket", "sleep")


def _http_get(action: dict[str, Any], path: Path) -> list[Cause]:
    errs = [] if get_str(action, "path") else [required(path.child("path"))]
    errs += port_num_or_name(action.get("port"), path.child("port"))
    scheme = get_str(action, "scheme")
    if scheme not in ("HTTP", "HTTPS"):
        errs.append(not_supported(path.child("scheme"), scheme, ["HTTP", "HTTPS"]))
    for header in dicts(get_list(action, "httpHeaders")):
        name = get_str(header, "name")
        errs += [
            invalid(path.child("httpHeaders"), name, m)
            for m in formats.check_http_header_name(name)
        ]
    return errs


def _sleep(action: dict[str, Any], path: Path, grace: int | None) -> list[Cause]:
    seconds = get_int(action, "seconds")
    if grace is not None and (seconds <= 0 or seconds > grace):
        msg = (
            f"must be greater than 0 and less than terminationGracePeriodSeconds ({grace}). Enable "
            "AllowPodLifecycleSleepActionZeroValue feature gate for zero sleep."
        )
        return [invalid(path, seconds, msg)]
    return []


def _handler(
    handler: dict[str, Any], kinds: tuple[str, ...], path: Path, grace: int | None
) -> list[Cause]:
    errs: list[Cause] = []
    count = 0
    for kind in kinds:
        action = handler.get(kind)
        if not isinstance(action, dict):
            continue
        if count:
            errs.append(forbidden(path.child(kind), "may not specify more than 1 handler type"))
            continue
        count += 1
        p = path.child(kind)
        if kind == "exec" and not get_list(action, "command"):
            errs.append(required(p.child("command")))
        elif kind == "httpGet":
            errs += _http_get(action, p)
        elif kind == "tcpSocket":
            errs += port_num_or_name(action.get("port"), p.child("port"))
        elif kind == "grpc":
            errs += port_num_or_name(get_int(action, "port"), p.child("port"))
        elif kind == "sleep":
            errs += _sleep(action, p, grace)
    if count == 0:
        errs.append(required(path, "must specify a handler type"))
    return errs


def probe(value: Any, path: Path, grace: int | None, *, kind: str) -> list[Cause]:
    if not isinstance(value, dict):
        return []
    errs = _handler(value, HANDLERS_PROBE, path, grace)
    for key in (
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ):
        errs += nonnegative(path.child(key), get_int(value, key))
    tgps = get_opt_int(value, "terminationGracePeriodSeconds")
    if tgps is not None and tgps <= 0:
        errs.append(
            invalid(path.child("terminationGracePeriodSeconds"), tgps, "must be greater than 0")
        )
    if kind in ("liveness", "startup") and get_int(value, "successThreshold") != 1:
        errs.append(
            invalid(path.child("successThreshold"), get_int(value, "successThreshold"), "must be 1")
        )
    if kind == "readiness" and tgps is not None:
        msg = "must not be set for readinessProbes"
        errs.append(invalid(path.child("terminationGracePeriodSeconds"), tgps, msg))
    return errs


def lifecycle(value: dict[str, Any], path: Path, grace: int | None) -> list[Cause]:
    errs: list[Cause] = []
    for key in ("postStart", "preStop"):
        if isinstance(value.get(key), dict):
            errs += _handler(value[key], HANDLERS_LIFECYCLE, path.child(key), grace)
    return errs


def probes(ctr: dict[str, Any], path: Path, grace: int | None) -> list[Cause]:
    errs: list[Cause] = []
    if isinstance(ctr.get("lifecycle"), dict):
        errs += lifecycle(ctr["lifecycle"], path.child("lifecycle"), grace)
    errs += probe(ctr.get("livenessProbe"), path.child("livenessProbe"), grace, kind="liveness")
    errs += probe(ctr.get("readinessProbe"), path.child("readinessProbe"), grace, kind="readiness")
    errs += probe(ctr.get("startupProbe"), path.child("startupProbe"), grace, kind="startup")
    return errs


# -- security ---------------------------------------------------------------------


def id_range(value: int | None, path: Path) -> list[Cause]:
    if value is not None and not 0 <= value <= MAX_ID:
        return [invalid(path, value, formats.inclusive_range(0, MAX_ID))]
    return []


def seccomp_profile(profile: Any, path: Path) -> list[Cause]:
    if not isinstance(profile, dict):
        return []
    kind = get_str(profile, "type")
    supported = ["Localhost", "RuntimeDefault", "Unconfined"]
    errs: list[Cause] = []
    if not kind:
        errs.append(required(path.child("type"), "type is required when seccompProfile is set"))
    elif kind not in supported:
        errs.append(not_supported(path.child("type"), kind, supported))
    local = profile.get("localhostProfile")
    if kind == "Localhost":
        if not isinstance(local, str):
            errs.append(
                required(
                    path.child("localhostProfile"), "must be set when seccomp type is Localhost"
                )
            )
        else:
            errs += local_descending_path(local, path.child("localhostProfile"))
    elif local is not None:
        errs.append(
            invalid(
                path.child("localhostProfile"),
                GoValue("&core.SeccompProfile{...}"),
                "can only be set when seccomp type is Localhost",
            )
        )
    return errs


def apparmor_profile(profile: Any, path: Path) -> list[Cause]:
    if not isinstance(profile, dict):
        return []
    kind, local = get_str(profile, "type"), profile.get("localhostProfile")
    if kind == "Localhost":
        if not isinstance(local, str) or not local.strip():
            return [
                required(
                    path.child("localhostProfile"), "must be set when AppArmor type is Localhost"
                )
            ]
        errs = []
        if local.strip() != local:
            errs.append(
                invalid(path.child("localhostProfile"), local, "must not be padded with whitespace")
            )
        if len(local) > 4095:
            errs.append(too_long(path.child("localhostProfile"), 4095))
        return errs
    if kind in ("RuntimeDefault", "Unconfined"):
        if local is not None:
            msg = "can only be set when AppArmor type is Localhost"
            return [invalid(path.child("localhostProfile"), local, msg)]
        return []
    if not kind:
        return [required(path.child("type"), "type is required when appArmorProfile is set")]
    return [not_supported(path.child("type"), kind, ["Localhost", "RuntimeDefault", "Unconfined"])]


def container_security(sc: Any, path: Path, *, host_users: bool) -> list[Cause]:
    if not isinstance(sc, dict):
        return []
    errs = id_range(get_opt_int(sc, "runAsUser"), path.child("runAsUser"))
    errs += id_range(get_opt_int(sc, "runAsGroup"), path.child("runAsGroup"))
    if has(sc, "procMount"):
        mount = get_str(sc, "procMount")
        if mount not in ("Default", "Unmasked"):
            errs.append(not_supported(path.child("procMount"), mount, ["Default", "Unmasked"]))
        if host_users and mount == "Unmasked":
            errs.append(
                invalid(
                    path.child("procMount"), mount, "`hostUsers` must be false to use `Unmasked`"
                )
            )
    errs += seccomp_profile(sc.get("seccompProfile"), path.child("seccompProfile"))
    if sc.get("allowPrivilegeEscalation") is False:
        shown = GoValue("&core.SecurityContext{...}")
        if sc.get("privileged") is True:
            msg = "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"
            errs.append(invalid(path, shown, msg))
        if "CAP_SYS_ADMIN" in get_list(get_map(sc, "capabilities"), "add"):
            msg = (
                "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` "
                "CAP_SYS_ADMIN"
            )
            errs.append(invalid(path, shown, msg))
    return errs + apparmor_profile(sc.get("appArmorProfile"), path.child("appArmorProfile"))


def _resize_policy(policies: list[Any], path: Path, restart_policy: str) -> list[Cause]:
    errs: list[Cause] = []
    seen: set[str] = set()
    for i, pol in enumerate(dicts(policies)):
        name, restart = get_str(pol, "resourceName"), get_str(pol, "restartPolicy")
        if name in seen:
            errs.append(duplicate(path.at(i), name))
        seen.add(name)
        if not name:
            errs.append(required(path))
        elif name not in ("cpu", "memory"):
            errs.append(not_supported(path, name, ["cpu", "memory"]))
        if not restart:
            errs.append(required(path))
        elif restart not in ("NotRequired", "RestartContainer"):
            errs.append(not_supported(path, restart, ["NotRequired", "RestartContainer"]))
        if restart_policy == "Never" and restart != "NotRequired":
            errs.append(
                invalid(path, restart, "must be 'NotRequired' when `restartPolicy` is 'Never'")
            )
    return errs


def container_common(
    ctr: dict[str, Any],
    path: Path,
    *,
    volumes: dict[str, dict[str, Any]],
    restart_policy: str,
    host_users: bool,
) -> list[Cause]:
    """``validateContainerCommon``: what regular, init and ephemeral containers share."""
    name = get_str(ctr, "name")
    if not name:
        errs = [required(path.child("name"))]
    else:
        errs = [invalid(path.child("name"), name, m) for m in names.check_dns1123_label(name)]
    if not get_str(ctr, "image"):
        errs.append(required(path.child("image")))
    policy = get_str(ctr, "terminationMessagePolicy")
    if not policy:
        errs.append(required(path.child("terminationMessagePolicy")))
    elif policy not in TERMINATION_POLICIES:
        errs.append(
            not_supported(path.child("terminationMessagePolicy"), policy, TERMINATION_POLICIES)
        )
    errs += container_ports(get_list(ctr, "ports"), path.child("ports"))
    errs += env_vars(get_list(ctr, "env"), path.child("env"))
    errs += env_from(get_list(ctr, "envFrom"), path.child("envFrom"))
    errs += volume_mounts(ctr, volumes, path.child("volumeMounts"))
    errs += volume_devices(ctr, volumes, path.child("volumeDevices"))
    pull = get_str(ctr, "imagePullPolicy")
    if not pull:
        errs.append(required(path.child("imagePullPolicy")))
    elif pull not in PULL_POLICIES:
        errs.append(not_supported(path.child("imagePullPolicy"), pull, PULL_POLICIES))
    errs += validate_requirements(get_map(ctr, "resources"), path.child("resources"))
    errs += _resize_policy(
        get_list(ctr, "resizePolicy"), path.child("resizePolicy"), restart_policy
    )
    return errs + container_security(
        ctr.get("securityContext"), path.child("securityContext"), host_users=host_users
    )


def host_port_conflicts(containers: list[dict[str, Any]], path: Path) -> list[Cause]:
    seen: set[str] = set()
    errs: list[Cause] = []
    for ci, ctr in enumerate(containers):
        for pi, port in enumerate(dicts(get_list(ctr, "ports"))):
            host = get_int(port, "hostPort")
            if not host:
                continue
            key = f"{get_str(port, 'protocol')}/{get_str(port, 'hostIP')}/{host}"
            if key in seen:
                errs.append(duplicate(path.at(ci).child("ports").at(pi).child("hostPort"), key))
            seen.add(key)
    return errs


def containers(
    items: list[Any],
    path: Path,
    *,
    volumes: dict[str, dict[str, Any]],
    grace: int | None,
    restart_policy: str,
    host_users: bool,
) -> list[Cause]:
    if not items:
        return [required(path)]
    ctrs = dicts(items)
    errs: list[Cause] = []
    seen: set[str] = set()
    for i, ctr in enumerate(ctrs):
        p = path.at(i)
        errs += container_common(
            ctr, p, volumes=volumes, restart_policy=restart_policy, host_users=host_users
        )
        name = get_str(ctr, "name")
        if name in seen:
            errs.append(duplicate(p.child("name"), name))
        seen.add(name)
        errs += probes(ctr, p, grace)
        if has(ctr, "restartPolicy"):
            errs.append(
                forbidden(p.child("restartPolicy"), "may not be set for non-init containers")
            )
    return errs + host_port_conflicts(ctrs, path)


def init_containers(
    items: list[Any],
    regular: list[Any],
    path: Path,
    *,
    volumes: dict[str, dict[str, Any]],
    grace: int | None,
    restart_policy: str,
    host_users: bool,
) -> list[Cause]:
    errs: list[Cause] = []
    seen = {get_str(c, "name") for c in dicts(regular)}
    for i, ctr in enumerate(dicts(items)):
        p = path.at(i)
        errs += container_common(
            ctr, p, volumes=volumes, restart_policy=restart_policy, host_users=host_users
        )
        always = False
        if has(ctr, "restartPolicy"):
            value = get_str(ctr, "restartPolicy")
            always = value == "Always"
            if not always:
                errs.append(not_supported(p.child("restartPolicy"), value, ["Always"]))
        name = get_str(ctr, "name")
        if name in seen:
            errs.append(duplicate(p.child("name"), name))
        elif name:
            seen.add(name)
        errs += host_port_conflicts([ctr], path)
        if always:
            errs += probes(ctr, p, grace)
        else:
            for key in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if has(ctr, key):
                    msg = "may not be set for init containers without restartPolicy=Always"
                    errs.append(forbidden(p.child(key), msg))
        if get_list(ctr, "resizePolicy"):
            errs.append(
                invalid(
                    p.child("resizePolicy"),
                    GoValue("[]core.ContainerResizePolicy{...}"),
                    "must not be set for init containers",
                )
            )
    return errs
