"""The worker asks the platform who a new customer is, once, and joins identities
that name the same person (a WeChat unionid) into one contact."""

from __future__ import annotations

from sqlalchemy import select

from crm_core.conversations.ingest import ingest_events
from crm_core.conversations.processing import MessageWorker
from crm_core.models import AuditLog, Contact, ContactKey, Conversation, Identity, Message, MessageKind
from crm_core.ports import HandlerContext, InboundMessage, Profile, Sender
from tests.crm_core.test_ingest import make_account, text_event


class Profiles:
    """A scripted ProfileLookup: answers from `known`, raises for ids in `failing`; the tests'
    accounts are Telegram's, which stands in here for a channel with profiles."""

    def __init__(self, known: dict[str, Profile], kinds: frozenset[str] = frozenset({"telegram"})) -> None:
        self.profile_kinds = kinds
        self.known = known
        self.failing: set[str] = set()
        self.asked: list[str] = []

    async def fetch_profile(self, account_id: int, external_id: str) -> Profile | None:
        self.asked.append(external_id)
        if external_id in self.failing:
            raise TimeoutError("platform busy")
        return self.known.get(external_id, Profile())


class SeenContacts:
    """A handler that records which contact each message was handled for."""

    def __init__(self) -> None:
        self.contacts: list[int] = []

    async def handle(self, ctx: HandlerContext) -> None:
        self.contacts.append(ctx.contact.id)


async def _ingest(sessions, account_id, *events):
    async with sessions() as session, session.begin():
        await ingest_events(list(events), channel_account_id=account_id, db_session=session)


async def _contact_of(sessions, external_id: str) -> int:
    async with sessions() as session:
        return await session.scalar(select(Identity.contact_id).where(Identity.external_id == external_id))


async def test_same_unionid_on_two_channels_is_one_contact(sessions):
    oa, wecom = await make_account(sessions, "oa"), await make_account(sessions, "wecom")
    profiles = Profiles({"oFollower": Profile(keys={"wechat_unionid": "U1"}),
                         "wmCustomer": Profile(display_name="Alice Wang", keys={"wechat_unionid": "U1"})})
    seen = SeenContacts()
    worker = MessageWorker(sessions, [seen], profiles=profiles)

    await _ingest(sessions, oa, text_event(1, user="oFollower", name=None, text="你好"))
    await worker.run_once()
    first = await _contact_of(sessions, "oFollower")

    await _ingest(sessions, wecom, text_event(2, user="wmCustomer", name=None, text="hello again"))
    await worker.run_once()
    assert await _contact_of(sessions, "wmCustomer") == first
    assert seen.contacts == [first, first]  # handlers already see the linked contact

    async with sessions() as session:
        conversations = (await session.scalars(select(Conversation))).all()
        assert {c.contact_id for c in conversations} == {first}
        merged = (await session.scalars(select(Contact).where(Contact.merged_into_id.is_not(None)))).all()
        assert len(merged) == 1 and merged[0].merged_into_id == first
        person = await session.get(Contact, first)
        assert person.display_name == "Alice Wang"  # the name WeCom gave, kept through the merge
        [key] = (await session.scalars(select(ContactKey))).all()
        assert (key.kind, key.value, key.contact_id) == ("wechat_unionid", "U1", first)
        [entry] = (await session.scalars(select(AuditLog).where(AuditLog.action == "contact.linked"))).all()
        assert entry.entity_id == str(first) and entry.details["merged"] is True

    # Asked once per identity: later messages do not ask again.
    await _ingest(sessions, wecom, text_event(3, user="wmCustomer", name=None, text="still there?"))
    await worker.run_once()
    assert profiles.asked == ["oFollower", "wmCustomer"]


async def test_a_contact_with_other_identities_is_not_merged_away(sessions):
    """Only the identity whose profile names someone else moves; its old contact keeps the rest."""
    tg, oa = await make_account(sessions, "tg"), await make_account(sessions, "oa")
    profiles = Profiles({"oKnown": Profile(keys={"wechat_unionid": "U2"})})
    worker = MessageWorker(sessions, [], profiles=profiles)
    await _ingest(sessions, oa, text_event(1, user="oKnown", text="hi"))
    await worker.run_once()
    # A Telegram identity, then a second WeChat identity, both on one contact (as a merge would leave them).
    await _ingest(sessions, tg, text_event(2, user="tg-7", text="hi"))
    await worker.run_once()
    tg_contact = await _contact_of(sessions, "tg-7")
    await _ingest(sessions, oa, text_event(3, user="oOther", text="hi"))
    async with sessions() as session, session.begin():
        identity = await session.scalar(select(Identity).where(Identity.external_id == "oOther"))
        stray = identity.contact_id
        identity.contact_id = tg_contact
        conversation = await session.scalar(select(Conversation).where(Conversation.identity_id == identity.id))
        conversation.contact_id = tg_contact
        await session.delete(await session.get(Contact, stray))
    profiles.known["oOther"] = Profile(keys={"wechat_unionid": "U2"})
    await worker.run_once()

    assert await _contact_of(sessions, "oOther") == await _contact_of(sessions, "oKnown")
    assert await _contact_of(sessions, "tg-7") == tg_contact
    async with sessions() as session:
        assert (await session.get(Contact, tg_contact)).merged_into_id is None


