"""The tables, one module per domain; every name is imported from here (`from crm_core.models import Contact`)."""

from crm_core.models.admin import AuditLog, HubSetting
from crm_core.models.campaigns import (
    Campaign,
    CampaignStatus,
    CampaignStep,
    ContactWay,
    ContactWayEvent,
    Enrolment,
    EnrolmentStatus,
    Event,
    EventRegistration,
    MassSend,
    MassSendTask,
    Moment,
)
from crm_core.models.channels import ChannelAccount, ChannelCursor
from crm_core.models.common import (
    CUSTOMER_MESSAGE_KINDS,
    ConversationStatus,
    Delivery,
    Direction,
    Id,
    MessageKind,
    MessagePurpose,
    OutboxStatus,
    Role,
)
from crm_core.models.consent import ConsentEvent, ConsentRequest
from crm_core.models.contacts import (
    BotSession,
    Contact,
    ContactKey,
    ContactTag,
    CorpTag,
    CustomerGroup,
    CustomerGroupLeave,
    CustomerGroupMember,
    GroupJoinWay,
    Identity,
    TagPush,
)
from crm_core.models.conversations import Conversation, CsatSurvey, Message, Note, OpinionAlert, ThreadAlias
from crm_core.models.deals import Account, AccountContact, Deal
from crm_core.models.knowledge import FaqEntry, QuickReply
from crm_core.models.leads import Lead, LeadEvent
from crm_core.models.outbox import Lease, OutboxMessage
from crm_core.models.people import ApiToken, CustomerTransfer, LoginAttempt, Team, User, UserHandle, WebSession
from crm_core.models.tasks import Task

__all__ = [
    "Account", "AccountContact", "ApiToken", "AuditLog", "BotSession", "CUSTOMER_MESSAGE_KINDS", "Campaign",
    "CampaignStatus", "CampaignStep",
    "ChannelAccount", "ChannelCursor", "ConsentEvent", "ConsentRequest", "Contact", "ContactKey", "ContactTag",
    "ContactWay", "ContactWayEvent", "Conversation", "ConversationStatus", "CorpTag", "CsatSurvey", "CustomerGroup",
    "CustomerGroupLeave", "CustomerGroupMember", "CustomerTransfer", "Deal", "Delivery", "Direction", "Enrolment",
    "EnrolmentStatus", "Event", "EventRegistration", "FaqEntry", "GroupJoinWay", "HubSetting", "Id", "Identity",
    "Lead", "LeadEvent", "Lease", "LoginAttempt", "MassSend", "MassSendTask", "Message", "MessageKind",
    "MessagePurpose", "Moment", "Note", "OpinionAlert", "OutboxMessage", "OutboxStatus", "QuickReply", "Role",
    "TagPush", "Task", "Team", "ThreadAlias", "User", "UserHandle", "WebSession"
]
