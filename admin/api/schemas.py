"""Request and response bodies of the REST API (XCreate / XRead)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from admin.api.ids import Id
from crm_core.conversations.service import DeliveryView
from crm_core.outbox.service import DeliveryState


class ChannelAccountCreate(BaseModel):
    kind: str = Field(examples=["telegram"])
    name: str = Field(min_length=1, max_length=200)
    credentials: dict[str, Any] = Field(description="Platform secrets; validated per kind, stored encrypted, "
                                                    "never returned")
    settings: dict[str, Any] = Field(default_factory=dict)
    api_base: str | None = Field(default=None, description="Override the platform API URL (simulators, proxies)")

    @field_validator("api_base")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("api_base must be an http:// or https:// URL")
        return value.rstrip("/") if value else value


class ChannelAccountUpdate(BaseModel):
    """The fields to change; those left out stay as they are."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    is_active: bool | None = Field(default=None, description="false: stop receiving and sending on it")
    credentials: dict[str, Any] | None = Field(default=None, description="A complete new set (a rotated secret), "
                                                                        "tested first; stored encrypted")


class ChannelAccountRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    name: str
    platform_account_id: str
    api_base: str | None
    settings: dict[str, Any]
    is_active: bool
    webhook_url: str
    created_at: dt.datetime
    # What the operator should know of its setup (WeCom without its session archive...).
    notices: list[str] = []


class IdentityRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    channel_account_id: int
    external_id: str
    display_name: str | None
    username: str | None
    language: str | None
    reachable: bool
    unreachable_reason: str | None
    last_inbound_at: dt.datetime | None


class ContactRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    display_name: str | None
    # What to call them: their name, else a channel's nickname, else the channel and their id there.
    name: str = ""
    language: str | None
    stage: str
    source: str | None
    # Set when this contact turned out to be another one (same WeChat unionid): follow it.
    merged_into_id: int | None
    created_at: dt.datetime


class ContactDetail(ContactRead):
    identities: list[IdentityRead]
    phones: list[str] = Field(default_factory=list)
    emails: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)


class ConversationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    contact_id: int
    identity_id: int
    channel_account_id: int
    status: str
    assignee_user_id: int | None
    created_at: dt.datetime
    last_message_at: dt.datetime
    handoff_at: dt.datetime | None = None
    handoff_reason: str | None = None
    resolved_at: dt.datetime | None = None


class DeliveryRead(BaseModel):
    """Where an outgoing message is."""

    state: DeliveryState = Field(description="queued, sending, delivered (in the customer's chat), sent (accepted; "
                                             "the platform delivers it later, as email does), awaiting_confirmation "
                                             "(a person confirms it on the platform: WeCom's 群发 task), failed, "
                                             "unreachable, held (the platform's rules forbid it now), in_doubt, "
                                             "cancelled")
    detail: str | None = Field(description="The platform's reason for a failure or hold, or why it waits")
    attempts: int
    next_attempt_at: dt.datetime | None = Field(description="Queued only: when it goes at the earliest")

    @classmethod
    def of(cls, view: DeliveryView | None) -> DeliveryRead | None:
        if view is None:
            return None
        return cls(state=view.state, detail=view.detail, attempts=view.attempts, next_attempt_at=view.next_attempt_at)


class MessageRead(BaseModel):
    id: int
    direction: str
    kind: str
    text: str | None
    attachments: list[Any]
    author_user_id: int | None
    platform_message_id: str | None
    created_at: dt.datetime
    delivery: DeliveryRead | None = Field(None, description="Outbound only: where the message is")
    delivery_status: str | None = Field(description="Outbound only, the outbox row's status: pending, claimed, "
                                                    "sending, sent, failed, unreachable, in_doubt, cancelled, held")
    delivery_error: str | None
    sentiment: str | None = Field(None, description="Customer messages: negative, neutral or positive")
    sentiment_score: float | None = Field(None, description="P(positive) - P(negative)")
    sentiment_confidence: float | None = None
    intents: list[str] = Field(default_factory=list, description="opt_out, opt_in, human, buying, complaint, "
                                                                 "event_registration")
    entities: dict[str, Any] = Field(default_factory=dict, description="Phones, emails, WeChat ids, name, company, "
                                                                       "budget, dates the customer stated")