async def test_a_failed_lookup_does_not_hold_the_message_and_is_asked_again(sessions):
    account = await make_account(sessions)
    profiles = Profiles({"wmSlow": Profile(display_name="Slow Co")})
    profiles.failing.add("wmSlow")
    seen = SeenContacts()
    worker = MessageWorker(sessions, [seen], profiles=profiles)
    await _ingest(sessions, account, text_event(1, user="wmSlow", name=None))
    await worker.run_once()
    assert len(seen.contacts) == 1  # handled without the profile
    async with sessions() as session:
        identity = await session.scalar(select(Identity).where(Identity.external_id == "wmSlow"))
        assert identity.profile_checked_at is None and identity.display_name is None
        assert (await session.scalar(select(Message.processed_at))) is not None

    profiles.failing.clear()
    await _ingest(sessions, account, text_event(2, user="wmSlow", name=None))
    await worker.run_once()
    async with sessions() as session:
        identity = await session.scalar(select(Identity).where(Identity.external_id == "wmSlow"))
        assert identity.profile_checked_at is not None and identity.display_name == "Slow Co"
    assert profiles.asked == ["wmSlow", "wmSlow"]


async def test_staff_are_never_looked_up(sessions):
    account = await make_account(sessions)
    profiles = Profiles({})
    worker = MessageWorker(sessions, [], profiles=profiles)
    rep = InboundMessage(platform_message_id="m1", sender=Sender("li", "Li", is_staff=True), thread_id="li",
                         kind=MessageKind.TEXT, text="/help", raw={})
    await _ingest(sessions, account, rep)
    await worker.run_once()
    assert profiles.asked == []


async def test_a_channel_without_a_profile_api_is_never_asked_and_its_messages_are_answered(sessions):
    """Telegram says no more of a user than their update does: the worker does not ask, whoever
    writes and however often."""
    account = await make_account(sessions)
    profiles = Profiles({"42": Profile(display_name="Never asked")}, kinds=frozenset({"wechat", "wecom"}))
    seen = SeenContacts()
    worker = MessageWorker(sessions, [seen], profiles=profiles)
    await _ingest(sessions, account, text_event(1), text_event(2, user="43"))
    await worker.run_once()
    await _ingest(sessions, account, text_event(3))
    await worker.run_once()
    assert profiles.asked == [] and len(seen.contacts) == 3
    async with sessions() as session:
        assert "Never asked" not in (await session.scalars(select(Contact.display_name))).all()


async def test_the_same_stated_phone_on_two_channels_is_one_contact_and_a_mention_is_not(sessions):
    from nlp.entities import stated_contact_keys

    tg, dingtalk = await make_account(sessions, "tg"), await make_account(sessions, "dingtalk")
    worker = MessageWorker(sessions, [], key_extractor=stated_contact_keys)
    await _ingest(sessions, tg, text_event(1, user="tg-1", text="my phone is +86 138-0013-8000"))
    await _ingest(sessions, dingtalk, text_event(2, user="dt-1", text="请联系我，手机 13800138000"))
    await _ingest(sessions, dingtalk, text_event(3, user="dt-2", text="please cc 13800138000 and wang@x.com"))
    await worker.run_once()
    person = await _contact_of(sessions, "tg-1")
    assert await _contact_of(sessions, "dt-1") == person
    assert await _contact_of(sessions, "dt-2") != person  # mentioned in passing, not given as theirs
    async with sessions() as session:
        [entry] = (await session.scalars(select(AuditLog).where(AuditLog.action == "contact.linked"))).all()
        assert entry.details["keys"] == ["phone"] and entry.details["source"].startswith("message ")
        [key] = (await session.scalars(select(ContactKey))).all()
        assert (key.kind, key.value, key.contact_id) == ("phone", "+8613800138000", person)
