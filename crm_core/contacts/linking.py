"""One person across channels: what a platform's profile of an identity says,
and joining the identity to the contact its keys already name.

A customer who follows the WeChat Official Account and later adds a rep in
WeCom arrives as two identities; both platforms give the same WeChat unionid
when the company has bound them to one WeChat Open Platform account. An email
sender's address is theirs; a phone number or address a customer states as
their own (`nlp.entities`) is a key too. The second identity with a known key
(and its conversations) moves to the first contact, and the contact created
for it is marked merged, with an audit entry.
`unlink_identity` undoes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import audit
from crm_core.db import holds_changes_to, utcnow
from crm_core.models import Contact, ContactKey, Conversation, Identity, User
from crm_core.ports import Profile
from crm_core.sql import insert_ignoring_conflict

REACH_KINDS = ("phone", "email")
# Asked for messages that state a phone or an email, and by the customer bot: built once.
_REACH_KEYS = (select(ContactKey.contact_id, ContactKey.kind, ContactKey.value)
               .where(ContactKey.contact_id.in_(bindparam("ids", expanding=True)), ContactKey.kind.in_(REACH_KINDS))
               .order_by(ContactKey.id))
_KEY_OWNER = select(ContactKey.contact_id).where(ContactKey.kind == bindparam("kind"),
                                                 ContactKey.value == bindparam("value"))


async def reach_keys(contact_ids: Iterable[int], *, db_session: AsyncSession) -> dict[int, list[tuple[str, str]]]:
    """Each contact's phones and emails, as (kind, value) in the order they became known."""
    found: dict[int, list[tuple[str, str]]] = {}
    for contact_id, kind, value in (await db_session.execute(
            _REACH_KEYS, {"ids": list(contact_ids)},
            execution_options={"autoflush": holds_changes_to(db_session, ContactKey)})).all():
        found.setdefault(contact_id, []).append((kind, value))
    return found


async def apply_profile(identity: Identity, contact: Contact, profile: Profile, *,
                        db_session: AsyncSession) -> Contact:
    """Record `profile` on the identity; returns the contact it belongs to now."""
    identity.profile_checked_at = utcnow()
    if profile.display_name:
        identity.display_name = profile.display_name
        if not contact.display_name:
            contact.display_name = profile.display_name
    return await link_keys(identity, contact, sorted(profile.keys.items()), source="profile",
                           db_session=db_session)


async def link_keys(identity: Identity, contact: Contact, keys: Sequence[tuple[str, str]], *, source: str,
                    db_session: AsyncSession) -> Contact:
    """Give `contact` the keys nobody holds; if one is another contact's, the
    identity joins that contact (audited). Returns the identity's contact now."""
    target = contact
    for kind, value in keys:
        if not value:
            continue
        owner_id = await _key_owner(kind, value, contact.id, identity.id, db_session=db_session)
        if owner_id != target.id and target is contact:
            target = await _live_contact(owner_id, db_session=db_session)
    if target.id != contact.id:
        await _move_identity(identity, contact, target, [k for k, _ in keys], source, db_session=db_session)
    return target


async def _key_owner(kind: str, value: str, contact_id: int, identity_id: int, *, db_session: AsyncSession) -> int:
    """The contact holding this key; the key is given to `contact_id` if nobody holds it."""
    await insert_ignoring_conflict(
        db_session, ContactKey.__table__,
        {"contact_id": contact_id, "kind": kind, "value": value, "identity_id": identity_id, "created_at": utcnow()},
        conflict_columns=["kind", "value"],
    )
    owner = await db_session.scalar(_KEY_OWNER, {"kind": kind, "value": value})
    assert owner is not None
    return owner


async def _live_contact(contact_id: int, *, db_session: AsyncSession) -> Contact:
    """Follows merges to the contact that is still in use."""
    seen: set[int] = set()
    while True:
        contact = await db_session.get(Contact, contact_id)
        assert contact is not None
        if contact.merged_into_id is None or contact.id in seen:
            return contact
        seen.add(contact.id)
        contact_id = contact.merged_into_id


async def _move_identity(identity: Identity, source: Contact, target: Contact, kinds: list[str], why: str, *,
                         db_session: AsyncSession) -> None:
    identity.contact_id = target.id
    await db_session.execute(
        update(Conversation).where(Conversation.identity_id == identity.id).values(contact_id=target.id)
        .execution_options(synchronize_session=False)
    )
    left = await db_session.scalar(
        select(Identity.id).where(Identity.contact_id == source.id, Identity.id != identity.id).limit(1))
    details = {"identity_id": identity.id, "from_contact_id": source.id, "keys": sorted(set(kinds)),
               "source": why}
    if left is None:
        # Nothing else knows the contact created for this identity: it was the same person all along.
        await db_session.execute(
            update(ContactKey).where(ContactKey.contact_id == source.id).values(contact_id=target.id)
            .execution_options(synchronize_session=False)
        )
        target.display_name = target.display_name or source.display_name
        target.language = target.language or source.language
        target.source = target.source or source.source
        source.merged_into_id = target.id
        details["merged"] = True
    await db_session.flush()
    await audit.record("contact.linked", entity_type="contact", entity_id=target.id, actor=None,
                       actor_label="system", details=details, db_session=db_session)


class UnlinkRefused(Exception):
    pass


async def unlink_identity(contact_id: int, identity_id: int, *, actor: User | None,
                          db_session: AsyncSession) -> Contact:
    """Undo a link: the identity and its conversations go back to the contact
    first created for it (restored from its merge), or to a new contact.
    Its profile is not looked up again, so it stays apart."""
    identity = await db_session.get(Identity, identity_id)
    if identity is None or identity.contact_id != contact_id:
        raise UnlinkRefused(f"identity {identity_id} is not one of contact {contact_id}'s")
    others = await db_session.scalar(
        select(Identity.id).where(Identity.contact_id == contact_id, Identity.id != identity_id).limit(1))
    if others is None:
        raise UnlinkRefused(f"identity {identity_id} is contact {contact_id}'s only identity: nothing to unlink")
    current = await db_session.get(Contact, contact_id)
    assert current is not None
    origin = f"{identity.channel_account_id}:{identity.external_id}"
    home = await db_session.scalar(select(Contact).where(Contact.origin == origin))
    if home is None or home.id == contact_id:
        home = Contact(display_name=identity.display_name, language=identity.language, stage="new",
                       source=current.source)
        db_session.add(home)
        await db_session.flush()
    home.merged_into_id = None
    identity.contact_id = home.id
    await db_session.execute(
        update(Conversation).where(Conversation.identity_id == identity.id).values(contact_id=home.id)
        .execution_options(synchronize_session=False)
    )
    # Keys this identity brought stay with the contact that now holds it.
    await db_session.execute(
        update(ContactKey).where(ContactKey.identity_id == identity.id).values(contact_id=home.id)
        .execution_options(synchronize_session=False)
    )
    await db_session.flush()
    await audit.record("contact.unlinked", entity_type="contact", entity_id=contact_id, actor=actor,
                       details={"identity_id": identity.id, "to_contact_id": home.id}, db_session=db_session)
    return home
