"""Reports per rep: the numbers for a period, each conversation number drilling down to exactly
its conversations, CSV that a spreadsheet opens safely, and only for managers (their people)
and admins."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from sqlalchemy import select

from crm_core.db import utcnow
from crm_core.leads import service as leads
from crm_core.models import Conversation, CsatSurvey, Direction, Message, Role, Team, User
from tests.admin.test_api import token_for
from tests.bots.test_rep_workspace import claimed_by
from tests.fakes.panel import signed_in
from tests.fakes.stack import workspace_stack

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def said(session, conv: int, direction: Direction, at: dt.datetime, *, author: int | None = None,
               sentiment: str | None = None) -> None:
    row = await session.get(Conversation, conv)
    session.add(Message(conversation_id=conv, channel_account_id=row.channel_account_id, direction=direction,
                        text="...", author_user_id=author, sentiment=sentiment, processed_at=at, created_at=at))


async def office(ws):
    """Li: a fast answer to Amy, a slow one (past the 30-minute SLA) to Ben, Ben unhappy, Amy's
    conversation resolved with a 5, Amy's lead won with 8,000 in orders. Wang: Cai, answered once."""
    li, wang = ws.reps["li"], ws.reps["wang"]
    amy = await claimed_by(ws, "li", 8001, "Hello", "Amy")
    ben = await claimed_by(ws, "li", 8002, "Hi there", "Ben")
    cai = await claimed_by(ws, "wang", 8003, "Good day", "Cai")
    t0 = utcnow() - dt.timedelta(days=2)
    async with ws.tg.hub.sessions() as session, session.begin():
        for conv in (amy, ben, cai):  # the stack's own messages happened today: moved out of the way
            for message in (await session.scalars(select(Message).where(Message.conversation_id == conv))).all():
                message.created_at = t0 - dt.timedelta(days=30)
        await said(session, amy, Direction.INBOUND, t0, sentiment="positive")
        await said(session, amy, Direction.OUTBOUND, t0 + dt.timedelta(minutes=2), author=li)
        await said(session, ben, Direction.INBOUND, t0, sentiment="negative")
        await said(session, ben, Direction.OUTBOUND, t0 + dt.timedelta(minutes=1))  # the bot: the clock runs on
        await said(session, ben, Direction.OUTBOUND, t0 + dt.timedelta(minutes=50), author=li)
        await said(session, cai, Direction.INBOUND, t0, sentiment="neutral")
        await said(session, cai, Direction.OUTBOUND, t0 + dt.timedelta(minutes=10), author=wang)
        amy_row = await session.get(Conversation, amy)
        amy_row.resolved_at = t0 + dt.timedelta(hours=1)
        amy_row.created_at = t0 - dt.timedelta(hours=1)
        session.add(CsatSurvey(conversation_id=amy, contact_id=amy_row.contact_id, rep_user_id=li, score=5,
                               asked_at=t0, answered_at=t0 + dt.timedelta(hours=2)))
        owner = await session.get(User, li)
        opened = await leads.open_lead(amy_row.contact_id, source_kind="api", rules=leads.LeadRules(), owner=owner,
                                       db_session=session)
        opened.lead.owner_user_id = li
        await leads.add_order(opened.lead, 8000.0, rules=leads.LeadRules(), actor=owner, db_session=session)
        await leads.set_stage(opened.lead, "won", rules=leads.LeadRules(), actor=owner, db_session=session)
    return {"amy": amy, "ben": ben, "cai": cai}


