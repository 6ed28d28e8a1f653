"""What WeCom's customer operations (私域运营) ask of its server API, for the hub's jobs and the API
(hub/contact_ways.py, corp_tags.py, groups.py, mass_sends.py, moments.py, succession.py):
contact ways (渠道活码), corp tags, customer groups and their QR codes, 群发 tasks, moments
(朋友圈), and customers and groups moved between reps (在职 / 离职继承). Each call as WeCom
documents it; a refusal an operator can act on is said so (ValueError), the others are WeCom's
ApiError for the job to record."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from channels.base import shortened_bytes
from channels.tencent_client import ApiError, TencentApiClient
from channels.wecom.client import app_key
from channels.wecom.pictures import Pictures
from crm_core.ports import AccountRef, PermanentFailure, TemporaryFailure

CONTACT_WAY_REFUSED = {60111: "a rep's WeCom userid is not a member of the company: check their WeCom handle",
                       84074: "the app may not manage customers: add it under 客户联系 → API → 可调用应用",
                       40058: "WeCom found a parameter invalid (an unknown code, or a state over 30 characters)"}
INVALID_CONFIG_ID = 40058
JOIN_WAY_REFUSED = {86001: "a group id is not valid", 86003: "a group does not exist (dismissed?)",
                    40058: "WeCom found a parameter invalid (at most 5 groups; state and remark at most 30)"}
NO_SUCH_GROUP = frozenset({86001, 86003})  # chatid invalid, chatid does not exist
MAX_TRANSFER = 100  # customers in one transfer_customer call


class CustomerOperations:
    """Mixed into the WeCom adapter: the calls use its API client and its pictures."""

    client: TencentApiClient
    pictures: Pictures

    async def save_contact_way(self, account: AccountRef, *, config_id: str | None, state: str, users: list[str],
                               remark: str, skip_verify: bool) -> tuple[str, str | None]:
        """Create (config_id None) or update a multi-person QR contact way (渠道活码: type 2, scene 2);
        its config_id and the QR image WeCom serves. ValueError says what WeCom refused."""
        payload: dict[str, Any] = {"remark": remark[:30], "skip_verify": skip_verify, "state": state, "user": users}
        try:
            if config_id is None:
                body = await self.client.call(app_key(account), "/cgi-bin/externalcontact/add_contact_way",
                                              {"type": 2, "scene": 2, **payload})
                return str(body["config_id"]), body.get("qr_code")
            await self.client.call(app_key(account), "/cgi-bin/externalcontact/update_contact_way",
                                   {"config_id": config_id, **payload})
            return config_id, None
        except ApiError as exc:
            hint = CONTACT_WAY_REFUSED.get(exc.errcode, exc.errmsg)
            raise ValueError(f"WeCom refused the contact way ({exc.errcode}): {hint}") from None

    async def delete_contact_way(self, account: AccountRef, config_id: str) -> None:
        try:
            await self.client.call(app_key(account), "/cgi-bin/externalcontact/del_contact_way",
                                   {"config_id": config_id})
        except ApiError as exc:
            if exc.errcode != INVALID_CONFIG_ID:  # gone already: what deleting wanted
                raise ValueError(f"WeCom refused to delete the contact way ({exc.errcode}): {exc.errmsg}") from None

    async def mass_task(self, account: AccountRef, *, sender: str, externals: list[str], text: str,
                        groups: bool = False) -> tuple[str, list[str]]:
        """A 群发 task for the rep `sender` to their customers (add_msg_template, chat_type single), or
        with `groups` to customer groups they own (chat_type group, `externals` their chat ids):
        WeCom's msgid, and the targets it could not include (not the rep's contacts or groups)."""
        targets = {"chat_id_list": externals} if groups else {"external_userid": externals}
        body = await self.client.call(app_key(account), "/cgi-bin/externalcontact/add_msg_template", {
            "chat_type": "group" if groups else "single", **targets, "sender": sender, "text": {"content": text}})
        return str(body.get("msgid") or ""), [str(x) for x in body.get("fail_list") or []]

    async def mass_task_state(self, account: AccountRef, *, msgid: str, sender: str) -> tuple[bool, dict[str, int]]:
        """Whether `sender` sent the task (get_groupmsg_task: 2 sent), and each customer's status
        or group (get_groupmsg_send_result: 0 waiting, 1 sent, 2 not a contact, 3 over WeCom's limit)."""
        app = app_key(account)
        sent = (await self.mass_senders(account, msgid)).get(sender, False)
        statuses: dict[str, int] = {}
        cursor = ""
        while True:
            body = await self.client.call(app, "/cgi-bin/externalcontact/get_groupmsg_send_result",
                                          {"msgid": msgid, "userid": sender, "limit": 1000, "cursor": cursor})
            statuses.update({str(e.get("chat_id") or e.get("external_userid")): int(e.get("status") or 0)
                             for e in body.get("send_list") or []})
            cursor = str(body.get("next_cursor") or "")
            if not cursor:
                return sent, statuses

    async def mass_list(self, account: AccountRef, chat_type: str, start: dt.datetime,
                        end: dt.datetime) -> list[dict[str, Any]]:
        """The company's 群发 of `chat_type` (single or group) made between `start` and `end`
        (get_groupmsg_list_v2, filter_type 2: the company's and reps' own; 100 a page): msgid,
        creator, create_type (0 the company, 1 a rep), create_time, text."""
        found: list[dict[str, Any]] = []
        cursor = ""
        while True:
            body = await self.client.call(app_key(account), "/cgi-bin/externalcontact/get_groupmsg_list_v2", {
                "chat_type": chat_type, "start_time": int(start.timestamp()), "end_time": int(end.timestamp()),
                "filter_type": 2, "limit": 100, "cursor": cursor})
            found.extend(body.get("group_msg_list") or [])
            cursor = str(body.get("next_cursor") or "")
            if not cursor:
                return found

    async def mass_senders(self, account: AccountRef, msgid: str) -> dict[str, bool]:
        """The reps a 群发 was given to, and whether each has sent it (get_groupmsg_task: 2 sent)."""
        senders: dict[str, bool] = {}
        cursor = ""
        while True:
            body = await self.client.call(app_key(account), "/cgi-bin/externalcontact/get_groupmsg_task",
                                          {"msgid": msgid, "limit": 1000, "cursor": cursor})
            senders.update({str(t.get("userid")): t.get("status") == 2 for t in body.get("task_list") or []})
            cursor = str(body.get("next_cursor") or "")
            if not cursor:
                return senders

    async def save_join_way(self, account: AccountRef, *, config_id: str | None, remark: str, state: str,
                            chat_ids: list[str], auto_create_room: bool,
                            room_base_name: str | None) -> tuple[str, str | None]:
        """Create (config_id None) or update a group QR code (groupchat/add_join_way, scene 2):
        its config_id and QR image. ValueError says what WeCom refused."""
        payload: dict[str, Any] = {"scene": 2, "remark": remark[:30], "state": state, "chat_id_list": chat_ids,
                                   "auto_create_room": int(auto_create_room)}
        if auto_create_room:
            payload |= {"room_base_name": (room_base_name or remark)[:40], "room_base_id": 1}
        app = app_key(account)
        try:
            if config_id is None:
                config_id = str((await self.client.call(app, "/cgi-bin/externalcontact/groupchat/add_join_way",
                                                        payload))["config_id"])
            else:
                await self.client.call(app, "/cgi-bin/externalcontact/groupchat/update_join_way",
                                       {"config_id": config_id, **payload})
            way = await self.client.call(app, "/cgi-bin/externalcontact/groupchat/get_join_way",
                                         {"config_id": config_id})
        except ApiError as exc:
            raise ValueError(f"WeCom refused the group QR code ({exc.errcode}): "
                             f"{JOIN_WAY_REFUSED.get(exc.errcode, exc.errmsg)}") from None
        return config_id, (way.get("join_way") or {}).get("qr_code")

    async def delete_join_way(self, account: AccountRef, config_id: str) -> None:
        try:
            await self.client.call(app_key(account), "/cgi-bin/externalcontact/groupchat/del_join_way",
                                   {"config_id": config_id})
        except ApiError as exc:
            if exc.errcode != INVALID_CONFIG_ID:
                raise ValueError(f"WeCom refused to delete the group QR code ({exc.errcode}): {exc.errmsg}") from None

    async def group_welcome_template(self, account: AccountRef, text: str, template_id: str | None,
                                     card: dict[str, Any] | None = None) -> str:
        """A group welcome (group_welcome_template/add, or /edit), with its owners notified; its id.
        `card` adds a picture (uploaded), a link card or a mini-program card (its cover uploaded);
        ValueError where the picture cannot be used."""
        app, card = app_key(account), card or {}
        parts: dict[str, Any] = {"text": {"content": text}}
        try:
            picture = await self.pictures.media_id(app, card["image_url"]) if card.get("image_url") else None
        except (PermanentFailure, TemporaryFailure) as exc:
            raise ValueError(f"the welcome's picture: {exc}") from None
        if card.get("miniprogram"):
            mini = card["miniprogram"]
            parts["miniprogram"] = {"title": shortened_bytes(mini.get("title") or text.partition("\n")[0], 64),
                                    "pic_media_id": picture, "appid": mini["appid"], "page": mini["page"]}
        elif card.get("link_url"):
            parts["link"] = {"title": shortened_bytes(card.get("link_title") or text.partition("\n")[0], 128),
                             "url": card["link_url"], **({"picurl": card["image_url"]} if picture else {})}
        elif picture:
            parts["image"] = {"media_id": picture}
        if template_id:
            await self.client.call(app, "/cgi-bin/externalcontact/group_welcome_template/edit",
                                   {"template_id": template_id, **parts})
            return template_id
        body = await self.client.call(app, "/cgi-bin/externalcontact/group_welcome_template/add",
                                      {**parts, "notify": 1})
        return str(body["template_id"])

    async def group_statistics(self, account: AccountRef, owners: list[str], first: dt.date,
                               last: dt.date) -> list[dict[str, Any]]:
        """Per day of the owners' customer groups (groupchat/statistic_group_by_day, China days, at
        most 30): the day, groups and members in all, new members, messages."""
        china = dt.timezone(dt.timedelta(hours=8))
        begin = int(dt.datetime.combine(first, dt.time(), china).timestamp())
        end = int(dt.datetime.combine(last, dt.time(), china).timestamp())
        body = await self.client.call(
            app_key(account), "/cgi-bin/externalcontact/groupchat/statistic_group_by_day",
            {"day_begin_time": begin, "day_end_time": end, "owner_filter": {"userid_list": owners}})
        return [{"day": dt.datetime.fromtimestamp(int(item["stat_time"]), china).date().isoformat(),
                 **{k: int((item.get("data") or {}).get(k) or 0)
                    for k in ("chat_total", "member_total", "new_member_cnt", "msg_total")}}
                for item in body.get("items") or []]

    async def group_ids(self, account: AccountRef) -> list[str]:
        """Every customer group's chat id (groupchat/list, all statuses, page after page)."""
        found: list[str] = []
        cursor = ""
        while True:
            body = await self.client.call(app_key(account), "/cgi-bin/externalcontact/groupchat/list",
                                          {"status_filter": 0, "cursor": cursor, "limit": 1000})
            found += [str(g["chat_id"]) for g in body.get("group_chat_list") or [] if g.get("chat_id")]
            cursor = str(body.get("next_cursor") or "")
            if not cursor:
                return found

    async def group(self, account: AccountRef, chat_id: str) -> dict[str, Any] | None:
        """A customer group as WeCom describes it (groupchat/get with members' names); None when
        WeCom no longer knows it (dismissed)."""
        try:
            body = await self.client.call(app_key(account), "/cgi-bin/externalcontact/groupchat/get",
                                          {"chat_id": chat_id, "need_name": 1})
        except ApiError as exc:
            if exc.errcode in NO_SUCH_GROUP:
                return None
            raise
        return body.get("group_chat") or None

    async def moment_picture(self, account: AccountRef, url: str) -> str:
        """The picture at `url` uploaded as a moments attachment (media/upload_attachment): its media id."""
        return await self.pictures.media_id(app_key(account), url, moment=True)

    async def moment_task(self, account: AccountRef, *, text: str, link: dict[str, str] | None, senders: list[str],
                          tag_ids: list[str], media_ids: Sequence[str] = ()) -> str:
        """A moments (朋友圈) task for `senders` (empty: every rep) to publish to customers with those
        corp tags (empty: all), with up to 9 pictures or a link (the one picture its cover), by the
        media ids of `moment_picture`: WeCom's job id, answered by `moment_job`."""
        visible: dict[str, Any] = {}
        if senders:
            visible["sender_list"] = {"user_list": senders}
        if tag_ids:
            visible["external_contact_list"] = {"tag_list": tag_ids}
        if link:
            attachments = [{"msgtype": "link", "link": {**link, **({"media_id": media_ids[0]} if media_ids else {})}}]
        else:
            attachments = [{"msgtype": "image", "image": {"media_id": media_id}} for media_id in media_ids]
        body = await self.client.call(app_key(account), "/cgi-bin/externalcontact/add_moment_task", {
            "text": {"content": text}, **({"attachments": attachments} if attachments else {}),
            **({"visible_range": visible} if visible else {})})
        return str(body["jobid"])

    async def moment_job(self, account: AccountRef, jobid: str) -> dict[str, Any] | None:
        """The task's outcome once WeCom made it (get_moment_task_result status 3), else None."""
        body = await self.client.call(app_key(account), "/cgi-bin/externalcontact/get_moment_task_result",
                                      params={"jobid": jobid})
        return (body.get("result") or {}) if body.get("status") == 3 else None

    async def moment_list(self, account: AccountRef, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
        """The company's moments posted between `start` and `end` (get_moment_list, filter_type 2: the
        company's and reps' own; WeCom pages 20 at a time): moment_id, creator, create_type (0 the
        company, 1 a rep), create_time, text, image, link."""
        found: list[dict[str, Any]] = []
        cursor = ""
        while True:
            body = await self.client.call(app_key(account), "/cgi-bin/externalcontact/get_moment_list", {
                "start_time": int(start.timestamp()), "end_time": int(end.timestamp()), "filter_type": 2,
                "cursor": cursor, "limit": 20})
            found.extend(body.get("moment_list") or [])
            cursor = str(body.get("next_cursor") or "")
            if not cursor:
                return found

    async def moment_reach(self, account: AccountRef, moment_id: str, userid: str) -> dict[str, int]:
        """How far one rep's post of a moment went: the customers who can see it
        (get_moment_send_result), and their likes and comments (get_moment_comments)."""
        app, customers, cursor = app_key(account), 0, ""
        while True:
            body = await self.client.call(app, "/cgi-bin/externalcontact/get_moment_send_result",
                                          {"moment_id": moment_id, "userid": userid, "cursor": cursor, "limit": 5000})
            customers += len(body.get("customer_list") or [])
            cursor = str(body.get("next_cursor") or "")
            if not cursor:
                break
        body = await self.client.call(app, "/cgi-bin/externalcontact/get_moment_comments",
                                      {"moment_id": moment_id, "userid": userid})
        return {"customers": customers, "likes": len(body.get("like_list") or []),
                "comments": len(body.get("comment_list") or [])}

    async def moment_published(self, account: AccountRef, moment_id: str) -> dict[str, bool]:
        """Which reps published the moment (get_moment_task: publish_status 1)."""
        found: dict[str, bool] = {}
        cursor = ""
        while True:
            body = await self.client.call(app_key(account), "/cgi-bin/externalcontact/get_moment_task",
                                          {"moment_id": moment_id, "cursor": cursor, "limit": 1000})
            found.update({str(t.get("userid")): t.get("publish_status") == 1 for t in body.get("task_list") or []})
            cursor = str(body.get("next_cursor") or "")
            if not cursor:
                return found

    async def corp_tags(self, account: AccountRef) -> list[dict[str, str]]:
        """The company's customer tags (get_corp_tag_list): group id and name, tag id and name."""
        body = await self.client.call(app_key(account), "/cgi-bin/externalcontact/get_corp_tag_list", {})
        return [{"group_id": str(group.get("group_id")), "group_name": str(group.get("group_name") or ""),
                 "tag_id": str(tag.get("id")), "name": str(tag.get("name") or "")}
                for group in body.get("tag_group") or [] if not group.get("deleted")
                for tag in group.get("tag") or [] if not tag.get("deleted")]

    async def add_corp_tags(self, account: AccountRef, group_name: str, names: list[str]) -> list[dict[str, str]]:
        """New tags in the group named `group_name` (made when missing): what WeCom created."""
        body = await self.client.call(app_key(account), "/cgi-bin/externalcontact/add_corp_tag", {
            "group_name": group_name, "tag": [{"name": name} for name in names]})
        group = body.get("tag_group") or {}
        return [{"group_id": str(group.get("group_id")), "group_name": str(group.get("group_name") or group_name),
                 "tag_id": str(tag.get("id")), "name": str(tag.get("name") or "")} for tag in group.get("tag") or []]

    async def customer_corp_tags(self, account: AccountRef, external: str, userid: str) -> list[str] | None:
        """The corp tags' names `userid` has on the customer (externalcontact/get); None when the
        customer is no longer theirs."""
        try:
            body = await self.client.call(app_key(account), "/cgi-bin/externalcontact/get",
                                          params={"external_userid": external})
        except ApiError as exc:
            if exc.errcode in (40096, 84061):
                return None
            raise
        follow = next((f for f in body.get("follow_user") or [] if f.get("userid") == userid), None)
        if follow is None:
            return None
        corp = [t for t in follow.get("tags") or [] if t.get("type") == 1 and t.get("tag_name")]  # 2: a rep's own
        return sorted({str(t["tag_name"]) for t in corp})

    async def edit_corp_tag(self, account: AccountRef, tag_id: str, name: str) -> None:
        await self.client.call(app_key(account), "/cgi-bin/externalcontact/edit_corp_tag", {"id": tag_id, "name": name})

    async def delete_corp_tags(self, account: AccountRef, tag_ids: list[str]) -> None:
        await self.client.call(app_key(account), "/cgi-bin/externalcontact/del_corp_tag", {"tag_id": tag_ids})

    async def mark_tag(self, account: AccountRef, *, userid: str, external_userid: str, add: list[str],
                       remove: list[str]) -> None:
        """Set a customer's corp tags as the rep `userid` sees them (mark_tag)."""
        await self.client.call(app_key(account), "/cgi-bin/externalcontact/mark_tag", {
            "userid": userid, "external_userid": external_userid, "add_tag": add, "remove_tag": remove})

    async def transfer_customers(self, account: AccountRef, *, handover: str, takeover: str, externals: list[str],
                                 resigned: bool) -> dict[str, int]:
        """Ask WeCom to move customers from `handover` to `takeover` (在职继承, or 离职继承 when the
        handover rep left): each customer's errcode, 0 where WeCom asked them. At most 100 a call."""
        if len(externals) > MAX_TRANSFER:
            raise ValueError(f"at most {MAX_TRANSFER} customers a call")
        path = "/cgi-bin/externalcontact/" + ("resigned/transfer_customer" if resigned else "transfer_customer")
        body = await self.client.call(app_key(account), path, {
            "handover_userid": handover, "takeover_userid": takeover, "external_userid": externals})
        return {str(c.get("external_userid")): int(c.get("errcode") or 0) for c in body.get("customer") or []}

    async def transfer_groups(self, account: AccountRef, *, chat_ids: list[str], new_owner: str,
                              resigned: bool) -> dict[str, int]:
        """Give customer groups a new owner (groupchat/onjob_transfer, or groupchat/transfer once the
        owner left): each group's errcode, 0 where it moved. At most 100 a call."""
        path = "/cgi-bin/externalcontact/groupchat/" + ("transfer" if resigned else "onjob_transfer")
        body = await self.client.call(app_key(account), path, {"chat_id_list": chat_ids, "new_owner": new_owner})
        failed = {str(c.get("chat_id")): int(c.get("errcode") or 0) for c in body.get("failed_chat_list") or []}
        return {chat_id: failed.get(chat_id, 0) for chat_id in chat_ids}

    async def transfer_results(self, account: AccountRef, *, handover: str, takeover: str,
                               resigned: bool) -> dict[str, int]:
        """How WeCom's transfers from `handover` to `takeover` stand, per customer (1 done, 2 waiting
        for the customer, 3 refused, 4 the new rep is at their customer limit, 5 no such transfer)."""
        path = "/cgi-bin/externalcontact/" + ("resigned/transfer_result" if resigned else "transfer_result")
        statuses: dict[str, int] = {}
        cursor = ""
        while True:
            body = await self.client.call(app_key(account), path, {
                "handover_userid": handover, "takeover_userid": takeover, "cursor": cursor})
            statuses.update({str(c.get("external_userid")): int(c.get("status") or 0)
                             for c in body.get("customer") or []})
            cursor = str(body.get("next_cursor") or "")
            if not cursor:
                return statuses

    async def unassigned_customers(self, account: AccountRef) -> list[dict[str, Any]]:
        """Customers of people who left the company and were not handed to anyone yet
        (get_unassigned_list): handover userid, external userid, when the rep left."""
        found: list[dict[str, Any]] = []
        cursor = ""
        while True:
            body = await self.client.call(app_key(account), "/cgi-bin/externalcontact/get_unassigned_list",
                                          {"cursor": cursor, "page_size": 1000})
            found += [{"handover_userid": i.get("handover_userid"), "external_userid": i.get("external_userid"),
                       "dimission_time": i.get("dimission_time")} for i in body.get("info") or []]
            cursor = str(body.get("next_cursor") or "")
            if body.get("is_last", True) or not cursor:
                return found
