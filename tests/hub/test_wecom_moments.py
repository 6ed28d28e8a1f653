"""WeCom moments (朋友圈) through the API and the simulator: a post made as a task for the chosen
reps, visible to customers with a corp tag; WeCom makes it asynchronously (the job is read until
done); which reps published it is read back, and how far each rep's post went. A tag WeCom does
not have refuses the post, said so. Posts made outside the hub are found in WeCom's list."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from channels.tencent_client import ApiError
from crm_core import accounts
from crm_core.models import Moment, Role
from hub.moments import LISTED
from hub.serving import running
from tests.fakes.panel import signed_in
from tests.fakes.stack import workspace_stack

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                    "0000000d4944415478da63f8cfc0f01f0005000201a1e2a4e40000000049454e44ae426082")

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_a_moment_reaches_the_chosen_reps_and_who_published_it_is_read_back(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app, sim = ws.tg, ws.wecom_app, ws.wecom
        made_tags = sim._add_corp_tag(app, {"group_name": "客户等级", "tag": [{"name": "vip"}]})
        vip_id = made_tags["tag_group"]["tag"][0]["id"]
        await tg.hub.corp_tags.read_if_due(ws.wecom_account_id, force=True)
        resp = await tg.client.post(f"{tg.hub_base}/api/v1/moments", headers=tg.api(), json={
            "channel_account_id": ws.wecom_account_id, "text": "新品 X300 今日发布", "link_url": "https://shop.example.cn/x300",
            "user_ids": [ws.reps["li"], ws.reps["wang"]], "tags": ["vip"]})
        assert resp.status_code == 201, resp.text
        moment = resp.json()
        assert moment["status"] == "creating" and moment["senders"] == ["li", "wang"]  # WeCom is making it
        [made] = app.moments.values()
        assert (made["senders"], made["tags"], made["text"]) == (["li", "wang"], [vip_id], "新品 X300 今日发布")
        assert await tg.hub.moments.run_once() == 0  # the job is still in progress (status 2)
        assert await tg.hub.moments.run_once() == 1  # done (status 3): the moment has its id
        sim.member_publishes(app, next(iter(app.moments)), "li")
        assert await tg.hub.moments.run_once() == 1
        moment = (await tg.client.get(f"{tg.hub_base}/api/v1/moments/{moment['id']}", headers=tg.api())).json()
        assert (moment["status"], moment["published"]) == ("created", {"li": True, "wang": False})

        # A tag WeCom does not have: the post is refused with the reason, nothing made in WeCom.
        bad = await tg.client.post(f"{tg.hub_base}/api/v1/moments", headers=tg.api(), json={
            "channel_account_id": ws.wecom_account_id, "text": "试试", "tags": ["不存在的标签"]})
        assert bad.status_code == 201
        assert bad.json()["status"] == "failed" and "不存在的标签" in bad.json()["reason"]
        assert len(app.moments) == 1


async def test_a_moments_pictures_are_uploaded_as_moments_attachments_and_a_bad_one_fails_the_post(database_url,
                                                                                                   tmp_path):
    served = Starlette(routes=[Route("/a.png", lambda _: Response(PNG, media_type="image/png")),
                               Route("/b.png", lambda _: Response(PNG + PNG, media_type="image/png")),
                               Route("/page.html", lambda _: Response("<p>no</p>", media_type="text/html"))])
    async with workspace_stack(database_url, tmp_path) as ws, running(served) as server:
        tg, app = ws.tg, ws.wecom_app
        base = f"http://127.0.0.1:{server.port}"

        async def post(**fields):
            return await tg.client.post(f"{tg.hub_base}/api/v1/moments", headers=tg.api(), json={
                "channel_account_id": ws.wecom_account_id, "text": "门店新品到货", **fields})
        resp = await post(image_urls=[f"{base}/a.png", f"{base}/b.png"])
        assert resp.status_code == 201 and resp.json()["status"] == "creating", resp.text
        [made] = app.moments.values()
        assert [a["msgtype"] for a in made["attachments"]] == ["image", "image"]
        uploads = [app.kf.media[a["image"]["media_id"]] for a in made["attachments"]]
        assert [(u["type"], u["attachment_type"], u["size"]) for u in uploads] == \
            [("image", 1, len(PNG)), ("image", 1, 2 * len(PNG))]

        # A link with one picture: the picture is the link's cover.
        resp = await post(link_url="https://shop.example.cn/new", link_title="新品", image_urls=[f"{base}/a.png"])
        assert resp.status_code == 201 and resp.json()["status"] == "creating", resp.text
        [link] = list(app.moments.values())[-1]["attachments"]
        assert link["msgtype"] == "link" and app.kf.media[link["link"]["media_id"]]["attachment_type"] == 1

        # Not a picture: the post fails with the reason, nothing is made in WeCom.
        resp = await post(image_urls=[f"{base}/page.html"])
        assert resp.json()["status"] == "failed" and "not a JPEG or PNG" in resp.json()["reason"], resp.text
        assert len(app.moments) == 2
        # Pictures and a link together, or ten pictures: refused before anything is kept.
        for fields, words in (({"link_url": "https://shop.example.cn", "image_urls": [f"{base}/a.png"] * 2},
                               "not both"),
                              ({"image_urls": [f"{base}/a.png"] * 10}, "at most 9")):
            resp = await post(**fields)
            assert resp.status_code == 422 and words in resp.text, resp.text


async def test_each_reps_reach_and_the_posts_made_outside_the_hub_are_read_back(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app, sim, moments = ws.tg, ws.wecom_app, ws.wecom, ws.tg.hub.moments
        for external, rep in (("wmFan01", "li"), ("wmFan02", "li"), ("wmFan03", "wang")):
            sim.customer_adds(app, external, rep, name=external)
        resp = await tg.client.post(f"{tg.hub_base}/api/v1/moments", headers=tg.api(), json={
            "channel_account_id": ws.wecom_account_id, "text": "双十二预告",
            "user_ids": [ws.reps["li"], ws.reps["wang"]]})
        assert resp.status_code == 201 and resp.json()["status"] == "creating", resp.text
        # WeCom lists the post before its job has answered: not taken for a post made elsewhere.
        assert await moments.discover(ws.wecom_account_id, force=True) == 0
        await moments.run_once()  # the job: still in progress
        await moments.run_once()  # done
        assert await moments.discover(ws.wecom_account_id, force=True) == 0  # now known as the hub's
        async with tg.hub.sessions() as session:
            [(origin, moment_id)] = (await session.execute(select(Moment.origin, Moment.moment_id))).all()
        assert origin == "hub" and moment_id in app.moments

        # Li Lei publishes it; one of his customers likes it, the other comments: read at once.
        sim.member_publishes(app, moment_id, "li")
        sim.customer_reacts(app, moment_id, "li", "wmFan01", comment=False)
        sim.customer_reacts(app, moment_id, "li", "wmFan02", comment=True)
        assert await moments.run_once() == 1
        [hub_post] = (await tg.client.get(f"{tg.hub_base}/api/v1/moments", headers=tg.api())).json()
        assert hub_post["published"] == {"li": True, "wang": False}
        assert hub_post["reach"] == {"li": {"customers": 2, "likes": 1, "comments": 1}}

        # Wang Fang posts her own moment in WeCom: found in WeCom's list, with her reach.
        sim.member_posts(app, "wang", "周末到店有惊喜")
        assert await moments.discover(ws.wecom_account_id, force=True) == 1
        assert await moments.discover(ws.wecom_account_id, force=True) == 0  # listed again: nothing new
        await moments.run_once()
        listed = (await tg.client.get(f"{tg.hub_base}/api/v1/moments", headers=tg.api())).json()
        own = next(m for m in listed if m["origin"] == "personal")
        assert (own["creator"], own["text"], own["published"]) == ("wang", "周末到店有惊喜", {"wang": True})
        assert own["reach"] == {"wang": {"customers": 1, "likes": 0, "comments": 0}}
        # WeCom refuses a listing: the next one starts where this one would have, and finds the post.
        async with tg.hub.sessions() as session:
            before = await accounts.get_cursor(ws.wecom_account_id, LISTED, db_session=session)
        app.faults.append({"path": "externalcontact/get_moment_list", "errcode": 48002, "remaining": 1})
        sim.member_posts(app, "li", "新品到货")
        with pytest.raises(ApiError):
            await moments.discover(ws.wecom_account_id, force=True)
        async with tg.hub.sessions() as session:
            assert await accounts.get_cursor(ws.wecom_account_id, LISTED, db_session=session) == before
        assert await moments.discover(ws.wecom_account_id, force=True) == 1


async def test_a_reps_own_post_is_listed_by_the_second_it_was_made_in_not_the_second_it_is_asked(database_url,
                                                                                                 tmp_path):
    # The hub lists up to the second its listing began; WeCom may answer in a later second. A post
    # made before the listing is in it: WeCom keeps the time the post was made.
    async with workspace_stack(database_url, tmp_path) as ws:
        ws.wecom.member_posts(ws.wecom_app, "wang", "周末到店有惊喜")
        listing_began = int(time.time())
        await asyncio.sleep(listing_began + 1.05 - time.time())  # WeCom answers in the next second
        listed = ws.wecom._moment_list(ws.wecom_app, {"start_time": listing_began - 3600, "end_time": listing_began})
        assert [m["text"]["content"] for m in listed["moment_list"]] == ["周末到店有惊喜"]


async def test_a_moment_wecom_was_too_busy_for_is_made_at_the_next_minute(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app = ws.tg, ws.wecom_app
        app.faults.append({"path": "externalcontact/add_moment_task", "errcode": 45009, "remaining": 1})
        resp = await tg.client.post(f"{tg.hub_base}/api/v1/moments", headers=tg.api(), json={
            "channel_account_id": ws.wecom_account_id, "text": "限时活动"})
        assert resp.status_code == 201 and resp.json()["status"] == "pending", resp.text
        assert "busy (45009)" in resp.json()["reason"] and app.moments == {}
        await tg.hub.moments.run_once(listing=False)
        moment = (await tg.client.get(f"{tg.hub_base}/api/v1/moments/{resp.json()['id']}", headers=tg.api())).json()
        assert moment["status"] == "creating" and len(app.moments) == 1


async def test_the_panel_posts_a_moment_and_shows_who_published_it(database_url, tmp_path, browser):
    served = Starlette(routes=[Route("/store.png", lambda _: Response(PNG, media_type="image/png"))])
    async with workspace_stack(database_url, tmp_path) as ws, running(served) as server:
        tg, app, sim = ws.tg, ws.wecom_app, ws.wecom
        async with signed_in(browser, tg.hub, tg.hub_base, "olga", Role.OPERATOR) as page:
            await page.click("#nav a[data-page=mass-sends]")
            await page.wait_for_selector("#moment-form")
            await page.fill("#moment-form textarea[name=text]", "周末门店活动，欢迎到店")
            await page.fill("#moment-form textarea[name=pictures]", f"http://127.0.0.1:{server.port}/store.png\n")
            await page.select_option("#moment-form select[name=users]", [str(ws.reps["li"]), str(ws.reps["wang"])])
            await page.click("#moment-form button[type=submit]")
            await page.wait_for_selector("#moment-rows tr[data-moment]")
            assert "创建中" in await page.inner_text("#moment-rows tr[data-moment]")
            assert "🖼 1" in await page.inner_text("#moment-rows tr[data-moment]")
            [made] = app.moments.values()
            assert [a["msgtype"] for a in made["attachments"]] == ["image"]
            await tg.hub.moments.run_once()
            await tg.hub.moments.run_once()
            sim.customer_adds(app, "wmFan01", "wang", name="小周")
            sim.member_publishes(app, next(iter(app.moments)), "wang")
            sim.customer_reacts(app, next(iter(app.moments)), "wang", "wmFan01", comment=False)
            await tg.hub.moments.run_once()
            await page.reload()
            await page.wait_for_selector("#moment-rows tr[data-moment]")
            row = page.locator("#moment-rows tr[data-moment]")
            assert "已创建" in await row.inner_text() and "本系统发布" in await row.inner_text()
            assert await row.locator("td[data-key=published]").inner_text() == "1 / 2"
            assert await row.locator("td[data-key=reach]").inner_text() == "1 位客户可见 · 1 赞 · 0 评论"
            assert page.script_errors == []
