"""Contact details a customer states about themselves, as cross-channel keys.

"My phone is 138 0013 8000", "我的邮箱 chen@example.cn", or a line that is
nothing but the number or address: these name the writer, so a second channel
giving the same key is the same person (`crm_core.linking`). An address merely
mentioned in passing ("please cc wang@example.com") is not taken: a line must
carry a cue (my / call / contact / 我的 / 电话 / 邮箱 ...) or be the detail
alone. Phones are normalized to E.164 (mainland mobiles get +86), emails
to lower case.
"""

from __future__ import annotations

import re

EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}(?![\w-])")
# Mainland China mobile: 1[3-9]x xxxx xxxx, optionally +86 / 0086 / 86, spaces or dashes between groups.
MOBILE_CN = re.compile(r"(?<![\d+])(?:(?:\+|00)?86[\s-]?)?(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d)")
# Other countries: E.164 with its + sign, 8 to 15 digits, spaces or dashes allowed.
E164 = re.compile(r"(?<![\w+])\+([1-9](?:[\s-]?\d){7,14})(?!\d)")
CUE = re.compile(r"\b(my|me|i'm|i am|call|reach|contact|phone|mobile|cell|tel|whatsapp|e-?mail|mail|number)\b|"
                 r"我的|我是|本人|联系|电话|手机|号码|邮箱|邮件|微信|打给我|找我", re.I)


def stated_contact_keys(text: str) -> list[tuple[str, str]]:
    """("phone", "+8613800138000") / ("email", "chen@example.cn") pairs the writer gives as their own."""
    keys: list[tuple[str, str]] = []
    for line in (text or "").splitlines():
        found: list[tuple[str, str]] = []
        rest = line
        for match in EMAIL.finditer(line):
            found.append(("email", match.group(0).lower()))
            rest = rest.replace(match.group(0), " ")
        for match in MOBILE_CN.finditer(rest):
            found.append(("phone", "+86" + "".join(match.groups())))
        rest = MOBILE_CN.sub(" ", rest)
        for match in E164.finditer(rest):
            digits = re.sub(r"\D", "", match.group(1))
            if not digits.startswith("86"):
                found.append(("phone", "+" + digits))
        rest = E164.sub(" ", rest)
        if not found:
            continue
        alone = len(re.sub(r"[\W_]+", "", rest)) <= 4
        if alone or CUE.search(line):
            keys.extend(k for k in found if k not in keys)
    return keys
