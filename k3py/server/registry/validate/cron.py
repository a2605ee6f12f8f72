"""Cron schedule checks for CronJob validation: one grammar, ``k3py.apimachinery.cron``
(robfig/cron/v3's ``ParseStandard``, whose error wording upstream puts verbatim into the
API error), shared with the CronJob controller."""

from __future__ import annotations

from k3py.apimachinery import cron
from k3py.apimachinery.cron import CronError

__all__ = ["CronError", "parse_standard", "time_zone_exists"]


def parse_standard(spec: str) -> None:
    """Raise :class:`CronError` with robfig/cron's message if ``spec`` is not valid."""
    cron.parse(spec)


def time_zone_exists(name: str) -> bool:
    """``time.LoadLocation`` succeeds (``UTC`` and ``Local`` always do)."""
    try:
        cron.load_zone(name)
    except CronError:
        return False
    return True
