"""What a customer wants, in Chinese and English, by rules a person can read.

Intents: opt_out, opt_in, human (ask for a person), buying (price, quote,
demo), complaint, event_registration. Opt-out errs toward honouring the
customer: "STOP", "TD", "退订" alone or at the start of a message count, and
so do "unsubscribe", "取消订阅", "别再发了", "不要再发" anywhere; "don't stop"
or "how do I stop the machine" do not.
"""

from __future__ import annotations

import re

_OPT_OUT_ALONE = re.compile(r"^\s*(stop|stopall|unsubscribe|cancel|end|quit|td|t|退订|退|取消订阅|取消|停止|停止发送)\s*[.!。！]*\s*$",
                            re.I)
_OPT_OUT_ANYWHERE = re.compile(
    r"\bunsubscribe\b|\bopt[- ]?out\b|stop (sending|messaging|texting|emailing|contacting) me|"
    r"\bremove me from\b|\bno more (messages|emails|marketing)\b|"
    r"退订|取消订阅|别再发|不要再发|不要给我发|别给我发|拒收|不再接收|请勿打扰|不要再打扰", re.I)
_OPT_OUT_START = re.compile(r"^\s*(stop|td)\b[\s,，.。!！]", re.I)
_NOT_OPT_OUT = re.compile(r"\b(don't|do not|never) (stop|unsubscribe)\b|怎么(停止|退订)不了", re.I)

_RULES = {
    "opt_in": re.compile(r"\b(subscribe me|sign me up|opt[- ]?in|keep me (posted|updated))\b|^\s*(start|yes)\s*$|"
                         r"订阅|同意接收|愿意接收|可以给我发", re.I),
    "human": re.compile(r"\b(human|real person|agent|representative|operator|talk to (someone|a person))\b|"
                        r"人工|转人工|真人|客服|找人|接线员", re.I),
    "buying": re.compile(r"\b(price|pricing|quote|quotation|how much|cost|demo|trial|buy|purchase|order)\b|"
                         r"报价|价格|多少钱|怎么卖|购买|采购|试用|演示|下单|优惠", re.I),
    "complaint": re.compile(r"\b(complain|complaint|refund|terrible|awful|worst|broken|unacceptable|angry|"
                            r"disappointed|scam)\b|投诉|退款|太差|差劲|垃圾|骗子|坏了|不满意|失望|生气|维权", re.I),
    "event_registration": re.compile(r"\b(register|registration|sign up for|rsvp|attend)\b|报名|参加活动|参会|"
                                     r"预约.{0,6}(活动|讲座|会议|发布会)", re.I),
}


def detect(text: str) -> list[str]:
    """The intents in `text`, in a fixed order; [] for none."""
    text = text or ""
    found = []
    if not _NOT_OPT_OUT.search(text) and (_OPT_OUT_ALONE.match(text) or _OPT_OUT_ANYWHERE.search(text)
                                          or _OPT_OUT_START.match(text)):
        found.append("opt_out")
    for name, rule in _RULES.items():
        if name == "opt_in" and found:
            continue  # "unsubscribe" contains "subscribe": the opt-out wins
        if rule.search(text):
            found.append(name)
    return found
