"""Where a lead came from, said as a person would say it, in Chinese and English: "Telegram,
message of 3 Dec", "WeCom code 展会2026", "imported from leads.xlsx", not "message 109"."""

from __future__ import annotations

import datetime as dt

from crm_core.accounts import channel_name

# Not strftime("%b"), which says the month in the process's locale.
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def describe(source_kind: str, source: str | None, *, channel: str | None, at: dt.datetime | None) -> dict[str, str]:
    """The lead's source in each language. `channel` and `at`: the kind of channel and the time of
    the message that opened it, when one did."""
    zh_channel, en_channel = channel_name(channel, "zh"), channel_name(channel, "en")
    if source_kind == "qr":
        code = source or ""
        return {"en": f"{en_channel} code {code}".strip(), "zh": f"{zh_channel}渠道码 {code}".strip()}
    if source_kind in ("signal", "form") and channel:
        en = f"{en_channel}, {'form' if source_kind == 'form' else 'message'}"
        zh = f"{zh_channel}{'留资表单' if source_kind == 'form' else '消息'}"
        if at is not None:
            en += f" of {at.day} {_MONTHS[at.month - 1]}"
            zh = f"{zh_channel} {at.month}月{at.day}日的{'留资表单' if source_kind == 'form' else '消息'}"
        return {"en": en, "zh": zh}
    if source_kind == "import":
        return {"en": f"imported ({source})" if source else "imported", "zh": f"导入（{source}）" if source else "导入"}
    if source_kind == "api":
        return {"en": f"API ({source})" if source else "API", "zh": f"接口（{source}）" if source else "接口"}
    return {"en": source or source_kind, "zh": source or source_kind}
