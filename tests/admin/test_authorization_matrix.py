"""Every API route x every role x someone else's record: refused (403 / 404) and nothing changed.

The table below names, for each operation of the OpenAPI document, the roles that may
use it; a new route fails `test_the_matrix_covers_every_route` until it is listed. A rep
is tried on a colleague's customer (contact, conversation, lead) by id, by phone and by
email; other roles on the routes their role may not use. After each refused request
every table is compared with its state before: a refusal writes nothing.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import func, select, text

from crm_core.db import Base, utcnow
from crm_core.leads import service as leads
from crm_core.models import (
    Account,
    AccountContact,
    ContactKey,
    Conversation,
    Deal,
    Direction,
    Lead,
    Message,
    OutboxMessage,
    OutboxStatus,
    QuickReply,
    Role,
    Task,
    User,
)
from crm_core.people import users
from tests.fakes.stack import eventually, telegram_stack

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

A, O, M, R = Role.ADMIN, Role.OPERATOR, Role.MANAGER, Role.REP
EVERYONE = (A, O, M, R)
SUPERVISORS = (A, O, M)

# (method, path): who may use it. Ids in braces are filled with a colleague's records.
ROUTES: dict[tuple[str, str], tuple[Role, ...]] = {
    ("GET", "/api/v1/campaigns"): SUPERVISORS,
    ("POST", "/api/v1/campaigns"): (A, O),
    ("PUT", "/api/v1/campaigns/{campaign_id}"): (A, O),
    ("GET", "/api/v1/campaigns/{campaign_id}"): SUPERVISORS,
    ("POST", "/api/v1/campaigns/{campaign_id}/copy"): (A, O),
    ("POST", "/api/v1/campaigns/{campaign_id}/status"): (A, O),
    ("GET", "/api/v1/campaigns/{campaign_id}/results"): SUPERVISORS,
    ("GET", "/api/v1/campaigns/{campaign_id}/enrolments"): SUPERVISORS,
    ("POST", "/api/v1/campaigns/{campaign_id}/enrolments"): (A, O),
    ("POST", "/api/v1/campaigns/{campaign_id}/enrolments/{enrolment_id}/exit"): (A, O),
    ("GET", "/api/v1/channel-accounts"): SUPERVISORS,
    ("POST", "/api/v1/channel-accounts"): (A, O),
    ("GET", "/api/v1/channel-accounts/{account_id}"): SUPERVISORS,
    ("PATCH", "/api/v1/channel-accounts/{account_id}"): (A, O),
    ("POST", "/api/v1/channel-accounts/{account_id}/test"): (A, O),
    ("POST", "/api/v1/channel-accounts/{account_id}/secrets"): (A,),
    ("GET", "/api/v1/channel-accounts/{account_id}/contact-links"): SUPERVISORS,
    ("POST", "/api/v1/channel-accounts/{account_id}/contact-links"): (A, O),
    ("DELETE", "/api/v1/channel-accounts/{account_id}/contact-links/{link_id}"): (A, O),
    ("GET", "/api/v1/channel-accounts/{account_id}/contact-links/{link_id}/qr.svg"): SUPERVISORS,
    ("GET", "/api/v1/contact-ways"): SUPERVISORS,
    ("GET", "/api/v1/contact-ways/choices"): (A, O),
    ("POST", "/api/v1/contact-ways"): (A, O),
    ("GET", "/api/v1/contact-ways/{way_id}"): SUPERVISORS,
    ("PUT", "/api/v1/contact-ways/{way_id}"): (A, O),
    ("DELETE", "/api/v1/contact-ways/{way_id}"): (A, O),
    ("GET", "/api/v1/customer-transfers"): (A, M),
    ("GET", "/api/v1/customer-transfers/unassigned"): (A, M),
    ("POST", "/api/v1/customer-transfers/unassigned"): (A, M),
    ("GET", "/api/v1/quick-replies"): EVERYONE,
    ("POST", "/api/v1/quick-replies"): EVERYONE,
    ("PUT", "/api/v1/quick-replies/{reply_id}"): EVERYONE,
    ("DELETE", "/api/v1/quick-replies/{reply_id}"): EVERYONE,
    ("GET", "/api/v1/quick-replies/{reply_id}/filled"): EVERYONE,
    ("GET", "/api/v1/tags"): SUPERVISORS,
    ("PUT", "/api/v1/tags/{name}"): (A, O),
    ("DELETE", "/api/v1/tags/{name}"): (A, O),
    ("GET", "/api/v1/customer-groups"): SUPERVISORS,
    ("POST", "/api/v1/customer-groups/sync"): (A, O),
    ("GET", "/api/v1/customer-groups/{group_id}"): SUPERVISORS,
    ("GET", "/api/v1/customer-groups/join-ways"): SUPERVISORS,
    ("GET", "/api/v1/customer-groups/statistics"): SUPERVISORS,
    ("POST", "/api/v1/customer-groups/join-ways"): (A, O),
    ("PUT", "/api/v1/customer-groups/join-ways/{way_id}"): (A, O),
    ("DELETE", "/api/v1/customer-groups/join-ways/{way_id}"): (A, O),
    ("GET", "/api/v1/moments"): SUPERVISORS,
    ("POST", "/api/v1/moments"): (A, O),
    ("GET", "/api/v1/moments/{moment_id}"): SUPERVISORS,
    ("GET", "/api/v1/mass-sends"): SUPERVISORS,
    ("POST", "/api/v1/mass-sends"): (A, O),
    ("GET", "/api/v1/mass-sends/{send_id}"): SUPERVISORS,
    ("GET", "/api/v1/contacts"): EVERYONE,
    ("GET", "/api/v1/contacts/{contact_id}"): EVERYONE,
    ("PUT", "/api/v1/contacts/{contact_id}/tags"): EVERYONE,
    ("GET", "/api/v1/contacts/{contact_id}/consent"): EVERYONE,
    ("POST", "/api/v1/contacts/{contact_id}/consent"): SUPERVISORS,
    ("POST", "/api/v1/contacts/{contact_id}/unlink"): SUPERVISORS,
    ("GET", "/api/v1/contacts/{contact_id}/export"): (A, O),
    ("POST", "/api/v1/contacts/{contact_id}/erase"): (A,),
    ("GET", "/api/v1/contacts/{contact_id}/merge"): SUPERVISORS,
    ("POST", "/api/v1/contacts/{contact_id}/merge"): SUPERVISORS,
    ("GET", "/api/v1/conversations"): EVERYONE,
    ("GET", "/api/v1/conversations/{conversation_id}/messages"): EVERYONE,
    ("POST", "/api/v1/conversations/{conversation_id}/messages"): EVERYONE,
    ("POST", "/api/v1/conversations/{conversation_id}/resolve"): EVERYONE,
    ("GET", "/api/v1/events"): SUPERVISORS,
    ("POST", "/api/v1/events"): (A, O),
    ("GET", "/api/v1/events/{event_id}/registrations"): SUPERVISORS,
    ("GET", "/api/v1/faq"): (A, O),
    ("POST", "/api/v1/faq"): (A, O),
    ("GET", "/api/v1/faq/{entry_id}"): (A, O),
    ("PUT", "/api/v1/faq/{entry_id}"): (A, O),
    ("DELETE", "/api/v1/faq/{entry_id}"): (A, O),
    ("POST", "/api/v1/faq/search"): (A, O),
    ("GET", "/api/v1/leads"): EVERYONE,
    ("POST", "/api/v1/leads"): EVERYONE,
    ("GET", "/api/v1/leads/pipeline"): EVERYONE,
    ("GET", "/api/v1/leads/export"): EVERYONE,
    ("GET", "/api/v1/leads/{lead_id}"): EVERYONE,
    ("POST", "/api/v1/leads/import"): (A, O),
    ("POST", "/api/v1/leads/{lead_id}/stage"): EVERYONE,
    ("POST", "/api/v1/leads/{lead_id}/orders"): EVERYONE,
    ("POST", "/api/v1/leads/{lead_id}/assign"): SUPERVISORS,
    ("GET", "/api/v1/opinion/series"): SUPERVISORS,
    ("GET", "/api/v1/opinion/alerts"): EVERYONE,
    ("GET", "/api/v1/opinion/alerts/{alert_id}/messages"): EVERYONE,
    ("GET", "/api/v1/me"): EVERYONE,
    ("POST", "/api/v1/me/password"): EVERYONE,
    ("POST", "/api/v1/users/{user_id}/password"): (A,),
    ("GET", "/api/v1/inbox"): EVERYONE,
    ("GET", "/api/v1/inbox/{conversation_id}"): EVERYONE,
    ("POST", "/api/v1/conversations/{conversation_id}/notes"): EVERYONE,
    ("POST", "/api/v1/conversations/{conversation_id}/assign"): EVERYONE,
    ("GET", "/api/v1/dashboard"): SUPERVISORS,
    ("GET", "/api/v1/audit"): (A,),
    ("POST", "/api/v1/campaigns/preview"): (A, O),
    ("GET", "/api/v1/channel-kinds"): (A, O),
    ("POST", "/api/v1/channel-accounts/test"): (A, O),
    ("GET", "/api/v1/settings"): (A, M),
    ("PUT", "/api/v1/settings"): (A,),
    ("GET", "/api/v1/teams"): (A, M),
    ("POST", "/api/v1/teams"): (A,),
    ("PUT", "/api/v1/teams/{team_id}"): (A,),
    ("DELETE", "/api/v1/teams/{team_id}"): (A,),
    ("GET", "/api/v1/users"): (A, M),
    ("POST", "/api/v1/users"): (A,),
    ("PATCH", "/api/v1/users/{user_id}"): (A,),
    ("POST", "/api/v1/users/{user_id}/handles"): (A,),
    ("POST", "/api/v1/users/{user_id}/handover"): (A, M),
    ("PUT", "/api/v1/users/{user_id}/territory"): (A, M),
    ("GET", "/api/v1/tasks"): EVERYONE,
    ("POST", "/api/v1/tasks"): EVERYONE,
    ("GET", "/api/v1/tasks/by-owner"): SUPERVISORS,
    ("GET", "/api/v1/tasks/{task_id}"): EVERYONE,
    ("PATCH", "/api/v1/tasks/{task_id}"): EVERYONE,
    ("GET", "/api/v1/deals"): EVERYONE,
    ("POST", "/api/v1/deals"): EVERYONE,
    ("GET", "/api/v1/deals/board"): EVERYONE,
    ("GET", "/api/v1/deals/forecast"): EVERYONE,
    ("GET", "/api/v1/deals/{deal_id}"): EVERYONE,
    ("PATCH", "/api/v1/deals/{deal_id}"): EVERYONE,
    ("POST", "/api/v1/leads/{lead_id}/deal"): EVERYONE,
    ("GET", "/api/v1/accounts"): EVERYONE,
    ("POST", "/api/v1/accounts"): EVERYONE,
    ("GET", "/api/v1/accounts/{account_id}"): EVERYONE,
    ("PATCH", "/api/v1/accounts/{account_id}"): EVERYONE,
    ("POST", "/api/v1/media"): EVERYONE,
    ("GET", "/api/v1/reports/reps"): SUPERVISORS,
    ("GET", "/api/v1/reports/reps.csv"): SUPERVISORS,
    ("GET", "/api/v1/reports/reps/{user_id}/conversations"): SUPERVISORS,
}
NOT_API = {("POST", "/hooks/{kind}/{account_id}"), ("GET", "/hooks/{kind}/{account_id}"), ("GET", "/healthz"),
           ("GET", "/readyz")}  # (/metrics: not in the API schema; tested in tests/hub/test_metrics.py; /media/{name}:
#  public, unguessable, not in it either)

# A rep on a colleague's customer, on the routes every role may use: (method, path, body).
PHONE, EMAIL = "+8613800138000", "wang.customer@example.com"
A_COLLEAGUES_RECORD = [
    ("GET", "/api/v1/contacts/{contact_id}", None),
    ("PUT", "/api/v1/contacts/{contact_id}/tags", {"tags": ["taken"]}),
    ("GET", "/api/v1/quick-replies/{reply_id}/filled?conversation_id={conversation_id}", None),
    ("GET", "/api/v1/contacts/{contact_id}/consent", None),
    ("GET", "/api/v1/conversations/{conversation_id}/messages", None),
    ("POST", "/api/v1/conversations/{conversation_id}/messages", {"text": "hello from li"}),
    ("POST", "/api/v1/conversations/{conversation_id}/resolve", None),
    ("GET", "/api/v1/inbox/{conversation_id}", None),
    ("POST", "/api/v1/conversations/{conversation_id}/notes", {"text": "mine now"}),
    ("POST", "/api/v1/conversations/{conversation_id}/assign", {"user_id": "{li}"}),
    ("GET", "/api/v1/leads/{lead_id}", None),
    ("GET", "/api/v1/tasks/{task_id}", None),
    ("GET", "/api/v1/deals/{deal_id}", None),
    ("PATCH", "/api/v1/deals/{deal_id}", {"amount": 1}),
    ("PATCH", "/api/v1/deals/{deal_id}", {"stage": "won"}),
    ("POST", "/api/v1/leads/{lead_id}/deal", {}),
    ("POST", "/api/v1/deals", {"title": "mine now", "contact_id": "{contact_id}"}),
    ("POST", "/api/v1/deals", {"title": "mine now", "account_id": "{company_id}"}),
    ("GET", "/api/v1/accounts/{company_id}", None),
    ("PATCH", "/api/v1/accounts/{company_id}", {"region": "South"}),
    ("POST", "/api/v1/accounts", {"name": "Li's Co", "parent_account_id": "{company_id}"}),
    ("PATCH", "/api/v1/tasks/{task_id}", {"done": True}),
    ("POST", "/api/v1/tasks", {"title": "call", "due_at": "2030-01-01T10:00:00+08:00", "contact_id": "{contact_id}"}),
    ("POST", "/api/v1/tasks", {"title": "call", "due_at": "2030-01-01T10:00:00+08:00",
                               "conversation_id": "{conversation_id}"}),
    ("POST", "/api/v1/tasks", {"title": "call", "due_at": "2030-01-01T10:00:00+08:00", "owner_user_id": "{wang}"}),
    ("POST", "/api/v1/leads/{lead_id}/stage", {"stage": "qualified"}),
    ("POST", "/api/v1/leads/{lead_id}/orders", {"amount": 99}),
    # Reaching the same person another way than by id.
    ("POST", "/api/v1/leads", {"contact_id": "{contact_id}", "company": "Li's Co"}),
    ("POST", "/api/v1/leads", {"name": "Someone", "phone": PHONE, "company": "Li's Co", "region": "North"}),
    ("POST", "/api/v1/leads", {"name": "Someone", "email": EMAIL, "company": "Li's Co", "region": "North"}),
    ("POST", "/api/v1/leads", {"name": "Someone", "phone": "+86 138 0013 8000", "email": "new@example.com"}),
]
# Lists a rep may read: a colleague's customer is not in them, whatever the filter.
LISTS = ["/api/v1/contacts", "/api/v1/contacts?q=138", "/api/v1/conversations",
         "/api/v1/conversations?contact_id={contact_id}", "/api/v1/leads", "/api/v1/leads?contact_id={contact_id}",
         "/api/v1/leads?q=wang.customer", "/api/v1/leads/export", "/api/v1/inbox", "/api/v1/opinion/alerts",
         "/api/v1/tasks", "/api/v1/tasks?state=all", "/api/v1/tasks?contact_id={contact_id}", "/api/v1/deals",
         "/api/v1/deals/board", "/api/v1/deals/forecast", "/api/v1/accounts", "/api/v1/accounts?q=wang",
         "/api/v1/deals?account_id={company_id}"]


async def snapshot(stack) -> dict[str, str]:
    """A digest of every table's rows (the tokens' last use aside), by table."""
    digests = {}
    async with stack.hub.sessions() as session:
        for table in Base.metadata.sorted_tables:
            columns = [c.name for c in table.columns if not (table.name == "api_token" and c.name == "last_used_at")]
            rows = (await session.execute(text(
                f"SELECT {', '.join(columns)} FROM {table.name} ORDER BY 1"))).all()
            digests[table.name] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return digests


async def settled(stack) -> bool:
    """Every customer message processed and every reply sent: nothing changes in the background."""
    async with stack.hub.sessions() as session:
        waiting = await session.scalar(select(func.count()).select_from(Message).where(
            Message.direction == Direction.INBOUND, Message.processed_at.is_(None)))
        queued = await session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.CLAIMED, OutboxStatus.SENDING])))
    return waiting == 0 and queued == 0 and await stack.delivered()


def fill(template: str, ids: dict[str, int]) -> str:
    return template.format(**{k: v for k, v in ids.items()})


def fill_body(body: dict | None, ids: dict[str, int]) -> dict | None:
    if body is None:
        return None
    return {k: (int(fill(v, ids)) if isinstance(v, str) and v.startswith("{") else v) for k, v in body.items()}


@pytest.fixture
async def office(database_url, tmp_path):
    """Li and Wang are reps; Wang's customer Eve writes on Telegram and has an open lead with Wang."""
    async with telegram_stack(database_url, tmp_path) as stack:
        await stack.customer_writes(901, "hello, I want a quote", first_name="Eve")

        async def conversation():
            async with stack.hub.sessions() as session:
                return await session.scalar(select(Conversation).where(Conversation.external_thread_id == "901"))

        found = await eventually(conversation)
        await eventually(lambda: settled(stack))  # the bot's work on Eve's message is done before the seeding
        tokens: dict[Role, str] = {}
        async with stack.hub.sessions() as session, session.begin():
            people = {}
            for name, role in (("ada", A), ("otto", O), ("mia", M), ("li", R), ("wang", R)):
                people[name] = await users.get_or_create(name, role, db_session=session)
                if name != "wang":
                    tokens[role] = await users.create_token(people[name], name="t", db_session=session)
            row = await session.get(Conversation, found.id)
            row.assignee_user_id = people["wang"].id
            for kind, value in (("phone", PHONE), ("email", EMAIL)):
                session.add(ContactKey(contact_id=row.contact_id, kind=kind, value=value, created_at=utcnow()))
            opened = await leads.open_lead(row.contact_id, source_kind="api", rules=leads.LeadRules(),
                                           owner=people["wang"], db_session=session, company="Wang's Co")
            opened.lead.owner_user_id = people["wang"].id  # the bot may have opened it already, unowned
            greeting = QuickReply(title="greeting", texts={"en": "Hi {name} of {company}"})  # shared: Li may use it
            session.add(greeting)
            chore = Task(title="Call Eve about Wang's Co", due_at=utcnow(), remind_at=None,
                         owner_user_id=people["wang"].id, contact_id=row.contact_id, origin="panel")
            session.add(chore)
            company = Account(name="Wang's Co", owner_user_id=people["wang"].id)
            session.add(company)
            await session.flush()
            session.add(AccountContact(contact_id=row.contact_id, account_id=company.id))
            bargain = Deal(title="Eve at Wang's Co", owner_user_id=people["wang"].id, contact_id=row.contact_id,
                           account_id=company.id, lead_id=opened.lead.id, amount=5000, stage="proposal",
                           products=[])
            session.add(bargain)
            await session.flush()
            ids = {"contact_id": row.contact_id, "conversation_id": row.id, "lead_id": opened.lead.id,
                   "li": people["li"].id, "ada": people["ada"].id, "wang": people["wang"].id,
                   "reply_id": greeting.id, "task_id": chore.id, "company_id": company.id, "deal_id": bargain.id}
        await eventually(lambda: settled(stack))
        stack.tokens, stack.ids = tokens, ids
        yield stack


