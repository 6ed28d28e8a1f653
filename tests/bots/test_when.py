"""A rep's "later" in their own words, read as a moment in the company's time."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bots.rep import when

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Thursday 3 December 2026, 16:20 in Shanghai.
NOW = dt.datetime(2026, 12, 3, 16, 20, tzinfo=SHANGHAI)


def at(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


@pytest.mark.parametrize(("words", "expected"), [
    ("2h", NOW + dt.timedelta(hours=2)),
    ("30m", NOW + dt.timedelta(minutes=30)),
    ("in 2 hours", NOW + dt.timedelta(hours=2)),
    ("1.5h", NOW + dt.timedelta(minutes=90)),
    ("30分钟", NOW + dt.timedelta(minutes=30)),
    ("半小时", NOW + dt.timedelta(minutes=30)),
    ("2个小时后", NOW + dt.timedelta(hours=2)),
    ("3天后", NOW + dt.timedelta(days=3)),
    ("1 week", NOW + dt.timedelta(days=7)),
    ("明天", at(12, 4, 9)),
    ("tomorrow", at(12, 4, 9)),
    ("明天10点", at(12, 4, 10)),
    ("明天 10:30", at(12, 4, 10, 30)),
    ("tomorrow 10:00", at(12, 4, 10)),
    ("明早", at(12, 4, 9)),
    ("明晚", at(12, 4, 19)),
    ("明晚8点", at(12, 4, 20)),
    ("后天下午3点半", at(12, 5, 15, 30)),
    ("今天下午5点", at(12, 3, 17)),
    ("下周一", at(12, 7, 9)),
    ("next monday 9am", at(12, 7, 9)),
    ("周五", at(12, 4, 9)),            # the coming Friday
    ("星期四", at(12, 10, 9)),         # today is Thursday: the next one
    ("friday 2pm", at(12, 4, 14)),
    ("12-24 14:30", at(12, 24, 14, 30)),
    ("12月24日", at(12, 24, 9)),
    ("1月5号 上午10点", at(1, 5, 10, year=2027)),  # January has passed this year: next year's
    ("2027-02-01", at(2, 1, 9, year=2027)),
    ("17:00", at(12, 3, 17)),         # still ahead today
    ("9点", at(12, 4, 9)),             # passed today: tomorrow's
    ("下午2点15分", at(12, 4, 14, 15)),
    ("12pm", at(12, 4, 12)),
    ("中午12点", at(12, 4, 12)),
])
def test_a_rep_says_when_in_either_language(words, expected):
    assert when.parse(words, NOW) == expected


@pytest.mark.parametrize("words", ["", "soon", "later please", "明天25点", "13月40日", "2h and a bit", "下周八"])
def test_words_that_name_no_moment_are_none(words):
    assert when.parse(words, NOW) is None


def test_a_date_in_the_past_with_its_year_stays_past():
    # "2025-01-01" is not moved to a future year: the workspace tells the rep it has passed.
    assert when.parse("2025-01-01 10:00", NOW) == at(1, 1, 10, year=2025)
