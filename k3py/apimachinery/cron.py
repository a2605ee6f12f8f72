"""Cron schedules as the CronJob controller reads them: ``robfig/cron/v3``'s
``ParseStandard`` and ``Schedule.Next``, plus upstream's ``mostRecentScheduleTime``.

    sched = parse("*/15 9-17 * * mon-fri", time_zone="Europe/Paris")
    sched.next(now)                    # epoch seconds of the first run strictly after now

Grammar: five fields (minute hour day-of-month month day-of-week) of ``*``/``?``, numbers,
``a-b`` ranges, ``/step`` steps and ``,`` lists, month and weekday names (``jan``,
``mon``, any case), or a descriptor (``@yearly``/``@annually``, ``@monthly``,
``@weekly``, ``@daily``/``@midnight``, ``@hourly``, ``@every 1h30m``), optionally after a
``TZ=``/``CRON_TZ=`` prefix (the API rejects those prefixes on new CronJobs; old objects
may still carry them, and the controller honours them like upstream).

``next`` mirrors robfig's search, field by field from the month down, in the schedule's
time zone: whole-hour/minute steps are absolute (so a DST gap is skipped and a repeated
hour runs once), day steps are wall-clock, and midnight drift across DST is corrected the
way robfig does.  Day-of-month and day-of-week are OR-ed unless either field starts with
``*``/``?`` (then AND-ed), as in cron and robfig.  A schedule that can never fire (``30 2
31 2 *``) gives None after a five-year search.  Times are epoch seconds (floats).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = [
    "ConstantDelaySchedule",
    "CronError",
    "Schedule",
    "SpecSchedule",
    "format_rfc1123z",
    "format_rfc3339",
    "load_zone",
    "local_zone",
    "most_recent_schedule_time",
    "next_schedule_delay",
    "parse",
]

STAR = 1 << 63  # robfig's starBit: the field was "*" or "?" (with no step > 1)
_MONTHS = {
    m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())
}
_DAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
_BOUNDS: list[tuple[int, int, dict[str, int] | None]] = [
    (0, 59, None),
    (0, 23, None),
    (1, 31, None),
    (1, 12, _MONTHS),
    (0, 6, _DAYS),
]
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
Missed = Literal["none", "few", "many"]


class CronError(ValueError):
    """An unparseable schedule, or one that cannot be scheduled sensibly."""


class Schedule(Protocol):
    def next(self, after: float) -> float | None:
        """The first activation strictly after ``after`` (None: never)."""
        ...


# ---- parsing ------------------------------------------------------------------------


def load_zone(name: str) -> dt.tzinfo:
    """Go's ``time.LoadLocation``: "" and "UTC" are UTC, "Local" the process's zone."""
    if name in ("", "UTC"):
        return dt.UTC
    if name == "Local":
        return local_zone()
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as e:
        raise CronError(f"unknown time zone {name}") from e


def local_zone() -> dt.tzinfo:
    """The zone kube-controller-manager would call Local: $TZ, else /etc/localtime."""
    tz = os.environ.get("TZ", "").lstrip(":")
    try:
        if tz:
            return zoneinfo.ZoneInfo(tz)
        with open("/etc/localtime", "rb") as f:
            return zoneinfo.ZoneInfo.from_file(f, key="Local")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return dt.UTC


def parse(
    spec: str, *, time_zone: str | None = None, default_zone: dt.tzinfo | None = None
) -> Schedule:
    """The schedule of ``spec``.  ``time_zone`` (the CronJob's ``spec.timeZone``) applies
    unless the spec carries its own ``TZ=``/``CRON_TZ=`` prefix (upstream's
    ``formatSchedule``); otherwise ``default_zone`` (UTC when None)."""
    if not spec:
        raise CronError("empty spec string")
    zone = default_zone or dt.UTC
    if spec.startswith(("TZ=", "CRON_TZ=")):
        space = spec.find(" ")
        name = spec[spec.index("=") + 1 : space if space >= 0 else len(spec)]
        try:
            zone = load_zone(name)
        except CronError as e:
            raise CronError(f"provided bad location {name}: {e}") from e
        spec = spec[space:].strip() if space >= 0 else ""
    elif time_zone is not None and "TZ" not in spec:
        zone = load_zone(time_zone)
    if spec.startswith("@"):
        return _descriptor(spec, zone)
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    bits = [
        _field(text, lo=lo, hi=hi, names=names)
        for text, (lo, hi, names) in zip(fields, _BOUNDS, strict=True)
    ]
    return SpecSchedule(
        minute=bits[0], hour=bits[1], dom=bits[2], month=bits[3], dow=bits[4], zone=zone
    )


def _all(lo: int, hi: int) -> int:
    return _bits(lo, hi, 1) | STAR


def _bits(lo: int, hi: int, step: int) -> int:
    out = 0
    for i in range(lo, hi + 1, step):
        out |= 1 << i
    return out


def _atoi(text: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", text):
        raise CronError(
            f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": invalid syntax'
        )
    num = int(text)
    if num < 0:
        raise CronError(f"negative number ({num}) not allowed: {text}")
    return num


def _value(text: str, names: dict[str, int] | None) -> int:
    if names and text.lower() in names:
        return names[text.lower()]
    return _atoi(text)


def _field(text: str, *, lo: int, hi: int, names: dict[str, int] | None) -> int:
    out = 0
    for expr in text.split(","):
        out |= _range(expr, lo=lo, hi=hi, names=names)
    return out


def _range(expr: str, *, lo: int, hi: int, names: dict[str, int] | None) -> int:
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    single = len(low_high) == 1
    extra = 0
    if low_high[0] in ("*", "?"):
        start, end, extra = lo, hi, STAR
    else:
        start = _value(low_high[0], names)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _value(low_high[1], names)
        else:
            raise CronError(f"too many hyphens: {expr}")
    step = 1
    if len(range_and_step) == 2:
        step = _atoi(range_and_step[1])
        if single:
            end = hi  # "N/step" means "N-max/step"
        if step > 1:
            extra = 0
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
    return _bits(start, end, step) | extra


def _descriptor(spec: str, zone: dt.tzinfo) -> Schedule:
    every_dom, every_month, every_dow = _all(1, 31), _all(1, 12), _all(0, 6)
    if spec in ("@yearly", "@annually"):
        return SpecSchedule(minute=1, hour=1, dom=1 << 1, month=1 << 1, dow=every_dow, zone=zone)
    if spec == "@monthly":
        return SpecSchedule(
            minute=1, hour=1, dom=1 << 1, month=every_month, dow=every_dow, zone=zone
        )
    if spec == "@weekly":
        return SpecSchedule(minute=1, hour=1, dom=every_dom, month=every_month, dow=1, zone=zone)
    if spec in ("@daily", "@midnight"):
        return SpecSchedule(
            minute=1, hour=1, dom=every_dom, month=every_month, dow=every_dow, zone=zone
        )
    if spec == "@hourly":
        return SpecSchedule(
            minute=1, hour=_all(0, 23), dom=every_dom, month=every_month, dow=every_dow, zone=zone
        )
    if spec.startswith("@every "):
        try:
            seconds = _duration(spec[len("@every ") :])
        except CronError as e:
            raise CronError(f"failed to parse duration {spec}: {e}") from e
        return ConstantDelaySchedule(delay=max(1, int(seconds)))
    raise CronError(f"unrecognized descriptor: {spec}")


def _duration(text: str) -> float:
    """Go's ``time.ParseDuration`` (seconds)."""
    if text in ("0", "+0", "-0"):
        return 0.0
    body = text[1:] if text[:1] in "+-" else text
    pos, total = 0, 0.0
    for m in _DURATION.finditer(body):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not body or pos != len(body):
        raise CronError(f'time: invalid duration "{text}"')
    return -total if text.startswith("-") else total


# ---- schedules ----------------------------------------------------------------------


@dataclass(frozen=True)
class ConstantDelaySchedule:
    """``@every <duration>``: whole seconds, at least one."""

    delay: int

    def next(self, after: float) -> float | None:
        return float(math.floor(after) + self.delay)


@dataclass(frozen=True)
class SpecSchedule:
    minute: int
    hour: int
    dom: int
    month: int
    dow: int
    zone: dt.tzinfo = dt.UTC

    def next(self, after: float) -> float | None:
        return _Search(self).run(math.floor(after) + 1)

    def day_matches(self, t: dt.datetime) -> bool:
        dom_match = bool((1 << t.day) & self.dom)
        dow_match = bool((1 << ((t.weekday() + 1) % 7)) & self.dow)
        if self.dom & STAR or self.dow & STAR:
            return dom_match and dow_match
        return dom_match or dow_match


class _Search:
    """robfig's ``SpecSchedule.Next`` on epoch seconds (``ts``) seen in ``zone``."""

    def __init__(self, s: SpecSchedule) -> None:
        self.s = s
        self.zone = s.zone
        self.added = False

    def local(self, ts: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(ts, self.zone)

    def wall(self, y: int, mo: int, d: int, h: int = 0, mi: int = 0, sec: int = 0) -> int:
        """Go's ``time.Date`` (normalising overflowing days and months)."""
        base = dt.date(y + (mo - 1) // 12, (mo - 1) % 12 + 1, 1) + dt.timedelta(days=d - 1)
        return int(
            dt.datetime(base.year, base.month, base.day, h, mi, sec, tzinfo=self.zone).timestamp()
        )

    def run(self, ts: int) -> float | None:
        year_limit = self.local(ts).year + 5
        while True:
            t = self.local(ts)
            if t.year > year_limit:
                return None
            ts, wrapped = self.month(ts)
            if wrapped:
                continue
            ts, wrapped = self.day(ts)
            if wrapped:
                continue
            ts, wrapped = self.step(ts, unit=3600, bits=self.s.hour, get=lambda t: t.hour)
            if wrapped:
                continue
            ts, wrapped = self.step(ts, unit=60, bits=self.s.minute, get=lambda t: t.minute)
            if wrapped:
                continue
            ts, wrapped = self.step(ts, unit=1, bits=1, get=lambda t: t.second)
            if wrapped:
                continue
            return float(ts)

    def month(self, ts: int) -> tuple[int, bool]:
        t = self.local(ts)
        while not (1 << t.month) & self.s.month:
            if not self.added:
                self.added = True
                ts = self.wall(t.year, t.month, 1)
                t = self.local(ts)
            ts = self.wall(t.year, t.month + 1, t.day, t.hour, t.minute, t.second)
            t = self.local(ts)
            if t.month == 1:
                return ts, True
        return ts, False

    def day(self, ts: int) -> tuple[int, bool]:
        t = self.local(ts)
        while not self.s.day_matches(t):
            if not self.added:
                self.added = True
                ts = self.wall(t.year, t.month, t.day)
                t = self.local(ts)
            ts = self.wall(t.year, t.month, t.day + 1, t.hour, t.minute, t.second)
            t = self.local(ts)
            if t.hour != 0:  # midnight moved by DST: put it back
                ts += (24 - t.hour) * 3600 if t.hour > 12 else -t.hour * 3600
                t = self.local(ts)
            if t.day == 1:
                return ts, True
        return ts, False

    def step(
        self, ts: int, *, unit: int, bits: int, get: Callable[[dt.datetime], int]
    ) -> tuple[int, bool]:
        t = self.local(ts)
        while not (1 << get(t)) & bits:
            if not self.added:
                self.added = True
                if unit == 3600:
                    ts = self.wall(t.year, t.month, t.day, t.hour)
                else:
                    ts -= ts % unit
            ts += unit
            t = self.local(ts)
            if get(t) == 0:
                return ts, True
        return ts, False


# ---- upstream's CronJob helpers --------------------------------------------------------


def most_recent_schedule_time(
    *,
    schedule: Schedule,
    earliest: float,
    now: float,
    starting_deadline_seconds: int | None = None,
) -> tuple[float, float | None, Missed]:
    """(earliest, most recent activation in (earliest, now] or None, how many were
    missed) as upstream's ``mostRecentScheduleTime``; ``earliest`` is
    ``status.lastScheduleTime`` or the creation time.  Raises ``CronError`` for a
    schedule whose activations are less than a second apart (``59 23 31 2 *``)."""
    if starting_deadline_seconds is not None:
        earliest = max(earliest, now - starting_deadline_seconds)
    t1 = schedule.next(earliest)
    if t1 is None or now < t1:
        return earliest, None, "none"
    t2 = schedule.next(t1)
    if t2 is None or now < t2:
        return earliest, t1, "none"
    between = round(t2 - t1)
    if between < 1:
        raise CronError("time difference between two schedules is less than 1 second")
    elapsed = int(now - t1)
    missed_count = elapsed // between + 1
    most_recent: float | None = None
    t: float | None = schedule.next(t1 + (missed_count - 2) * between)
    while t is not None and t <= now:
        most_recent = t
        t = schedule.next(t)
    missed: Missed = "many" if missed_count > 100 else "few" if missed_count > 0 else "none"
    return earliest, most_recent, missed


def next_schedule_delay(*, schedule: Schedule, earliest: float, now: float) -> float | None:
    """Seconds until the controller should look again (upstream's
    ``nextScheduleTimeDuration``, with its 100 ms of slack); None: never."""
    try:
        start, recent, missed = most_recent_schedule_time(
            schedule=schedule, earliest=earliest, now=now
        )
    except CronError:
        recent = now
    else:
        if recent is None:
            recent = start if missed == "none" else now
    nxt = schedule.next(recent)
    return None if nxt is None else nxt + 0.1 - now


def format_rfc3339(t: float, zone: dt.tzinfo) -> str:
    """Go's ``time.RFC3339`` of ``t`` in ``zone`` ("Z" for a zero offset)."""
    local = dt.datetime.fromtimestamp(t, zone)
    off = local.utcoffset() or dt.timedelta(0)
    if not off:
        return local.strftime("%Y-%m-%dT%H:%M:%SZ")
    return local.strftime("%Y-%m-%dT%H:%M:%S") + _offset(off, colon=True)


def format_rfc1123z(t: float) -> str:
    """Go's ``time.RFC1123Z`` of ``t`` in UTC: ``Mon, 02 Jan 2006 15:04:05 +0000``."""
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def _offset(off: dt.timedelta, *, colon: bool) -> str:
    minutes = int(off.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}:{m:02d}" if colon else f"{sign}{h:02d}{m:02d}"
