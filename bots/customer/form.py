"""The lead form as a conversation: the fields a rep needs, asked one at a time.

Pure functions over the form's state (a dict kept in `BotSession.form`), so the
rules are easy to read and test: which field is missing, whether an answer is
valid, and whether a message corrects an earlier answer ("sorry, my number is
..."). Only what is missing is asked: fields known already (the contact's name,
a phone they gave) are filled before the first question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nlp.entities import stated_contact_keys

FIELDS = ("name", "company", "contact", "need", "budget", "timeframe")

_NOT_SURE = re.compile(r"^\s*(not sure|don'?t know|no idea|unsure|tbd|n/?a|不确定|不知道|还没定|待定|不清楚)\s*[.!。！]*\s*$",
                       re.I)
_AMOUNT = re.compile(r"\d|[一二三四五六七八九十百千万亿两]+\s*(万|千|百|元|块)", re.I)
_TIME = re.compile(
    r"\d|asap|soon|now|today|tomorrow|week|month|quarter|year|q[1-4]|spring|summer|autumn|fall|winter|"
    r"january|february|march|april|may|june|july|august|september|october|november|december|"
    r"尽快|马上|立刻|现在|今天|明天|本周|下周|周|星期|月|季度|年|春|夏|秋|冬|天内", re.I)
_LEADING = {
    "name": re.compile(r"^\s*(my name is|i am|i'm|this is|it's|call me|我叫|我是|叫我|姓名是?|名字是?)\s*[:：]?\s*", re.I),
    "company": re.compile(r"^\s*(i work (at|for)|we are|my company is|the company is|company[:：]?|我们是|我在|"
                          r"公司是|公司名称是|公司名是|公司[:：])\s*", re.I),
    "need": re.compile(r"^\s*(i need|we need|i want|we want|looking for|我们需要|我需要|我想要|想要|需要)\s*", re.I),
}
_TRAILING = re.compile(r"[\s,，.。!！~]+$")

# "sorry, my number is ...", "actually the company is ...", "不好意思，电话是 ..."
_CORRECTION = re.compile(r"(sorry|actually|correction|i meant|wrong|typo|不好意思|抱歉|更正|说错|改一下|应该是|其实)", re.I)
_FIELD_WORDS = {
    "contact": re.compile(r"\b(phone|number|mobile|cell|email|e-mail|mail)\b|电话|手机|号码|邮箱|邮件", re.I),
    "company": re.compile(r"\b(company|firm|employer)\b|公司", re.I),
    "name": re.compile(r"\bname\b|名字|姓名|我叫", re.I),
    "budget": re.compile(r"\bbudget\b|预算", re.I),
    "timeframe": re.compile(r"\b(timeline|time ?frame|start date|when)\b|时间|什么时候", re.I),
    "need": re.compile(r"\b(need|requirement)\b|需求", re.I),
}
_AFTER_FIELD = re.compile(r"^.*?(?:\bis\b|\bshould be\b|[:：]|是|为|改成|改为|应该是)\s*", re.I)


@dataclass(frozen=True)
class Parsed:
    value: str | None        # the field's value, cleaned; None when the answer is not valid
    problem: str = ""        # the text key of what is wrong ("bad_contact")


def missing(fields: dict[str, str]) -> str | None:
    return next((name for name in FIELDS if not fields.get(name)), None)


def parse(field: str, text: str) -> Parsed:
    """`text` as an answer for `field`."""
    text = (text or "").strip()
    if field == "contact":
        keys = stated_contact_keys(text, asked=True)
        return Parsed(", ".join(value for _, value in keys)) if keys else Parsed(None, "bad_contact")
    value = _TRAILING.sub("", _LEADING[field].sub("", text, count=1)) if field in _LEADING else text
    value = value.strip()
    if field == "name":
        ok = 1 <= len(value) <= 50 and not re.search(r"\d{3,}|@|https?://", value) and len(value.split()) <= 5
        return Parsed(value) if ok else Parsed(None, "bad_name")
    if field == "company":
        ok = 2 <= len(value) <= 120 and not _NOT_SURE.match(value)
        return Parsed(value) if ok else Parsed(None, "bad_company")
    if field == "need":
        return Parsed(value[:500]) if len(value) >= 2 else Parsed(None, "bad_need")
    if field == "budget":
        ok = _NOT_SURE.match(value) or _AMOUNT.search(value)
        return Parsed(value[:100]) if ok else Parsed(None, "bad_budget")
    if field == "timeframe":
        ok = _NOT_SURE.match(value) or _TIME.search(value)
        return Parsed(value[:100]) if ok else Parsed(None, "bad_timeframe")
    raise ValueError(f"unknown form field {field!r}")


def correction(text: str, asking: str | None) -> tuple[str, Parsed] | None:
    """(field, parsed) when `text` corrects an earlier answer rather than answering `asking`."""
    if not text or not _CORRECTION.search(text):
        return None
    for field, words in _FIELD_WORDS.items():
        if field == asking or not words.search(text):
            continue
        rest = _AFTER_FIELD.sub("", text, count=1) if field != "contact" else text
        return field, parse(field, rest)
    return None


def volunteered_contact(text: str) -> str | None:
    """A phone or email the customer gave while answering something else."""
    keys = stated_contact_keys(text or "")
    return ", ".join(value for _, value in keys) if keys else None
