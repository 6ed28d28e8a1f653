"""What a customer states: contact details (and which of them name the writer,
as cross-channel keys), name and company, WeChat id, budget, dates.

"My phone is 138 0013 8000", "我的邮箱 chen@example.cn", or a line that is
nothing but the number or address: these name the writer, so a second channel
giving the same key is the same person (`crm_core.contacts.linking`). An address merely
mentioned in passing ("please cc wang@example.com") is not taken: a line must
carry a cue (my / call / contact / 我的 / 电话 / 邮箱 ...) or be the detail
alone. Phones are found and normalized to E.164 by `phonenumbers` (Google's libphonenumber
data: mainland mobiles and landlines read as Chinese when written without a country code, Hong
Kong, Taiwan and every other country with theirs; only valid numbers count), emails to lower case.
"""

from __future__ import annotations

import re

import phonenumbers

EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}(?![\w-])")
DEFAULT_REGION = "CN"  # a number written without a country code is read as a mainland one
CUE = re.compile(r"\b(my|me|i'm|i am|call|reach|contact|phone|mobile|cell|tel|whatsapp|e-?mail|mail|number)\b|"
                 r"我的|我是|本人|联系|电话|手机|号码|邮箱|邮件|微信|打给我|找我", re.I)


def stated_contact_keys(text: str, *, asked: bool = False) -> list[tuple[str, str]]:
    """("phone", "+8613800138000") / ("email", "chen@example.cn") pairs the writer gives as their own:
    alone on a line, or with words that say so ("my number is ..."). `asked`: the text answers
    "your phone or email?", so every one in it is theirs, whatever words surround it."""
    keys: list[tuple[str, str]] = []
    for line in (text or "").splitlines():
        found = _all_contact_details(line)
        if not found:
            continue
        rest = _without_phones(EMAIL.sub(" ", line))
        alone = len(re.sub(r"[\W_]+", "", rest)) <= 4
        if asked or alone or CUE.search(line):
            keys.extend(k for k in found if k not in keys)
    return keys


# ---- everything a customer states: contact details, who they are, budget, dates ----

WECHAT_ID = re.compile(r"(?:微信号?|wechat(?:\s*id)?|wx|vx|v信)\s*(?:号|id)?\s*[:：是为]?\s*([A-Za-z][-_A-Za-z0-9]{5,19})(?![-_A-Za-z0-9])",
                       re.I)
# "我是华为的张伟", "我是来自阿里巴巴的李娜", "I'm Anna from Contoso"
ZH_INTRO = re.compile(r"我(?:是|叫)(?:来自)?(?P<company>[\u4e00-\u9fffA-Za-z0-9]{2,20}?)(?:公司|集团)?的"
                      r"(?P<name>[\u4e00-\u9fff]{2,4})(?=[，,。.!！\s]|$)")
ZH_NAME = re.compile(r"我(?:是|叫)(?P<name>[\u4e00-\u9fff]{2,3})(?=[，,。.!！\s]|$)")
ZH_COMPANY = re.compile(r"(?:我们|我司|敝司)(?:是|公司是|公司叫)(?P<company>[\u4e00-\u9fffA-Za-z0-9]{2,20}?"
                        r"(?:公司|集团|科技|有限公司)?)(?=[，,。.!！\s]|$)")
EN_INTRO = re.compile(r"\b(?i:i'm|i am|this is|my name is)\s+(?P<name>[A-Z][a-z]+(?:\s[A-Z][a-z]+)?)"
                      r"(?:\s+(?:from|at|with)\s+(?P<company>[A-Z][\w&.-]*(?:\s[A-Z][\w&.-]*){0,3}))?")
BUDGET = re.compile(
    r"(?:预算|budget)[^0-9¥$€]{0,12}(?P<currency>[¥$€]|rmb|cny|usd|eur)?\s*(?P<amount>\d+(?:[.,]\d+)?)\s*"
    r"(?P<unit>万|千|百万|亿|k|m|million|thousand)?\s*(?P<currency2>元|块|rmb|cny|usd|dollars|eur|欧元|美元)?", re.I)
