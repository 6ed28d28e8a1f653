"""The admin panel in a real headless Chromium (Playwright driving the system browser):
sign in, add a channel, build and start a campaign, reply from the inbox, switch the
language, and a role refused. Screenshots go to $SCRM_SCREENSHOTS_DIR when it is set
(docs/panel.md's come from `SCRM_SCREENSHOTS_DIR=docs/screenshots ./dev test tests/admin/test_panel_browser.py`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select

from channels.simulators import wecom_kf as kf_sim
from channels.simulators.wecom import WeComSimulator
from crm_core import accounts
from crm_core.leads.service import ScoringRule
from crm_core.models import (
    Campaign,
    CampaignStatus,
    CampaignStep,
    ChannelAccount,
    ConsentEvent,
    Contact,
    ContactTag,
    Conversation,
    Lead,
    Role,
    Team,
    User,
)
from crm_core.people import users, web_auth
from hub.serving import running
from tests.fakes.stack import eventually, telegram_stack

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
PASSWORD = "panel password 1"


@pytest.fixture
async def stack(database_url, tmp_path):
    async with telegram_stack(database_url, tmp_path, marketing_quiet_hours="") as stack:
        async with stack.hub.sessions() as session, session.begin():
            for username, role in (("ada", Role.ADMIN), ("rita", Role.REP)):
                user = await users.get_or_create(username, role, db_session=session, display_name=username.title())
                await web_auth.set_password(user, PASSWORD, actor=None, db_session=session)
        yield stack


async def page_for(browser, stack, *, width: int = 1280, height: int = 860, locale: str = "en-GB"):
    context = await browser.new_context(viewport={"width": width, "height": height}, locale=locale,
                                        base_url=stack.hub_base)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.script_errors = errors
    return page


async def sign_in(page, username: str, password: str = PASSWORD) -> None:
    await page.goto("/admin")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#nav a")


async def shot(page, name: str) -> None:
    target = os.environ.get("SCRM_SCREENSHOTS_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=False)


async def test_an_admin_signs_in_adds_a_channel_starts_a_campaign_and_imports_leads(stack, browser, tmp_path):
    page = await page_for(browser, stack)
    await stack.customer_writes(901, "Hello, how much is the Pro plan?", first_name="Wang Wei")

    async def lead_opened() -> bool:  # the worker has read the buying signal (on a busy machine, seconds)
        return bool((await stack.client.get(f"{stack.hub_base}/api/v1/leads", headers=stack.api())).json())
    await eventually(lead_opened, timeout=30)
    await page.goto("/admin")
    assert page.url.endswith("/admin/login")
    await shot(page, "sign-in")
    await sign_in(page, "ada")
    await page.wait_for_selector("#chart-messages svg")
    await shot(page, "dashboard")
    await page.select_option("#dashboard-range", "30")
    await page.wait_for_selector("#dashboard-range option[value='30'][selected]", state="attached")
    assert page.url.endswith("#/dashboard/30")
    assert "1\nleads in the pipeline" in await page.inner_text("#dashboard-tiles")

    # A second Telegram bot, tested first, then saved: the webhook URL to paste, the token gone from the page.
    second = stack.simulator.create_bot(username="sales_bot")
    await page.click("#nav a[data-page=channels]")
    await page.select_option("#channel-kind", "telegram")
    await page.fill("input[name=name]", "Sales bot")
    await page.fill("input[name=cred_bot_token]", second.token)
    await page.fill("input[name=api_base]", stack.sim_base)
    await page.click("#test-connection")
    await page.wait_for_selector("#connection-ok")
    assert "@sales_bot" in await page.inner_text("#connection-ok")
    await page.click("#save-channel")
    url = await page.wait_for_selector("#new-webhook-url")
    webhook = await url.get_attribute("value")
    assert webhook.startswith(f"{stack.hub.settings.base_url}/hooks/telegram/")
    assert second.webhook_url == webhook  # registered with the platform
    assert second.token not in await page.content()
    await shot(page, "channels")
    # A WeCom account's archive keys are one JSON field: what is not JSON is refused, the field named.
    await page.select_option("#channel-kind", "wecom")
    await page.fill("textarea[name=cred_archive_private_keys]", "-----BEGIN PRIVATE KEY-----")
    await page.click("#test-connection")
    await page.wait_for_selector(".toast:has-text('archive_private_keys: not valid JSON')")
    await page.select_option("#channel-kind", "telegram")

    # Later: the saved account tested again, its rotated token replaced, switched off.
    async with stack.hub.sessions() as session:
        saved = await session.scalar(select(ChannelAccount).where(ChannelAccount.name == "Sales bot"))
    await page.click(f"[data-test='{saved.id}']")  # listed at once
    await page.wait_for_selector(".toast:has-text('@sales_bot')")
    rotated = stack.simulator.create_bot(username="sales_bot", token=f"{second.id}:{'n' * 35}")
    await page.click(f"[data-edit-account='{saved.id}']")
    await page.fill("#account-form input[name=cred_bot_token]", rotated.token)
    await page.click("#save-account")
    await page.wait_for_selector("#account-form", state="detached")
    async with stack.hub.sessions() as session:
        saved = await session.get(ChannelAccount, saved.id)
    assert stack.hub.cipher.decrypt(saved.credentials_encrypted)["bot_token"] == rotated.token
    assert rotated.webhook_url == webhook and rotated.token not in await page.content()
    page.once("dialog", lambda dialog: dialog.accept())
    await page.click(f"[data-toggle='{saved.id}']")
    await page.wait_for_selector(f"tr[data-account='{saved.id}'] .badge.bad")

    # A campaign: audience preview with its count, a step per language, created, then started.
    made = await stack.client.post(f"{stack.hub_base}/api/v1/quick-replies", headers=stack.api(), json={
        "title": "Spring catalogue", "shortcut": "spring", "link_url": "https://shop.example.cn/spring",
        "texts": {"zh": "{name}您好，春季目录：{link}", "en": "Hi {name} of {company}, the spring catalogue: {link}"}})
    assert made.status_code == 201, made.text
    await page.goto("/admin#/campaigns/new")
    await page.fill("input[name=name]", "Spring offer")
    await page.uncheck("input[name=consent]")
    await page.fill("#steps textarea[name=template_en]", "Hi {name}, spring prices are in.")
    await page.select_option("#steps .wording-kind", "email")
    await page.click("#steps .add-wording")
    await page.fill("#steps .wording[data-kind=email] textarea[name=wording_en]", "Dear {name},\n\nour spring prices are in.")
    await page.fill("input[name=cap_messages]", "2")
    await page.fill("input[name=cap_days]", "7")
    await page.fill("input[name=cap_per_day]", "500")
    # A second step, and a branch: without the vip tag, step 1 gives way to step 2, which waits for no reply.
    await page.click("#add-step")
    steps = page.locator("#steps .step")
    await steps.nth(0).locator("select[name=condition]").select_option("tag")
    await steps.nth(0).locator("input[name=condition_value]").fill("vip")
    await steps.nth(0).locator("select[name=else_position]").select_option("2")
    await steps.nth(1).locator("select[name=condition]").select_option("not_replied")
    # The second step's words start from a quick reply: its link written in, {company} left out.
    await steps.nth(1).locator("select.from-quick").select_option(label="spring · Spring catalogue")
    assert await steps.nth(1).locator("textarea[name=template_zh]").input_value() == \
        "{name}您好，春季目录：https://shop.example.cn/spring"
    assert await steps.nth(1).locator("textarea[name=template_en]").input_value() == \
        "Hi {name} of , the spring catalogue: https://shop.example.cn/spring"
    await page.click("#preview")
    count = await page.wait_for_selector("#audience-count")
    assert "1 contact matches now" in await count.inner_text()
    preview = await page.inner_text("#preview-out")
    assert "Hi Wang Wei, spring prices are in." in preview and "email · en: Dear Wang Wei," in preview
    await shot(page, "campaign-builder")
    await page.click("#create-campaign")
    await page.wait_for_selector("[data-start]")
    await page.click("[data-start]")
    await page.wait_for_selector("[data-status=active]")
    async with stack.hub.sessions() as session:
        campaign = await session.scalar(select(Campaign).where(Campaign.name == "Spring offer"))
        step, second = (await session.scalars(select(CampaignStep).where(CampaignStep.campaign_id == campaign.id)
                                              .order_by(CampaignStep.position))).all()
    assert campaign.caps == {"per_contact": {"messages": 2, "days": 7}, "per_day": 500}
    assert step.channel_templates == {"email": {"en": "Dear {name},\n\nour spring prices are in."}}
    assert (step.condition, step.else_position, second.condition, second.delay_minutes) == \
        ({"tag": "vip"}, 2, {"replied": False}, 1440)
    await page.click(f"a[href='#/campaigns/{campaign.id}']")
    assert "2 per person in 7 days · 500 a day" in await (await page.wait_for_selector("#campaign-caps")).inner_text()
    await page.wait_for_selector("#enrolment-rows tr a")  # the customer, enrolled
    await page.click("[data-set-status=paused]")
    await page.wait_for_selector("#campaign-status[data-status=paused]")
    await page.click("[data-set-status=active]")
    await page.wait_for_selector("#campaign-status[data-status=active]")
    # A started campaign is copied to change it: the builder opens on the copy, filled in.
    await page.click("#copy-campaign")
    await page.wait_for_selector("#main h1:has-text('Spring offer (copy)')")
    assert await page.input_value("#campaign-form input[name=name]") == "Spring offer (copy)"
    assert await page.input_value("input[name=cap_per_day]") == "500"
    assert await page.input_value("#steps .step >> nth=0 >> select[name=else_position]") == "2"
    assert "our spring prices are in." in await page.input_value(
        "#steps .wording[data-kind=email] textarea[name=wording_en]")
    await page.fill("#campaign-form input[name=name]", "Spring offer, round two")
    await page.click("#create-campaign")
    await page.wait_for_selector("#campaign-status[data-status=draft]")
    async with stack.hub.sessions() as session:
        copied = await session.scalar(select(Campaign).where(Campaign.name == "Spring offer, round two"))
        copied_steps = (await session.scalars(select(CampaignStep).where(CampaignStep.campaign_id == copied.id)
                                              .order_by(CampaignStep.position))).all()
    assert copied.caps == campaign.caps and [x.condition for x in copied_steps] == [{"tag": "vip"}, {"replied": False}]
    assert copied_steps[0].channel_templates == step.channel_templates and copied_steps[0].else_position == 2

    # A lead import with its progress and its error report.
    sheet = tmp_path / "expo-leads.csv"
    sheet.write_text("姓名,公司,手机,邮箱\n张伟,星辰科技,13800138000,\n李娜,云帆贸易,,lina@yunfan.example\n"
                     "王芳,海风物流,12345,\n", encoding="utf-8")
    await page.goto("/admin#/leads")
    await page.set_input_files("#import-form input[type=file]", str(sheet))
    await page.click("#start-import")
    await page.wait_for_selector("#import-summary")
    assert await page.inner_text("#import-count") == "3 of 3 rows"
    assert await page.inner_text("#import-summary dd[data-key=leads_opened]") == "2"
    rejected = await page.inner_text("#rejected-rows")
    assert "4" in rejected and "王芳" in rejected
    assert "12345 is not a phone number" in rejected
    assert await page.get_attribute("#rejected-download", "href")
    await shot(page, "lead-import")

    # The list: names and owners; a stage moved from it; an export of what it shows.
    async with stack.hub.sessions() as session:
        imported = await session.scalar(select(Lead).join(Contact, Contact.id == Lead.contact_id)
                                        .where(Contact.display_name == "张伟"))
    await page.wait_for_selector("#lead-rows tr:has-text('张伟')")
    await page.select_option(f"select.lead-stage[data-lead='{imported.id}']", "contacted")

    async def moved():
        async with stack.hub.sessions() as session:
            return (await session.get(Lead, imported.id)).stage == "contacted"
    await eventually(moved)
    await page.select_option("#lead-filters select[name=stage]", "contacted")
    await page.wait_for_selector("#lead-rows tr:has-text('李娜')", state="detached")
    assert "张伟" in await page.inner_text("#lead-rows")
    href = await page.get_attribute("#export-leads", "href")
    assert href == "/api/v1/leads/export?status=open&stage=contacted&language=en"
    exported = await (await page.request.get(href)).text()
    assert "张伟" in exported and "李娜" not in exported

    # The imported 张伟 is the Telegram customer: merged by hand, after a preview.
    async with stack.hub.sessions() as session:
        names = dict((await session.execute(select(Contact.display_name, Contact.id))).all())
    await page.goto(f"/admin#/contacts/{names['Wang Wei']}")
    await page.fill("#merge-form input[name=source]", str(names["张伟"]))
    await page.click("#merge-form button[type=submit]")
    await page.wait_for_selector("#merge-moves")
    assert "Phones and emails: 1" in await page.inner_text("#merge-moves")
    assert "stays open" in await page.inner_text("#merge-conflicts")
    await shot(page, "merge-preview")
    await page.click("#confirm-merge")

    async def merged():
        async with stack.hub.sessions() as session:
            return (await session.get(Contact, names["张伟"])).merged_into_id == names["Wang Wei"]
    await eventually(merged)

    async def started():
        async with stack.hub.sessions() as session:
            return await session.scalar(select(Campaign.status).where(Campaign.name == "Spring offer")) \
                == CampaignStatus.ACTIVE
    await eventually(started)
    assert page.script_errors == []


async def test_a_reply_from_the_inbox_reaches_the_customer_and_new_messages_appear_live(stack, browser):
    page = await page_for(browser, stack)
    await stack.customer_writes(902, "我的订单还没到，能帮我查一下吗？", first_name="李娜")
    await sign_in(page, "ada")
    await page.click("#nav a[data-page=inbox]")
    item = await page.wait_for_selector(".inbox-item:has-text('李娜')")
    await item.click()
    await page.wait_for_selector("#reply-form")
    assert await page.inner_text("#reply-on") == "Telegram · Test bot"  # the channels she may be answered on
    await page.fill("#reply-form textarea", "李女士您好，您的订单明天送达。")
    await page.click("#send-reply")
    await page.wait_for_selector("#toast.show:has-text('Queued')")  # not "sent" before it is

    async def delivered():
        return any("明天送达" in (m.get("text") or "") for m in stack.chat(902) if m["from"] == "bot")
    await eventually(delivered)
    # The thread follows the reply until it settles: in the customer's chat.
    line = await page.wait_for_selector(".msg:has-text('明天送达') .delivery[data-state=delivered]", timeout=15_000)
    assert await line.inner_text() == "✓ Delivered"
    # Telegram refuses the next one: the thread says so with Telegram's reason, and nothing says sent.
    resp = await stack.client.post(f"{stack.sim_base}/_sim/bots/{stack.bot.id}/faults", json={
        "error_code": 400, "description": "Bad Request: message is too long", "chat_id": 902})
    assert resp.status_code == 200
    await page.fill("#reply-form textarea", "附上完整的物流单号清单")
    await page.click("#send-reply")
    line = await page.wait_for_selector(".msg:has-text('物流单号') .delivery[data-state=failed]", timeout=15_000)
    assert "Failed: Telegram rejected the message: Bad Request: message is too long" in await line.inner_text()
    assert "物流单号" not in " ".join(stack.bot_lines(902))
    await page.fill("#note-form textarea", "VIP: call before delivery")
    await page.click("#note-form button[type=submit]")
    await page.wait_for_selector(".note:has-text('VIP: call before delivery')")
    # The customer writes again: it shows in the open thread without a reload.
    await stack.customer_writes(902, "好的，谢谢！", first_name="李娜")
    await page.wait_for_selector(".msg:has-text('好的，谢谢')", timeout=15_000)
    await shot(page, "inbox")

    phone = await page_for(browser, stack, width=390, height=844)
    await sign_in(phone, "ada")
    await phone.goto("/admin#/inbox")
    await phone.wait_for_selector(".inbox-item")
    assert await phone.is_visible("#menu-toggle")
    await shot(phone, "inbox-phone")
    assert page.script_errors == [] and phone.script_errors == []


async def test_settings_change_live_the_language_switches_and_a_rep_is_refused(stack, browser):
    page = await page_for(browser, stack)
    await sign_in(page, "ada")
    # Settings while the hub runs: the SLA and a keyword rule, in force at once.
    await page.goto("/admin#/settings")
    await page.fill("input[name=sla_first_response_minutes]", "15")
    await page.fill("textarea[name=opinion_products]", "X200: x200, X200充电器")
    await page.fill("input[name=lead_stages]", "new,contacted,demo,won,lost")
    # The scoring rules, a row per event: an order worth 45, every time, at most 90 per lead.
    order = page.locator("table.scoring tr[data-event=order]")
    await order.locator("input[name=points]").fill("45")
    await order.locator("input[name=cap]").fill("90")
    await page.click("#save-settings")
    await page.wait_for_selector("label:has(input[name=sla_first_response_minutes]) .badge")
    assert stack.hub.settings.lead_rules.stages == ("new", "contacted", "demo", "won", "lost")
    assert stack.hub.settings.lead_rules.rule("order") == ScoringRule("order", 45, repeatable=True, cap=90)
    assert stack.hub.settings.lead_rules.rule("message").delta == 2  # the others as they were
    assert stack.hub.settings.follow_up_rules.quote_stage == "demo"  # the pipeline's last open stage
    assert stack.hub.sla.first_response.total_seconds() == 15 * 60
    assert stack.hub.opinion.products.products("X200充电器坏了") == ["X200"]
    await shot(page, "settings")
    await page.goto("/admin#/dashboard")
    assert await page.inner_text("#nav a[data-page=inbox]") == "Inbox"
    await page.click("#language-switch")
    await page.wait_for_selector("#nav a[data-page=inbox]:text-is('会话收件箱')")
    assert await page.inner_text("#logout") == "退出登录"
    await page.reload()  # the choice is kept
    assert await page.inner_text("#nav a[data-page=dashboard]") == "仪表盘"

    rep = await page_for(browser, stack)
    await sign_in(rep, "rita")
    pages = await rep.eval_on_selector_all("#nav a", "links => links.map(a => a.dataset.page)")
    assert "channels" not in pages and "audit" not in pages and "settings" not in pages and "inbox" in pages
    await rep.goto("/admin#/channels")
    refused = await rep.wait_for_selector("#refused")
    assert "may not open" in await refused.inner_text()
    # Not just hidden: the API refuses the rep too.
    status = await rep.evaluate("fetch('/api/v1/channel-accounts').then(r => r.status)")
    assert status == 403
    await shot(rep, "refused")


async def test_every_page_opens_in_both_languages_and_the_forms_save(stack, browser):
    await stack.customer_writes(903, "Can I get an invoice?", first_name="Olu")
    page = await page_for(browser, stack)
    await sign_in(page, "ada")
    links = await page.eval_on_selector_all("#nav a", "links => links.map(a => a.dataset.page)")
    assert len(links) == 19
    for language in ("en", "zh"):
        for name in [*links, "account", "campaigns/new"]:
            await page.goto(f"/admin#/{name}")
            await page.wait_for_selector("#main h1")
            assert not await page.query_selector("#main .error"), f"{language} {name}: {await page.inner_text('#main')}"
            # Markup is drawn, never shown as text (escaped twice), and text is never drawn as markup.
            shown = await page.inner_text("#main")
            assert "<" not in shown and "&lt;" not in shown and "&amp;" not in shown, f"{language} {name}: {shown}"
        if language == "en":
            await page.click("#language-switch")
            await page.wait_for_selector("#nav a[data-page=inbox]:text-is('会话收件箱')")

    # The knowledge base form, then "try a question".
    await page.goto("/admin#/faq")
    await page.fill("#faq-form textarea[name=q_en]", "What are your opening hours?")
    await page.fill("#faq-form textarea[name=a_en]", "9:00 to 18:00, Monday to Friday.")
    await page.click("#faq-form button[type=submit]")
    await page.wait_for_selector("td:has-text('What are your opening hours?')")
    await page.fill("#faq-try input[name=q]", "when are you open")
    await page.click("#faq-try button[type=submit]")
    await page.wait_for_selector("#faq-try-out div")

    # A new rep with a password signs in with it.
    await page.goto("/admin#/users")
    await page.fill("#user-form input[name=username]", "newrep")
    await page.fill("#user-form input[name=password]", "a long first password")
    await page.click("#user-form button[type=submit]")
    await page.wait_for_selector("td:has-text('newrep')")
    other = await page_for(browser, stack)
    await sign_in(other, "newrep", "a long first password")
    assert await other.is_visible("#nav a[data-page=inbox]")

    # A team that takes the Telegram leads; the new rep joins it, with a territory.
    await page.goto("/admin#/users")
    await page.fill("#team-form input[name=name]", "上海团队")
    await page.check("#team-form input[name=channel][value=telegram]")
    await page.click("#save-team")
    await page.wait_for_selector("#teams-table td:has-text('上海团队')")
    async with stack.hub.sessions() as session:
        newrep = await session.scalar(select(User).where(User.username == "newrep"))
    await page.click(f"[data-edit='{newrep.id}']")
    await page.select_option("#edit-user-form select[name=team]", label="上海团队")
    await page.fill("#edit-user-form input[name=regions]", "华东, East China")
    await page.click("#save-user")
    await page.wait_for_selector(f"tr[data-user='{newrep.id}'] td:has-text('上海团队')")
    async with stack.hub.sessions() as session:
        team = await session.scalar(select(Team))
        newrep = await session.get(User, newrep.id)
    assert (team.name, team.channels, newrep.team_id) == ("上海团队", ["telegram"], team.id)
    assert newrep.territory == {"regions": ["华东", "East China"], "industries": []}
    await shot(page, "users-teams")

    # Rita leaves: switched off, her customer handed to the new rep with the conversation.
    async with stack.hub.sessions() as session, session.begin():
        rita = await session.scalar(select(User).where(User.username == "rita"))
        chat = await session.scalar(select(Conversation))
        chat.assignee_user_id = rita.id
    await page.click(f"[data-edit='{rita.id}']")
    await page.uncheck("#edit-user-form input[name=is_active]")
    await page.select_option("#edit-user-form select[name=heir]", str(newrep.id))
    await page.click("#save-user")
    await page.wait_for_selector(f"tr[data-user='{rita.id}'] .badge.bad")
    async with stack.hub.sessions() as session:
        assert (await session.get(User, rita.id)).is_active is False
        assert (await session.get(Conversation, chat.id)).assignee_user_id == newrep.id

    # The audit log, narrowed to teams: who made that one.
    await page.goto("/admin#/audit")
    await page.wait_for_selector("#audit-rows tr")
    await page.select_option("#audit-filters select[name=entity_type]", "team")
    await page.wait_for_selector("#audit-rows tr:has-text('user.password')", state="detached")
    rows = await page.inner_text("#audit-rows")
    assert "创建团队" in rows and "ada" in rows and "name: 上海团队" in rows  # team.create, in the page's language

    # Contacts: search, the 360 view.
    await page.goto("/admin#/contacts")
    await page.fill("#contact-search", "Olu")
    row = await page.wait_for_selector("#contact-rows tr.clickable:has-text('Olu')")
    await row.click()
    await page.wait_for_selector("#main h1:has-text('Olu')")
    assert "Can I get an invoice?" in await page.inner_text("#main")
    # Tagged, and an opt-out she gave on the phone recorded with where it comes from.
    await page.fill("#tags-form input[name=tags]", "vip, 展会")
    await page.click("#tags-form button[type=submit]")

    async def tags_saved():
        async with stack.hub.sessions() as session:
            return (await session.scalars(select(ContactTag.tag).order_by(ContactTag.tag))).all() == ["vip", "展会"]
    await eventually(tags_saved)
    await page.fill("#consent-form input[name=note]", "phoned on 1 Dec: no more offers")
    await page.click("#record-consent")
    await page.wait_for_selector("#consent-state .badge.bad")
    async with stack.hub.sessions() as session:
        olu = await session.scalar(select(Contact).where(Contact.display_name == "Olu"))
        event = await session.scalar(select(ConsentEvent).where(ConsentEvent.contact_id == olu.id))
    assert (event.purpose.value, event.granted, event.evidence["note"]) == ("marketing", False,
                                                                           "phoned on 1 Dec: no more offers")
    assert "phoned on 1 Dec: no more offers" in await page.inner_text("#consent-card")
    assert page.script_errors == [] and other.script_errors == []


async def test_an_opinion_alert_opens_to_its_trend_and_messages_and_the_word_lists_save(stack, browser):
    from tests.admin.test_opinion_api import seed

    await seed(stack)
    page = await page_for(browser, stack)
    await sign_in(page, "ada")
    await page.goto("/admin#/monitoring")
    await page.click("#alert-rows tr[data-alert]")
    await page.wait_for_selector("#alert-detail svg circle")
    messages = await page.inner_text("#alert-message-list")
    assert "li: 退款还没到，太差了" in messages and "wang: 发货太慢了，要求退款" in messages
    assert "请问什么时候发货" not in messages          # a neutral message is not behind the alert
    await page.select_option("#alert-filters select[name=status]", "closed")
    await page.wait_for_selector("#alert-rows tr[data-alert]", state="detached")
    await page.select_option("#alert-filters select[name=status]", "open")
    await page.wait_for_selector("#alert-rows tr[data-alert]")

    await page.fill("#rules-form textarea[name=compliance_terms]", "refund: 全额退款, full refund")
    await page.click("#save-rules")
    await page.wait_for_selector("#rules-form textarea[name=compliance_terms]:text('全额退款')")
    assert [w for _, w, _ in stack.hub.rep_review.compliance.rules] == ["全额退款", "full refund"]
    await page.click("#alert-rows tr[data-alert]")
    await page.wait_for_selector("#alert-detail svg circle")
    await shot(page, "monitoring")
    await page.click("#alert-message-list a >> nth=0")
    await page.wait_for_selector("#reply-form")
    assert page.script_errors == []


async def test_an_operator_makes_a_kf_contact_link_and_sees_its_qr_code(stack, browser):
    wecom = WeComSimulator()
    app = wecom.create_app()
    kf_sim.add_account(app.kf, "售前咨询")
    async with running(wecom.app) as server:
        async with stack.hub.sessions() as session, session.begin():
            account = await accounts.create(
                kind="wecom_kf", name="微信客服", platform_account_id=f"{app.corp_id}:kf",
                credentials={"corp_id": app.corp_id, "secret": app.secret, "token": app.token,
                             "encoding_aes_key": app.encoding_aes_key},
                api_base=f"http://127.0.0.1:{server.port}", settings={}, cipher=stack.hub.cipher, actor=None,
                db_session=session)
        page = await page_for(browser, stack, locale="zh-CN")
        await sign_in(page, "ada")
        await page.click("#nav a[data-page=channels]")
        await page.click(f"[data-links='{account.id}']")
        await page.wait_for_selector("#contact-links")
        assert "的客服链接" in await page.inner_text("#contact-links h2")
        await page.fill("#link-form input[name=label]", "展会2026 海报")
        await page.fill("#link-form input[name=source]", "expo2026")
        await page.click("#link-form button[type=submit]")
        qr = await page.wait_for_selector("#contact-links img.qr")
        # Polled from the test: wait_for_function's text predicate is eval'd in the page, which its CSP refuses.
        await eventually(lambda: qr.evaluate("img => img.naturalWidth > 0"))
        assert await qr.get_attribute("alt") == "QR 展会2026 海报"
        url = await page.input_value("#contact-links tr[data-link] .copy-field input")
        assert url.endswith("&scene_param=expo2026")
        download = await page.get_attribute("#contact-links a[download]", "download")
        assert download == "expo2026.svg"
        await shot(page, "kf-contact-links")
        # A source twice is refused, and the page says why.
        await page.fill("#link-form input[name=label]", "again")
        await page.fill("#link-form input[name=source]", "expo2026")
        await page.click("#link-form button[type=submit]")
        await page.wait_for_selector(".toast.bad:has-text('expo2026')")
        assert page.script_errors == []


async def test_the_dashboard_warns_of_a_channel_that_keeps_failing_with_what_to_do(stack, browser):
    from crm_core.db import utcnow
    from crm_core.models import OutboxMessage, OutboxStatus

    async with stack.hub.sessions() as session, session.begin():
        for n in range(3):  # the platform refused the token three times today
            session.add(OutboxMessage(
                idempotency_key=f"failing:{n}", channel_account_id=stack.account_id, recipient="901", payload={},
                status=OutboxStatus.FAILED, attempts=1, next_attempt_at=utcnow(), created_at=utcnow(),
                last_error="Telegram refused: Unauthorized (401): the bot token is invalid"))
    for locale, figures, warning, advice in (
            ("en-GB", "messages waiting for the worker", "3 sends failed in 24 h", "enter the current token"),
            ("zh-CN", "条消息等待处理", "24 小时内 3 条发送失败", "请在渠道页面填写最新的 Token")):
        page = await page_for(browser, stack, locale=locale)
        await sign_in(page, "ada")
        await page.goto("/admin#/dashboard")
        health = await page.wait_for_selector("#hub-health")
        text = await health.inner_text()
        assert figures in text
        failing = await page.inner_text("#failing-channels")
        assert warning in failing and advice in failing and "Unauthorized (401)" in failing
        await shot(page, f"dashboard-health-{locale[:2]}")
        assert page.script_errors == []
        await page.context.close()


async def test_the_api_docs_render_offline(stack, browser):
    """/docs and /redoc draw the API with nothing fetched from outside the hub (no CDN)."""
    page = await page_for(browser, stack)
    elsewhere: list[str] = []

    async def only_the_hub(route) -> None:
        if route.request.url.startswith(stack.hub_base):
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort()

    await page.route("**/*", only_the_hub)
    await page.goto("/docs")
    await page.wait_for_selector(".swagger-ui .opblock-tag")  # the API's sections, drawn from /openapi.json
    assert "conversations" in (await page.inner_text(".swagger-ui")).lower()
    await shot(page, "api-docs")
    await page.goto("/redoc")
    await page.wait_for_selector("redoc [role=menuitem], .menu-content label")  # ReDoc's side menu
    assert "conversations" in (await page.inner_text("body")).lower()
    assert elsewhere == []
    assert page.script_errors == []
    await page.context.close()


async def test_an_admin_reveals_and_copies_a_channels_callback_secret_and_it_is_audited(stack, browser):
    from crm_core import accounts

    async with stack.hub.sessions() as session:
        account = await accounts.get(stack.account_id, db_session=session)
        secret = accounts.to_ref(account, stack.hub.cipher).credentials["webhook_secret"]
    page = await page_for(browser, stack)
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.hub_base)
    await sign_in(page, "ada")
    await page.goto("/admin#/channels")
    await page.click(f"[data-secrets='{stack.account_id}']")
    field = page.locator("#callback-secrets input[data-secret=webhook_secret]")
    assert await field.get_attribute("type") == "password"  # masked until revealed
    assert await page.input_value("#callback-secrets input:not([data-secret])") == \
        f"{stack.hub.settings.base_url}/hooks/telegram/{stack.account_id}"
    await page.click("#callback-secrets .reveal")
    assert await field.get_attribute("type") == "text" and await field.input_value() == secret
    await page.click("#callback-secrets input[data-secret=webhook_secret] ~ .copy-secret")
    assert await page.evaluate("navigator.clipboard.readText()") == secret
    await shot(page, "channel-secrets")
    assert page.script_errors == []
    await page.context.close()

    [entry] = (await stack.client.get(f"{stack.hub_base}/api/v1/audit", params={
        "action": "channel_account.secrets_viewed"}, headers=stack.api())).json()
    assert entry["actor"] == "ada" and entry["details"] == {"fields": ["webhook_secret"]}
    assert secret not in str(entry)
