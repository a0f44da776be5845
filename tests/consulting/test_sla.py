"""Business-time SLA arithmetic: hand-worked vectors, validation and properties.

Unless stated otherwise the calendar is the default one: Asia/Seoul, Mon-Fri 09:00-18:00 (9 h = 32400 s a day),
Korean public holidays from the ``holidays`` library. Reference week: Monday 2026-06-08 to Friday 2026-06-12, no
holidays (2026-06-03 election day and 2026-06-06 Memorial Day are the week before). KST = UTC+9, no DST.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refurb.consulting.sla import (
    DEFAULT_ESCALATION_THRESHOLDS,
    BusinessCalendar,
    Interval,
    SlaLevel,
    SlaStatus,
    add_business_seconds,
    business_seconds_between,
    business_seconds_used,
    due_at,
    escalation_level,
    evaluate_sla,
    is_business_day,
)

KST = ZoneInfo("Asia/Seoul")
CAL = BusinessCalendar()
H = 3600.0


def kst(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=KST)


# ---------------------------------------------------------------------------------------------------------------
# Calendar
# ---------------------------------------------------------------------------------------------------------------


def test_default_calendar() -> None:
    assert CAL.tz == "Asia/Seoul"
    assert CAL.workdays == frozenset({0, 1, 2, 3, 4})
    assert (CAL.day_start, CAL.day_end) == (time(9, 0), time(18, 0))
    assert CAL.country == "KR"
    assert CAL.extra_holidays == frozenset()
    assert CAL.extra_workdays == frozenset()
    assert CAL.day_length_s == 9 * H


def test_calendar_is_frozen_and_hashable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        CAL.tz = "UTC"  # type: ignore[misc]
    assert hash(CAL) == hash(BusinessCalendar())


def test_calendar_coerces_iterables_to_frozensets() -> None:
    cal = BusinessCalendar(
        workdays=[0, 1, 2],  # type: ignore[arg-type]
        extra_holidays={date(2026, 6, 8)},  # type: ignore[arg-type]
        extra_workdays=(date(2026, 6, 13),),  # type: ignore[arg-type]
    )
    assert cal.workdays == frozenset({0, 1, 2})
    assert isinstance(cal.extra_holidays, frozenset)
    assert isinstance(cal.extra_workdays, frozenset)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"tz": "Asia/Gimhae"}, "tz"),
        ({"tz": ""}, "tz"),
        ({"workdays": frozenset()}, "workdays"),
        ({"workdays": frozenset({7})}, "workdays"),
        ({"workdays": frozenset({-1})}, "workdays"),
        ({"workdays": 5}, "workdays"),
        ({"day_start": time(18), "day_end": time(9)}, "day_start"),
        ({"day_start": time(9), "day_end": time(9)}, "day_start"),
        ({"day_start": time(9, tzinfo=UTC)}, "day_start"),
        ({"day_end": "18:00"}, "day_end"),
        ({"country": "XX"}, "country"),
        ({"country": "kr"}, "country"),
        ({"extra_holidays": frozenset({datetime(2026, 6, 8, tzinfo=UTC)})}, "extra_holidays"),
        ({"extra_workdays": frozenset({"2026-06-13"})}, "extra_workdays"),
        (
            {"extra_holidays": frozenset({date(2026, 6, 8)}), "extra_workdays": frozenset({date(2026, 6, 8)})},
            "extra_holidays and extra_workdays",
        ),
    ],
)
def test_calendar_validation_names_the_parameter(kwargs: dict[str, object], parameter: str) -> None:
    with pytest.raises(ValueError, match=parameter):
        BusinessCalendar(**kwargs)  # type: ignore[arg-type]


def test_library_lists_the_2026_korean_holidays_these_vectors_rely_on() -> None:
    """The weekday holidays of 2026 per the ``holidays`` library (checked with holidays 0.109).

    Seollal Feb 16-18, Independence Movement Day Sun Mar 1 with substitute Mon Mar 2, Labor Day May 1, Children's
    Day May 5, Buddha's Birthday Sun May 24 with substitute Mon May 25, local election Jun 3, Constitution Day Jul 17,
    Liberation Day Sat Aug 15 with substitute Mon Aug 17, Chuseok Sep 24-26, National Foundation Day Sat Oct 3 with
    substitute Mon Oct 5, Hangul Day Oct 9, Christmas.
    """
    kr = holidays.country_holidays("KR", years=2026)
    weekday_holidays = sorted(d for d in kr if d.weekday() < 5)
    assert weekday_holidays == [
        date(2026, 1, 1),
        date(2026, 2, 16),
        date(2026, 2, 17),
        date(2026, 2, 18),
        date(2026, 3, 2),
        date(2026, 5, 1),
        date(2026, 5, 5),
        date(2026, 5, 25),
        date(2026, 6, 3),
        date(2026, 7, 17),
        date(2026, 8, 17),
        date(2026, 9, 24),
        date(2026, 9, 25),
        date(2026, 10, 5),
        date(2026, 10, 9),
        date(2026, 12, 25),
    ]


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 6, 8), True),  # Monday
        (date(2026, 6, 12), True),  # Friday
        (date(2026, 6, 13), False),  # Saturday
        (date(2026, 6, 14), False),  # Sunday
        (date(2026, 1, 1), False),  # New Year's Day (Thursday)
        (date(2026, 2, 17), False),  # Seollal (Tuesday)
        (date(2026, 3, 2), False),  # substitute for Independence Movement Day (Sunday 2026-03-01)
        (date(2026, 8, 17), False),  # substitute for Liberation Day (Saturday 2026-08-15)
        (date(2026, 9, 24), False),  # day before Chuseok (Thursday)
        (date(2026, 10, 5), False),  # substitute for National Foundation Day (Saturday 2026-10-03)
        (date(2026, 10, 6), True),  # the Tuesday after
    ],
)
def test_is_business_day_korean_calendar(day: date, expected: bool) -> None:
    assert is_business_day(CAL, day) is expected


def test_is_business_day_without_country_ignores_public_holidays() -> None:
    cal = BusinessCalendar(country=None)
    assert is_business_day(cal, date(2026, 10, 5))
    assert not is_business_day(cal, date(2026, 10, 3))  # still a Saturday


def test_extra_holidays_and_workdays() -> None:
    cal = BusinessCalendar(
        extra_holidays=frozenset({date(2026, 6, 8)}),
        extra_workdays=frozenset({date(2026, 6, 13), date(2026, 6, 3)}),
    )
    assert not is_business_day(cal, date(2026, 6, 8))  # company shutdown Monday
    assert is_business_day(cal, date(2026, 6, 13))  # make-up Saturday
    assert is_business_day(cal, date(2026, 6, 3))  # open on election day although it is a public holiday


def test_is_business_day_rejects_datetimes() -> None:
    with pytest.raises(ValueError, match="day"):
        is_business_day(CAL, kst(2026, 6, 8, 10))
    with pytest.raises(ValueError, match="day"):
        is_business_day(CAL, "2026-06-08")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cal"):
        is_business_day(None, date(2026, 6, 8))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------------
# business_seconds_between
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected_s"),
    [
        # same day, inside hours: 10:15 -> 16:45 = 6 h 30 min
        (kst(2026, 6, 8, 10, 15), kst(2026, 6, 8, 16, 45), 6.5 * H),
        # same day, clamped to the window: 08:00 -> 19:00 counts 09:00 -> 18:00 = 9 h
        (kst(2026, 6, 8, 8), kst(2026, 6, 8, 19), 9 * H),
        # entirely before opening
        (kst(2026, 6, 8, 7), kst(2026, 6, 8, 8, 30), 0.0),
        # entirely after closing, into the night
        (kst(2026, 6, 8, 18), kst(2026, 6, 9, 8, 59), 0.0),
        # across a night: Mon 17:00 -> Tue 10:00 = 1 h + 1 h
        (kst(2026, 6, 8, 17), kst(2026, 6, 9, 10), 2 * H),
        # across a weekend: Fri 17:00 -> Mon 10:00 = 1 h + 1 h
        (kst(2026, 6, 12, 17), kst(2026, 6, 15, 10), 2 * H),
        # full week Mon 00:00 -> next Mon 00:00 = 5 x 9 h
        (kst(2026, 6, 8), kst(2026, 6, 15), 45 * H),
        # Chuseok: Wed 2026-09-23 17:00 -> Mon 2026-09-28 10:00; Thu 24 and Fri 25 are holidays = 1 h + 1 h
        (kst(2026, 9, 23, 17), kst(2026, 9, 28, 10), 2 * H),
        # Seollal: Fri 2026-02-13 17:00 -> Thu 2026-02-19 10:00; Mon 16 - Wed 18 are holidays = 1 h + 1 h
        (kst(2026, 2, 13, 17), kst(2026, 2, 19, 10), 2 * H),
        # sub-second precision is kept (microseconds)
        (kst(2026, 6, 8, 10), kst(2026, 6, 8, 10, 0, 0, 250_000), 0.25),
        # empty span
        (kst(2026, 6, 8, 10), kst(2026, 6, 8, 10), 0.0),
    ],
)
def test_business_seconds_between_vectors(start: datetime, end: datetime, expected_s: float) -> None:
    assert business_seconds_between(CAL, start, end) == expected_s


def test_business_seconds_between_mixed_zones() -> None:
    # Mon 08:00 UTC = Mon 17:00 KST; Tue 01:00 UTC = Tue 10:00 KST -> 2 h
    start = datetime(2026, 6, 8, 8, tzinfo=UTC)
    end = datetime(2026, 6, 9, 1, tzinfo=UTC)
    assert business_seconds_between(CAL, start, end) == 2 * H
    assert business_seconds_between(CAL, start, end.astimezone(ZoneInfo("America/New_York"))) == 2 * H


def test_business_seconds_between_whole_year_2026() -> None:
    # 2026 has 261 weekdays (52 weeks + Thursday 1 Jan); 16 weekday public holidays (listed above) -> 245 days x 9 h
    seconds = business_seconds_between(CAL, kst(2026, 1, 1), kst(2027, 1, 1))
    assert seconds == 245 * 9 * H == 7_938_000.0


def test_business_seconds_between_without_holidays_whole_year_2026() -> None:
    cal = BusinessCalendar(country=None)
    assert business_seconds_between(cal, kst(2026, 1, 1), kst(2027, 1, 1)) == 261 * 9 * H


def test_business_seconds_between_dst_day_has_its_true_length() -> None:
    # Berlin springs forward on 2026-03-29 at 02:00 -> 03:00: a 00:00-06:00 window lasts only 5 h that day.
    cal = BusinessCalendar(
        tz="Europe/Berlin", workdays=frozenset(range(7)), day_start=time(0), day_end=time(6), country=None
    )
    berlin = ZoneInfo("Europe/Berlin")
    assert (
        business_seconds_between(cal, datetime(2026, 3, 28, tzinfo=berlin), datetime(2026, 3, 29, 12, tzinfo=berlin))
        == 11 * H
    )
    due = add_business_seconds(cal, datetime(2026, 3, 29, tzinfo=berlin), 5.5 * H)
    assert due.astimezone(berlin) == datetime(2026, 3, 30, 0, 30, tzinfo=berlin)


def test_business_seconds_between_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="start must not be after end"):
        business_seconds_between(CAL, kst(2026, 6, 9, 10), kst(2026, 6, 8, 10))
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        business_seconds_between(CAL, datetime(2026, 6, 8, 10), kst(2026, 6, 9, 10))
    with pytest.raises(ValueError, match="end must be timezone-aware"):
        business_seconds_between(CAL, kst(2026, 6, 8, 10), datetime(2026, 6, 9, 10))
    with pytest.raises(ValueError, match="end must be a timezone-aware datetime"):
        business_seconds_between(CAL, kst(2026, 6, 8, 10), date(2026, 6, 9))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cal"):
        business_seconds_between("KR", kst(2026, 6, 8, 10), kst(2026, 6, 9, 10))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------------
# add_business_seconds
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "seconds", "expected"),
    [
        # same day: Mon 10:00 + 3 h = Mon 13:00
        (kst(2026, 6, 8, 10), 3 * H, kst(2026, 6, 8, 13)),
        # across a night: Mon 17:00 + 2 h = Tue 10:00
        (kst(2026, 6, 8, 17), 2 * H, kst(2026, 6, 9, 10)),
        # the brief's vector: Fri 17:00 + 2 h = Mon 10:00 KST
        (kst(2026, 6, 12, 17), 2 * H, kst(2026, 6, 15, 10)),
        # using a day up exactly ends at closing time, not next morning: Mon 17:00 + 1 h = Mon 18:00
        (kst(2026, 6, 8, 17), 1 * H, kst(2026, 6, 8, 18)),
        # opened Saturday night: clock starts Mon 09:00; + 4 h = Mon 13:00
        (kst(2026, 6, 13, 22), 4 * H, kst(2026, 6, 15, 13)),
        # zero: at the next opening when outside hours, unchanged inside hours
        (kst(2026, 6, 13, 22), 0.0, kst(2026, 6, 15, 9)),
        (kst(2026, 6, 8, 7), 0.0, kst(2026, 6, 8, 9)),
        (kst(2026, 6, 8, 11, 11), 0.0, kst(2026, 6, 8, 11, 11)),
        # opened before opening: Mon 07:00 + 1 h = Mon 10:00
        (kst(2026, 6, 8, 7), 1 * H, kst(2026, 6, 8, 10)),
        # Chuseok 2026: Wed 2026-09-23 17:00 + 2 h; Thu 24, Fri 25 (holidays), Sat 26, Sun 27 skipped -> Mon 28 10:00
        (kst(2026, 9, 23, 17), 2 * H, kst(2026, 9, 28, 10)),
        # substitute holiday Mon 2026-10-05 (National Foundation Day fell on Sat 10-03): Fri 10-02 17:00 + 2 h
        # -> Tue 2026-10-06 10:00
        (kst(2026, 10, 2, 17), 2 * H, kst(2026, 10, 6, 10)),
        # Seollal 2026 Mon 02-16 .. Wed 02-18: Fri 02-13 17:00 + 2 h -> Thu 2026-02-19 10:00
        (kst(2026, 2, 13, 17), 2 * H, kst(2026, 2, 19, 10)),
        # New Year's Day Thu 2026-01-01: Wed 2025-12-31 17:30 + 1 h -> Fri 2026-01-02 09:30
        (kst(2025, 12, 31, 17, 30), 1 * H, kst(2026, 1, 2, 9, 30)),
        # a long span: Mon 2026-06-08 09:00 + 20 business days (Jun 8-12, 15-19, 22-26, Jun 29-Jul 3; no holidays)
        # uses up Fri Jul 3 exactly -> Fri 2026-07-03 18:00
        (kst(2026, 6, 8, 9), 20 * 9 * H, kst(2026, 7, 3, 18)),
    ],
)
def test_add_business_seconds_vectors(start: datetime, seconds: float, expected: datetime) -> None:
    due = add_business_seconds(CAL, start, seconds)
    assert due == expected
    assert due.tzinfo is UTC


def test_add_business_seconds_brief_vector_in_utc() -> None:
    # Fri 2026-06-12 17:00 KST + 2 business hours = Mon 2026-06-15 10:00 KST = Mon 01:00 UTC
    assert add_business_seconds(CAL, kst(2026, 6, 12, 17), 7200) == datetime(2026, 6, 15, 1, 0, tzinfo=UTC)


def test_add_business_seconds_without_holidays_does_not_skip_them() -> None:
    cal = BusinessCalendar(country=None)
    assert add_business_seconds(cal, kst(2026, 10, 2, 17), 2 * H) == kst(2026, 10, 5, 10)


def test_add_business_seconds_extra_days() -> None:
    make_up_saturday = BusinessCalendar(extra_workdays=frozenset({date(2026, 6, 13)}))
    assert add_business_seconds(make_up_saturday, kst(2026, 6, 12, 17), 2 * H) == kst(2026, 6, 13, 10)
    shutdown_monday = BusinessCalendar(extra_holidays=frozenset({date(2026, 6, 15)}))
    assert add_business_seconds(shutdown_monday, kst(2026, 6, 12, 17), 2 * H) == kst(2026, 6, 16, 10)


def test_add_business_seconds_custom_hours_and_week() -> None:
    # A Mon-Sat 08:30-17:30 calendar: Fri 17:00 + 1 h = Sat 09:00
    cal = BusinessCalendar(workdays=frozenset(range(6)), day_start=time(8, 30), day_end=time(17, 30))
    assert add_business_seconds(cal, kst(2026, 6, 12, 17), H) == kst(2026, 6, 13, 9)


@pytest.mark.parametrize(
    ("seconds", "message"),
    [
        (-1.0, "seconds must be >= 0"),
        (math.nan, "seconds must be finite"),
        (math.inf, "seconds must be finite"),
        ("60", "seconds must be a number"),
        (True, "seconds must be a number"),
        (1e18, "seconds is too large"),
    ],
)
def test_add_business_seconds_rejects_bad_seconds(seconds: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        add_business_seconds(CAL, kst(2026, 6, 8, 10), seconds)  # type: ignore[arg-type]


def test_add_business_seconds_rejects_naive_start() -> None:
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        add_business_seconds(CAL, datetime(2026, 6, 8, 10), 60)


def test_add_business_seconds_is_fast_over_months() -> None:
    # One step per calendar day: a year of business time is a few hundred steps, not half a million minutes.
    due = add_business_seconds(CAL, kst(2026, 1, 1), 245 * 9 * H)
    assert due == kst(2026, 12, 31, 18)


# ---------------------------------------------------------------------------------------------------------------
# Pauses
# ---------------------------------------------------------------------------------------------------------------


def test_pause_spanning_a_night() -> None:
    # Opened Mon 10:00, waiting_customer Mon 16:00 -> Tue 11:00, now Tue 15:00.
    # Open time Mon 10-18 (8 h) + Tue 9-15 (6 h) = 14 h; paused Mon 16-18 (2 h) + Tue 9-11 (2 h) = 4 h -> 10 h.
    pauses = [Interval(kst(2026, 6, 8, 16), kst(2026, 6, 9, 11))]
    assert business_seconds_used(CAL, kst(2026, 6, 8, 10), kst(2026, 6, 9, 15), pauses) == 10 * H


def test_overlapping_unsorted_pauses_are_merged() -> None:
    # Merged: Mon 15:00 -> Tue 09:30 (from three overlapping/nested/duplicate pieces) and Tue 10:00 -> 12:00
    # (touching piece 11:00-12:00 joins 10:00-11:00). Paused business time: Mon 15-18 (3 h) + Tue 9:00-9:30
    # (0.5 h) + Tue 10-12 (2 h) = 5.5 h. Open time Mon 10 -> Tue 15 = 14 h. Used = 8.5 h.
    pauses = [
        Interval(kst(2026, 6, 9, 11), kst(2026, 6, 9, 12)),
        Interval(kst(2026, 6, 8, 16), kst(2026, 6, 9, 9, 30)),
        Interval(kst(2026, 6, 8, 15), kst(2026, 6, 8, 17)),
        Interval(kst(2026, 6, 9, 10), kst(2026, 6, 9, 11)),
        Interval(kst(2026, 6, 8, 15), kst(2026, 6, 8, 17)),  # duplicate
        Interval(kst(2026, 6, 8, 20), kst(2026, 6, 8, 21)),  # nested, at night
    ]
    used = business_seconds_used(CAL, kst(2026, 6, 8, 10), kst(2026, 6, 9, 15), pauses)
    assert used == 8.5 * H
    reversed_used = business_seconds_used(CAL, kst(2026, 6, 8, 10), kst(2026, 6, 9, 15), pauses[::-1])
    assert reversed_used == used


def test_open_pause_runs_to_now() -> None:
    # Opened Mon 10:00, waiting since Tue 11:00 (still open), now Tue 15:00: Mon 8 h + Tue 9-11 2 h = 10 h.
    pauses = [Interval(kst(2026, 6, 9, 11))]
    assert business_seconds_used(CAL, kst(2026, 6, 8, 10), kst(2026, 6, 9, 15), pauses) == 10 * H
    # A day later the used time has not moved.
    assert business_seconds_used(CAL, kst(2026, 6, 8, 10), kst(2026, 6, 10, 15), pauses) == 10 * H


def test_pauses_outside_the_ticket_lifetime_are_clipped() -> None:
    # Before opened_at: only Mon 10-11 counts as paused; after now: ignored. Open Mon 10 -> 14 = 4 h; used 3 h.
    pauses = [
        Interval(kst(2026, 6, 8, 8), kst(2026, 6, 8, 11)),
        Interval(kst(2026, 6, 8, 15), kst(2026, 6, 8, 16)),
        Interval(kst(2026, 6, 8, 15)),
    ]
    assert business_seconds_used(CAL, kst(2026, 6, 8, 10), kst(2026, 6, 8, 14), pauses) == 3 * H


def test_business_seconds_used_without_pauses_equals_between() -> None:
    assert business_seconds_used(CAL, kst(2026, 6, 12, 17), kst(2026, 6, 15, 10)) == 2 * H


def test_business_seconds_used_validation() -> None:
    with pytest.raises(ValueError, match="opened_at must not be after now"):
        business_seconds_used(CAL, kst(2026, 6, 9), kst(2026, 6, 8), [])
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        business_seconds_used(CAL, kst(2026, 6, 8), datetime(2026, 6, 9), [])
    with pytest.raises(ValueError, match=r"pauses\[1\] must be an Interval"):
        business_seconds_used(CAL, kst(2026, 6, 8), kst(2026, 6, 9), [Interval(kst(2026, 6, 8)), (1, 2)])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="pauses must be a sequence"):
        business_seconds_used(CAL, kst(2026, 6, 8), kst(2026, 6, 9), None)  # type: ignore[arg-type]


def test_interval_validation() -> None:
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        Interval(datetime(2026, 6, 8, 10))
    with pytest.raises(ValueError, match="end must be timezone-aware"):
        Interval(kst(2026, 6, 8, 10), datetime(2026, 6, 8, 11))
    with pytest.raises(ValueError, match="end must not be before start"):
        Interval(kst(2026, 6, 8, 11), kst(2026, 6, 8, 10))
    assert Interval(kst(2026, 6, 8, 10), kst(2026, 6, 8, 10)).end == kst(2026, 6, 8, 10)


# ---------------------------------------------------------------------------------------------------------------
# due_at
# ---------------------------------------------------------------------------------------------------------------


def test_due_at_without_pauses_matches_add_business_seconds() -> None:
    assert due_at(CAL, kst(2026, 6, 12, 17), 2 * H, [], kst(2026, 6, 12, 17)) == kst(2026, 6, 15, 10)


def test_due_at_after_a_finished_pause() -> None:
    # Opened Mon 10:00, 6 h target, paused Mon 12:00-14:00, now Mon 15:00: Mon 10-12 (2 h) + 14-18 (4 h) -> Mon 18:00
    pauses = [Interval(kst(2026, 6, 8, 12), kst(2026, 6, 8, 14))]
    assert due_at(CAL, kst(2026, 6, 8, 10), 6 * H, pauses, kst(2026, 6, 8, 15)) == kst(2026, 6, 8, 18)


def test_due_at_pause_spanning_a_night_pushes_the_due_time() -> None:
    # Opened Mon 10:00, 8 h target, waiting Mon 16:00 -> Tue 11:00, now Tue 12:00.
    # Unpaused: Mon 10-16 (6 h), then from Tue 11:00 another 2 h -> Tue 13:00 (without the pause: Mon 18:00).
    pauses = [Interval(kst(2026, 6, 8, 16), kst(2026, 6, 9, 11))]
    assert due_at(CAL, kst(2026, 6, 8, 10), 8 * H, pauses, kst(2026, 6, 9, 12)) == kst(2026, 6, 9, 13)
    assert due_at(CAL, kst(2026, 6, 8, 10), 8 * H, [], kst(2026, 6, 9, 12)) == kst(2026, 6, 8, 18)


def test_due_at_while_paused_is_provisional() -> None:
    # Opened Mon 10:00, 16 h target, paused since Tue 11:00 (open). Used 10 h, 6 h left "as if resuming now".
    opened, pauses = kst(2026, 6, 8, 10), [Interval(kst(2026, 6, 9, 11))]
    # now Tue 15:00: Tue 15-18 (3 h) + Wed 9-12 (3 h) -> Wed 12:00
    assert due_at(CAL, opened, 16 * H, pauses, kst(2026, 6, 9, 15)) == kst(2026, 6, 10, 12)
    # an hour later, still paused, the provisional due time has moved an hour: Wed 13:00
    assert due_at(CAL, opened, 16 * H, pauses, kst(2026, 6, 9, 16)) == kst(2026, 6, 10, 13)


def test_due_at_in_the_past_ignores_later_pauses() -> None:
    # Opened Mon 10:00, 2 h target, pause Mon 15:00 -> Tue 10:00, now Tue 12:00: target used up at Mon 12:00 KST.
    pauses = [Interval(kst(2026, 6, 8, 15), kst(2026, 6, 9, 10))]
    due = due_at(CAL, kst(2026, 6, 8, 10), 2 * H, pauses, kst(2026, 6, 9, 12))
    assert due == datetime(2026, 6, 8, 3, tzinfo=UTC)


def test_due_at_exactly_at_a_pause_start() -> None:
    # Opened Mon 10:00, 2 h target, pause from Mon 12:00 to 14:00: due exactly when the pause starts, Mon 12:00.
    pauses = [Interval(kst(2026, 6, 8, 12), kst(2026, 6, 8, 14))]
    assert due_at(CAL, kst(2026, 6, 8, 10), 2 * H, pauses, kst(2026, 6, 8, 15)) == kst(2026, 6, 8, 12)


def test_due_at_opened_saturday_night() -> None:
    # Opened Sat 22:00, 4 h target, now Mon 09:30: clock started Mon 09:00 -> due Mon 13:00 KST.
    assert due_at(CAL, kst(2026, 6, 13, 22), 4 * H, [], kst(2026, 6, 15, 9, 30)) == kst(2026, 6, 15, 13)
    assert business_seconds_used(CAL, kst(2026, 6, 13, 22), kst(2026, 6, 15, 9, 30), []) == 1800.0


def test_due_at_validation() -> None:
    with pytest.raises(ValueError, match="target_business_seconds must be >= 0"):
        due_at(CAL, kst(2026, 6, 8, 10), -1, [], kst(2026, 6, 8, 10))
    with pytest.raises(ValueError, match="opened_at must be timezone-aware"):
        due_at(CAL, datetime(2026, 6, 8, 10), 60, [], kst(2026, 6, 8, 10))
    with pytest.raises(ValueError, match="opened_at must not be after now"):
        due_at(CAL, kst(2026, 6, 8, 10), 60, [], kst(2026, 6, 8, 9))


# ---------------------------------------------------------------------------------------------------------------
# evaluate_sla and escalation
# ---------------------------------------------------------------------------------------------------------------


def evaluate(**overrides: object) -> SlaStatus:
    """Evaluate the reference ticket: opened Mon 2026-06-08 10:00 KST, response 2 h, resolution 16 h."""
    arguments: dict[str, object] = {
        "opened_at": kst(2026, 6, 8, 10),
        "now": kst(2026, 6, 8, 10),
        "first_response_at": None,
        "resolved_at": None,
        "response_target_s": 2 * H,
        "resolution_target_s": 16 * H,
        "pauses": (),
    }
    arguments.update(overrides)
    return evaluate_sla(CAL, **arguments)  # type: ignore[arg-type]


def test_evaluate_sla_fresh_ticket() -> None:
    status = evaluate()
    assert status.level is SlaLevel.OK
    assert status.response_due == kst(2026, 6, 8, 12)
    assert status.resolution_due == kst(2026, 6, 9, 17)  # Mon 10-18 (8 h) + Tue 9-17 (8 h)
    assert status.response_used_s == status.resolution_used_s == 0.0
    assert status.response_remaining_s == 2 * H
    assert status.resolution_remaining_s == 16 * H
    assert status.fraction_used == 0.0
    assert not status.response_breached
    assert not status.resolution_breached
    assert not status.paused
    assert not status.responded
    assert not status.resolved
    assert status.response_due.tzinfo is UTC


def test_evaluate_sla_response_warning_then_exact_due_then_breach() -> None:
    # Mon 11:45: 1.75 h of 2 h = 87.5 % -> warning, escalation 1
    warning = evaluate(now=kst(2026, 6, 8, 11, 45))
    assert warning.level is SlaLevel.WARNING
    assert warning.response_fraction_used == 0.875
    assert escalation_level(warning.fraction_used) == 1
    # Mon 12:00 exactly: 100 % used, not yet breached (a response now is on time)
    at_due = evaluate(now=kst(2026, 6, 8, 12))
    assert at_due.response_used_s == 2 * H
    assert not at_due.response_breached
    assert at_due.level is SlaLevel.WARNING
    assert escalation_level(at_due.fraction_used) == 1
    # one second later: breached, remaining -1 s, escalation 2 (second consultant)
    late = evaluate(now=kst(2026, 6, 8, 12, 0, 1))
    assert late.response_breached
    assert late.response_remaining_s == -1.0
    assert late.level is SlaLevel.BREACHED
    assert escalation_level(late.fraction_used) == 2
    # Mon 13:00:01: more than 150 % of 2 h -> escalation 3 (manager)
    assert escalation_level(evaluate(now=kst(2026, 6, 8, 13, 0, 1)).fraction_used) == 3


def test_evaluate_sla_response_clock_stops_at_first_response() -> None:
    # Answered Mon 11:00 (1 h), now Tue 15:00: resolution 14 h of 16 h = 87.5 % -> warning; due Tue 17:00 KST
    status = evaluate(now=kst(2026, 6, 9, 15), first_response_at=kst(2026, 6, 8, 11))
    assert status.responded
    assert not status.resolved
    assert status.response_used_s == H
    assert status.response_fraction_used == 0.5
    assert not status.response_breached
    assert status.resolution_used_s == 14 * H
    assert status.resolution_remaining_s == 2 * H
    assert status.resolution_due == datetime(2026, 6, 9, 8, tzinfo=UTC)
    assert status.fraction_used == 0.875
    assert status.level is SlaLevel.WARNING


def test_evaluate_sla_late_response_stays_breached() -> None:
    # Answered Mon 13:00 (3 h of 2 h): the response SLA is breached for good, even while resolution is fine.
    status = evaluate(now=kst(2026, 6, 8, 14), first_response_at=kst(2026, 6, 8, 13))
    assert status.response_breached
    assert status.response_used_s == 3 * H
    assert status.response_fraction_used == 1.5
    assert status.resolution_fraction_used == 4 / 16
    assert status.fraction_used == 1.5
    assert status.level is SlaLevel.BREACHED


def test_evaluate_sla_resolved_stops_both_clocks() -> None:
    # Resolved Mon 11:30 without a separate response: 1.5 h on both clocks, frozen afterwards.
    status = evaluate(now=kst(2026, 6, 20, 12), resolved_at=kst(2026, 6, 8, 11, 30))
    assert status.resolved
    assert status.responded
    assert status.response_used_s == status.resolution_used_s == 1.5 * H
    assert status.level is SlaLevel.OK
    assert not status.paused


def test_evaluate_sla_resolution_breach() -> None:
    # Answered at once; now Wed 2026-06-10 10:00: Mon 8 h + Tue 9 h + Wed 1 h = 18 h of 16 h -> breached by 2 h
    status = evaluate(now=kst(2026, 6, 10, 10), first_response_at=kst(2026, 6, 8, 10, 5))
    assert status.resolution_breached
    assert not status.response_breached
    assert status.resolution_remaining_s == -2 * H
    assert status.level is SlaLevel.BREACHED
    assert escalation_level(status.fraction_used) == 2


def test_evaluate_sla_paused_ticket() -> None:
    # Answered Mon 10:30; waiting_customer since Mon 16:00 (open), now Wed 10:00. Resolution used: Mon 10-16 = 6 h;
    # provisional due as if resuming now: 10 h from Wed 10:00 = Wed 10-18 (8 h) + Thu 9-11 (2 h) -> Thu 11:00.
    status = evaluate(
        now=kst(2026, 6, 10, 10),
        first_response_at=kst(2026, 6, 8, 10, 30),
        pauses=[Interval(kst(2026, 6, 8, 16))],
    )
    assert status.paused
    assert status.resolution_used_s == 6 * H
    assert status.resolution_due == kst(2026, 6, 11, 11)
    assert status.level is SlaLevel.OK


def test_evaluate_sla_pauses_apply_to_the_response_clock() -> None:
    # Waiting on the customer Mon 10:30 -> 16:00 before any response; now Mon 17:00: response used 0.5 h + 1 h,
    # 0.5 h left from now -> due Mon 17:30 (75 % used: still ok).
    status = evaluate(now=kst(2026, 6, 8, 17), pauses=[Interval(kst(2026, 6, 8, 10, 30), kst(2026, 6, 8, 16))])
    assert status.response_used_s == 1.5 * H
    assert status.response_due == kst(2026, 6, 8, 17, 30)
    assert status.fraction_used == 0.75
    assert status.level is SlaLevel.OK
    assert not status.paused


def test_evaluate_sla_events_after_now_have_not_happened() -> None:
    status = evaluate(now=kst(2026, 6, 8, 11), first_response_at=kst(2026, 6, 8, 12), resolved_at=kst(2026, 6, 8, 13))
    assert not status.responded
    assert not status.resolved
    assert status.response_used_s == status.resolution_used_s == H


def test_evaluate_sla_custom_warn_fraction() -> None:
    assert evaluate(now=kst(2026, 6, 8, 11)).level is SlaLevel.OK  # 50 %
    assert evaluate(now=kst(2026, 6, 8, 11), warn_fraction=0.4).level is SlaLevel.WARNING


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"opened_at": datetime(2026, 6, 8, 10)}, "opened_at must be timezone-aware"),
        ({"now": kst(2026, 6, 8, 9)}, "opened_at must not be after now"),
        ({"first_response_at": datetime(2026, 6, 8, 11)}, "first_response_at must be timezone-aware"),
        ({"first_response_at": kst(2026, 6, 8, 9)}, "first_response_at must not be before opened_at"),
        ({"resolved_at": kst(2026, 6, 8, 9)}, "resolved_at must not be before opened_at"),
        ({"response_target_s": 0}, "response_target_s must be > 0"),
        ({"resolution_target_s": -5}, "resolution_target_s must be > 0"),
        ({"resolution_target_s": math.nan}, "resolution_target_s must be finite"),
        ({"warn_fraction": 1.0}, "warn_fraction"),
        ({"warn_fraction": 0}, "warn_fraction"),
        ({"pauses": [None]}, r"pauses\[0\]"),
    ],
)
def test_evaluate_sla_validation(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate(**overrides)


def test_sla_status_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        evaluate().level = SlaLevel.BREACHED  # type: ignore[misc]
    assert str(SlaLevel.WARNING) == "warning"


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [(0.0, 0), (0.5, 0), (0.8, 0), (0.8001, 1), (1.0, 1), (1.0001, 2), (1.5, 2), (1.5001, 3), (10.0, 3)],
)
def test_escalation_level_defaults(fraction: float, expected: int) -> None:
    assert DEFAULT_ESCALATION_THRESHOLDS == (0.8, 1.0, 1.5)
    assert escalation_level(fraction) == expected


def test_escalation_level_custom_thresholds() -> None:
    assert escalation_level(0.95, thresholds=(0.5, 0.9)) == 2
    assert escalation_level(0.7, thresholds=[0.75]) == 0


@pytest.mark.parametrize(
    ("fraction", "thresholds", "message"),
    [
        (-0.1, (0.8, 1.0, 1.5), "fraction_used"),
        (math.nan, (0.8, 1.0, 1.5), "fraction_used"),
        ("1", (0.8, 1.0, 1.5), "fraction_used"),
        (0.5, (), "thresholds"),
        (0.5, (1.0, 0.8), "thresholds"),
        (0.5, (0.8, 0.8), "thresholds"),
        (0.5, (0.0, 1.0), "thresholds"),
        (0.5, (0.8, math.inf), "thresholds"),
    ],
)
def test_escalation_level_validation(fraction: object, thresholds: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        escalation_level(fraction, thresholds)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------------------------

ZONES = st.sampled_from([UTC, KST, ZoneInfo("America/Los_Angeles")])
instants = st.datetimes(min_value=datetime(2025, 6, 1), max_value=datetime(2027, 6, 1), timezones=ZONES)
# up to ~60 business days, in whole microseconds so that float seconds round-trip exactly
micros = st.integers(min_value=0, max_value=60 * 9 * 3600 * 1_000_000)


@settings(deadline=None, max_examples=200)
@given(start=instants, n_micros=micros)
def test_between_inverts_add(start: datetime, n_micros: int) -> None:
    seconds = n_micros / 1_000_000
    due = add_business_seconds(CAL, start, seconds)
    assert due >= start
    assert business_seconds_between(CAL, start, due) == seconds
    # the result lies inside an open window (closing instant included)
    local = due.astimezone(KST)
    assert is_business_day(CAL, local.date())
    assert CAL.day_start <= local.time().replace(tzinfo=None) <= CAL.day_end


@settings(deadline=None, max_examples=100)
@given(start=instants, seconds=st.floats(min_value=0, max_value=1e7, allow_nan=False, allow_infinity=False))
def test_between_inverts_add_for_any_float_to_the_microsecond(start: datetime, seconds: float) -> None:
    due = add_business_seconds(CAL, start, seconds)
    assert business_seconds_between(CAL, start, due) == pytest.approx(seconds, abs=1e-6)


@settings(deadline=None, max_examples=100)
@given(start=instants, a=micros, b=micros)
def test_add_is_monotonic_and_composes(start: datetime, a: int, b: int) -> None:
    x, y = a / 1_000_000, b / 1_000_000
    first = add_business_seconds(CAL, start, x)
    assert add_business_seconds(CAL, first, y) == add_business_seconds(CAL, start, (a + b) / 1_000_000)
    if a <= b:
        assert first <= add_business_seconds(CAL, start, y)


@settings(deadline=None, max_examples=100)
@given(times=st.lists(instants, min_size=3, max_size=3))
def test_between_is_additive(times: list[datetime]) -> None:
    a, b, c = sorted(times)
    whole = business_seconds_between(CAL, a, c)
    assert whole == pytest.approx(business_seconds_between(CAL, a, b) + business_seconds_between(CAL, b, c), abs=1e-6)


def brute_force_minutes(cal: BusinessCalendar, start: datetime, end: datetime) -> float:
    """Count open minutes one by one (the slow oracle; inputs are whole minutes)."""
    total, cursor = 0, start
    while cursor < end:
        local = cursor.astimezone(cal.zone)
        if is_business_day(cal, local.date()) and cal.day_start <= local.time() < cal.day_end:
            total += 1
        cursor += timedelta(minutes=1)
    return total * 60.0


@settings(deadline=None, max_examples=40)
@given(
    start=st.datetimes(min_value=datetime(2026, 9, 18), max_value=datetime(2026, 10, 12)).map(
        lambda d: d.replace(second=0, microsecond=0, tzinfo=KST)
    ),
    span_min=st.integers(min_value=0, max_value=4 * 24 * 60),
)
def test_between_matches_minute_by_minute_oracle_around_chuseok(start: datetime, span_min: int) -> None:
    end = start + timedelta(minutes=span_min)
    assert business_seconds_between(CAL, start, end) == brute_force_minutes(CAL, start, end)


pause_strategy = st.tuples(instants, st.one_of(st.none(), st.integers(min_value=0, max_value=5 * 86400))).map(
    lambda t: Interval(t[0], None if t[1] is None else t[0] + timedelta(seconds=t[1]))
)


@settings(deadline=None, max_examples=100)
@given(
    times=st.lists(instants, min_size=2, max_size=2),
    pauses=st.lists(pause_strategy, max_size=5),
    target_micros=st.integers(min_value=1, max_value=60 * 9 * 3600 * 1_000_000),
)
def test_used_and_due_are_consistent(times: list[datetime], pauses: list[Interval], target_micros: int) -> None:
    opened, now = sorted(times)
    used = business_seconds_used(CAL, opened, now, pauses)
    assert 0 <= used <= business_seconds_between(CAL, opened, now)
    assert business_seconds_used(CAL, opened, now, pauses[::-1]) == used
    target = target_micros / 1_000_000
    due = due_at(CAL, opened, target, pauses, now)
    if used >= target:
        # the target was reached at or before now, and exactly at the due time
        assert due <= now
        assert business_seconds_used(CAL, opened, due, pauses) == pytest.approx(target, abs=1e-6)
    else:
        # still running: resuming at now, the remaining time elapses exactly at the due time
        assert due >= now
        assert business_seconds_between(CAL, now, due) == pytest.approx(target - used, abs=1e-6)
