"""Contact tags ("vip", "expo-2026"): labels reps and operators put on people,
which campaign audiences and conditions select by."""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import audit
from crm_core.models import ContactTag, TagPush, User


async def tags_of(contact_id: int, *, db_session: AsyncSession) -> list[str]:
    return list((await db_session.scalars(
        select(ContactTag.tag).where(ContactTag.contact_id == contact_id).order_by(ContactTag.tag))).all())


async def set_tags(contact_id: int, tags: list[str], *, actor: User | None, db_session: AsyncSession) -> list[str]:
    """Make the contact's tags exactly `tags`; audited with what was added and removed."""
    before = set(await tags_of(contact_id, db_session=db_session))
    after = {tag.strip() for tag in tags if tag.strip()}
    removed, added = sorted(before - after), sorted(after - before)
    if removed:
        await db_session.execute(delete(ContactTag).where(ContactTag.contact_id == contact_id,
                                                          ContactTag.tag.in_(removed)))
    db_session.add_all(ContactTag(contact_id=contact_id, tag=tag) for tag in added)
    await db_session.flush()
    if added or removed:
        await audit.record("contact.tags", entity_type="contact", entity_id=contact_id, actor=actor,
                           db_session=db_session, details={"added": added, "removed": removed})
        push_later(contact_id, removed, db_session=db_session)
    return sorted(after)


async def add_by_rule(contact_id: int, tags: list[str], rule: str, *, db_session: AsyncSession) -> list[str]:
    """Tags a rule puts on the contact (a keyword, a lead stage, a contact way): those the contact
    lacks are added, audited with the rule; the ones added."""
    have = set(await tags_of(contact_id, db_session=db_session))
    added = [tag for tag in dict.fromkeys(t.strip() for t in tags) if tag and tag not in have]
    if added:
        db_session.add_all(ContactTag(contact_id=contact_id, tag=tag) for tag in added)
        await db_session.flush()
        await audit.record("contact.tags", entity_type="contact", entity_id=contact_id, actor=None,
                           actor_label="rule", db_session=db_session,
                           details={"added": added, "removed": [], "rule": rule})
        push_later(contact_id, [], db_session=db_session)
    return added


def push_later(contact_id: int, removed: list[str], *, db_session: AsyncSession) -> None:
    """The contact's tags changed: their WeCom customers get the hub's tags and lose `removed`
    (hub/corp_tags.py)."""
    db_session.add(TagPush(contact_id=contact_id, removed=removed))


async def counts(*, db_session: AsyncSession) -> dict[str, int]:
    """Every tag in use, with how many contacts have it."""
    rows = await db_session.execute(select(ContactTag.tag, func.count()).group_by(ContactTag.tag)
                                    .order_by(ContactTag.tag))
    return dict(rows.all())


async def rename_everywhere(old: str, new: str, *, actor: User | None, db_session: AsyncSession) -> int:
    """The tag `old` becomes `new` on every contact (one who has both keeps one); audited once; how many."""
    having = set((await db_session.scalars(select(ContactTag.contact_id).where(ContactTag.tag == old))).all())
    both = having & set((await db_session.scalars(select(ContactTag.contact_id).where(ContactTag.tag == new))).all())
    if both:
        await db_session.execute(delete(ContactTag).where(ContactTag.tag == old, ContactTag.contact_id.in_(both)))
    await db_session.execute(update(ContactTag).where(ContactTag.tag == old).values(tag=new)
                             .execution_options(synchronize_session=False))
    await audit.record("tags.rename", entity_type="tag", entity_id=None, actor=actor, db_session=db_session,
                       details={"from": old, "to": new, "contacts": len(having)})
    return len(having)


async def delete_everywhere(name: str, *, actor: User | None, db_session: AsyncSession) -> int:
    """The tag leaves every contact; audited once; how many had it."""
    result = await db_session.execute(delete(ContactTag).where(ContactTag.tag == name)
                                      .execution_options(synchronize_session=False))
    await audit.record("tags.delete", entity_type="tag", entity_id=None, actor=actor, db_session=db_session,
                       details={"tag": name, "contacts": result.rowcount or 0})
    return result.rowcount or 0
