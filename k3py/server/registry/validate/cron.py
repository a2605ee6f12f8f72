"""Cron schedules as ``github.com/robfig/cron/v3``'s ``ParseStandard`` accepts them.

Five fields (minute hour day-of-month month day-of-week) with ``*``, ``?``,
ranges, steps, lists and month/weekday names, or a descriptor (``@hourly``,
``@every 1h30m``), optionally after ``TZ=``/``CRON_TZ=``.  Errors carry the
library's wording because upstream puts them verbatim into the API error.
"""

from __future__ import annotations

import re
import zoneinfo

_MONTHS = {
    m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())
}
_DAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
BOUNDS = [(0, 59, None), (0, 23, None), (1, 31, None), (1, 12, _MONTHS), (0, 6, _DAYS)]
DESCRIPTORS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
_DURATION = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


class CronError(ValueError):
    pass


def _atoi(text: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", text):
        raise CronError(
            f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": invalid syntax'
        )
    num = int(text)
    if num < 0:
        raise CronError(f"negative number ({num}) not allowed: {text}")
    return num


def _int_or_name(text: str, names: dict[str, int] | None) -> int:
    if names and text.lower() in names:
        return names[text.lower()]
    return _atoi(text)


def _range(expr: str, lo: int, hi: int, names: dict[str, int] | None) -> None:
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    if low_high[0] in ("*", "?"):
        start, end = lo, hi
    else:
        start = _int_or_name(low_high[0], names)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _int_or_name(low_high[1], names)
        else:
            raise CronError(f"too many hyphens: {expr}")
    step = 1
    if len(range_and_step) == 2:
        step = _atoi(range_and_step[1])
        if len(low_high) == 1:
            end = hi
    elif len(range_and_step) > 2:
        raise CronError(f"too many slashes: {expr}")
    if start < lo:
        raise CronError(f"beginning of range ({start}) below minimum ({lo}): {expr}")
    if end > hi:
        raise CronError(f"end of range ({end}) above maximum ({hi}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronError(f"step of range should be a positive number: {expr}")


def _duration(text: str) -> None:
    """Go's ``time.ParseDuration`` grammar (values only; the result is unused)."""
    rest = text
    if rest in ("0", "+0", "-0"):
        return
    if not rest:
        raise CronError(f'time: invalid duration "{text}"')
    first = True
    while rest:
        m = _DURATION.match(rest if first else rest.lstrip())
        if not m or (not first and rest[0] in "+-"):
            raise CronError(f'time: invalid duration "{text}"')
        rest = rest[m.end() :]
        first = False


def _descriptor(spec: str) -> None:
    if spec in DESCRIPTORS:
        return
    if spec.startswith("@every "):
        arg = spec[len("@every ") :]
        try:
            _duration(arg)
        except CronError as err:
            raise CronError(f"failed to parse duration {spec}: {err}") from err
        return
    raise CronError(f"unrecognized descriptor: {spec}")


def parse_standard(spec: str) -> None:
    """Raise :class:`CronError` with robfig/cron's message if ``spec`` is not valid."""
    if not spec:
        raise CronError("empty spec string")
    if spec.startswith(("TZ=", "CRON_TZ=")):
        space = spec.find(" ")
        name = spec[spec.index("=") + 1 : space if space >= 0 else len(spec)]
        if not time_zone_exists(name):
            raise CronError(f"provided bad location {name}: unknown time zone {name}")
        spec = spec[space:].strip() if space >= 0 else ""
    if spec.startswith("@"):
        _descriptor(spec)
        return
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    for field_text, (lo, hi, names) in zip(fields, BOUNDS, strict=True):
        for expr in field_text.split(","):
            _range(expr, lo, hi, names)


def time_zone_exists(name: str) -> bool:
    """``time.LoadLocation`` succeeds (``UTC`` and ``Local`` always do)."""
    if name in ("", "UTC", "Local"):
        return True
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True
