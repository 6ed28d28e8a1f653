"""Lead exports: the leads a user may see, as CSV rows a spreadsheet opens and the lead
import reads back (its Chinese or English column names), read in chunks so a large
pipeline streams instead of filling memory.

A cell that a spreadsheet would run as a formula (=, +, -, @ first: a customer can
choose their own display name) is written with a leading apostrophe; a phone number
such as +86 138... is left as it is.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.contacts.linking import reach_keys
from crm_core.models import Contact, ContactTag, Lead, User

# (English header, Chinese header): the import reads back name to tags in either language.
EXPORTED = (
    ("lead", "线索编号"), ("name", "姓名"), ("phone", "手机"), ("email", "邮箱"), ("company", "公司"),
    ("region", "地区"), ("industry", "行业"), ("tags", "标签"), ("status", "状态"), ("stage", "阶段"),
    ("score", "评分"), ("segment", "分级"), ("order total", "订单金额"), ("owner", "负责人"),
    ("source", "来源"), ("created (UTC)", "创建时间 (UTC)"),
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-][\d .()-]*")   # +86 138..., -12.5: no formula in them


def header(language: str) -> list[str]:
    return [zh if language == "zh" else en for en, zh in EXPORTED]


def safe_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    if not text.startswith(FORMULA_STARTS) or PLAIN_NUMBER.fullmatch(text):
        return text
    return "'" + text


def csv_line(cells: Sequence[Any]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow([safe_cell(c) for c in cells])
    return out.getvalue()


async def lead_rows(where: Sequence[Any], *, db_session: AsyncSession, chunk: int = 500) -> AsyncIterator[list[Any]]:
    """Each lead matching `where`, oldest first, as the cells of `EXPORTED`."""
    after = 0
    while True:
        batch = (await db_session.execute(
            select(Lead, Contact.display_name)
            .join(Contact, Contact.id == Lead.contact_id)
            .where(Lead.id > after, *where).order_by(Lead.id).limit(chunk))).all()
        if not batch:
            return
        contact_ids = sorted({lead.contact_id for lead, _ in batch})
        keys = await reach_keys(contact_ids, db_session=db_session)
        tags: dict[int, list[str]] = {}
        for contact_id, tag in (await db_session.execute(
                select(ContactTag.contact_id, ContactTag.tag).where(ContactTag.contact_id.in_(contact_ids))
                .order_by(ContactTag.tag))).all():
            tags.setdefault(contact_id, []).append(tag)
        owner_ids = {lead.owner_user_id for lead, _ in batch if lead.owner_user_id}
        owners = {user_id: display_name or username for user_id, display_name, username in (await db_session.execute(
            select(User.id, User.display_name, User.username).where(User.id.in_(owner_ids)))).all()}
        for lead, name in batch:
            known = keys.get(lead.contact_id, [])
            yield [lead.id, name, "; ".join(v for k, v in known if k == "phone"),
                   "; ".join(v for k, v in known if k == "email"), lead.company, lead.region, lead.industry,
                   ", ".join(tags.get(lead.contact_id, [])), lead.status, lead.stage, lead.score, lead.segment,
                   lead.order_total, owners.get(lead.owner_user_id),
                   lead.source or lead.source_kind, lead.created_at.strftime("%Y-%m-%d %H:%M")]
        after = batch[-1][0].id