async def test_a_reps_numbers_drill_down_to_exactly_their_conversations(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg = ws.tg
        convs = await office(ws)
        base = f"{tg.hub_base}/api/v1/reports/reps"
        report = (await tg.client.get(base, headers=tg.api())).json()
        assert report["sla_minutes"] == 30
        rows = {row["name"]: row for row in report["rows"]}
        li, wang = rows["Li Lei"], rows["Wang Fang"]
        assert (li["handled"], li["sla_breaches"], li["resolved"], li["negative"], li["csat"]) == (2, 1, 1, 1, 1)
        assert li["first_response_median_s"] == 26 * 60 and li["first_response_p90_s"] == 50 * 60
        assert li["resolution_median_s"] == 2 * 3600 and li["csat_average"] == 5
        assert li["negative_share"] == 0.5 and (li["won"], li["won_amount"], li["lost"]) == (1, 8000, 0)
        assert (wang["handled"], wang["sla_breaches"], wang["negative_share"]) == (1, 0, 0)
        for metric, expected in (("handled", {convs["amy"], convs["ben"]}), ("sla_breaches", {convs["ben"]}),
                                 ("negative", {convs["ben"]}), ("resolved", {convs["amy"]}),
                                 ("csat", {convs["amy"]})):
            behind = (await tg.client.get(f"{base}/{li['user_id']}/conversations", headers=tg.api(),
                                          params={"metric": metric})).json()
            assert {b["conversation_id"] for b in behind} == expected, metric
            assert len(behind) == li[metric]
        # The dashboard's leaderboard and week-by-week trend come from the same numbers.
        board = (await tg.client.get(f"{tg.hub_base}/api/v1/dashboard?days=7", headers=tg.api())).json()
        assert [(r["name"], r["handled"]) for r in board["leaderboard"]] == [("Li Lei", 2), ("Wang Fang", 1)]
        assert len(board["weeks"]) == 12 and board["weeks"][-1].startswith(str(dt.date.today().isocalendar().year))
        # Each of the three wrote in two weeks: 32 days ago (the stack's hello, moved back) and 2 days ago.
        assert sum(board["weekly"]["customers"]) == 6 and sum(board["weekly"]["leads"]) >= 1
        # A period before it all: nothing.
        early = (await tg.client.get(base, headers=tg.api(), params={"since": "2020-01-01",
                                                                      "until": "2020-01-31"})).json()
        assert all(row["handled"] == 0 for row in early["rows"])
        for params, words in (({"since": "2026-02-01", "until": "2026-01-01"}, "after until"),
                              ({"since": "2020-01-01", "until": "2026-01-01"}, "at most 366 days"),
                              ({"since": "yesterday"}, "since")):
            resp = await tg.client.get(base, headers=tg.api(), params=params)
            assert resp.status_code == 422 and words in resp.text, resp.text


async def test_reports_are_for_managers_of_their_people_and_admins_as_safe_csv(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg = ws.tg
        await office(ws)
        base = f"{tg.hub_base}/api/v1/reports/reps"
        li_token, _ = await token_for(tg, Role.REP, "li")
        mia_token, mia = await token_for(tg, Role.MANAGER, "mia")
        async with tg.hub.sessions() as session, session.begin():
            team = Team(name="East", manager_user_id=mia, channels=[])
            session.add(team)
            await session.flush()
            (await session.get(User, ws.reps["li"])).team_id = team.id
            (await session.get(User, ws.reps["wang"])).display_name = "=HYPERLINK(\"x\")"
        assert (await tg.client.get(base, headers=tg.api(li_token))).status_code == 403
        mine = (await tg.client.get(base, headers=tg.api(mia_token))).json()
        assert sorted(r["user_id"] for r in mine["rows"]) == sorted([mia, ws.reps["li"]])
        # Team East adds up its people: Li's two conversations, one breach, one of two messages negative.
        [east] = mine["teams"]
        assert (east["name"], east["handled"], east["sla_breaches"], east["negative_share"], east["won_amount"]) == \
            ("East", 2, 1, 0.5, 8000)
        assert east["first_response_median_s"] == 26 * 60
        resp = await tg.client.get(f"{base}/{ws.reps['wang']}/conversations", headers=tg.api(mia_token),
                                   params={"metric": "handled"})
        assert resp.status_code == 404  # not one of Mia's people
        resp = await tg.client.get(f"{base}.csv", headers=tg.api(), params={"language": "zh"})
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
        assert resp.content.startswith("\ufeff".encode())
        table = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
        assert table[0][:2] == ["姓名", "处理会话"]
        names = [row[0] for row in table[1:]]
        assert "Li Lei" in names and "'=HYPERLINK(\"x\")" in names  # a formula is text


@sqlite_only
async def test_in_the_panel_a_reports_number_opens_exactly_its_conversations(database_url, tmp_path, browser):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg = ws.tg
        convs = await office(ws)
        async with signed_in(browser, tg.hub, tg.hub_base, "boss", Role.MANAGER, locale="en-GB") as page:
            await page.click("#nav a[data-page=reports]")
            li = page.locator(f"#report-rows tr[data-user='{ws.reps['li']}']")
            await li.wait_for()
            text = await li.inner_text()
            assert "26 min · p90 50 min" in text and "1 / 0" in text and "50%" in text, text
            await li.locator("button[data-metric=sla_breaches]").click()
            await page.wait_for_selector("#report-behind:not([hidden]) #behind-rows tr[data-conversation]")
            shown = await page.eval_on_selector_all("#behind-rows tr[data-conversation]",
                                                    "rows => rows.map(r => Number(r.dataset.conversation))")
            assert shown == [convs["ben"]]
            assert "Ben" in await page.inner_text("#behind-rows")
            await li.locator("button[data-metric=handled]").click()
            await page.wait_for_selector(f"#behind-rows tr[data-conversation='{convs['amy']}']")
            shown = await page.eval_on_selector_all("#behind-rows tr[data-conversation]",
                                                    "rows => rows.map(r => Number(r.dataset.conversation))")
            assert sorted(shown) == sorted([convs["amy"], convs["ben"]])
            # The leaderboard and the CSV of the same period.
            assert "Li Lei" in await page.inner_text("#leaderboard")
            href = await page.get_attribute("#report-csv", "href")
            resp = await page.request.get(href)
            assert resp.ok and "Li Lei" in (await resp.text())
            # The dashboard's leaderboard, with a tooltip per bar.
            await page.goto("/admin#/dashboard/7")
            await page.wait_for_selector("#chart-leaders svg")
            tips = await page.eval_on_selector_all("#chart-leaders title", "ts => ts.map(t => t.textContent)")
            assert any("Li Lei" in tip and "2" in tip for tip in tips), tips
            await page.goto("/admin#/reports")
            await li.wait_for()
            # An earlier period: nothing handled.
            await page.fill("#report-form input[name=since]", "2020-01-01")
            await page.fill("#report-form input[name=until]", "2020-01-31")
            await page.click("#report-form button[type=submit]")
            await li.locator("td").nth(1).filter(has_text="0").wait_for()
            assert page.script_errors == []