class MessageCreate(BaseModel):
    text: str = Field(default="", max_length=4096)
    image_url: str | None = Field(default=None, max_length=1000, pattern=r"^https?://",
                                  description="A picture (POST /media gives one): shown as a picture where the "
                                              "channel can, else its link")
    file_url: str | None = Field(default=None, max_length=1000, pattern=r"^https?://",
                                 description="A document (POST /media): a file where the channel takes one "
                                             "(Telegram, 微信客服, email), else its link with file_name")
    file_name: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _something(self) -> MessageCreate:
        if not self.text.strip() and not self.image_url and not self.file_url:
            raise ValueError("write a text, or attach a picture or a file")
        return self


class OutboxRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    message_id: int | None
    status: str
    attempts: int
    next_attempt_at: dt.datetime
    platform_message_id: str | None
    last_error: str | None


class OpinionHourRead(BaseModel):
    start: dt.datetime
    volume: int
    negative: int = Field(description="Negative messages (complaints for keyword_rule)")
    negative_share: float
    mean_sentiment: float


class OpinionSeriesRead(BaseModel):
    dimension: str
    key: str
    hours: list[OpinionHourRead]
    top_terms: list[list[Any]] = Field(description="[term, messages] of the negative messages in the window")


class OpinionAlertRead(BaseModel):
    id: int
    dimension: str
    key: str
    status: str
    first_hour: dt.datetime
    last_hour: dt.datetime
    peak_share: float
    baseline: float
    threshold: float
    volume: int
    top_terms: list[list[Any]]
    message_ids: list[int]
    covered_by_id: int | None = Field(description="Mostly the same messages as this alert, which was sent instead")
    created_at: dt.datetime
    closed_at: dt.datetime | None
    messages_url: str


class OpinionMessageRead(BaseModel):
    id: int
    conversation_id: int
    channel_account_id: int
    text: str | None
    sentiment: str | None
    sentiment_score: float | None
    intents: list[str]
    created_at: dt.datetime


class CampaignStepCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    channel: str | None = Field(default=None, description="A channel kind; none: the contact's latest channel")
    template: dict[str, str] = Field(description='Text per language: {"zh": "{name}您好", "en": "Hi {name}"}; '
                                                 "variables {name}, {rep}, {campaign}")
    channel_templates: dict[str, dict[str, str]] = Field(
        default_factory=dict, description='Other wording where the contact is reached on a channel kind: '
                                          '{"email": {"en": "Dear {name}, ..."}}; the template elsewhere')
    delay_minutes: int = Field(default=0, ge=0, le=366 * 24 * 60)
    delay_from: str = Field(default="previous", pattern="^(previous|enrolment)$")
    send_at: dt.datetime | None = Field(default=None, description="An absolute time instead of a delay")
    window_start: str | None = Field(default=None, examples=["09:00"])
    window_end: str | None = Field(default=None, examples=["18:00"])
    condition: dict[str, Any] | None = Field(default=None, description='{"replied": false}, {"clicked": true}, '
                                                                       '{"stages": ["qualified"]}, {"tag": "vip"}')
    else_position: int | None = Field(default=None, ge=0, le=50,
                                      description="Where to go when the condition is not met; "
                                                  "none: leave the campaign")


class CampaignCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    audience: dict[str, Any] = Field(default_factory=dict,
                                     description="tags, stages, sources, channels, sentiment, consent (default true)")
    exits: list[str] = Field(default_factory=lambda: ["reply", "conversion"],
                             description="reply, conversion; opt-out and manual exits always apply")
    steps: list[CampaignStepCreate] = Field(min_length=1, max_length=50)
    caps: dict[str, Any] = Field(default_factory=dict, examples=[{"per_contact": {"messages": 2, "days": 7},
                                                                  "per_day": 500}],
                                 description="The campaign's own limits under the hub's marketing cap: per "
                                             "person in a number of days, and per day in all")


class CampaignStepRead(CampaignStepCreate):
    model_config = ConfigDict(from_attributes=True)

    id: int
    position: int


class CampaignRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    status: str
    audience: dict[str, Any]
    exits: list[str]
    caps: dict[str, Any] = Field(default_factory=dict)
    created_at: dt.datetime
    steps: list[CampaignStepRead] = Field(default_factory=list)


