"""batch/v1 Jobs and CronJobs.

A Job without ``manualSelector: true`` must carry the selector and template labels
generated from its uid (``defaults.generate_job_selector``); validation checks
they are there, as upstream's ``validateGeneratedSelector`` does.
"""

from __future__ import annotations

import re
from typing import Any

from k3py.apimachinery import names
from k3py.server.errors import Cause

from . import cron
from .access import get_int, get_map, get_opt_int, get_str, has
from .field import GoValue, Path, invalid, not_supported, required
from .meta import (
    as_selector,
    immutable_field,
    label_selector_value,
    labels_value,
    nonnegative,
    validate_label_selector,
)
from .pod import validate_template

SPEC = Path("spec")
LEGACY_UID, UID = "controller-uid", "batch.kubernetes.io/controller-uid"
LEGACY_NAME, NAME = "job-name", "batch.kubernetes.io/job-name"
MAX_INDEXED = 100000
_TZ_CHARS = re.compile(r"^[A-Za-z\.\-_0-9+]{1,14}$")


def _has_label(meta: dict[str, Any], path: Path, key: str, expected: str) -> list[Cause]:
    labels = get_map(meta, "labels")
    if key not in labels:
        return [required(path.child("labels").key(key), f"must be '{expected}'")]
    if labels[key] != expected:
        return [
            invalid(path.child("labels").key(key), labels_value(labels), f"must be '{expected}'")
        ]
    return []


def generated_selector(obj: dict[str, Any], *, prefixed: bool) -> list[Cause]:
    spec = get_map(obj, "spec")
    if spec.get("manualSelector") is True or not isinstance(spec.get("selector"), dict):
        return []
    meta = get_map(obj, "metadata")
    uid, name = get_str(meta, "uid"), get_str(meta, "name")
    errs: list[Cause] = []
    if not uid:
        errs.append(required(Path("metadata").child("uid")))
    tmeta = get_map(get_map(spec, "template"), "metadata")
    tpath = SPEC.child("template", "metadata")
    expected = {LEGACY_UID: uid, LEGACY_NAME: name}
    errs += _has_label(tmeta, tpath, LEGACY_UID, uid) + _has_label(tmeta, tpath, LEGACY_NAME, name)
    if prefixed:
        errs += _has_label(tmeta, tpath, UID, uid) + _has_label(tmeta, tpath, NAME, name)
        expected |= {UID: uid, NAME: name}
    selector = as_selector(spec.get("selector"))
    if selector is not None and not selector.matches(expected):
        errs.append(
            invalid(
                SPEC.child("selector"),
                label_selector_value(spec.get("selector")),
                "`selector` not auto-generated",
            )
        )
    return errs


def _indexed(spec: dict[str, Any], path: Path) -> list[Cause]:
    errs: list[Cause] = []
    mode = get_str(spec, "completionMode") if has(spec, "completionMode") else "NonIndexed"
    if mode not in ("NonIndexed", "Indexed"):
        return [not_supported(path.child("completionMode"), mode, ["NonIndexed", "Indexed"])]
    completions, parallelism = get_opt_int(spec, "completions"), get_int(spec, "parallelism")
    if mode == "Indexed":
        if completions is None:
            errs.append(required(path.child("completions"), "when completion mode is Indexed"))
        elif completions > MAX_INDEXED and not has(spec, "backoffLimitPerIndex"):
            msg = f"must be less than or equal to {MAX_INDEXED} when completion mode is Indexed"
            errs.append(invalid(path.child("completions"), completions, msg))
        if parallelism > MAX_INDEXED:
            msg = f"must be less than or equal to {MAX_INDEXED} when completion mode is Indexed"
            errs.append(invalid(path.child("parallelism"), parallelism, msg))
    elif has(spec, "backoffLimitPerIndex"):
        errs.append(
            invalid(
                path.child("backoffLimitPerIndex"),
                get_int(spec, "backoffLimitPerIndex"),
                "requires indexed completion mode",
            )
        )
    if has(spec, "maxFailedIndexes") and not has(spec, "backoffLimitPerIndex"):
        errs.append(
            required(path.child("backoffLimitPerIndex"), "when maxFailedIndexes is specified")
        )
    return errs


def job_spec(spec: dict[str, Any], path: Path) -> list[Cause]:
    """``validateJobSpec``: counts, completion mode, and the pod template."""
    errs: list[Cause] = []
    for key in (
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ):
        errs += nonnegative(path.child(key), get_opt_int(spec, key))
    errs += _indexed(spec, path)
    if has(spec, "podReplacementPolicy"):
        policy = get_str(spec, "podReplacementPolicy")
        if has(spec, "podFailurePolicy") and policy != "Failed":
            errs.append(not_supported(path.child("podReplacementPolicy"), policy, ["Failed"]))
        elif policy not in ("Failed", "TerminatingOrFailed"):
            errs.append(
                not_supported(
                    path.child("podReplacementPolicy"), policy, ["Failed", "TerminatingOrFailed"]
                )
            )
    template = get_map(spec, "template")
    tpath = path.child("template")
    errs += validate_template(template, tpath)
    restart = get_str(get_map(template, "spec"), "restartPolicy")
    if restart not in ("OnFailure", "Never"):
        errs.append(
            not_supported(tpath.child("spec", "restartPolicy"), restart, ["OnFailure", "Never"])
        )
    elif restart == "OnFailure" and has(spec, "podFailurePolicy"):
        msg = 'only "Never" is supported when podFailurePolicy is specified'
        errs.append(invalid(tpath.child("spec", "restartPolicy"), restart, msg))
    return errs


