"""Business-time arithmetic for consulting SLAs (pure: stdlib, ``holidays`` and ``zoneinfo`` only).

An SLA target such as "first response within 4 business hours" is measured on the center's business calendar:
open hours (Mon-Fri 09:00-18:00 Asia/Seoul by default) on days that are neither weekends nor public holidays.
The clock pauses while a ticket waits on someone else (``waiting_customer``, ``waiting_parts``,
``waiting_vendor``); the service turns those state periods into :class:`Interval` pauses.

Formula
-------
For a calendar with open windows :math:`W_d = [\\mathrm{open}_d, \\mathrm{close}_d]` on each business day
:math:`d`, the business time between two instants is

.. math:: B(a, b) = \\sum_d |[a, b] \\cap W_d|

and the business time *used* by a ticket with pauses :math:`P_1 \\ldots P_n` (merged into disjoint intervals
:math:`M_k`, clipped to :math:`[\\mathrm{opened}, \\mathrm{now}]`) is

.. math:: U = B(\\mathrm{opened}, \\mathrm{now}) - \\sum_k B(M_k)

Window bounds are built in local time and subtracted in UTC, so days that change daylight-saving time have their
true length (Asia/Seoul has no DST; the calendar's zone is configurable).

Standards
---------
Service hours, pausing the clock while waiting on the customer and warning/escalation thresholds follow ITIL 4
Service Level Management practice. Korean public holidays, including substitute holidays (대체공휴일), come from
the ``holidays`` library's ``KR`` calendar, which implements the Regulations on Holidays of Government Offices
(관공서의 공휴일에 관한 규정).

Conventions
-----------
- Every datetime must be timezone-aware; naive ones raise ``ValueError``. Returned datetimes are in UTC.
- Durations are seconds as ``float``; internally they are exact ``timedelta`` values (microsecond resolution).
- A threshold is crossed when a value *strictly exceeds* it: a ticket resolved exactly at its due time is on time.
- Events after ``now`` (pauses, responses, resolutions) have not happened yet and are ignored.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

__all__ = [
    "DEFAULT_ESCALATION_THRESHOLDS",
    "DEFAULT_WARN_FRACTION",
    "BusinessCalendar",
    "Interval",
    "SlaLevel",
    "SlaStatus",
    "add_business_seconds",
    "business_seconds_between",
    "business_seconds_used",
    "due_at",
    "escalation_level",
    "evaluate_sla",
    "is_business_day",
]

DEFAULT_WARN_FRACTION = 0.8
"""Fraction of a target after which an SLA is in warning (strictly more than 80 % used)."""

DEFAULT_ESCALATION_THRESHOLDS: tuple[float, float, float] = (0.8, 1.0, 1.5)
"""Escalation thresholds as fractions of the target: warn, second consultant at breach, manager at 150 %."""

# Longest calendar scan (in days) before we give up: a calendar with workdays always has business time within a
# week, so only absurd inputs (centuries of business time) reach this.
_MAX_SCAN_DAYS = 366 * 200
_ONE_DAY = timedelta(days=1)
_ZERO = timedelta(0)


# --------------------------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------------------------


def _require_aware(name: str, value: object) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a timezone-aware datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name} must be timezone-aware, got naive datetime {value.isoformat()}; "
            "attach a tzinfo such as datetime.UTC or ZoneInfo('Asia/Seoul')"
        )
    return value


def _require_seconds(name: str, value: object, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number of seconds, got {type(value).__name__}")
    try:
        seconds = float(value)
    except OverflowError:  # an int beyond float range
        seconds = math.inf
    if not math.isfinite(seconds):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and seconds <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if seconds < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return seconds


def _seconds_to_timedelta(name: str, seconds: float) -> timedelta:
    try:
        return timedelta(seconds=seconds)
    except OverflowError as exc:
        raise ValueError(f"{name} is too large: {seconds!r}") from exc


# --------------------------------------------------------------------------------------------------------------
# Calendar
# --------------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _public_holidays(country: str, year: int) -> frozenset[date]:
    """Return the public holiday dates of ``country`` in ``year`` (cached: building the table is slow-ish)."""
    return frozenset(holidays.country_holidays(country, years=year).keys())


@dataclass(frozen=True)
class BusinessCalendar:
    """Open hours of the center: a time zone, working weekdays, a daily window and holidays.

    Parameters
    ----------
    tz : str
        IANA zone the open hours are expressed in. Default ``"Asia/Seoul"``.
    workdays : frozenset of int
        Working weekdays, ``date.weekday()`` numbers (Monday 0 ... Sunday 6). Default Monday to Friday.
    day_start, day_end : datetime.time
        Naive local opening and closing times, ``day_start < day_end``. Default 09:00 and 18:00.
    country : str or None
        ISO 3166-1 alpha-2 code whose public holidays (``holidays`` library) are closed days; ``None`` for none.
        Default ``"KR"``.
    extra_holidays : frozenset of date
        Additional closed dates (company holidays, shutdowns).
    extra_workdays : frozenset of date
        Dates that are open although they fall on a weekend or a public holiday (make-up days). Wins over
        weekends and public holidays; must not overlap ``extra_holidays``.

    Notes
    -----
    Any iterable is accepted for the three set fields and is stored as a ``frozenset``, so calendars are hashable.
    At least one working weekday is required, otherwise a due time could never be reached.

    Examples
    --------
    >>> from datetime import time
    >>> cal = BusinessCalendar()
    >>> cal.tz, sorted(cal.workdays), cal.day_start, cal.day_end, cal.country
    ('Asia/Seoul', [0, 1, 2, 3, 4], datetime.time(9, 0), datetime.time(18, 0), 'KR')
    >>> cal.day_length_s
    32400.0
    >>> BusinessCalendar(day_start=time(18), day_end=time(9))
    Traceback (most recent call last):
    ...
    ValueError: day_start must be before day_end, got day_start=18:00:00, day_end=09:00:00
    """

    tz: str = "Asia/Seoul"
    workdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    day_start: time = time(9, 0)
    day_end: time = time(18, 0)
    country: str | None = "KR"
    extra_holidays: frozenset[date] = field(default_factory=frozenset)
    extra_workdays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not isinstance(self.tz, str) or not self.tz:
            raise ValueError(f"tz must be an IANA time zone name, got {self.tz!r}")
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"tz is not a known IANA time zone: {self.tz!r}") from exc

        workdays = self._coerce_set("workdays", self.workdays)
        for day in workdays:
            if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= 6:
                raise ValueError(f"workdays must hold weekday numbers 0 (Monday) to 6 (Sunday), got {day!r}")
        if not workdays:
            raise ValueError("workdays must contain at least one weekday")
        object.__setattr__(self, "workdays", workdays)

        for name in ("day_start", "day_end"):
            value = getattr(self, name)
            if not isinstance(value, time):
                raise ValueError(f"{name} must be a datetime.time, got {type(value).__name__}")
            if value.tzinfo is not None:
                raise ValueError(f"{name} must be a naive local time (the zone is tz), got {value.isoformat()}")
        if self.day_start >= self.day_end:
            raise ValueError(
                f"day_start must be before day_end, got day_start={self.day_start.isoformat()}, "
                f"day_end={self.day_end.isoformat()}"
            )

        if self.country is not None:
            if not isinstance(self.country, str):
                raise ValueError(f"country must be an ISO 3166-1 alpha-2 code or None, got {self.country!r}")
            try:
                _public_holidays(self.country, 2000)
            except NotImplementedError as exc:
                raise ValueError(f"country has no holiday calendar in the holidays library: {self.country!r}") from exc

        for name in ("extra_holidays", "extra_workdays"):
            dates = self._coerce_set(name, getattr(self, name))
            for day in dates:
                if isinstance(day, datetime) or not isinstance(day, date):
                    raise ValueError(f"{name} must hold datetime.date values, got {day!r}")
            object.__setattr__(self, name, dates)
        both = self.extra_holidays & self.extra_workdays
        if both:
            raise ValueError(
                "extra_holidays and extra_workdays must not overlap, both contain "
                + ", ".join(d.isoformat() for d in sorted(both))
            )

    @staticmethod
    def _coerce_set(name: str, value: object) -> frozenset[object]:
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise ValueError(f"{name} must be a set of values, got {type(value).__name__}")
        return frozenset(value)

    @property
    def zone(self) -> ZoneInfo:
        """Return the calendar's zone (``ZoneInfo`` caches instances, so this is cheap)."""
        return ZoneInfo(self.tz)

    @property
    def day_length_s(self) -> float:
        """Return the nominal open seconds of a business day (ignoring daylight-saving changes)."""
        start = datetime.combine(date(2000, 1, 1), self.day_start)
        end = datetime.combine(date(2000, 1, 1), self.day_end)
        return (end - start).total_seconds()