class CampaignStatusUpdate(BaseModel):
    status: str = Field(pattern="^(active|paused|ended)$")


class EnrolmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    campaign_id: int
    contact_id: int
    rotation: int
    status: str
    next_position: int | None
    next_due_at: dt.datetime | None
    enrolled_at: dt.datetime
    note: str | None
    exit_reason: str | None


class EnrolContacts(BaseModel):
    contact_ids: list[Id] = Field(min_length=1, max_length=10_000)


class TagsUpdate(BaseModel):
    tags: list[str] = Field(max_length=100, description="The contact's tags after the change")

    @field_validator("tags")
    @classmethod
    def _clean(cls, value: list[str]) -> list[str]:
        cleaned = sorted({tag.strip() for tag in value if tag.strip()})
        if any(len(tag) > 64 for tag in cleaned):
            raise ValueError("a tag is at most 64 characters")
        return cleaned


class LeadCreate(BaseModel):
    contact_id: Id | None = Field(default=None, description="An existing contact; or give name / phone / email")
    name: str = Field(default="", max_length=200)
    phone: str = Field(default="", max_length=50)
    email: str = Field(default="", max_length=200)
    company: str = Field(default="", max_length=200)
    region: str = Field(default="", max_length=100)
    industry: str = Field(default="", max_length=100)
    source: str = Field(default="api", max_length=200)


class LeadRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    contact_id: int
    status: str
    stage: str
    source_kind: str
    source: str | None
    company: str | None
    region: str | None
    industry: str | None
    score: int
    segment: str
    order_total: float
    order_count: int
    owner_user_id: int | None
    first_response_due_at: dt.datetime | None
    first_responded_at: dt.datetime | None
    created_at: dt.datetime
    contact_name: str | None = None   # in lists: the contact's name, else the nickname a channel gave
    owner_name: str | None = None
    # Where it came from as a person says it: {"en": "Telegram, message of 3 Dec", "zh": ...}.
    source_label: dict[str, str] = Field(default_factory=dict)


class LeadEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    details: dict[str, Any]
    actor_user_id: int | None
    at: dt.datetime


class LeadDetail(LeadRead):
    events: list[LeadEventRead]


class LeadStageUpdate(BaseModel):
    stage: str = Field(min_length=1, max_length=32)


class LeadOrder(BaseModel):
    amount: float = Field(gt=0, le=1e12)


class LeadAssign(BaseModel):
    user_id: Id


class FaqCreate(BaseModel):
    questions: dict[str, list[str]] = Field(description="Ways of asking, per language", examples=[
        {"zh": ["怎么退货", "退货流程是什么"], "en": ["How do I return an item?"]}])
    answers: dict[str, str] = Field(examples=[{"zh": "在订单页点击“申请退货”……", "en": "Open the order and ..."}])
    synonyms: list[list[str]] = Field(default_factory=list, examples=[[["退货", "退换货", "return", "refund"]]])
    channel_account_id: Id | None = Field(default=None, description="Only this account's conversations; "
                                                                     "none: every account")
    is_active: bool = True
    image_url: str | None = Field(default=None, description="A picture shown with the answer (https://...)")
    link_url: str | None = Field(default=None, description="A page the answer links to (https://...)")


class FaqRead(FaqCreate):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: dt.datetime
    updated_at: dt.datetime


class FaqMatchRead(BaseModel):
    id: int
    score: float
    question: str
    answers: dict[str, str]
    confident: bool


class EventCreate(BaseModel):
    names: dict[str, str] = Field(examples=[{"zh": "X200 发布会", "en": "X200 launch"}])
    starts_at: dt.datetime = Field(description="With a time zone", examples=["2026-12-01T14:00:00+08:00"])
    location: str | None = Field(default=None, max_length=300)
    capacity: int | None = Field(default=None, ge=1, le=1_000_000, description="Seats; none: no limit")
    keywords: list[str] = Field(default_factory=list, description="Other words naming it in a message")
    remind_hours: list[float] = Field(default_factory=lambda: [24, 1])
    is_active: bool = True


class EventRead(EventCreate):
    model_config = ConfigDict(from_attributes=True)

    id: int
    registered: int = 0
    created_at: dt.datetime


class EventRegistrationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    contact_id: int
    status: str
    registered_at: dt.datetime
    reminded_hours: list[float]