def job(obj: dict[str, Any], *, old: dict[str, Any] | None) -> list[Cause]:
    spec = get_map(obj, "spec")
    prefixed = old is None or UID in get_map(
        get_map(get_map(get_map(old, "spec"), "template"), "metadata"), "labels"
    )
    errs = generated_selector(obj, prefixed=prefixed)
    errs += job_spec(spec, SPEC)
    if not isinstance(spec.get("selector"), dict):
        errs.append(required(SPEC.child("selector")))
    else:
        errs += validate_label_selector(spec["selector"], SPEC.child("selector"))
    selector = as_selector(spec.get("selector"))
    labels = get_map(get_map(get_map(spec, "template"), "metadata"), "labels")
    if selector is not None and not selector.matches(labels):
        path = SPEC.child("template", "metadata", "labels")
        errs.append(
            invalid(path, labels_value(labels), "`selector` does not match template `labels`")
        )
    if old is None:
        errs += _indexed_name(obj, spec)
    return errs


def _indexed_name(obj: dict[str, Any], spec: dict[str, Any]) -> list[Cause]:
    completions = get_opt_int(spec, "completions")
    if get_str(spec, "completionMode") != "Indexed" or not completions or completions <= 0:
        return []
    name = get_str(get_map(obj, "metadata"), "name")
    hostname = f"{name}-{completions - 1}"
    if names.check_dns1123_label(hostname):
        msg = f"will not able to create pod with invalid DNS label: {hostname}"
        return [invalid(Path("metadata").child("name"), name, msg)]
    return []


def job_update(spec: dict[str, Any], old_spec: dict[str, Any]) -> list[Cause]:
    errs = immutable_field(
        SPEC.child("selector"),
        spec.get("selector"),
        old_spec.get("selector"),
        show=label_selector_value(spec.get("selector")),
    )
    errs += immutable_field(
        SPEC.child("template"),
        spec.get("template"),
        old_spec.get("template"),
        show=GoValue("core.PodTemplateSpec{...}"),
    )
    for key in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex"):
        errs += immutable_field(SPEC.child(key), spec.get(key), old_spec.get(key))
    new_c, old_c = spec.get("completions"), old_spec.get("completions")
    if new_c != old_c:
        if get_str(spec, "completionMode") != "Indexed":
            errs += immutable_field(SPEC.child("completions"), new_c, old_c)
        elif new_c is not None and new_c != spec.get("parallelism"):
            errs.append(
                invalid(
                    SPEC.child("completions"),
                    new_c,
                    "can only be modified in tandem with spec.parallelism",
                )
            )
    return errs


def _schedule(spec: dict[str, Any], old_spec: dict[str, Any] | None) -> list[Cause]:
    schedule = get_str(spec, "schedule")
    path = SPEC.child("schedule")
    if not schedule:
        return [required(path)]
    errs: list[Cause] = []
    try:
        cron.parse_standard(schedule)
    except cron.CronError as err:
        errs.append(invalid(path, schedule, str(err)))
    allow_tz = old_spec is not None and "TZ" in get_str(old_spec, "schedule")
    if allow_tz and "TZ" in schedule and has(spec, "timeZone"):
        errs.append(
            invalid(path, schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule")
        )
    elif not allow_tz and "TZ" in schedule:
        errs.append(
            invalid(
                path, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
            )
        )
    return errs


def _time_zone(spec: dict[str, Any]) -> list[Cause]:
    if not has(spec, "timeZone"):
        return []
    tz = get_str(spec, "timeZone")
    path = SPEC.child("timeZone")
    if not tz:
        return [invalid(path, tz, "timeZone must be nil or non-empty string")]
    for part in tz.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TZ_CHARS.match(part):
            return [invalid(path, tz, f"unknown time zone {tz}")]
    errs: list[Cause] = []
    if tz.lower() == "local":
        errs.append(
            invalid(
                path,
                tz,
                "timeZone must be an explicit time zone as defined in "
                "https://www.iana.org/time-zones",
            )
        )
    if not cron.time_zone_exists(tz):
        errs.append(invalid(path, tz, f"unknown time zone {tz}"))
    return errs


def cron_job(obj: dict[str, Any], *, old: dict[str, Any] | None) -> list[Cause]:
    spec = get_map(obj, "spec")
    old_spec = get_map(old, "spec") if old is not None else None
    errs: list[Cause] = []
    name = get_str(get_map(obj, "metadata"), "name")
    if old is None and len(name) > 52:
        errs.append(
            invalid(Path("metadata").child("name"), name, "must be no more than 52 characters")
        )
    errs += _schedule(spec, old_spec)
    errs += nonnegative(
        SPEC.child("startingDeadlineSeconds"), get_opt_int(spec, "startingDeadlineSeconds")
    )
    if old_spec is None or spec.get("timeZone") != old_spec.get("timeZone"):
        errs += _time_zone(spec)
    policy = get_str(spec, "concurrencyPolicy")
    if not policy:
        errs.append(required(SPEC.child("concurrencyPolicy")))
    elif policy not in ("Allow", "Forbid", "Replace"):
        errs.append(
            not_supported(SPEC.child("concurrencyPolicy"), policy, ["Allow", "Forbid", "Replace"])
        )
    jpath = SPEC.child("jobTemplate")
    jspec = get_map(get_map(spec, "jobTemplate"), "spec")
    errs += job_spec(jspec, jpath.child("spec"))
    if isinstance(jspec.get("selector"), dict):
        errs.append(
            invalid(
                jpath.child("spec", "selector"),
                label_selector_value(jspec["selector"]),
                "`selector` will be auto-generated",
            )
        )
    if jspec.get("manualSelector") is True:
        errs.append(not_supported(jpath.child("spec", "manualSelector"), True, ["nil", "false"]))
    for key in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        errs += nonnegative(SPEC.child(key), get_opt_int(spec, key))
    return errs