@sqlite_only
async def test_the_matrix_covers_every_route(office):
    spec = (await office.client.get(f"{office.hub_base}/openapi.json")).json()
    operations = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    assert operations - NOT_API == set(ROUTES), "list every new route in ROUTES with the roles that may use it"


@sqlite_only
async def test_each_role_is_refused_the_routes_it_may_not_use_and_nothing_changes(office):
    ids = {**office.ids, "campaign_id": 1, "enrolment_id": 1, "account_id": office.account_id, "event_id": 1,
           "entry_id": 1, "alert_id": 1, "team_id": 1, "user_id": office.ids["ada"], "link_id": 1, "way_id": 1,
           "send_id": 1, "group_id": 1, "moment_id": 1, "name": "vip"}
    refused = 0
    for (method, template), allowed in ROUTES.items():
        for role in set(EVERYONE) - set(allowed):
            before = await snapshot(office)
            resp = await office.client.request(method, office.hub_base + fill(template, ids), json={},
                                               headers=office.api(office.tokens[role]))
            assert resp.status_code == 403, (role, method, template, resp.status_code, resp.text)
            assert f"role {role.value} may not" in resp.json()["detail"]
            assert await snapshot(office) == before, (role, method, template)
            refused += 1
    assert refused == sum(4 - len(allowed) for allowed in ROUTES.values())


