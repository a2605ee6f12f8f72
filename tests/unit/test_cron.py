"""Cron schedules (robfig/cron v3 semantics) and upstream's missed-schedule arithmetic."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from k3py.apimachinery import cron

NY = zoneinfo.ZoneInfo("America/New_York")


def ts(*args: int, tz: dt.tzinfo = dt.UTC) -> float:
    return dt.datetime(*args, tzinfo=tz).timestamp()  # type: ignore[arg-type, misc]


def at(t: float | None, tz: dt.tzinfo = dt.UTC) -> str | None:
    return None if t is None else dt.datetime.fromtimestamp(t, tz).strftime("%Y-%m-%d %H:%M:%S %a")


@pytest.mark.parametrize(
    ("spec", "after", "expected"),
    [
        ("*/1 * * * *", (2024, 1, 1, 10, 0, 0), "2024-01-01 10:01:00 Mon"),
        ("*/1 * * * *", (2024, 1, 1, 10, 0, 59), "2024-01-01 10:01:00 Mon"),
        ("5 * * * *", (2024, 1, 1, 10, 5, 0), "2024-01-01 11:05:00 Mon"),
        ("*/15 9-17 * * mon-fri", (2024, 1, 6, 10, 0, 0), "2024-01-08 09:00:00 Mon"),
        ("*/15 9-17 * * MON-FRI", (2024, 1, 8, 17, 45, 0), "2024-01-09 09:00:00 Tue"),
        ("0 0 1 jan,jul *", (2024, 2, 1, 0, 0, 0), "2024-07-01 00:00:00 Mon"),
        ("0 12 * * sun", (2024, 1, 1, 0, 0, 0), "2024-01-07 12:00:00 Sun"),
        ("30 4 1,15 * *", (2024, 1, 2, 0, 0, 0), "2024-01-15 04:30:00 Mon"),
        ("0 0 29 2 *", (2025, 1, 1, 0, 0, 0), "2028-02-29 00:00:00 Tue"),
        ("0 0 31 * *", (2024, 4, 1, 0, 0, 0), "2024-05-31 00:00:00 Fri"),
        ("10-20/5 * * * *", (2024, 1, 1, 0, 16, 0), "2024-01-01 00:20:00 Mon"),
        ("7/20 * * * *", (2024, 1, 1, 0, 28, 0), "2024-01-01 00:47:00 Mon"),
        ("? * * * ?", (2024, 1, 1, 0, 0, 0), "2024-01-01 00:01:00 Mon"),
        ("@hourly", (2024, 1, 1, 0, 30, 0), "2024-01-01 01:00:00 Mon"),
        ("@daily", (2024, 1, 1, 0, 30, 0), "2024-01-02 00:00:00 Tue"),
        ("@midnight", (2024, 1, 1, 0, 30, 0), "2024-01-02 00:00:00 Tue"),
        ("@weekly", (2024, 1, 3, 0, 0, 0), "2024-01-07 00:00:00 Sun"),
        ("@monthly", (2024, 1, 3, 0, 0, 0), "2024-02-01 00:00:00 Thu"),
        ("@yearly", (2024, 1, 3, 0, 0, 0), "2025-01-01 00:00:00 Wed"),
        ("@annually", (2024, 1, 3, 0, 0, 0), "2025-01-01 00:00:00 Wed"),
        ("@every 1h30m", (2024, 1, 2, 0, 0, 0), "2024-01-02 01:30:00 Tue"),
        ("@every 500ms", (2024, 1, 2, 0, 0, 0), "2024-01-02 00:00:01 Tue"),
    ],
)
def test_next(spec: str, after: tuple[int, ...], expected: str) -> None:
    assert at(cron.parse(spec).next(ts(*after))) == expected


def test_day_of_month_and_week_are_ored_unless_one_is_a_star() -> None:
    # Jan 2 2024 is a Tuesday: "1,15 or Monday" fires on Monday the 8th
    assert at(cron.parse("0 0 1,15 * mon").next(ts(2024, 1, 2))) == "2024-01-08 00:00:00 Mon"
    # a star day-of-month: only Mondays
    assert at(cron.parse("0 0 * * mon").next(ts(2024, 1, 2))) == "2024-01-08 00:00:00 Mon"
    # "*/2" (step > 1) is not a star: odd days OR Mondays → Jan 3rd
    assert at(cron.parse("0 0 */2 * mon").next(ts(2024, 1, 2))) == "2024-01-03 00:00:00 Wed"
    # "*/1" keeps the star: AND (every day that is a Monday)
    assert at(cron.parse("0 0 */1 * mon").next(ts(2024, 1, 2))) == "2024-01-08 00:00:00 Mon"


def test_impossible_schedule_never_fires() -> None:
    assert cron.parse("0 0 30 2 *").next(ts(2024, 1, 1)) is None


def test_time_zone_field_and_prefix() -> None:
    # 9:00 in New York is 14:00 UTC in winter
    s = cron.parse("0 9 * * *", time_zone="America/New_York")
    assert at(s.next(ts(2024, 1, 1)), dt.UTC) == "2024-01-01 14:00:00 Mon"
    prefixed = cron.parse("CRON_TZ=America/New_York 0 9 * * *")
    assert prefixed.next(ts(2024, 1, 1)) == s.next(ts(2024, 1, 1))
    # a TZ prefix wins over spec.timeZone (upstream's formatSchedule)
    both = cron.parse("TZ=UTC 0 9 * * *", time_zone="America/New_York")
    assert at(both.next(ts(2024, 1, 1))) == "2024-01-01 09:00:00 Mon"
    # default zone for schedules without a zone
    local = cron.parse("0 9 * * *", default_zone=NY)
    assert local.next(ts(2024, 1, 1)) == s.next(ts(2024, 1, 1))


def test_daylight_saving_time() -> None:
    # 02:30 does not exist on 2024-03-10 in New York: that day is skipped, as robfig does
    s = cron.parse("30 2 * * *", time_zone="America/New_York")
    assert at(s.next(ts(2024, 3, 9, 3, 0, tz=NY)), NY) == "2024-03-11 02:30:00 Mon"
    # 01:30 happens twice on 2024-11-03: robfig fires at both
    s = cron.parse("30 1 * * *", time_zone="America/New_York")
    first = s.next(ts(2024, 11, 3, 0, 0, tz=NY))
    second = s.next(first or 0)
    assert first is not None and second is not None and second - first == 3600
    # daily at midnight keeps midnight across the change
    s = cron.parse("0 0 * * *", time_zone="America/New_York")
    assert at(s.next(ts(2024, 3, 10, 0, 0, tz=NY)), NY) == "2024-03-11 00:00:00 Mon"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty spec string"),
        ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
        ("60 * * * *", "end of range (60) above maximum (59): 60"),
        ("* 24 * * *", "end of range (24) above maximum (23): 24"),
        ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
        ("* * * 13 *", "end of range (13) above maximum (12): 13"),
        ("* * * * 7", "end of range (7) above maximum (6): 7"),
        ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
        ("*/0 * * * *", "step of range should be a positive number: */0"),
        ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
        ("*/2/3 * * * *", "too many slashes: */2/3"),
        ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
        ("@fortnightly", "unrecognized descriptor: @fortnightly"),
        ("@every 1y", 'failed to parse duration @every 1y: time: invalid duration "1y"'),
        (
            "TZ=Nowhere/City * * * * *",
            "provided bad location Nowhere/City: unknown time zone Nowhere/City",
        ),
    ],
)
def test_errors(spec: str, message: str) -> None:
    with pytest.raises(cron.CronError) as e:
        cron.parse(spec)
    assert str(e.value) == message


def test_unknown_time_zone() -> None:
    with pytest.raises(cron.CronError, match="unknown time zone Mars/Olympus"):
        cron.parse("* * * * *", time_zone="Mars/Olympus")
    assert cron.load_zone("") is dt.UTC
    assert cron.load_zone("UTC") is dt.UTC


EVERY_MINUTE = cron.parse("*/1 * * * *")


def test_most_recent_schedule_time() -> None:
    created = ts(2024, 1, 1, 0, 0, 30)
    # nothing due yet
    earliest, recent, missed = cron.most_recent_schedule_time(
        schedule=EVERY_MINUTE, earliest=created, now=ts(2024, 1, 1, 0, 0, 59)
    )
    assert (earliest, recent, missed) == (created, None, "none")
    # exactly one due
    _, recent, missed = cron.most_recent_schedule_time(
        schedule=EVERY_MINUTE, earliest=created, now=ts(2024, 1, 1, 0, 1, 10)
    )
    assert (recent, missed) == (ts(2024, 1, 1, 0, 1), "none")
    # several missed: the most recent one
    _, recent, missed = cron.most_recent_schedule_time(
        schedule=EVERY_MINUTE, earliest=created, now=ts(2024, 1, 1, 0, 5, 10)
    )
    assert (recent, missed) == (ts(2024, 1, 1, 0, 5), "few")
    # more than 100 missed
    _, recent, missed = cron.most_recent_schedule_time(
        schedule=EVERY_MINUTE, earliest=created, now=ts(2024, 1, 1, 3, 0, 10)
    )
    assert (recent, missed) == (ts(2024, 1, 1, 3, 0), "many")
    # startingDeadlineSeconds moves "earliest" forward: only the last 200 s count
    earliest, recent, missed = cron.most_recent_schedule_time(
        schedule=EVERY_MINUTE, earliest=created, now=ts(2024, 1, 1, 3, 0, 10),
        starting_deadline_seconds=200,
    )  # fmt: skip
    assert earliest == ts(2024, 1, 1, 3, 0, 10) - 200
    assert (recent, missed) == (ts(2024, 1, 1, 3, 0), "few")


def test_most_recent_with_irregular_schedule() -> None:
    # weekdays at 06:30, 10:30 and 14:30: the approximation must still find the latest
    s = cron.parse("30 6-16/4 * * 1-5")
    _, recent, _ = cron.most_recent_schedule_time(
        schedule=s, earliest=ts(2024, 1, 1, 0, 0), now=ts(2024, 1, 8, 12, 0)
    )
    assert at(recent) == "2024-01-08 10:30:00 Mon"


def test_most_recent_with_every() -> None:
    s = cron.parse("@every 90s")
    start = ts(2024, 1, 1, 0, 0, 0)
    _, recent, _ = cron.most_recent_schedule_time(schedule=s, earliest=start, now=start + 1000)
    assert recent == start + 990  # 11 periods of 90 s


def test_next_schedule_delay() -> None:
    created = ts(2024, 1, 1, 0, 0, 30)
    delay = cron.next_schedule_delay(
        schedule=EVERY_MINUTE, earliest=created, now=ts(2024, 1, 1, 0, 0, 40)
    )
    assert delay == pytest.approx(20.1)
    # missed runs: the next one after now
    delay = cron.next_schedule_delay(
        schedule=EVERY_MINUTE, earliest=created, now=ts(2024, 1, 1, 0, 5, 40)
    )
    assert delay == pytest.approx(20.1)
    never = cron.parse("0 0 30 2 *")
    assert cron.next_schedule_delay(schedule=never, earliest=created, now=created) is None


def test_formats() -> None:
    t = ts(2024, 1, 1, 14, 0, 0)
    assert cron.format_rfc3339(t, dt.UTC) == "2024-01-01T14:00:00Z"
    assert cron.format_rfc3339(t, NY) == "2024-01-01T09:00:00-05:00"
    assert cron.format_rfc1123z(t) == "Mon, 01 Jan 2024 14:00:00 +0000"
