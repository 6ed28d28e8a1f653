"""WeCom corp tags (企业客户标签) and the hub's contact tags, kept in step both ways.

A corp tag is the hub tag of the same name. From WeCom: the app's tag list is read when WeCom
says it changed (`change_external_tag`) and hourly; a tag renamed in WeCom is renamed on every
contact that has it, a tag deleted in WeCom leaves the contacts reached on that app (audited
with the reason). To WeCom: a contact whose tags changed in the hub (by hand, by a contact way's
rule) has each of their WeCom customers given the hub's tags with `mark_tag`, as the rep who owns
the conversation, and loses those removed in the hub (tags reps put on them in WeCom stay); hub
tags WeCom lacks are created first in the tag group "SCRM Hub".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import audit
from crm_core.accounts import wecom_customer
from crm_core.models import ContactTag, Conversation, CorpTag, Identity, UserHandle

HUB_GROUP = "SCRM Hub"  # the tag group where tags made in the hub are created in WeCom
MAX_NAME = 30           # WeCom: a tag's name is at most 30 characters


@dataclass(frozen=True)
class Tag:
    group_id: str
    group_name: str
    tag_id: str
    name: str


@dataclass
class TagChanges:
    added: list[str]
    renamed: list[tuple[str, str]]
    deleted: list[str]


async def apply_list(account_id: int, tags: Sequence[Tag], *, db_session: AsyncSession) -> TagChanges:
    """Make the kept corp tags the app's list as WeCom gives it, and carry renames and deletions
    over to the contacts' tags."""
    kept = {row.tag_id: row for row in (await db_session.scalars(
        select(CorpTag).where(CorpTag.channel_account_id == account_id))).all()}
    now = {tag.tag_id: tag for tag in tags}
    changes = TagChanges([], [], [])
    for tag_id, tag in now.items():
        row = kept.get(tag_id)
        if row is None:
            db_session.add(CorpTag(channel_account_id=account_id, tag_id=tag_id, group_id=tag.group_id,
                                   group_name=tag.group_name, name=tag.name))
            changes.added.append(tag.name)
        elif row.name != tag.name:
            await _rename(row.name, tag.name, account_id, db_session)
            changes.renamed.append((row.name, tag.name))
            row.name, row.group_id, row.group_name = tag.name, tag.group_id, tag.group_name
    for tag_id, row in kept.items():
        if tag_id not in now:
            await _drop(row.name, account_id, db_session)
            changes.deleted.append(row.name)
            await db_session.delete(row)
    await db_session.flush()
    return changes


async def _rename(old: str, new: str, account_id: int, db_session: AsyncSession) -> None:
    having = set((await db_session.scalars(select(ContactTag.contact_id).where(ContactTag.tag == old))).all())
    clash = set((await db_session.scalars(select(ContactTag.contact_id).where(ContactTag.tag == new))).all())
    if clash & having:  # both names on one contact: the old one goes
        await db_session.execute(delete(ContactTag).where(ContactTag.tag == old,
                                                          ContactTag.contact_id.in_(clash & having)))
    await db_session.execute(update(ContactTag).where(ContactTag.tag == old).values(tag=new)
                             .execution_options(synchronize_session=False))
    for contact_id in sorted(having):
        await audit.record("contact.tags", entity_type="contact", entity_id=contact_id, actor=None,
                           actor_label="wecom", db_session=db_session,
                           details={"added": [new], "removed": [old], "rule": f"corp tag renamed in WeCom "
                                                                               f"(app {account_id})"})


async def _drop(name: str, account_id: int, db_session: AsyncSession) -> None:
    reached = select(Identity.contact_id).where(Identity.channel_account_id == account_id)
    having = (await db_session.scalars(select(ContactTag.contact_id).where(
        ContactTag.tag == name, ContactTag.contact_id.in_(reached)))).all()
    if having:
        await db_session.execute(delete(ContactTag).where(ContactTag.tag == name, ContactTag.contact_id.in_(having)))
    for contact_id in having:
        await audit.record("contact.tags", entity_type="contact", entity_id=contact_id, actor=None,
                           actor_label="wecom", db_session=db_session,
                           details={"added": [], "removed": [name], "rule": f"corp tag deleted in WeCom "
                                                                            f"(app {account_id})"})