@sqlite_only
async def test_a_rep_reaches_a_colleagues_customer_by_no_path(office):
    ids, li = office.ids, office.api(office.tokens[R])
    for method, template, body in A_COLLEAGUES_RECORD:
        before = await snapshot(office)
        resp = await office.client.request(method, office.hub_base + fill(template, ids), json=fill_body(body, ids),
                                           headers=li)
        assert resp.status_code in (403, 404), (method, template, body, resp.status_code, resp.text)
        assert "Wang's Co" not in resp.text and "Eve" not in resp.text
        assert await snapshot(office) == before, (method, template, body)
    for template in LISTS:
        resp = await office.client.get(office.hub_base + fill(template, ids), headers=li)
        assert resp.status_code == 200, (template, resp.text)
        assert "Eve" not in resp.text and "Wang's Co" not in resp.text and PHONE not in resp.text, template
    # The same routes work for the owner's supervisor: the refusals above are about the person, not the route.
    assert (await office.client.get(office.hub_base + fill("/api/v1/leads/{lead_id}", ids),
                                    headers=office.api(office.tokens[M]))).json()["company"] == "Wang's Co"
    filled = "/api/v1/quick-replies/{reply_id}/filled?conversation_id={conversation_id}"
    assert (await office.client.get(office.hub_base + fill(filled, ids),
                                    headers=office.api(office.tokens[M]))).json()["text"] == "Hi Eve of Wang's Co"


