"""What the demo holds on its first start, so a newcomer sees the product at work: a knowledge
base a real shop would have (`hub/demo_data/faq.json`) and four weeks of history
(`hub/demo_data/history.json`: customers on every channel, leads at every stage, satisfaction
scores, an opinion spike, a campaign running). Seeded once per data directory: each part is
noted in `<data dir>/seeded.json` when written, so a restart does not add it again and what the
user deleted stays deleted."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.simulators.telegram import SimBot, TelegramSimulator
from channels.wecom_kf.adapter import thread_of
from crm_core.campaigns import service as campaigns
from crm_core.campaigns.definitions import StepSpec
from crm_core.conversations.ingest import ingest_events
from crm_core.db import utcnow
from crm_core.knowledge import faq
from crm_core.leads import service as leads
from crm_core.models import (
    CampaignStatus,
    ChannelAccount,
    ConsentEvent,
    Contact,
    Conversation,
    CsatSurvey,
    Direction,
    Message,
    MessageKind,
    MessagePurpose,
    OpinionAlert,
    User,
)
from crm_core.ports import InboundMessage, Sender
from hub.context import Hub

DATA = files("hub") / "demo_data"


def _seeded(data_dir: Path) -> set[str]:
    path = data_dir / "seeded.json"
    return set(json.loads(path.read_text())) if path.exists() else set()


def _note(data_dir: Path, part: str) -> None:
    (data_dir / "seeded.json").write_text(json.dumps(sorted(_seeded(data_dir) | {part})))


async def seed_once(hub: Hub, data_dir: Path, telegram: TelegramSimulator, bot: SimBot) -> list[str]:
    """The parts seeded by this call (none on a restart)."""
    done = _seeded(data_dir)
    seeded = []
    if "faq" not in done:
        entries = json.loads((DATA / "faq.json").read_text(encoding="utf-8"))["entries"]
        async with hub.sessions() as session, session.begin():
            for entry in entries:
                await faq.create(faq.FaqSpec(entry["questions"], entry["answers"], entry["synonyms"]), actor=None,
                                 db_session=session)
        _note(data_dir, "faq")
        seeded.append(f"faq ({len(entries)} entries)")
    if "history" not in done:
        seeded.append(await seed_history(hub, telegram, bot))
        _note(data_dir, "history")
    return seeded


# ---- four weeks of history -----------------------------------------------------------------------

_KINDS = ("telegram", "wechat", "wecom", "wecom_kf", "dingtalk")
_STAGES = ("new", "new", "contacted", "contacted", "qualified", "qualified", "proposal", "won", "won", "lost")
_CAMPAIGN = "新品试用邀请 · Trial invitation"


@dataclass
class _Said:
    """One customer line of the history, and what answered it."""

    customer: int
    lang: str
    mood: str
    text: str
    at: dt.datetime
    reply: str | None                # the bot's answer; None once a person has the conversation
    rep_reply: str | None = None     # a rep's answer


async def seed_history(hub: Hub, telegram: TelegramSimulator, bot: SimBot, *, now: dt.datetime | None = None) -> str:
    """Customers on every channel over the last 28 days, their conversations (answered by the bot
    and by Li Lei and Wang Fang), leads at every stage, satisfaction scores, an afternoon of
    complaints about delivery on the Official Account (an opinion alert), and customers who
    agreed to marketing with a campaign running for the Telegram ones, whose steps go out in
    the next minutes. Sentiment and intents are read by the hub's own models."""
    rng = random.Random(2026)
    now = now or utcnow()
    data = json.loads((DATA / "history.json").read_text(encoding="utf-8"))
    answers = {question: entry["answers"] for entry in json.loads((DATA / "faq.json").read_text(
        encoding="utf-8"))["entries"] for questions in entry["questions"].values() for question in questions}
    async with hub.sessions() as session:
        accounts: dict[str, ChannelAccount] = {}
        for account in (await session.scalars(select(ChannelAccount).order_by(ChannelAccount.id))).all():
            accounts.setdefault(account.kind, account)
        staff = {u.username: u for u in (await session.scalars(select(User).where(
            User.username.in_(("li", "wang"))))).all()}
    kinds = [kind for kind in _KINDS if kind in accounts]
    people = [(name, "zh") for name in data["customers"]["zh"]] + [(name, "en") for name in data["customers"]["en"]]
    rng.shuffle(people)
    said: list[_Said] = []
    for n, (name, lang) in enumerate(people):
        lines = data["lines"][lang]
        # On a calendar day at office hours in China (01:00-09:59 UTC), not hours before now: the
        # dashboard counts by UTC day, and the same history must draw the same chart at any hour.
        day = (now - dt.timedelta(days=rng.randint(1, 27))).replace(
            hour=rng.randint(1, 9), minute=rng.randint(0, 59), second=0, microsecond=0)
        mood = rng.choice(("question", "question", "question", "buying", "buying", "praise", "complaint"))
        texts = [rng.choice(lines[mood])] + ([rng.choice(lines["question"])] if rng.random() < 0.5 else [])
        for k, text in enumerate(texts):
            kind_of_line = mood if k == 0 else "question"
            reply = answers.get(text, {}).get(lang) or data["replies"][lang].get(kind_of_line) \
                or data["replies"][lang]["praise"]
            said.append(_Said(n, lang, kind_of_line, text, day + dt.timedelta(minutes=3 * k), reply))
        if mood in ("buying", "complaint"):  # handed to a person: the bot keeps out, the rep answers
            said.append(_Said(n, lang, "follow_up", rng.choice(lines["follow_up"]), day + dt.timedelta(minutes=20),
                              None, rng.choice(data["replies"][lang]["rep"])))
    # An afternoon of delivery complaints on the Official Account, nine days ago.
    spike_at = (now - dt.timedelta(days=9)).replace(hour=6, minute=0, second=0, microsecond=0)
    spikers = [(f"顾客{letter}", "zh") for letter in "ABCDEFGHIJ"]
    first_spiker = len(people)
    for n, _ in enumerate(spikers):
        for k in range(2):
            said.append(_Said(first_spiker + n, "zh", "spike", rng.choice(data["lines"]["zh"]["spike"]),
                              spike_at + dt.timedelta(minutes=5 * n + 2 * k), data["replies"]["zh"]["complaint"]))
    people += spikers
    kind_of = {n: kinds[n % len(kinds)] for n in range(first_spiker)} | \
        {n: "wechat" if "wechat" in accounts else kinds[0] for n in range(first_spiker, len(people))}

    readings = await asyncio.to_thread(hub.understanding.read, [s.text for s in said])
    async with hub.sessions() as session, session.begin():
        stored: list[int] = []
        messages: dict[int, Message] = {}
        conversations: dict[int, Conversation] = {}
        for s, reading in zip(said, readings, strict=True):
            account = accounts[kind_of[s.customer]]
            name, _ = people[s.customer]
            external = _external_id(account, s.customer)
            event = InboundMessage(platform_message_id=f"history:{len(stored)}", thread_id=_thread(account, external),
                                   sender=Sender(external, name, None, "zh-hans" if s.lang == "zh" else "en"),
                                   kind=MessageKind.TEXT, text=s.text, raw={"demo_history": True})
            [message_id] = (await ingest_events([event], channel_account_id=account.id,
                                                db_session=session)).stored_message_ids
            stored.append(message_id)
            # Its answers stored right after it: a conversation's messages go by id in time order.
            message = await session.get(Message, message_id)
            message.created_at = message.processed_at = s.at
            felt = reading.sentiment
            message.sentiment = felt.label if felt else None
            message.sentiment_score = felt.score if felt else None
            message.sentiment_confidence = felt.confidence if felt else None
            message.intents, message.entities = reading.intents, reading.entities
            messages[message_id] = message
            conversation = conversations.setdefault(s.customer, await session.get(Conversation,
                                                                                  message.conversation_id))
            answers_at = s.at + dt.timedelta(seconds=rng.randint(2, 9))
            if s.rep_reply and staff:
                rep = staff["li"] if s.customer % 2 else staff.get("wang", staff["li"])
                answers_at = s.at + dt.timedelta(minutes=rng.randint(6, 95))
                session.add(Message(conversation_id=conversation.id, channel_account_id=message.channel_account_id,
                                    identity_id=message.identity_id, direction=Direction.OUTBOUND,
                                    text=s.rep_reply, author_user_id=rep.id,
                                    platform_message_id=f"history-rep:{message_id}", processed_at=s.at,
                                    created_at=answers_at))
                conversation.assignee_user_id = rep.id
                conversation.handoff_at, conversation.handoff_reason = s.at, "replied"
            elif s.reply:
                session.add(Message(conversation_id=conversation.id, channel_account_id=message.channel_account_id,
                                    identity_id=message.identity_id, direction=Direction.OUTBOUND, text=s.reply,
                                    platform_message_id=f"history-reply:{message_id}", processed_at=s.at,
                                    created_at=answers_at))
            await session.flush()
            conversation.created_at = min(conversation.created_at, s.at)
            conversation.last_message_at = answers_at
        firsts = {}
        for s, message_id in zip(said, stored, strict=True):
            firsts.setdefault(s.customer, (s, messages[message_id]))
        rules = hub.settings.lead_rules
        opened = 0
        for customer, (s, message) in firsts.items():
            conversation = conversations[customer]
            contact = await session.get(Contact, conversation.contact_id)
            contact.created_at = contact.updated_at = s.at
            if s.mood in ("buying", "complaint") or (s.mood == "question" and customer % 3 == 0):
                owner = staff.get("li") if customer % 2 else staff.get("wang")
                lead = (await leads.open_lead(contact.id, source_kind="signal", source=f"message {message.id}",
                                              source_message_id=message.id, rules=rules, owner=owner,
                                              db_session=session)).lead
                lead.created_at = s.at
                lead.score = rng.randint(10, 90)
                stage = _STAGES[opened % len(_STAGES)]
                opened += 1
                if stage != rules.stages[0] and stage in rules.stages:
                    await leads.set_stage(lead, stage, rules=rules, actor=owner, db_session=session)
                    lead.first_responded_at = s.at + dt.timedelta(minutes=rng.randint(5, 120))
                if stage == "won":
                    await leads.add_order(lead, float(rng.choice((2_980, 9_900, 19_800, 59_400))), rules=rules,
                                          actor=owner, db_session=session)
            if s.mood in ("praise", "complaint", "question") and customer % 2 == 0 and customer < first_spiker:
                score = rng.choice((5, 5, 4, 4, 3)) if s.mood != "complaint" else rng.choice((2, 3, 1))
                session.add(CsatSurvey(conversation_id=conversation.id, contact_id=contact.id,
                                       rep_user_id=conversation.assignee_user_id, score=score,
                                       asked_at=s.at + dt.timedelta(hours=2),
                                       answered_at=s.at + dt.timedelta(hours=2, minutes=rng.randint(1, 30))))
                conversation.resolved_at = s.at + dt.timedelta(hours=2)
            if s.mood != "complaint" and customer < first_spiker and customer % 5 != 4:
                session.add(ConsentEvent(contact_id=contact.id, purpose=MessagePurpose.MARKETING, granted=True,
                                         source="form", actor_label="demo history", created_at=s.at,
                                         evidence={"message_id": message.id}))
            if kind_of[customer] == "telegram":  # a real user of the simulated bot, who started it
                external = int(_external_id(accounts["telegram"], customer))
                telegram.user(external, people[customer][0], language_code="zh-hans" if s.lang == "zh" else "en")
                bot.started_by.add(external)
        await _opinion_alert(session, [(s, messages[i]) for s, i in zip(said, stored, strict=True)
                                       if s.mood == "spike"], accounts.get("wechat"), spike_at)
        await session.flush()
        campaign = await campaigns.create_campaign(
            _CAMPAIGN, audience={"consent": True, "channels": ["telegram"]}, exits=["reply"],
            channel_kinds=list(accounts), actor=None, db_session=session, steps=[
                StepSpec("邀请 · Invitation", {"zh": "{name}您好！专业版上线了新功能，回复“试用”即可免费体验 14 天。",
                                               "en": "Hi {name}! Pro has new features: reply TRIAL to try it free "
                                                     "for 14 days."}),
                StepSpec("提醒 · Reminder", {"zh": "{name}，免费试用名额本周截止，回复“试用”即可开通。",
                                             "en": "{name}, free trial places close this week: reply TRIAL to "
                                                   "start."}, delay_minutes=2)])
        enrolled = await campaigns.set_status(campaign, CampaignStatus.ACTIVE, actor=None, db_session=session)
    telegram.save()
    return (f"history ({len(people)} customers, {len(said)} messages over 28 days, {opened} leads; "
            f"campaign “{_CAMPAIGN}” running for {enrolled} Telegram customers: its first step goes out now, "
            "the second 2 minutes later)")


