"""Follow-up tasks: a rep makes one from WeCom (`/todo`, `/待办`), its reminder comes at the due
time with Done and Snooze, Done closes it; the API shows each person only the tasks they may
see; the follow-up rules make a task once per untouched lead or unanswered quote."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from crm_core.db import utcnow
from crm_core.followups import tasks
from crm_core.leads import service as leads
from crm_core.models import AuditLog, Conversation, Direction, Lead, Message, Role, Task, Team, User
from tests.admin.test_api import token_for
from tests.bots.test_rep_workspace import claimed_by
from tests.fakes.panel import signed_in
from tests.fakes.stack import workspace_stack

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def task_id_in(text: str) -> int:
    return int(re.search(r"T(\d+)", text).group(1))


@sqlite_only
async def test_a_rep_makes_a_task_from_wecom_is_reminded_when_due_and_closes_it(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg = ws.tg
        zone = ZoneInfo(tg.hub.settings.default_timezone)
        conv = await claimed_by(ws, "li", 5005, "Please send me the quote", "Fay")
        mark = len(ws.rep_inbox("li"))
        await ws.rep_writes("li", f"/todo {conv} tomorrow 10:00 call about the quote")
        made = await ws.rep_receives("li", "saved: call about the quote", after=mark)
        task_id = task_id_in(made["text"])
        tomorrow = (dt.datetime.now(zone) + dt.timedelta(days=1)).date()
        assert f"due {tomorrow:%m-%d} 10:00" in made["text"]
        # In Chinese with the time run into the words, and without a conversation.
        await ws.rep_writes("li", "/待办 后天下午3点半发合同")
        second = task_id_in((await ws.rep_receives("li", "已保存：发合同", after=mark))["text"])
        # What cannot be a task is refused with the way to write one.
        await ws.rep_writes("li", f"/todo {conv} call about the quote")
        await ws.rep_receives("li", "A task: /todo 3 tomorrow 10:00", after=mark)
        await ws.rep_writes("li", f"/todo {conv} 2020-01-01 10:00 too late")
        await ws.rep_receives("li", "has passed", after=mark)
        await ws.rep_writes("wang", f"/todo {conv} tomorrow call Fay")  # not Wang's customer
        await ws.rep_receives("wang", f"#{conv} belongs to another rep")
        await ws.rep_writes("li", "/todo")
        listing = await ws.rep_receives("li", "Your open tasks (2)", after=mark)
        assert listing["text"].index(f"T{task_id} ") < listing["text"].index(f"T{second} ")

        # A card's "Remind me tomorrow" makes one too, due at the start of the next working day.
        await tg.customer_writes(5005, "Any news?")
        card = await ws.rep_receives("li", "Any news?", after=mark)
        assert [b["key"] for b in card["card"]["button_list"]] == [f"{action}:{conv}" for action in
                                                                   ("reply", "snooze", "remind", "handover")]
        await ws.rep_clicks("li", f"remind:{conv}")
        third = task_id_in((await ws.rep_receives("li", "saved: Follow up Fay", after=mark))["text"])
        async with tg.hub.sessions() as session:
            reminded = (await session.get(Task, third)).due_at.astimezone(zone)
        assert reminded.time() == dt.time(9) and reminded.weekday() < 5
        assert 1 <= (reminded.date() - dt.datetime.now(zone).date()).days <= 3
        await ws.rep_writes("li", f"/finish T{third}")
        await ws.rep_receives("li", f"Done: T{third}", after=mark)

        # The task is in the API with its customer; Wang sees none of Li's.
        li_token, _ = await token_for(tg, Role.REP, "li")
        wang_token, _ = await token_for(tg, Role.REP, "wang")
        base = f"{tg.hub_base}/api/v1/tasks"
        [first, _] = (await tg.client.get(base, headers=tg.api(li_token))).json()
        async with tg.hub.sessions() as session:
            contact_id = await session.scalar(select(Conversation.contact_id).where(Conversation.id == conv))
        assert (first["id"], first["conversation_id"], first["contact_id"], first["origin"]) == \
            (task_id, conv, contact_id, "rep_bot")
        assert (await tg.client.get(base, headers=tg.api(wang_token))).json() == []
        assert (await tg.client.get(f"{base}/{task_id}", headers=tg.api(wang_token))).status_code == 404

        # Nothing before the due time; at it, one reminder with Done and Snooze.
        due = dt.datetime.fromisoformat(first["due_at"])
        assert await tg.hub.task_reminders.run_once(now=due - dt.timedelta(minutes=1)) == 0
        mark = len(ws.rep_inbox("li"))
        assert await tg.hub.task_reminders.run_once(now=due + dt.timedelta(seconds=30)) == 1
        assert await tg.hub.task_reminders.run_once(now=due + dt.timedelta(minutes=2)) == 0  # once
        reminder = await ws.rep_receives("li", f"Task T{task_id}: call about the quote", after=mark)
        assert "Customer: Fay" in reminder["text"]
        assert [b["key"] for b in reminder["card"]["button_list"]] == [f"task_done:{task_id}",
                                                                       f"task_snooze:{task_id}"]
        # Snooze: again an hour later. Wang cannot touch it.
        await ws.rep_clicks("li", f"task_snooze:{task_id}")
        await ws.rep_receives("li", f"about T{task_id} again at", after=mark)
        await ws.rep_writes("wang", f"/finish T{task_id}")
        await ws.rep_receives("wang", f"There is no task T{task_id} of yours")
        async with tg.hub.sessions() as session:
            again = (await session.get(Task, task_id)).remind_at
        assert dt.timedelta(minutes=59) < again - utcnow() <= dt.timedelta(hours=1)
        mark = len(ws.rep_inbox("li"))
        assert await tg.hub.task_reminders.run_once(now=again + dt.timedelta(seconds=1)) == 1
        await ws.rep_receives("li", f"Task T{task_id}:", after=mark)
        # Done closes it, once.
        await ws.rep_clicks("li", f"task_done:{task_id}")
        await ws.rep_receives("li", f"Done: T{task_id} call about the quote", after=mark)
        await ws.rep_writes("li", f"/finish T{task_id}")
        await ws.rep_receives("li", f"T{task_id} was already done", after=mark)
        closed = (await tg.client.get(f"{base}/{task_id}", headers=tg.api(li_token))).json()
        assert closed["done_at"] is not None and closed["remind_at"] is None
        await ws.rep_writes("li", f"/完成 T{second}")
        await ws.rep_receives("li", f"已完成：T{second} 发合同", after=mark)
        await ws.rep_writes("li", "/待办")
        await ws.rep_receives("li", "没有未完成的待办", after=mark)
        async with tg.hub.sessions() as session:
            actions = (await session.scalars(select(AuditLog.action).where(AuditLog.entity_type == "task")
                                             .order_by(AuditLog.id))).all()
        assert actions == ["task.create", "task.create", "task.create", "task.done", "task.done", "task.done"]


@sqlite_only
async def test_the_morning_digest_lists_todays_and_overdue_tasks(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg = ws.tg
        async with tg.hub.sessions() as session, session.begin():
            li = await session.get(User, ws.reps["li"])
            # Noon today where the digest counts days: "in five minutes" is still today whatever
            # the hour the test runs at (it failed in the five minutes before midnight there).
            zone = tg.hub.digest.zone
            now = dt.datetime.combine(utcnow().astimezone(zone).date(), dt.time(12), tzinfo=zone)
            for title, due in (("send the brochure", now - dt.timedelta(days=1)),
                               ("call Gao", now + dt.timedelta(minutes=5)),
                               ("next month's review", now + dt.timedelta(days=30))):
                await tasks.create(title=title, due_at=due, owner=li, actor=li, origin="panel", db_session=session)
        assert await tg.hub.digest.run_once(now) >= 1
        digest = await ws.rep_receives("li", "send the brochure")
        assert "call Gao" in digest["text"] and "next month's review" not in digest["text"]
        assert re.search(r"(2 \(1 overdue\)|2 项（逾期 1 项）)", digest["text"]), digest["text"]


async def test_tasks_through_the_api_follow_who_may_see_and_give_them(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg = ws.tg
        base = f"{tg.hub_base}/api/v1/tasks"
        li_token, li = await token_for(tg, Role.REP, "li")
        wang_token, wang = await token_for(tg, Role.REP, "wang")
        boss_token, boss = await token_for(tg, Role.MANAGER, "mia")  # manages no one yet
        async with tg.hub.sessions() as session, session.begin():
            team = Team(name="North", manager_user_id=boss, channels=[])
            session.add(team)
            await session.flush()
            (await session.get(User, li)).team_id = team.id  # Li is in Mia's team, Wang is not
        due = "2031-03-02T10:00:00+08:00"
        for body, words in (({"title": " ", "due_at": due}, "say what is to be done"),
                            ({"title": "call", "due_at": "2031-03-02T10:00:00"}, "timezone"),
                            ({"title": "call"}, "due_at"),
                            ({"title": "call", "due_at": due, "owner_user_id": 999999}, "there is no user 999999")):
            resp = await tg.client.post(base, headers=tg.api(boss_token), json=body)
            assert resp.status_code == 422 and words in resp.text, (body, resp.text)
        resp = await tg.client.post(base, headers=tg.api(li_token),
                                    json={"title": "for Wang", "due_at": due, "owner_user_id": wang})
        assert resp.status_code == 403 and "reps keep their own tasks" in resp.text
        for_li = await tg.client.post(base, headers=tg.api(boss_token),
                                      json={"title": "call the distributor", "due_at": due, "owner_user_id": li})
        assert for_li.status_code == 201, for_li.text
        assert (await tg.client.post(base, headers=tg.api(boss_token),
                                     json={"title": "x", "due_at": due, "owner_user_id": wang})).status_code == 403
        late = await tg.client.post(base, headers=tg.api(wang_token),
                                    json={"title": "overdue one", "due_at": "2020-01-01T09:00:00+00:00"})
        assert late.json()["overdue"] is True
        titles = lambda resp: [t["title"] for t in resp.json()]  # noqa: E731
        assert titles(await tg.client.get(base, headers=tg.api(li_token))) == ["call the distributor"]
        assert titles(await tg.client.get(base, headers=tg.api(boss_token))) == ["call the distributor"]
        assert titles(await tg.client.get(base, headers=tg.api(), params={"state": "overdue"})) == ["overdue one"]
        # Counts per rep: for supervisors, each their own people.
        assert (await tg.client.get(f"{base}/by-owner", headers=tg.api(li_token))).status_code == 403
        counts = (await tg.client.get(f"{base}/by-owner", headers=tg.api())).json()
        assert [(c["owner_user_id"], c["open"], c["overdue"]) for c in counts] == [(wang, 1, 1), (li, 1, 0)]
        assert [c["owner_user_id"] for c in (await tg.client.get(f"{base}/by-owner",
                                                                  headers=tg.api(boss_token))).json()] == [li]
        # Changing: done, open again, moved; a rep may not give theirs away.
        task_id = for_li.json()["id"]
        resp = await tg.client.patch(f"{base}/{task_id}", headers=tg.api(li_token), json={"done": True})
        assert resp.json()["done_at"] is not None and resp.json()["remind_at"] is None
        resp = await tg.client.patch(f"{base}/{task_id}", headers=tg.api(li_token),
                                     json={"done": False, "due_at": "2031-04-01T09:00:00+08:00"})
        assert resp.json()["done_at"] is None
        assert dt.datetime.fromisoformat(resp.json()["remind_at"]) == dt.datetime(2031, 4, 1, 1, tzinfo=dt.UTC)
        resp = await tg.client.patch(f"{base}/{task_id}", headers=tg.api(li_token), json={"owner_user_id": wang})
        assert resp.status_code == 403
        assert (await tg.client.patch(f"{base}/{task_id}", headers=tg.api(wang_token),
                                      json={"done": True})).status_code == 404


async def test_follow_up_rules_make_a_task_once_per_untouched_lead_and_unanswered_quote(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg = ws.tg
        quiet = await claimed_by(ws, "li", 6006, "I might buy later", "Gus")
        quoted = await claimed_by(ws, "li", 6007, "How much for 20 seats?", "Hana")
        answered = await claimed_by(ws, "li", 6008, "Quote please", "Ivo")
        now = utcnow()
        async with tg.hub.sessions() as session, session.begin():
            li = await session.get(User, ws.reps["li"])
            for conv, stage in ((quiet, "contacted"), (quoted, "proposal"), (answered, "proposal")):
                row = await session.get(Conversation, conv)
                opened = await leads.open_lead(row.contact_id, source_kind="api", rules=leads.LeadRules(),
                                               owner=li, db_session=session)
                opened.lead.owner_user_id, opened.lead.stage = li.id, stage
                opened.lead.created_at = now - dt.timedelta(days=10)
                for message in (await session.scalars(select(Message).where(Message.conversation_id == conv))).all():
                    message.created_at = now - dt.timedelta(days=10)
                if stage == "proposal":  # the quotes went out 3 and 2.5 days ago
                    session.add(Message(conversation_id=conv, channel_account_id=row.channel_account_id,
                                        direction=Direction.OUTBOUND, text="20 seats: 2,000 CNY",
                                        author_user_id=li.id, processed_at=now,
                                        created_at=now - dt.timedelta(days=3 if conv == quoted else 2.5)))
            row = await session.get(Conversation, answered)
            session.add(Message(conversation_id=answered, channel_account_id=row.channel_account_id,
                                direction=Direction.INBOUND, text="Thanks, thinking", processed_at=now,
                                created_at=now - dt.timedelta(days=2)))
        assert await tg.hub.follow_up_rules() == 2
        assert await tg.hub.follow_up_rules() == 0  # once per occasion
        async with tg.hub.sessions() as session:
            made = (await session.execute(select(Task.origin, Task.title, Lead.stage, Task.owner_user_id)
                                          .join(Lead, Lead.id == Task.lead_id).order_by(Task.id))).all()
            due = (await session.scalars(select(Task.due_at))).all()
        assert sorted((origin, stage) for origin, _, stage, _ in made) == [("quote_unanswered", "proposal"),
                                                                           ("untouched_lead", "contacted")]
        assert all(owner == ws.reps["li"] for *_, owner in made)
        titles = {origin: title for origin, title, *_ in made}  # in Li's language (Chinese: his first words)
        assert "Gus" in titles["untouched_lead"] and "10" in titles["untouched_lead"], titles
        assert "Hana" in titles["quote_unanswered"] and "3" in titles["quote_unanswered"], titles
        zone = ZoneInfo(tg.hub.settings.default_timezone)
        for moment in due:  # inside the working day
            local = moment.astimezone(zone)
            assert local.weekday() < 5 and dt.time(9) <= local.time() < dt.time(18), local
        # Done (the rep followed up some other way): no second task for the same occasion, and
        # the silence counts again from then.
        async with tg.hub.sessions() as session, session.begin():
            for task in (await session.scalars(select(Task))).all():
                task.done_at = now
        assert await tg.hub.follow_up_rules() == 0
        async with tg.hub.sessions() as session, session.begin():
            for task in (await session.scalars(select(Task))).all():
                task.done_at = now - dt.timedelta(days=4)
        assert await tg.hub.follow_up_rules() == 2  # Gus and Hana: untouched for 4 days since


@sqlite_only
async def test_a_todo_from_wecom_shows_in_the_panel_is_reminded_when_due_and_done_closes_it(database_url, tmp_path,
                                                                                           browser):
    import time_machine

    async with workspace_stack(database_url, tmp_path) as ws:
        tg = ws.tg
        conv = await claimed_by(ws, "li", 7007, "Can you call me about the price?", "Jun")
        await ws.rep_writes("li", f"/todo {conv} tomorrow 10:00 call Jun about the price")
        task_id = task_id_in((await ws.rep_receives("li", "saved: call Jun about the price"))["text"])
        async with signed_in(browser, tg.hub, tg.hub_base, "li", Role.REP) as page:
            await page.click("#nav a[data-page=tasks]")
            row = page.locator(f"#task-rows tr[data-task='{task_id}']")
            await row.wait_for()
            text = await row.inner_text()
            assert "call Jun about the price" in text and "Jun" in text and f"#{conv}" in text, text
            assert "Rep in chat app" in text or "销售在聊天工具中" in text  # the panel's language is Li's
            # One made in the panel, for the same customer, due in an hour.
            form = page.locator("#task-form")
            await form.locator("input[name=title]").fill("发送合同草稿")
            soon = (dt.datetime.now() + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
            await form.locator("input[name=due]").fill(soon)
            await form.locator("button[type=submit]").click()
            await page.wait_for_selector("#task-rows tr:has-text('发送合同草稿')")
            # The customer's page lists the tasks about them.
            await row.locator("a", has_text="Jun").click()
            await page.wait_for_selector("#contact-tasks:has-text('call Jun about the price')")
            assert page.script_errors == []

        async with tg.hub.sessions() as session:
            due = (await session.get(Task, task_id)).due_at
        # The next morning at ten, the reminder reaches Li's WeCom; Done there closes the task.
        with time_machine.travel(due + dt.timedelta(minutes=1), tick=True):
            mark = len(ws.rep_inbox("li"))
            assert await tg.hub.task_reminders.run_once() == 2  # the panel's task, an hour overdue, too
            reminder = await ws.rep_receives("li", f"Task T{task_id}: call Jun about the price", after=mark)
            assert "Customer: Jun" in reminder["text"]
            await ws.rep_clicks("li", f"task_done:{task_id}")
            await ws.rep_receives("li", f"Done: T{task_id}", after=mark)

        async with signed_in(browser, tg.hub, tg.hub_base, "li", Role.REP) as page:
            await page.goto("/admin#/tasks")
            await page.wait_for_selector("#task-rows tr[data-task]")
            rows = await page.inner_text("#task-rows")
            assert "发送合同草稿" in rows and "call Jun about the price" not in rows  # open ones: the other only
            await page.select_option("#task-state", "done")
            await page.wait_for_selector(f"#task-rows tr[data-task='{task_id}'] .badge.ok")
            # The other is done from the panel.
            await page.select_option("#task-state", "open")
            await page.click("#task-rows button[data-done]")
            await page.wait_for_selector("#task-rows td.muted")
            assert page.script_errors == []
        # Their manager sees Li's week: nothing open, two done.
        async with signed_in(browser, tg.hub, tg.hub_base, "boss", Role.MANAGER, locale="en-GB") as page:
            await page.goto("/admin#/tasks")
            owners = page.locator("#task-owners tr[data-owner]")
            await owners.first.wait_for()
            assert (await owners.first.inner_text()).split("\t") == ["Li Lei", "0", "0", "2"]
            assert page.script_errors == []