@sqlite_only
async def test_a_rep_adding_a_colleagues_customer_as_a_lead_is_told_whom_to_ask(office):
    resp = await office.client.post(f"{office.hub_base}/api/v1/leads", headers=office.api(office.tokens[R]),
                                    json={"name": "Someone", "phone": PHONE, "company": "Li's Co"})
    assert resp.status_code == 403
    assert "another rep's customer" in resp.json()["detail"] and "manager" in resp.json()["detail"]
    async with office.hub.sessions() as session:
        lead = await session.get(Lead, office.ids["lead_id"])
    assert (lead.company, lead.region, lead.owner_user_id) == ("Wang's Co", None, office.ids["wang"])


@sqlite_only
async def test_only_an_admin_switches_a_user_off_whatever_the_route(office):
    ids, manager = office.ids, office.api(office.tokens[M])
    handover = f"{office.hub_base}/api/v1/users/{ids['ada']}/handover"
    before = await snapshot(office)
    resp = await office.client.post(handover, headers=manager, json={"to_user_id": ids["li"], "deactivate": True})
    assert resp.status_code == 403 and "only an admin may switch a user off" in resp.json()["detail"]
    resp = await office.client.post(f"{office.hub_base}/api/v1/users/{ids['wang']}/handover", headers=manager,
                                    json={"to_user_id": ids["li"]})  # deactivate is the default
    assert resp.status_code == 403
    assert await snapshot(office) == before
    # Handing over without switching off is a manager's to do.
    resp = await office.client.post(f"{office.hub_base}/api/v1/users/{ids['wang']}/handover", headers=manager,
                                    json={"to_user_id": ids["li"], "deactivate": False})
    assert resp.status_code == 200 and resp.json() == {"reassigned": 1, "deactivated": False, "wecom_transfers": 0}
    # An admin may not switch themself off by either route.
    admin = office.api(office.tokens[A])
    resp = await office.client.post(f"{office.hub_base}/api/v1/users/{ids['ada']}/handover", headers=admin,
                                    json={"to_user_id": ids["wang"], "deactivate": True})
    assert resp.status_code == 422 and "yourself" in resp.json()["detail"]
    resp = await office.client.patch(f"{office.hub_base}/api/v1/users/{ids['ada']}", headers=admin,
                                     json={"is_active": False})
    assert resp.status_code == 422 and "yourself" in resp.json()["detail"]
    async with office.hub.sessions() as session:
        assert (await session.get(User, ids["ada"])).is_active and (await session.get(User, ids["wang"])).is_active
    resp = await office.client.post(f"{office.hub_base}/api/v1/users/{ids['wang']}/handover", headers=admin,
                                    json={"to_user_id": ids["li"], "deactivate": True})
    assert resp.status_code == 200 and resp.json()["deactivated"] is True
    assert json.dumps(resp.json())