DATE_ISO = re.compile(r"\b(20\d\d)[-/.](\d{1,2})[-/.](\d{1,2})\b")
DATE_ZH = re.compile(r"(?:(20\d\d)年)?(\d{1,2})月(\d{1,2})[日号]")
DATE_WORDS = re.compile(r"今天|明天|后天|下周[一二三四五六日天]?|本周[一二三四五六日天]?|月底|下个月|"
                        r"\b(today|tomorrow|next (week|month|monday|tuesday|wednesday|thursday|friday))\b", re.I)
_UNITS = {"万": 10_000, "千": 1_000, "百万": 1_000_000, "亿": 100_000_000, "k": 1_000, "thousand": 1_000,
          "m": 1_000_000, "million": 1_000_000}
_CURRENCIES = {"¥": "CNY", "rmb": "CNY", "cny": "CNY", "元": "CNY", "块": "CNY", "$": "USD", "usd": "USD",
               "dollars": "USD", "美元": "USD", "€": "EUR", "eur": "EUR", "欧元": "EUR"}


def extract(text: str) -> dict[str, object]:
    """The entities a message states: phones, emails, wechat_ids, name, company,
    budget ({"amount", "currency"}), dates (ISO dates or the words used)."""
    text = text or ""
    found: dict[str, object] = {}
    phones = [v for k, v in _all_contact_details(text) if k == "phone"]
    emails = [v for k, v in _all_contact_details(text) if k == "email"]
    if phones:
        found["phones"] = phones
    if emails:
        found["emails"] = emails
    wechat = [m.group(1) for m in WECHAT_ID.finditer(text)]
    if wechat:
        found["wechat_ids"] = wechat
    intro = ZH_INTRO.search(text) or EN_INTRO.search(text)
    if intro:
        found["name"] = intro.group("name")
        if intro.group("company"):
            found["company"] = intro.group("company")
    elif (name := ZH_NAME.search(text)) is not None:
        found["name"] = name.group("name")
    if "company" not in found and (company := ZH_COMPANY.search(text)) is not None:
        found["company"] = company.group("company")
    if (budget := BUDGET.search(text)) is not None:
        amount = float(budget.group("amount").replace(",", ""))
        unit = (budget.group("unit") or "").lower()
        currency = (budget.group("currency") or budget.group("currency2") or "").lower()
        found["budget"] = {"amount": amount * _UNITS.get(unit, 1), "currency": _CURRENCIES.get(currency, "CNY"
                           if re.search(r"[\u4e00-\u9fff]", text) else "USD")}
    dates = [f"{y}-{int(m):02d}-{int(d):02d}" for y, m, d in DATE_ISO.findall(text)]
    dates += [(f"{y}-" if y else "") + f"{int(m):02d}-{int(d):02d}" for y, m, d in DATE_ZH.findall(text)]
    dates += [m.group(0) for m in DATE_WORDS.finditer(text)]
    if dates:
        found["dates"] = dates
    return found


def _dialled(text: str) -> str:
    """0086 / 00852 is how mainland callers dial out: read as the + it stands for (where it starts
    a number, not inside one: "138 0013 8000")."""
    return re.sub(r"(?<!\d)(?<!\d[\s-])00(?=[1-9])", "+", text)


def _phone_matches(text: str) -> list[phonenumbers.PhoneNumberMatch]:
    return list(phonenumbers.PhoneNumberMatcher(_dialled(text), DEFAULT_REGION,
                                                leniency=phonenumbers.Leniency.VALID))


def _without_phones(text: str) -> str:
    """The text with its phone numbers blanked."""
    text = _dialled(text)
    for match in reversed(_phone_matches(text)):
        text = text[:match.start] + " " + text[match.end:]
    return text


def _all_contact_details(text: str) -> list[tuple[str, str]]:
    """Every phone and email in the text, stated as one's own or not."""
    found: list[tuple[str, str]] = [("email", m.group(0).lower()) for m in EMAIL.finditer(text)]
    for match in _phone_matches(EMAIL.sub(" ", text)):
        number = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        if ("phone", number) not in found:
            found.append(("phone", number))
    return found