@dataclass(frozen=True)
class Marking:
    """One WeCom customer's corp tags to set: as `userid`, add these tag ids and remove those;
    `missing` are hub tags WeCom has no corp tag for yet."""
    account_id: int
    userid: str
    external_userid: str
    add: list[str]
    remove: list[str]
    missing: list[str]


async def markings(contact_id: int, removed: set[str], *, db_session: AsyncSession) -> list[Marking]:
    """What to tell WeCom for each of the contact's WeCom customers whose conversation a rep with a
    WeCom userid on that app owns: add the hub's tags, remove those in `removed` it no longer has."""
    wanted = {t[:MAX_NAME] for t in (await db_session.scalars(
        select(ContactTag.tag).where(ContactTag.contact_id == contact_id))).all()}
    rows = (await db_session.execute(
        select(Identity.channel_account_id, Identity.external_id, UserHandle.external_id)
        .join(Conversation, Conversation.identity_id == Identity.id)
        .join(UserHandle, (UserHandle.user_id == Conversation.assignee_user_id)
              & (UserHandle.channel_account_id == Identity.channel_account_id))
        .where(Identity.contact_id == contact_id, wecom_customer(Identity.external_id))
        .order_by(Conversation.id.desc()))).all()
    found: dict[tuple[int, str], Marking] = {}
    for account_id, external, userid in rows:
        if (account_id, external) in found:
            continue
        corp = {row.name: row.tag_id for row in (await db_session.scalars(
            select(CorpTag).where(CorpTag.channel_account_id == account_id))).all()}
        found[(account_id, external)] = Marking(
            account_id, userid, external, add=sorted(corp[n] for n in wanted if n in corp),
            remove=sorted(tag_id for name, tag_id in corp.items() if name in removed and name not in wanted),
            missing=sorted(n for n in wanted if n not in corp))
    return list(found.values())


async def apply_customer_tags(account_id: int, external: str, names: list[str], userid: str, *,
                              db_session: AsyncSession) -> tuple[list[str], list[str]]:
    """A rep set the customer's corp tags in WeCom: the contact gets those it lacks and loses the
    app's corp tags it has that WeCom no longer shows (other tags stay); audited. Added, removed."""
    contact_id = await db_session.scalar(select(Identity.contact_id).where(
        Identity.channel_account_id == account_id, Identity.external_id == external))
    if contact_id is None:
        return [], []
    corp = set((await db_session.scalars(select(CorpTag.name).where(CorpTag.channel_account_id == account_id))).all())
    have = set((await db_session.scalars(select(ContactTag.tag).where(ContactTag.contact_id == contact_id))).all())
    added = sorted(set(names) - have)
    removed = sorted((have & corp) - set(names))
    if removed:
        await db_session.execute(delete(ContactTag).where(ContactTag.contact_id == contact_id,
                                                          ContactTag.tag.in_(removed)))
    db_session.add_all(ContactTag(contact_id=contact_id, tag=name) for name in added)
    if added or removed:
        await audit.record("contact.tags", entity_type="contact", entity_id=contact_id, actor=None,
                           actor_label="wecom", db_session=db_session,
                           details={"added": added, "removed": removed, "rule": f"tagged in WeCom by {userid}"})
    await db_session.flush()
    return added, removed


async def awaits_owner(contact_id: int, *, db_session: AsyncSession) -> bool:
    """Whether the contact is a WeCom customer whose conversation no rep with a WeCom userid owns
    yet: their tags cannot be marked in WeCom until one does."""
    return bool(await db_session.scalar(select(Identity.id).where(
        Identity.contact_id == contact_id, wecom_customer(Identity.external_id)).limit(1)))