def _external_id(account: ChannelAccount, customer: int) -> str:
    return {"telegram": str(20_000 + customer), "wechat": f"oHistory{customer:04d}",
            "wecom": f"wmHistory{customer:04d}", "wecom_kf": f"wmKfHistory{customer:04d}",
            "dingtalk": f"$:LWCP_v1:$history{customer:04d}"}.get(account.kind, f"history{customer}")


def _thread(account: ChannelAccount, external: str) -> str:
    if account.kind == "wecom_kf":
        return thread_of(((account.settings or {}).get("open_kfids") or ["kf"])[0], external)
    if account.kind == "dingtalk":
        return "cidDemoCustomerGroup=="
    return external


async def _opinion_alert(session: AsyncSession, spike: list[tuple[_Said, Message]], account: ChannelAccount | None,
                         hour: dt.datetime) -> None:
    """The alert the opinion watcher raised for that afternoon, from the seeded messages: the hour's
    negative share against the account's other hours."""
    if account is None or not spike:
        return
    negative = [m for _, m in spike if m.sentiment == "negative"]
    others = (await session.execute(select(Message.sentiment).where(
        Message.channel_account_id == account.id, Message.direction == Direction.INBOUND,
        Message.sentiment.is_not(None), Message.id.not_in([m.id for _, m in spike])))).scalars().all()
    baseline = sum(1 for s in others if s == "negative") / len(others) if others else 0.0
    session.add(OpinionAlert(dimension="channel", key=str(account.id), status="closed", first_hour=hour,
                             last_hour=hour + dt.timedelta(hours=1), peak_share=round(len(negative) / len(spike), 3),
                             baseline=round(baseline, 3), threshold=round(min(1.0, baseline + 0.3), 3),
                             volume=len(spike), top_terms=[[term, sum(s.text.count(term) for s, _ in spike)]
                                                           for term in ("发货", "物流", "快递")],
                             message_ids=[m.id for _, m in spike], created_at=hour + dt.timedelta(hours=1),
                             closed_at=hour + dt.timedelta(days=1)))
