"""One person across the WeChat Official Account and WeCom, over HTTP: the hub
asks each platform who a new customer is (user/info, externalcontact/get) and
links the WeCom external contact to the follower with the same unionid."""

from __future__ import annotations

from sqlalchemy import select

from crm_core.models import AuditLog, Contact, Identity
from tests.fakes.stack import eventually, workspace_stack


async def _identity(hub, external_id: str) -> Identity | None:
    async with hub.sessions() as session:
        return await session.scalar(select(Identity).where(Identity.external_id == external_id))


async def test_a_follower_who_adds_a_rep_is_linked_to_one_contact(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        hub, api = ws.tg.hub, ws.tg.api()
        await ws.follower("oAlice", "follow", scene="expo-2026", unionid="uAlice")
        await ws.follower("oAlice", "messages", text="请问有样品吗？")

        async def follower_checked():
            identity = await _identity(hub, "oAlice")
            return identity if identity and identity.profile_checked_at else None
        follower = await eventually(follower_checked)
        assert ("user/info", 0) in ws.wechat_account.calls

        # Weeks later the same person adds Li in WeCom from a trade-fair QR code.
        await ws.wecom_post("customers/wmAlice0001/add", {"rep": "li", "name": "Alice Wang", "state": "fair-qr",
                                                          "unionid": "uAlice"})

        async def linked():
            identity = await _identity(hub, "wmAlice0001")
            return identity if identity and identity.contact_id == follower.contact_id else None
        await eventually(linked)
        assert ("externalcontact/get", 0) in ws.wecom_app.calls

        contact = (await ws.tg.client.get(f"{ws.tg.hub_base}/api/v1/contacts/{follower.contact_id}",
                                          headers=api)).json()
        assert sorted(i["external_id"] for i in contact["identities"]) == ["oAlice", "wmAlice0001"]
        assert contact["display_name"] == "Alice Wang"  # WeCom's name for her; WeChat gives none
        assert contact["source"] == "expo-2026"  # the first source stays
        listed = (await ws.tg.client.get(f"{ws.tg.hub_base}/api/v1/contacts", headers=api)).json()
        assert [c["id"] for c in listed if c["display_name"] == "Alice Wang"] == [follower.contact_id]
        conversations = (await ws.tg.client.get(f"{ws.tg.hub_base}/api/v1/conversations", headers=api)).json()
        assert {c["contact_id"] for c in conversations} == {follower.contact_id}

        # Li's card and the welcome still went out, for the linked contact.
        await ws.rep_receives("li", "Alice Wang")

        async def welcomed():
            return [m for m in ws.wecom_app.transcript("wmAlice0001") if m["msgtype"] == "welcome"]
        await eventually(welcomed)

        # A wrong link is undone: the WeCom identity goes back to the contact first made for it.
        wecom_identity = await _identity(hub, "wmAlice0001")
        base = f"{ws.tg.hub_base}/api/v1/contacts"
        resp = await ws.tg.client.post(f"{base}/{follower.contact_id}/unlink",
                                       json={"identity_id": wecom_identity.id}, headers=api)
        assert resp.status_code == 200, resp.text
        home = resp.json()
        assert home["id"] != follower.contact_id and home["merged_into_id"] is None
        assert [i["external_id"] for i in home["identities"]] == ["wmAlice0001"]
        left = (await ws.tg.client.get(f"{base}/{follower.contact_id}", headers=api)).json()
        assert [i["external_id"] for i in left["identities"]] == ["oAlice"]
        conversations = (await ws.tg.client.get(f"{ws.tg.hub_base}/api/v1/conversations", headers=api)).json()
        assert {c["contact_id"] for c in conversations} == {follower.contact_id, home["id"]}
        again = await ws.tg.client.post(f"{base}/{follower.contact_id}/unlink",
                                        json={"identity_id": wecom_identity.id}, headers=api)
        assert again.status_code == 409 and "is not one of contact" in again.json()["detail"]
        alone = await ws.tg.client.post(f"{base}/{home['id']}/unlink", json={"identity_id": wecom_identity.id},
                                        headers=api)
        assert alone.status_code == 409 and "only identity" in alone.json()["detail"]
        async with hub.sessions() as session:
            actions = (await session.scalars(select(AuditLog.action).where(AuditLog.entity_type == "contact"))).all()
        assert actions == ["contact.linked", "contact.unlinked"]


async def test_a_profile_the_platform_cannot_give_now_is_asked_for_again(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        hub = ws.tg.hub
        ws.wecom_app.faults.append({"path": "externalcontact/get", "errcode": -1, "errmsg": "system busy",
                                    "remaining": 1})
        await ws.wecom_post("customers/wmBob0001/add", {"rep": "wang", "name": "Bob Li"})

        async def welcomed():
            return [m for m in ws.wecom_app.transcript("wmBob0001") if m["msgtype"] == "welcome"]
        await eventually(welcomed)  # the add is handled without the profile
        identity = await _identity(hub, "wmBob0001")
        assert identity.profile_checked_at is None
        assert ("externalcontact/get", -1) in ws.wecom_app.calls

        await ws.wecom_post("customers/wmBob0001/messages", {"text": "Any news?"})

        async def named():
            found = await _identity(hub, "wmBob0001")
            return found if found.profile_checked_at and found.display_name == "Bob Li" else None
        await eventually(named)
        async with hub.sessions() as session:
            assert (await session.get(Contact, identity.contact_id)).display_name == "Bob Li"