def _is_business_day(cal: BusinessCalendar, day: date) -> bool:
    if day in cal.extra_workdays:
        return True
    if day in cal.extra_holidays or day.weekday() not in cal.workdays:
        return False
    return cal.country is None or day not in _public_holidays(cal.country, day.year)


def _window_utc(cal: BusinessCalendar, day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Return the open window of local ``day`` as UTC instants."""
    opens = datetime.combine(day, cal.day_start, tzinfo=zone).astimezone(UTC)
    closes = datetime.combine(day, cal.day_end, tzinfo=zone).astimezone(UTC)
    return opens, closes


def is_business_day(cal: BusinessCalendar, day: date) -> bool:
    """Tell whether the center is open on local calendar date ``day``.

    A day is open when it is in ``cal.extra_workdays``, or when it is a working weekday that is neither in
    ``cal.extra_holidays`` nor a public holiday of ``cal.country``.

    Parameters
    ----------
    cal : BusinessCalendar
        The center's calendar.
    day : datetime.date
        A local calendar date (a ``datetime`` is refused: convert it to the calendar's zone and take ``.date()``).

    Returns
    -------
    bool
        ``True`` when the day has open hours.

    Examples
    --------
    >>> from datetime import date
    >>> cal = BusinessCalendar()
    >>> is_business_day(cal, date(2026, 6, 8))   # a Monday
    True
    >>> is_business_day(cal, date(2026, 6, 13))  # a Saturday
    False
    >>> is_business_day(cal, date(2026, 9, 25))  # Chuseok
    False
    >>> is_business_day(BusinessCalendar(country=None), date(2026, 9, 25))
    True
    """
    if not isinstance(cal, BusinessCalendar):
        raise ValueError(f"cal must be a BusinessCalendar, got {type(cal).__name__}")
    if isinstance(day, datetime) or not isinstance(day, date):
        raise ValueError(f"day must be a datetime.date (not a datetime), got {type(day).__name__}")
    return _is_business_day(cal, day)


# --------------------------------------------------------------------------------------------------------------
# Core arithmetic (exact, on timedelta)
# --------------------------------------------------------------------------------------------------------------


def _business_time(cal: BusinessCalendar, start: datetime, end: datetime) -> timedelta:
    """Return open time in ``[start, end]``; both aware, ``start <= end``. One step per calendar day."""
    zone = cal.zone
    start_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)
    day, last = start_utc.astimezone(zone).date(), end_utc.astimezone(zone).date()
    total = _ZERO
    while day <= last:
        if _is_business_day(cal, day):
            opens, closes = _window_utc(cal, day, zone)
            lo, hi = max(opens, start_utc), min(closes, end_utc)
            if hi > lo:
                total += hi - lo
        day += _ONE_DAY
    return total


def _add_business_time(cal: BusinessCalendar, start: datetime, amount: timedelta) -> datetime:
    """Return the earliest open instant ``t >= start`` with ``amount`` of open time in ``[start, t]`` (UTC)."""
    zone = cal.zone
    start_utc = start.astimezone(UTC)
    day = start_utc.astimezone(zone).date()
    remaining = amount
    for _ in range(_MAX_SCAN_DAYS):
        if _is_business_day(cal, day):
            opens, closes = _window_utc(cal, day, zone)
            cursor = max(opens, start_utc)
            if cursor <= closes:
                available = closes - cursor
                if remaining <= available:
                    return cursor + remaining
                remaining -= available
        day += _ONE_DAY
    raise ValueError(f"seconds is too large: no due time within {_MAX_SCAN_DAYS} days of {start.isoformat()}")


def business_seconds_between(cal: BusinessCalendar, start: datetime, end: datetime) -> float:
    """Count the open-hours seconds between two instants.

    Parameters
    ----------
    cal : BusinessCalendar
        The center's calendar.
    start, end : datetime
        Timezone-aware instants, ``start <= end`` (any zones; they are compared as instants).

    Returns
    -------
    float
        :math:`B(start, end) = \\sum_d |[start, end] \\cap [open_d, close_d]|` over business days :math:`d`,
        in seconds. The loop takes one step per calendar day, so spans of months cost microseconds per day.

    Raises
    ------
    ValueError
        If a datetime is naive or ``start`` is after ``end``.

    Examples
    --------
    >>> from datetime import datetime
    >>> from zoneinfo import ZoneInfo
    >>> kst = ZoneInfo("Asia/Seoul")
    >>> cal = BusinessCalendar()
    >>> start, end = datetime(2026, 6, 8, 10, 15, tzinfo=kst), datetime(2026, 6, 8, 16, 45, tzinfo=kst)
    >>> business_seconds_between(cal, start, end)
    23400.0

    Monday 17:00 to Tuesday 10:00 counts one hour each side of the night:

    >>> business_seconds_between(cal, datetime(2026, 6, 8, 17, tzinfo=kst), datetime(2026, 6, 9, 10, tzinfo=kst))
    7200.0
    """
    if not isinstance(cal, BusinessCalendar):
        raise ValueError(f"cal must be a BusinessCalendar, got {type(cal).__name__}")
    _require_aware("start", start)
    _require_aware("end", end)
    if start > end:
        raise ValueError(f"start must not be after end, got start={start.isoformat()}, end={end.isoformat()}")
    return _business_time(cal, start, end).total_seconds()


def add_business_seconds(cal: BusinessCalendar, start: datetime, seconds: float) -> datetime:
    """Return the instant at which ``seconds`` of open time have elapsed since ``start``.

    Parameters
    ----------
    cal : BusinessCalendar
        The center's calendar.
    start : datetime
        Timezone-aware instant the clock starts. Outside open hours the clock starts at the next opening.
    seconds : float
        Business seconds to add, finite and ``>= 0`` (rounded to the microsecond).

    Returns
    -------
    datetime
        The earliest instant ``t >= start`` inside an open window (closing instant included) with
        ``business_seconds_between(cal, start, t) == seconds``, in UTC. Hence ``seconds == 0`` returns ``start``
        during open hours and the next opening otherwise, and a due time that uses up a day exactly is that day's
        closing time, not the next morning.

    Raises
    ------
    ValueError
        If ``start`` is naive or ``seconds`` is negative, not finite or absurdly large.

    Examples
    --------
    Friday 17:00 plus two business hours is Monday 10:00 in Seoul (01:00 UTC):

    >>> from datetime import datetime
    >>> from zoneinfo import ZoneInfo
    >>> kst = ZoneInfo("Asia/Seoul")
    >>> cal = BusinessCalendar()
    >>> due = add_business_seconds(cal, datetime(2026, 6, 12, 17, tzinfo=kst), 2 * 3600)
    >>> due.isoformat(), due.astimezone(kst).isoformat()
    ('2026-06-15T01:00:00+00:00', '2026-06-15T10:00:00+09:00')

    A ticket opened on Saturday night starts its clock on Monday at 09:00:

    >>> add_business_seconds(cal, datetime(2026, 6, 13, 22, tzinfo=kst), 0).astimezone(kst).isoformat()
    '2026-06-15T09:00:00+09:00'
    """
    if not isinstance(cal, BusinessCalendar):
        raise ValueError(f"cal must be a BusinessCalendar, got {type(cal).__name__}")
    _require_aware("start", start)
    amount = _seconds_to_timedelta("seconds", _require_seconds("seconds", seconds))
    return _add_business_time(cal, start, amount)


# --------------------------------------------------------------------------------------------------------------
# Pauses
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """A period the SLA clock is paused (a ticket in a ``waiting_*`` state).

    Parameters
    ----------
    start : datetime
        Timezone-aware instant the pause began.
    end : datetime or None
        Timezone-aware instant it ended, ``end >= start``; ``None`` while the pause is still open (it then runs to
        the ``now`` of the computation).

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> Interval(datetime(2026, 6, 8, 7, tzinfo=UTC)).end is None
    True
    >>> Interval(datetime(2026, 6, 8, 7, tzinfo=UTC), datetime(2026, 6, 8, 6, tzinfo=UTC))
    Traceback (most recent call last):
    ...
    ValueError: end must not be before start, got start=2026-06-08T07:00:00+00:00, end=2026-06-08T06:00:00+00:00
    """

    start: datetime
    end: datetime | None = None

    def __post_init__(self) -> None:
        _require_aware("start", self.start)
        if self.end is not None:
            _require_aware("end", self.end)
            if self.end < self.start:
                raise ValueError(
                    f"end must not be before start, got start={self.start.isoformat()}, end={self.end.isoformat()}"
                )


def _merge_pauses(
    opened_at: datetime, now: datetime, pauses: Sequence[Interval], name: str = "pauses"
) -> list[tuple[datetime, datetime]]:
    """Clip pauses to ``[opened_at, now]`` (open ones run to ``now``) and merge overlaps; sorted, disjoint, UTC."""
    if isinstance(pauses, str | bytes) or not isinstance(pauses, Sequence):
        raise ValueError(f"{name} must be a sequence of Interval, got {type(pauses).__name__}")
    lo_bound, hi_bound = opened_at.astimezone(UTC), now.astimezone(UTC)
    clipped: list[tuple[datetime, datetime]] = []
    for index, pause in enumerate(pauses):
        if not isinstance(pause, Interval):
            raise ValueError(f"{name}[{index}] must be an Interval, got {type(pause).__name__}")
        lo = max(pause.start.astimezone(UTC), lo_bound)
        hi = min(hi_bound if pause.end is None else pause.end.astimezone(UTC), hi_bound)
        if hi > lo:
            clipped.append((lo, hi))
    clipped.sort()
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in clipped:
        if merged and lo <= merged[-1][1]:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def _validate_span(opened_at: datetime, now: datetime) -> None:
    _require_aware("opened_at", opened_at)
    _require_aware("now", now)
    if opened_at > now:
        raise ValueError(
            f"opened_at must not be after now, got opened_at={opened_at.isoformat()}, now={now.isoformat()}"
        )


def _used_time(
    cal: BusinessCalendar, opened_at: datetime, now: datetime, merged: list[tuple[datetime, datetime]]
) -> timedelta:
    used = _business_time(cal, opened_at, now)
    for lo, hi in merged:
        used -= _business_time(cal, lo, hi)
    return used


def _due_time(
    cal: BusinessCalendar, opened_at: datetime, target: timedelta, merged: list[tuple[datetime, datetime]]
) -> datetime:
    """Walk the unpaused segments until ``target`` is used; after the last pause the clock runs on unpaused."""
    need = target
    cursor = opened_at.astimezone(UTC)
    for lo, hi in merged:
        segment = _business_time(cal, cursor, lo)
        if segment >= need:
            return _add_business_time(cal, cursor, need)
        need -= segment
        cursor = hi
    return _add_business_time(cal, cursor, need)


def business_seconds_used(
    cal: BusinessCalendar, opened_at: datetime, now: datetime, pauses: Sequence[Interval] = ()
) -> float:
    """Count the open-hours seconds a ticket has consumed, excluding paused periods.

    Parameters
    ----------
    cal : BusinessCalendar
        The center's calendar.
    opened_at, now : datetime
        Timezone-aware instants, ``opened_at <= now``.
    pauses : sequence of Interval
        Paused periods in any order; they may overlap or touch. Open pauses (``end is None``) run to ``now``.
        Parts before ``opened_at`` or after ``now`` are ignored.

    Returns
    -------
    float
        :math:`U = B(opened, now) - \\sum_k B(M_k)` where :math:`M_k` are the merged, clipped pauses.

    Examples
    --------
    Opened Monday 10:00, waiting on the customer from 16:00 to Tuesday 11:00, evaluated Tuesday 15:00:
    14 h open minus 4 h paused (Mon 16-18, Tue 9-11) is 10 h.

    >>> from datetime import datetime
    >>> from zoneinfo import ZoneInfo
    >>> kst = ZoneInfo("Asia/Seoul")
    >>> pause = Interval(datetime(2026, 6, 8, 16, tzinfo=kst), datetime(2026, 6, 9, 11, tzinfo=kst))
    >>> business_seconds_used(
    ...     BusinessCalendar(), datetime(2026, 6, 8, 10, tzinfo=kst), datetime(2026, 6, 9, 15, tzinfo=kst), [pause]
    ... ) / 3600
    10.0
    """
    if not isinstance(cal, BusinessCalendar):
        raise ValueError(f"cal must be a BusinessCalendar, got {type(cal).__name__}")
    _validate_span(opened_at, now)
    merged = _merge_pauses(opened_at, now, pauses)
    return _used_time(cal, opened_at, now, merged).total_seconds()


def due_at(
    cal: BusinessCalendar,
    opened_at: datetime,
    target_business_seconds: float,
    pauses: Sequence[Interval],
    now: datetime,
) -> datetime:
    """Return when a ticket reaches ``target_business_seconds`` of unpaused business time.

    Parameters
    ----------
    cal : BusinessCalendar
        The center's calendar.
    opened_at : datetime
        Timezone-aware instant the clock started.
    target_business_seconds : float
        SLA target in business seconds, finite and ``>= 0``.
    pauses : sequence of Interval
        Paused periods known so far (see :func:`business_seconds_used`).
    now : datetime
        Timezone-aware instant of evaluation, ``>= opened_at``; pauses are clipped to it.

    Returns
    -------
    datetime
        The due instant in UTC. When the target was used up before ``now`` this is the past instant it happened.
        Otherwise the clock is assumed to run unpaused from ``now`` on, so **while the ticket is paused the due time
        is provisional**: it is computed as if the ticket resumed at ``now``, and moves later as the pause goes on.

    Examples
    --------
    Opened Monday 10:00 with a 16 h target, paused since Tuesday 11:00, evaluated Tuesday 15:00: 10 h used, so
    6 h remain from "now": Tuesday 15-18 and Wednesday 9-12.

    >>> from datetime import datetime
    >>> from zoneinfo import ZoneInfo
    >>> kst = ZoneInfo("Asia/Seoul")
    >>> due = due_at(
    ...     BusinessCalendar(),
    ...     datetime(2026, 6, 8, 10, tzinfo=kst),
    ...     16 * 3600,
    ...     [Interval(datetime(2026, 6, 9, 11, tzinfo=kst))],
    ...     now=datetime(2026, 6, 9, 15, tzinfo=kst),
    ... )
    >>> due.astimezone(kst).isoformat()
    '2026-06-10T12:00:00+09:00'
    """
    if not isinstance(cal, BusinessCalendar):
        raise ValueError(f"cal must be a BusinessCalendar, got {type(cal).__name__}")
    _require_aware("opened_at", opened_at)
    target = _seconds_to_timedelta(
        "target_business_seconds", _require_seconds("target_business_seconds", target_business_seconds)
    )
    _validate_span(opened_at, now)
    merged = _merge_pauses(opened_at, now, pauses)
    return _due_time(cal, opened_at, target, merged)


# --------------------------------------------------------------------------------------------------------------
# SLA status and escalation
# --------------------------------------------------------------------------------------------------------------


class SlaLevel(StrEnum):
    """Overall SLA state of a ticket."""

    OK = "ok"
    WARNING = "warning"
    BREACHED = "breached"


@dataclass(frozen=True)
class SlaStatus:
    """SLA figures of one ticket at one instant (all datetimes UTC, all durations business seconds).

    Attributes
    ----------
    response_due, resolution_due : datetime
        Due times of the first response and the resolution (see :func:`due_at`; provisional while ``paused``).
        Once a clock has stopped, its due time is the one known when it stopped.
    response_used_s, resolution_used_s : float
        Unpaused business time used, up to the first response / resolution or ``now``.
    response_remaining_s, resolution_remaining_s : float
        Target minus used; **negative** when overdue (by that many business seconds).
    response_breached, resolution_breached : bool
        Used strictly more than the target (answered exactly at the due time is on time).
    response_fraction_used, resolution_fraction_used : float
        Used divided by target.
    fraction_used : float
        The worst of the two fractions; feed it to :func:`escalation_level`. It never decreases as ``now`` advances.
    level : SlaLevel
        ``breached`` if either clock is breached, ``warning`` if ``fraction_used > warn_fraction``, else ``ok``.
    paused : bool
        The resolution clock is paused at ``now`` (an unresolved ticket inside a pause).
    responded, resolved : bool
        The response / resolution clock has stopped at or before ``now``.
    """

    response_due: datetime
    resolution_due: datetime
    response_used_s: float
    resolution_used_s: float
    response_remaining_s: float
    resolution_remaining_s: float
    response_breached: bool
    resolution_breached: bool
    response_fraction_used: float
    resolution_fraction_used: float
    fraction_used: float
    level: SlaLevel
    paused: bool
    responded: bool
    resolved: bool


def evaluate_sla(
    cal: BusinessCalendar,
    *,
    opened_at: datetime,
    now: datetime,
    first_response_at: datetime | None,
    resolved_at: datetime | None,
    response_target_s: float,
    resolution_target_s: float,
    pauses: Sequence[Interval] = (),
    warn_fraction: float = DEFAULT_WARN_FRACTION,
) -> SlaStatus:
    """Compute a ticket's due times, used and remaining business time, breach flags and SLA level.

    Parameters
    ----------
    cal : BusinessCalendar
        The center's calendar.
    opened_at, now : datetime
        Timezone-aware; ``opened_at <= now``.
    first_response_at, resolved_at : datetime or None
        When the clocks stopped, ``>= opened_at``; ``None`` (or later than ``now``) if not yet. A resolution with
        no earlier first response also stops the response clock.
    response_target_s, resolution_target_s : float
        Targets in business seconds, finite and ``> 0``.
    pauses : sequence of Interval
        ``waiting_*`` periods; they pause both clocks (see :func:`business_seconds_used`). A reopened ticket can
        pass its resolved-to-reopened period as a pause.
    warn_fraction : float
        Warning threshold as a fraction of the target, ``0 < warn_fraction < 1``. Default 0.8.

    Returns
    -------
    SlaStatus

    Examples
    --------
    Opened Monday 10:00 KST with a 2 h response and a 16 h resolution target, answered at 11:00, evaluated
    Tuesday 15:00: 14 h of 16 h used (87.5 %), so a warning; due Tuesday 17:00 KST (08:00 UTC).

    >>> from datetime import datetime
    >>> from zoneinfo import ZoneInfo
    >>> kst = ZoneInfo("Asia/Seoul")
    >>> status = evaluate_sla(
    ...     BusinessCalendar(),
    ...     opened_at=datetime(2026, 6, 8, 10, tzinfo=kst),
    ...     now=datetime(2026, 6, 9, 15, tzinfo=kst),
    ...     first_response_at=datetime(2026, 6, 8, 11, tzinfo=kst),
    ...     resolved_at=None,
    ...     response_target_s=2 * 3600,
    ...     resolution_target_s=16 * 3600,
    ... )
    >>> status.level, status.fraction_used, status.resolution_remaining_s, status.resolution_due.isoformat()
    (<SlaLevel.WARNING: 'warning'>, 0.875, 7200.0, '2026-06-09T08:00:00+00:00')
    >>> status.response_used_s, status.response_breached, escalation_level(status.fraction_used)
    (3600.0, False, 1)
    """
    if not isinstance(cal, BusinessCalendar):
        raise ValueError(f"cal must be a BusinessCalendar, got {type(cal).__name__}")
    _validate_span(opened_at, now)
    for name, stamp in (("first_response_at", first_response_at), ("resolved_at", resolved_at)):
        if stamp is not None:
            _require_aware(name, stamp)
            if stamp < opened_at:
                raise ValueError(
                    f"{name} must not be before opened_at, got {name}={stamp.isoformat()}, "
                    f"opened_at={opened_at.isoformat()}"
                )
    response_target = _require_seconds("response_target_s", response_target_s, positive=True)
    resolution_target = _require_seconds("resolution_target_s", resolution_target_s, positive=True)
    _seconds_to_timedelta("response_target_s", response_target)
    _seconds_to_timedelta("resolution_target_s", resolution_target)
    if isinstance(warn_fraction, bool) or not isinstance(warn_fraction, int | float):
        raise ValueError(f"warn_fraction must be a number, got {type(warn_fraction).__name__}")
    if not 0 < warn_fraction < 1:
        raise ValueError(f"warn_fraction must be in (0, 1), got {warn_fraction!r}")
    _merge_pauses(opened_at, now, pauses)  # validate before any arithmetic

    # Events after `now` have not happened yet.
    resolved = resolved_at is not None and resolved_at <= now
    resolution_stop = resolved_at if resolved and resolved_at is not None else now
    response_stamps = [s for s in (first_response_at, resolved_at) if s is not None and s <= now]
    responded = bool(response_stamps)
    response_stop = min(response_stamps) if response_stamps else now

    response_merged = _merge_pauses(opened_at, response_stop, pauses)
    resolution_merged = _merge_pauses(opened_at, resolution_stop, pauses)
    response_used = _used_time(cal, opened_at, response_stop, response_merged).total_seconds()
    resolution_used = _used_time(cal, opened_at, resolution_stop, resolution_merged).total_seconds()
    response_due = _due_time(cal, opened_at, timedelta(seconds=response_target), response_merged)
    resolution_due = _due_time(cal, opened_at, timedelta(seconds=resolution_target), resolution_merged)

    response_breached = response_used > response_target
    resolution_breached = resolution_used > resolution_target
    response_fraction = response_used / response_target
    resolution_fraction = resolution_used / resolution_target
    fraction_used = max(response_fraction, resolution_fraction)
    if response_breached or resolution_breached:
        level = SlaLevel.BREACHED
    elif fraction_used > warn_fraction:
        level = SlaLevel.WARNING
    else:
        level = SlaLevel.OK
    paused = not resolved and any(p.start <= now and (p.end is None or p.end > now) for p in pauses)

    return SlaStatus(
        response_due=response_due,
        resolution_due=resolution_due,
        response_used_s=response_used,
        resolution_used_s=resolution_used,
        response_remaining_s=response_target - response_used,
        resolution_remaining_s=resolution_target - resolution_used,
        response_breached=response_breached,
        resolution_breached=resolution_breached,
        response_fraction_used=response_fraction,
        resolution_fraction_used=resolution_fraction,
        fraction_used=fraction_used,
        level=level,
        paused=paused,
        responded=responded,
        resolved=resolved,
    )


def escalation_level(fraction_used: float, thresholds: Sequence[float] = DEFAULT_ESCALATION_THRESHOLDS) -> int:
    """Return how many escalation thresholds ``fraction_used`` strictly exceeds.

    With the default thresholds ``(0.8, 1.0, 1.5)`` the levels are:

    - 0: none (at most 80 % of the target used);
    - 1: warning (more than 80 %);
    - 2: breached, escalate to a second consultant (more than 100 %);
    - 3: escalate to a manager (more than 150 %).

    Parameters
    ----------
    fraction_used : float
        Business time used divided by the target (``SlaStatus.fraction_used``), finite and ``>= 0``.
    thresholds : sequence of float
        Strictly increasing, finite, positive fractions; one level per threshold.

    Returns
    -------
    int
        ``0 .. len(thresholds)``. The service records each level's event once, when the level first rises to it.

    Examples
    --------
    >>> [escalation_level(f) for f in (0.0, 0.8, 0.81, 1.0, 1.01, 1.5, 1.6)]
    [0, 0, 1, 1, 2, 2, 3]
    >>> escalation_level(0.95, thresholds=(0.5, 0.9))
    2
    """
    if isinstance(fraction_used, bool) or not isinstance(fraction_used, int | float):
        raise ValueError(f"fraction_used must be a number, got {type(fraction_used).__name__}")
    if not math.isfinite(fraction_used) or fraction_used < 0:
        raise ValueError(f"fraction_used must be finite and >= 0, got {fraction_used!r}")
    if isinstance(thresholds, str | bytes) or not isinstance(thresholds, Sequence) or not thresholds:
        raise ValueError(f"thresholds must be a non-empty sequence of fractions, got {thresholds!r}")
    previous = 0.0
    for value in thresholds:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"thresholds must hold finite numbers, got {value!r}")
        if value <= previous:
            raise ValueError(f"thresholds must be positive and strictly increasing, got {tuple(thresholds)!r}")
        previous = value
    return sum(1 for value in thresholds if fraction_used > value)
