"""When a rep means, in their words: "2h", "30分钟", "明天", "明天10点", "后天下午3点半", "下周一",
"tomorrow 10:00", "next monday 9am", "12-24 14:30", "12月24日". Times are the company's local
time; a day without a time is the start of the working day; a time alone is its next occurrence.
(dateparser, tried first, reads none of 明天10点, 后天下午3点 or 下周一.)
"""

from __future__ import annotations

import datetime as dt
import re

WORKDAY_START = dt.time(9, 0)
_UNITS = {"m": 1, "min": 1, "mins": 1, "minute": 1, "minutes": 1, "分": 1, "分钟": 1,
          "h": 60, "hr": 60, "hrs": 60, "hour": 60, "hours": 60, "小时": 60, "个小时": 60, "钟头": 60, "个钟头": 60,
          "d": 1440, "day": 1440, "days": 1440, "天": 1440,
          "w": 10080, "week": 10080, "weeks": 10080, "周": 10080, "星期": 10080, "个星期": 10080}
_DURATION = re.compile(r"^(?:in\s+)?(\d+(?:\.\d+)?|半)\s*(" + "|".join(sorted(map(re.escape, _UNITS), key=len,
                                                                            reverse=True)) + r")\s*(?:后|以后|later)?$")
_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6,
             "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6,
             "mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_DAY = re.compile(
    r"^(?P<word>今天|今日|today|明天|明日|明早|明晚|tomorrow|后天|day after tomorrow)"
    r"|^(?P<next>下(?:个)?|next\s+)?(?:(?:周|星期|礼拜)(?P<zh_wd>[一二三四五六日天])|(?P<en_wd>monday|tuesday|wednesday|"
    r"thursday|friday|saturday|sunday|mon|tue|wed|thu|fri|sat|sun)\b)"
    r"|^(?:(?P<year>\d{4})[-/.])?(?P<month>\d{1,2})(?:[-/.]|月)(?P<day>\d{1,2})(?:日|号)?")
_TIME = re.compile(
    r"^(?P<part>上午|早上|早晨|中午|下午|晚上|傍晚)?\s*(?:(?P<h>\d{1,2})(?::(?P<m>\d{2})|点(?:(?P<half>半)|(?P<zm>\d{1,2})分?)?"
    r"|\s*(?P<ampm>am|pm))|(?P<h2>\d{1,2}):(?P<m2>\d{2})\s*(?P<ampm2>am|pm)?)$")
_PART = {"上午": "am", "早上": "am", "早晨": "am", "中午": "noon", "下午": "pm", "晚上": "pm", "傍晚": "pm"}


def parse(text: str, now: dt.datetime) -> dt.datetime | None:
    """The moment `text` names, after the aware local `now`; None when it names none."""
    words = " ".join(text.strip().lower().split())
    if not words:
        return None
    duration = _DURATION.match(words)
    if duration:
        amount = 0.5 if duration.group(1) == "半" else float(duration.group(1))
        return now + dt.timedelta(minutes=amount * _UNITS[duration.group(2)])
    day, rest = _day(words, now.date())
    rest = rest.strip().lstrip(",，").strip()
    if not rest:
        if day is None:
            return None
        return _at(day, dt.time(19, 0) if words.startswith("明晚") else WORKDAY_START, now)
    at = _time(rest, evening=words.startswith("明晚"))
    if at is None:
        return None
    if day is not None:
        return _at(day, at, now)
    moment = _at(now.date(), at, now)
    return moment if moment > now else moment + dt.timedelta(days=1)


def split(text: str, now: dt.datetime) -> tuple[dt.datetime, str] | None:
    """The moment `text` starts with, and the words after it: "明天10点 回电", "明天10点回电",
    "tomorrow 10:00 call about the quote". The longest reading wins; None when it starts with none."""
    words = text.split()
    for count in range(min(4, len(words)), 0, -1):
        moment = parse(" ".join(words[:count]), now)
        if moment is not None:
            return moment, " ".join(words[count:])
    if words:  # Chinese runs the time into the words: 明天10点回电
        first = words[0]
        for end in range(len(first) - 1, 0, -1):
            moment = parse(first[:end], now)
            if moment is not None and not first[end].isdigit() and first[end] not in ":：":
                return moment, " ".join([first[end:], *words[1:]])
    return None


def _at(day: dt.date, at: dt.time, now: dt.datetime) -> dt.datetime:
    return dt.datetime.combine(day, at, tzinfo=now.tzinfo)


def _day(words: str, today: dt.date) -> tuple[dt.date | None, str]:
    match = _DAY.match(words)
    if match is None:
        return None, words
    rest = words[match.end():]
    if match.group("word"):
        offset = {"今天": 0, "今日": 0, "today": 0, "后天": 2, "day after tomorrow": 2}.get(match.group("word"), 1)
        return today + dt.timedelta(days=offset), rest
    if match.group("zh_wd") or match.group("en_wd"):
        weekday = _WEEKDAYS[match.group("zh_wd") or match.group("en_wd")]
        ahead = (weekday - today.weekday()) % 7
        if match.group("next"):
            # 下周一: Monday of next week; "next monday" the same (never the coming days of this week).
            ahead = (7 - today.weekday()) + weekday
        elif ahead == 0:
            ahead = 7
        return today + dt.timedelta(days=ahead), rest
    year = int(match.group("year") or today.year)
    try:
        day = dt.date(year, int(match.group("month")), int(match.group("day")))
    except ValueError:
        return None, words
    if match.group("year") is None and day < today:
        day = day.replace(year=year + 1)
    return day, rest


def _time(words: str, *, evening: bool = False) -> dt.time | None:
    match = _TIME.match(words)
    if match is None:
        return None
    hour = int(match.group("h") or match.group("h2"))
    minute = int(match.group("m") or match.group("m2") or match.group("zm") or (30 if match.group("half") else 0))
    part = _PART.get(match.group("part") or "") or match.group("ampm") or match.group("ampm2") \
        or ("pm" if evening else None)
    if part == "pm" and hour < 12:
        hour += 12
    elif part == "am" and hour == 12:
        hour = 0
    elif part == "noon" and hour < 11:
        hour += 12
    if hour > 23 or minute > 59:
        return None
    return dt.time(hour, minute)
