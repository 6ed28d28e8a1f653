"""WeCom's customer operations (私域运营) in the simulator, as WeCom answers them: contact ways
(「联系我」) and a customer scanning one, group QR codes (加入群聊) filling groups in order, moments
(朋友圈) made asynchronously, customer groups and their changes and statistics, corp tags and
customers' tags per rep, and customers and groups moved between reps (在职 / 离职继承). Error
codes not confirmed from WeCom's documents are marked where they are raised."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from channels.simulators.wecom_app import SimApp, WeComApiError


class CustomerOperations:
    """Mixed into the WeCom simulator: its API handlers and the acts of its people."""

    # The simulator's: where it is served, a callback to the hub, a customer's add event.
    base_url: str
    _push: Callable[[SimApp, dict[str, Any]], dict[str, Any]]
    customer_adds: Callable[..., dict[str, Any]]

    def customer_scans(self, app: SimApp, config_id: str, external: str, *, name: str = "") -> dict:
        """The customer scans a contact way's QR code and adds one of its users (WeCom picks: here
        the one who has had the fewest adds through it); the add event carries the code's state."""
        way = app.contact_ways.get(config_id)
        if way is None:
            raise WeComApiError(40058, f"invalid config_id {config_id}")  # code not confirmed from WeCom's documents
        users = way["user"]
        rep = min(users, key=lambda u: (way["adds"].get(u, 0), users.index(u)))
        way["adds"][rep] = way["adds"].get(rep, 0) + 1
        return self.customer_adds(app, external, rep, name=name, state=way.get("state", ""))

    def _contact_way_fields(self, app: SimApp, body: dict[str, Any], way: dict[str, Any]) -> None:
        users = body.get("user", way.get("user", []))
        if not isinstance(users, list) or not users or (way["type"] == 1 and len(users) != 1) or len(users) > 100:
            raise WeComApiError(40058, "user: one userid for type 1, 1 to 100 for type 2")
        for userid in users:
            if userid not in app.members:
                raise WeComApiError(60111, f"userid not found: {userid}")
        state = str(body.get("state", way.get("state", "")))
        remark = str(body.get("remark", way.get("remark", "")))
        if len(state) > 30 or len(remark) > 30:
            raise WeComApiError(40058, "state and remark: at most 30 characters")
        way.update(user=list(users), state=state, remark=remark,
                   skip_verify=bool(body.get("skip_verify", way.get("skip_verify", True))))

    def _add_contact_way(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("type") not in (1, 2) or body.get("scene") not in (1, 2):
            raise WeComApiError(40058, "type: 1 or 2; scene: 1 or 2")
        config_id = secrets.token_hex(16)
        way: dict[str, Any] = {"config_id": config_id, "type": body["type"], "scene": body["scene"], "adds": {}}
        self._contact_way_fields(app, body, way)
        if body["scene"] == 2:
            way["qr_code"] = f"{self.base_url}/_sim/apps/{app.agent_id}/contact_ways/{config_id}/qr.svg"
        app.contact_ways[config_id] = way
        return {"config_id": config_id, **({"qr_code": way["qr_code"]} if "qr_code" in way else {})}

    def _way(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        way = app.contact_ways.get(str(body.get("config_id") or ""))
        if way is None:
            raise WeComApiError(40058, "invalid config_id")  # code not confirmed from WeCom's documents
        return way

    def _update_contact_way(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        self._contact_way_fields(app, body, self._way(app, body))
        return {}

    def _get_contact_way(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        way = self._way(app, body)
        return {"contact_way": {k: v for k, v in way.items() if k != "adds"}}

    def _del_contact_way(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        del app.contact_ways[self._way(app, body)["config_id"]]
        return {}

    # ---- group QR codes (加入群聊) ---------------------------------------------------

    def customer_scans_group_code(self, app: SimApp, config_id: str, external: str, name: str) -> str:
        """A customer scans a group QR code: they join its first group with room; when all are full
        and the code may, WeCom makes the next one (owned by the first group's owner). The chat id."""
        way = app.join_ways[config_id]
        chat_id = next((c for c in way["chat_id_list"] if c in app.groups
                        and len(app.groups[c]["members"]) < app.group_size), None)
        if chat_id is None:
            if not way.get("auto_create_room") or not way["chat_id_list"]:
                raise WeComApiError(86006, "every group of the code is full")  # code from WeCom's global list
            owner = app.groups[way["chat_id_list"][0]]["owner"]
            number = way.setdefault("next_room", way.get("room_base_id", 1) + 1)
            way["next_room"] = number + 1
            chat_id = self.group_created(app, owner, f"{way.get('room_base_name', '')}{number}", {})
            way["chat_id_list"].append(chat_id)
        app.groups[chat_id]["members"].append({"userid": external, "type": 2, "join_time": int(time.time()),
                                               "join_scene": 3, "name": name, "state": way.get("state", "")})
        self._group_event(app, chat_id, "update", "add_member")
        return chat_id

    def _join_way_fields(self, app: SimApp, body: dict[str, Any], way: dict[str, Any]) -> None:
        chats = body.get("chat_id_list", way.get("chat_id_list", []))
        if not isinstance(chats, list) or not 1 <= len(chats) <= 5:
            raise WeComApiError(40058, "chat_id_list: 1 to 5 groups")
        for chat_id in chats:
            if chat_id not in app.groups:
                raise WeComApiError(86003, f"chatid not exist: {chat_id}")
        if len(str(body.get("state", ""))) > 30 or len(str(body.get("remark", ""))) > 30:
            raise WeComApiError(40058, "state and remark: at most 30 characters")
        way.update({k: body[k] for k in ("scene", "remark", "state", "auto_create_room", "room_base_name",
                                         "room_base_id") if k in body}, chat_id_list=list(chats))

    def _add_join_way(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("scene") not in (1, 2):
            raise WeComApiError(40058, "scene: 1 or 2")
        config_id = secrets.token_hex(16)
        way: dict[str, Any] = {"config_id": config_id}
        self._join_way_fields(app, body, way)
        way["qr_code"] = f"{self.base_url}/_sim/apps/{app.agent_id}/contact_ways/{config_id}/qr.svg"
        app.join_ways[config_id] = way
        return {"config_id": config_id}

    def _join_way(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        way = app.join_ways.get(str(body.get("config_id") or ""))
        if way is None:
            raise WeComApiError(40058, "invalid config_id")  # code not confirmed from WeCom's documents
        return way

    def _update_join_way(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        self._join_way_fields(app, body, self._join_way(app, body))
        return {}

    def _get_join_way(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        return {"join_way": {k: v for k, v in self._join_way(app, body).items() if k != "next_room"}}

    def _del_join_way(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        del app.join_ways[self._join_way(app, body)["config_id"]]
        return {}

    @staticmethod
    def _check_attachments(app: SimApp, attachments: list[Any]) -> None:
        """A welcome's or 群发's attachments as WeCom checks them: at most 9; an image by a media id
        of an uploaded image (or a pic_url); a link with title (128 bytes) and url; a mini-program
        with title (64 bytes), a cover's media id, appid and page."""
        def media(media_id: Any) -> bool:
            return (app.kf.media.get(str(media_id)) or {}).get("type") == "image"

        if not isinstance(attachments, list) or len(attachments) > 9:
            raise WeComApiError(40058, "attachments: at most 9")
        for item in attachments:
            kind = item.get("msgtype") if isinstance(item, dict) else None
            part = item.get(kind) if kind else None
            if kind not in ("image", "link", "miniprogram", "video", "file") or not isinstance(part, dict):
                raise WeComApiError(40058, "attachments: each an image, link, miniprogram, video or file")
            if kind == "image" and not (media(part.get("media_id")) or part.get("pic_url")):
                raise WeComApiError(40007, "invalid media_id")
            if kind == "link" and (not part.get("title") or not part.get("url")
                                   or len(str(part["title"]).encode()) > 128):
                raise WeComApiError(40058, "link: title (at most 128 bytes) and url are required")
            if kind == "miniprogram":
                if not all(part.get(key) for key in ("title", "pic_media_id", "appid", "page")) \
                        or len(str(part["title"]).encode()) > 64:
                    raise WeComApiError(40058, "miniprogram: title (at most 64 bytes), pic_media_id, appid and "
                                               "page are required")
                if not media(part["pic_media_id"]):
                    raise WeComApiError(40007, "invalid media_id")

    def _welcome_template(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        """group_welcome_template/add or /edit: words (at most 4000) and one of image, link,
        miniprogram, file, video, each checked as a welcome's attachment is."""
        text = str((body.get("text") or {}).get("content") or "")
        if not text or len(text) > 4000:
            raise WeComApiError(40058, "text: 1 to 4000 characters")
        parts = [{"msgtype": kind, kind: body[kind]} for kind in ("image", "link", "miniprogram", "file", "video")
                 if body.get(kind)]
        if len(parts) > 1:
            raise WeComApiError(40058, "one of image, link, miniprogram, file or video")
        self._check_attachments(app, parts)
        template_id = str(body.get("template_id") or "") or "msg" + secrets.token_hex(12)
        if body.get("template_id") and template_id not in app.welcome_templates:
            raise WeComApiError(40058, "invalid template_id")
        app.welcome_templates[template_id] = text
        app.welcome_template_parts[template_id] = parts
        return {} if body.get("template_id") else {"template_id": template_id}

    # ---- moments (朋友圈) ------------------------------------------------------------

    def member_publishes(self, app: SimApp, moment_id: str, userid: str) -> None:
        """A rep publishes the company's moment from their WeCom client: their customers (with
        one of its tags, where it has tags) can see it."""
        moment = app.moments[moment_id]
        moment["published"][userid] = True
        moment.setdefault("visible", {})[userid] = [
            external for external, customer in app.customers.items() if userid in customer.get("follow", set())
            and (not moment["tags"] or set(moment["tags"]) & set((customer.get("tags") or {}).get(userid, [])))]

    def member_posts(self, app: SimApp, userid: str, text: str) -> str:
        """A rep posts their own moment (create_type 1), seen by all their customers: its id."""
        moment_id = "mom" + secrets.token_hex(12)
        app.moments[moment_id] = {"text": text, "senders": [userid], "tags": [], "attachments": [],
                                  "published": {}, "creator": userid, "create_type": 1, "create_time": int(time.time())}
        self.member_publishes(app, moment_id, userid)
        return moment_id

    def customer_reacts(self, app: SimApp, moment_id: str, userid: str, external: str, *, comment: bool) -> None:
        """A customer who can see a rep's post of the moment likes it, or comments on it."""
        if external not in app.moments[moment_id].get("visible", {}).get(userid, []):
            raise ValueError(f"{external} cannot see {userid}'s post of {moment_id}")
        kind = "comments" if comment else "likes"
        app.moments[moment_id].setdefault(kind, []).append(
            {"external_userid": external, "userid": userid, "create_time": int(time.time())})

    def _add_moment_task(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        text = str((body.get("text") or {}).get("content") or "")
        attachments = body.get("attachments") or []
        if not text and not attachments:
            raise WeComApiError(40058, "text or attachments: one is required")
        if len(text) > 2000 or len(attachments) > 9:
            raise WeComApiError(40058, "text: at most 2000 characters; attachments: at most 9")
        kinds = [a.get("msgtype") for a in attachments]
        if set(kinds) - {"image", "video", "link"} or ("image" in kinds and len(set(kinds)) > 1) \
                or (set(kinds) & {"video", "link"} and len(kinds) > 1):
            raise WeComApiError(40058, "attachments: up to 9 images, or one video, or one link")
        for item in attachments:
            part = item.get(item["msgtype"]) or {}
            media_id = part.get("media_id")
            if item["msgtype"] == "link" and not (part.get("title") and part.get("url")):
                raise WeComApiError(40058, "link: title and url are required")
            if (media_id or item["msgtype"] != "link") \
                    and (app.kf.media.get(str(media_id)) or {}).get("attachment_type") != 1:
                raise WeComApiError(40007, "invalid media_id: a moments attachment comes from "
                                           "media/upload_attachment with attachment_type 1")
        visible = body.get("visible_range") or {}
        senders = list(((visible.get("sender_list") or {}).get("user_list")) or app.members)
        tags = list(((visible.get("external_contact_list") or {}).get("tag_list")) or [])
        known_tags = {t for g in app.tag_groups.values() for t in g["tags"]}
        jobid = "job" + secrets.token_hex(10)
        moment_id = "mom" + secrets.token_hex(12)
        app.moments[moment_id] = {"text": text, "senders": [u for u in senders if u in app.members], "tags": tags,
                                  "attachments": attachments, "create_type": 0, "create_time": int(time.time()),
                                  "published": {u: False for u in senders if u in app.members}}
        app.moment_jobs[jobid] = {"moment_id": moment_id, "checked": 0,
                                  "invalid_users": [u for u in senders if u not in app.members],
                                  "invalid_tags": [t for t in tags if t not in known_tags]}
        return {"jobid": jobid}

    def _moment_task_result(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        """Made asynchronously: the first look finds it in progress (status 2), the next done (3)."""
        job = app.moment_jobs.get(str(body.get("jobid") or ""))
        if job is None:
            raise WeComApiError(40058, "invalid jobid")
        job["checked"] += 1
        if job["checked"] == 1:
            return {"status": 2, "type": "add_moment_task"}
        return {"status": 3, "type": "add_moment_task", "result": {
            "errcode": 0, "errmsg": "ok", "moment_id": job["moment_id"],
            "invalid_sender_list": {"user_list": job["invalid_users"], "department_list": []},
            "invalid_external_contact_list": {"tag_list": job["invalid_tags"]}}}

    def _moment_list(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        """get_moment_list: start_time and end_time required (at most 30 days apart), filter_type
        0 the company's, 1 reps' own, 2 both; 20 a page."""
        try:
            start, end = int(body["start_time"]), int(body["end_time"])
        except (KeyError, TypeError, ValueError):
            raise WeComApiError(40058, "start_time and end_time are required") from None
        if end < start or end - start > 30 * 86400:
            raise WeComApiError(40058, "the time range is at most 30 days")  # WeCom's generic 不合法的参数
        kinds = {0: {0}, 1: {1}}.get(int(body.get("filter_type", 2)), {0, 1})
        limit = min(int(body.get("limit") or 20), 20)
        rows = [(moment_id, m) for moment_id, m in app.moments.items()
                if m.get("create_type", 0) in kinds and start <= m["create_time"] <= end]
        offset = int(body.get("cursor") or 0)
        page = rows[offset:offset + limit]
        return {"next_cursor": str(offset + limit) if offset + limit < len(rows) else "", "moment_list": [{
            "moment_id": moment_id, "create_type": m.get("create_type", 0), "create_time": m["create_time"],
            "visible_type": 0 if m["tags"] else 1, "text": {"content": m["text"]},
            **({"creator": m["creator"]} if m.get("creator") else {})} for moment_id, m in page]}

    def _moment_send_result(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        moment = app.moments.get(str(body.get("moment_id") or ""))
        if moment is None:
            raise WeComApiError(40058, "invalid moment_id")
        visible = moment.get("visible", {}).get(str(body.get("userid") or ""), [])
        limit = min(int(body.get("limit") or 3000), 5000)
        offset = int(body.get("cursor") or 0)
        return {"next_cursor": str(offset + limit) if offset + limit < len(visible) else "",
                "customer_list": [{"external_userid": e} for e in visible[offset:offset + limit]]}

    def _moment_comments(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        moment = app.moments.get(str(body.get("moment_id") or ""))
        if moment is None:
            raise WeComApiError(40058, "invalid moment_id")
        userid = str(body.get("userid") or "")
        mine = {kind: [{"external_userid": r["external_userid"], "create_time": r["create_time"]}
                       for r in moment.get(kind, []) if r["userid"] == userid] for kind in ("likes", "comments")}
        return {"comment_list": mine["comments"], "like_list": mine["likes"]}

    def _moment_task(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        moment = app.moments.get(str(body.get("moment_id") or ""))
        if moment is None:
            raise WeComApiError(40058, "invalid moment_id")
        return {"next_cursor": "", "task_list": [{"userid": u, "publish_status": int(done)}
                                                for u, done in moment["published"].items()]}

    # ---- customer groups (客户群) ---------------------------------------------------

    def group_created(self, app: SimApp, owner: str, name: str, customers: dict[str, str]) -> str:
        """A rep makes a customer group with customers (external userid -> name): change_external_chat create."""
        if owner not in app.members:
            raise WeComApiError(60111, f"userid not found: {owner}")
        chat_id = "wr" + secrets.token_hex(14)
        now = int(time.time())
        app.groups[chat_id] = {"name": name, "owner": owner, "create_time": now, "notice": "", "members": [
            {"userid": owner, "type": 1, "join_time": now, "join_scene": 1, "name": app.members[owner]},
            *({"userid": external, "type": 2, "join_time": now, "join_scene": 1, "invitor": {"userid": owner},
               "name": customer} for external, customer in customers.items())]}
        self._group_event(app, chat_id, "create")
        return chat_id

    def group_changes(self, app: SimApp, chat_id: str, *, joins: dict[str, str] | None = None,
                      leaves: list[str] | None = None, name: str | None = None, dismiss: bool = False) -> None:
        """Customers join (by QR code) or leave, the group is renamed or dismissed: change_external_chat."""
        group = app.groups[chat_id]
        if dismiss:
            del app.groups[chat_id]
            self._group_event(app, chat_id, "dismiss")
            return
        for external, customer in (joins or {}).items():
            group["members"].append({"userid": external, "type": 2, "join_time": int(time.time()), "join_scene": 3,
                                     "name": customer})
        group["members"] = [m for m in group["members"] if m["userid"] not in (leaves or [])]
        group["name"] = name or group["name"]
        detail = "add_member" if joins else "del_member" if leaves else "change_name"
        self._group_event(app, chat_id, "update", detail)

    def _group_event(self, app: SimApp, chat_id: str, change: str, detail: str = "") -> None:
        self._push(app, {"ToUserName": app.corp_id, "FromUserName": "sys", "CreateTime": int(time.time()),
                         "MsgType": "event", "Event": "change_external_chat", "ChatId": chat_id, "ChangeType": change,
                         **({"UpdateDetail": detail} if detail else {})})

    def _group_statistic(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        """Per day (China time) for the owners' groups: groups and members in all, new members, messages."""
        begin, end = int(body.get("day_begin_time") or 0), int(body.get("day_end_time") or 0)
        owners = set((body.get("owner_filter") or {}).get("userid_list") or [])
        if not owners:
            raise WeComApiError(40058, "owner_filter.userid_list is required")
        if not begin or end and (end < begin or end - begin > 30 * 86400):
            raise WeComApiError(40058, "day_begin_time / day_end_time: at most 30 days")
        china = 8 * 3600
        items = []
        day = begin
        while day <= (end or begin):
            stamp = time.strftime("%Y-%m-%d", time.gmtime(day + china))
            groups = [g for g in app.groups.values() if g["owner"] in owners and g["create_time"] < day + 86400]
            members = [m for g in groups for m in g["members"] if m["join_time"] < day + 86400]
            items.append({"stat_time": day, "data": {
                "new_chat_cnt": sum(1 for g in groups if day <= g["create_time"] < day + 86400),
                "chat_total": len(groups), "chat_has_msg": 0,
                "new_member_cnt": sum(1 for m in members if day <= m["join_time"] < day + 86400 and m["type"] == 2),
                "member_total": len(members), "member_has_msg": 0,
                "msg_total": sum(app.group_messages.get(f"{o}|{stamp}", 0) for o in owners),
                "migrate_trainee_chat_cnt": 0}})
            day += 86400
        return {"items": items}

    def _group_list(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        limit = body.get("limit", 1000)
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise WeComApiError(40058, "limit: 1 to 1000")
        ids = sorted(app.groups)
        start = int(body.get("cursor") or 0)
        page = ids[start:start + limit]
        more = start + len(page) < len(ids)
        return {"group_chat_list": [{"chat_id": c, "status": 0} for c in page],
                "next_cursor": str(start + len(page)) if more else ""}

    def _group_get(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        group = app.groups.get(str(body.get("chat_id") or ""))
        if group is None:
            raise WeComApiError(86003, "chatid not exist")  # code from WeCom's global list (参数 chatid 不存在)
        named = body.get("need_name") == 1
        return {"group_chat": {"chat_id": body["chat_id"], "name": group["name"], "owner": group["owner"],
                               "create_time": group["create_time"], "notice": group["notice"],
                               "member_list": [{k: v for k, v in m.items() if named or k != "name"}
                                               for m in group["members"]],
                               "admin_list": []}}

    # ---- corp customer tags --------------------------------------------------------

    def admin_changes_tag(self, app: SimApp, tag_id: str, name: str | None) -> dict[str, Any]:
        """An admin renames (or, with None, deletes) a corp tag in WeCom's console: change_external_tag."""
        group = next(g for g in app.tag_groups.values() if tag_id in g["tags"])
        if name is None:
            del group["tags"][tag_id]
            for customer in app.customers.values():
                for ids in customer.get("tags", {}).values():
                    if tag_id in ids:
                        ids.remove(tag_id)
        else:
            group["tags"][tag_id] = name
        return self._push(app, {"ToUserName": app.corp_id, "FromUserName": "sys", "CreateTime": int(time.time()),
                                "MsgType": "event", "Event": "change_external_tag", "Id": tag_id, "TagType": "tag",
                                "ChangeType": "delete" if name is None else "update"})

    def rep_tags_customer(self, app: SimApp, userid: str, external: str, tag_ids: list[str]) -> dict[str, Any]:
        """A rep sets a customer's corp tags in their WeCom client: edit_external_contact."""
        app.customers[external].setdefault("tags", {})[userid] = list(tag_ids)
        return self._push(app, {"ToUserName": app.corp_id, "FromUserName": "sys", "CreateTime": int(time.time()),
                                "MsgType": "event", "Event": "change_external_contact",
                                "ChangeType": "edit_external_contact", "UserID": userid, "ExternalUserID": external})

    def customer_tags(self, app: SimApp, external: str, userid: str) -> list[str]:
        """The names of the corp tags `userid` sees on the customer."""
        names = {tag_id: name for g in app.tag_groups.values() for tag_id, name in g["tags"].items()}
        return sorted(names[t] for t in app.customers.get(external, {}).get("tags", {}).get(userid, []))

    def _corp_tag_list(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        return {"tag_group": [{"group_id": gid, "group_name": g["group_name"], "create_time": 0, "order": 0,
                               "tag": [{"id": tid, "name": name, "create_time": 0, "order": 0}
                                       for tid, name in g["tags"].items()]} for gid, g in app.tag_groups.items()]}

    def _add_corp_tag(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        names = [str(t.get("name") or "") for t in body.get("tag") or []]
        if not names or any(not n or len(n) > 30 for n in names):
            raise WeComApiError(40058, "tag: 1 or more, names of 1 to 30 characters")
        gid = str(body.get("group_id") or "")
        if not gid:
            group_name = str(body.get("group_name") or "")
            gid = next((k for k, g in app.tag_groups.items() if g["group_name"] == group_name), "")
            if not gid:
                gid = "et" + secrets.token_hex(10)
                app.tag_groups[gid] = {"group_name": group_name, "tags": {}}
        group = app.tag_groups.get(gid)
        if group is None:
            raise WeComApiError(40068, "invalid tagid")
        made = []
        for name in names:
            tag_id = next((t for t, n in group["tags"].items() if n == name), None) or "et" + secrets.token_hex(10)
            group["tags"][tag_id] = name
            made.append({"id": tag_id, "name": name, "create_time": int(time.time()), "order": 0})
        return {"tag_group": {"group_id": gid, "group_name": group["group_name"], "create_time": 0, "tag": made}}

    def _edit_corp_tag(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        tag_id = str(body.get("id") or "")
        group = next((g for g in app.tag_groups.values() if tag_id in g["tags"]), None)
        if group is None:
            raise WeComApiError(40068, "invalid tagid")
        group["tags"][tag_id] = str(body.get("name") or group["tags"][tag_id])
        return {}

    def _del_corp_tag(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        for tag_id in body.get("tag_id") or []:
            for group in app.tag_groups.values():
                group["tags"].pop(tag_id, None)
        return {}

    def _mark_tag(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        userid, external = str(body.get("userid") or ""), str(body.get("external_userid") or "")
        if userid not in app.members:
            raise WeComApiError(60111, f"userid not found: {userid}")
        customer = app.customers.get(external)
        if customer is None or userid not in customer.get("follow", {}):
            raise WeComApiError(84061, "not external contact")
        known = {t for g in app.tag_groups.values() for t in g["tags"]}
        add, remove = list(body.get("add_tag") or []), list(body.get("remove_tag") or [])
        if not add and not remove:
            raise WeComApiError(40058, "add_tag or remove_tag is required")
        if any(t not in known for t in add + remove):
            raise WeComApiError(40068, "invalid tagid")
        ids = customer.setdefault("tags", {}).setdefault(userid, [])
        ids[:] = [t for t in ids if t not in remove] + [t for t in add if t not in ids]
        return {}

    # ---- 在职 / 离职继承 ---------------------------------------------------------

    def member_leaves(self, app: SimApp, userid: str) -> None:
        """A member leaves the company: their customers wait in get_unassigned_list."""
        app.members.pop(userid, None)
        app.resigned[userid] = int(time.time())

    def settle_transfers(self, app: SimApp, refused: set[str] = frozenset()) -> None:
        """The customers' 24 hours pass: those waiting move to the new rep unless they refused."""
        for transfer in app.transfers:
            if transfer["status"] != 2:
                continue
            follow = app.customers[transfer["external"]]["follow"]
            if transfer["external"] in refused:
                transfer["status"] = 3
            else:
                follow[transfer["takeover"]] = follow.pop(transfer["handover"], {"state": "", "createtime": 0})
                transfer["status"], transfer["takeover_time"] = 1, int(time.time())

    def _transfer(self, *, resigned: bool) -> Any:
        def transfer(app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
            handover, takeover = str(body.get("handover_userid") or ""), str(body.get("takeover_userid") or "")
            externals = body.get("external_userid") or []
            if not isinstance(externals, list) or not 1 <= len(externals) <= 100:
                raise WeComApiError(40058, "external_userid: 1 to 100 customers")
            if takeover not in app.members:
                raise WeComApiError(60111, f"userid not found: {takeover}")
            if resigned != (handover in app.resigned) or (not resigned and handover not in app.members):
                # code not confirmed from WeCom's documents: 在职继承 needs a member, 离职继承 one who left
                raise WeComApiError(40003, f"invalid handover_userid {handover} for this kind of transfer")
            results = []
            for external in externals:
                follows = app.customers.get(external, {}).get("follow", {})
                if handover not in follows:
                    results.append({"external_userid": external, "errcode": 84061})
                    continue
                app.transfers.append({"handover": handover, "takeover": takeover, "external": external,
                                      "resigned": resigned, "status": 2, "takeover_time": 0})
                results.append({"external_userid": external, "errcode": 0})
            return {"customer": results}
        return transfer

    def _group_transfer(self, *, resigned: bool) -> Any:
        def transfer(app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
            chats, owner = body.get("chat_id_list") or [], str(body.get("new_owner") or "")
            if not isinstance(chats, list) or not 1 <= len(chats) <= 100:
                raise WeComApiError(40058, "chat_id_list: 1 to 100 groups")
            if owner not in app.members:
                raise WeComApiError(60111, f"userid not found: {owner}")
            failed = []
            for chat_id in chats:
                group = app.groups.get(chat_id)
                if group is None:
                    failed.append({"chat_id": chat_id, "errcode": 86003, "errmsg": "chatid not exist"})
                elif resigned != (group["owner"] in app.resigned):
                    # code not confirmed from WeCom's documents: onjob needs an owner in the company, the
                    # other one who left
                    failed.append({"chat_id": chat_id, "errcode": 90501, "errmsg": "owner state mismatch"})
                else:
                    group["owner"] = owner
                    self._group_event(app, chat_id, "update", "change_owner")
            return {"failed_chat_list": failed}
        return transfer

    def _transfer_result(self, *, resigned: bool) -> Any:
        def result(app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
            handover, takeover = str(body.get("handover_userid") or ""), str(body.get("takeover_userid") or "")
            found = [t for t in app.transfers if (t["handover"], t["takeover"], t["resigned"])
                     == (handover, takeover, resigned)]
            start = int(body.get("cursor") or 0)
            page = found[start:start + 100]
            more = start + len(page) < len(found)
            return {"customer": [{"external_userid": t["external"], "status": t["status"],
                                  "takeover_time": t["takeover_time"]} for t in page],
                    "next_cursor": str(start + len(page)) if more else ""}
        return result

    def _unassigned(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        moving = {t["external"] for t in app.transfers if t["status"] in (1, 2) and t["resigned"]}
        found = [{"handover_userid": rep, "external_userid": external, "dimission_time": app.resigned[rep]}
                 for external, customer in app.customers.items() for rep in customer.get("follow", {})
                 if rep in app.resigned and external not in moving]
        size = int(body.get("page_size") or 1000)
        start = int(body.get("cursor") or 0)
        page = found[start:start + size]
        last = start + len(page) >= len(found)
        return {"info": page, "is_last": last, "next_cursor": "" if last else str(start + len(page))}
