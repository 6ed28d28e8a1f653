"""A WeCom (企业微信) simulator: the server API a hub calls and the callbacks it receives.

API side (`/cgi-bin/...`, WeCom's JSON with `errcode` / `errmsg`): gettoken
(tokens expire; 40013 / 40001 for a wrong corp id or secret; 40014 / 42001 for
a bad or expired token), message/send (text, markdown, template_card; 30
messages a minute per member, then 45009; `invaliduser` for strangers),
externalcontact/send_welcome_msg (the WelcomeCode is valid 20 s, once) and
externalcontact/add_msg_template (a task the rep confirms; auto-confirmed by
default, so the customer receives it), externalcontact/get (name, the rep's
State, the WeChat unionid when the customer was added with one; 84061 for a
stranger), externalcontact/get_groupmsg_send_result (per customer of a task: 0 not sent
yet, 1 sent, 2 not a contact of the sender any more).

Callback side: everything a member does, and a customer's add / delete, becomes
the XML WeCom posts, encrypted and signed with the app's Token and EncodingAESKey
exactly like the platform, to the app's callback URL. What a customer writes to a
rep is not posted: it is archived (`wecom_archive.py`) when the corp has session
archiving, as in WeCom. A callback not answered 2xx
within the deadline (5 s) is sent again with the same content, three retries
at most, like WeCom.

Control side (`/_sim/...`) for tests and the demo: create apps, members and
customers, act for them, read what the hub sent, expire tokens, inject errors.

The app's state is `wecom_app.SimApp`; WeCom's customer operations (contact ways, corp
tags, customer groups and their QR codes, moments, transfers) are `wecom_ops.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import secrets
import string
import time
from collections import deque
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import segno
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from channels.base import KEEPALIVE
from channels.simulators import wecom_kf as kf_sim
from channels.simulators.kept import KEPT_SENDS, KeptState
from channels.simulators.tencent import post_like_tencent
from channels.simulators.wecom_app import SimApp, WeComApiError, random_id
from channels.simulators.wecom_archive import Archive, build_sdk
from channels.simulators.wecom_ops import CustomerOperations
from channels.tencent import build_xml

log = logging.getLogger(__name__)

TOKEN_LIFETIME = 7200
WELCOME_WINDOW = 20.0


class WeComSimulator(CustomerOperations):
    """The simulator's state and its ASGI app (`.app`)."""

    def __init__(self, *, callback_deadline: float = 5.0, retry_delays: tuple[float, ...] = (1.0, 2.0, 4.0),
                 state_file: Path | None = None) -> None:
        """`state_file`: where each app's members, customers, chats, sends, 群发 tasks and 微信客服
        state are kept across restarts (the demo's); an app brought back with its saved credentials
        finds them, and the hub's cursors into its logs stay good."""
        self.apps: dict[int, SimApp] = {}
        self.base_url = ""  # where the simulator is served (QR images link here): learnt from the first API call
        self.kept = KeptState(state_file, self._snapshot)
        self._saved: dict[str, Any] = self.kept.load() or {}
        self.callback_deadline = callback_deadline
        self.retry_delays = retry_delays  # three retries, as WeCom makes
        self._deliverers: dict[int, asyncio.Task[None]] = {}
        self._http: httpx.AsyncClient | None = None
        self.app = Starlette(
            routes=[
                Route("/cgi-bin/gettoken", self._gettoken, methods=["GET"]),
                Route("/cgi-bin/{path:path}", self._api, methods=["GET", "POST"]),
                Route("/", self._page, methods=["GET"]),
                Route("/_sim/apps", self._create_app, methods=["POST"]),
                Route("/_sim/apps", self._list_apps, methods=["GET"]),
                Route("/_sim/apps/{agent_id:int}/chats/{who}", self._chat, methods=["GET"]),
                Route("/_sim/apps/{agent_id:int}", self._state, methods=["GET"]),
                Route("/_sim/apps/{agent_id:int}/config", self._config, methods=["POST"]),
                Route("/_sim/apps/{agent_id:int}/faults", self._add_fault, methods=["POST"]),
                Route("/_sim/apps/{agent_id:int}/members/{userid}/{action}", self._member_action, methods=["POST"]),
                Route("/_sim/apps/{agent_id:int}/kf", self._kf_account, methods=["POST"]),
                Route("/_sim/apps/{agent_id:int}/kf/servicers/{userid}", self._kf_servicer_status, methods=["POST"]),
                Route("/_sim/apps/{agent_id:int}/kf/{open_kfid}/customers/{external}", self._kf_chat, methods=["GET"]),
                Route("/_sim/apps/{agent_id:int}/kf/{open_kfid}/customers/{external}/{action}", self._kf_action,
                      methods=["POST"]),
                Route("/_sim/apps/{agent_id:int}/customers/{external}/{action}", self._customer_action,
                      methods=["POST"]),
                Route("/_sim/apps/{agent_id:int}/contact_ways", self._list_contact_ways, methods=["GET"]),
                Route("/_sim/apps/{agent_id:int}/contact_ways/{config_id}/qr.svg", self._contact_way_qr,
                      methods=["GET"]),
                Route("/_sim/apps/{agent_id:int}/contact_ways/{config_id}/scan", self._scan, methods=["POST"]),
            ],
            lifespan=self._lifespan,
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        await self.aclose()

    # ---- state helpers (tests may call these directly) ------------------

    def create_app(self, *, agent_id: int | None = None, corp_id: str | None = None, secret: str | None = None,
                   token: str | None = None, encoding_aes_key: str | None = None) -> SimApp:
        """A new app; pass saved credentials to bring one back (the demo, across runs)."""
        agent_id = agent_id or 1_000_002 + len(self.apps)
        app = SimApp(
            corp_id=corp_id or "ww" + secrets.token_hex(8),
            agent_id=agent_id,
            secret=secret or secrets.token_urlsafe(32)[:43],
            token=token or random_id("", 16),
            encoding_aes_key=encoding_aes_key or "".join(
                secrets.choice(string.ascii_letters + string.digits) for _ in range(43)),
        )
        self.apps[agent_id] = app
        saved = self._saved.get(str(agent_id))
        if saved:
            app.members, app.customers, app.chats = saved["members"], saved["customers"], saved["chats"]
            app.sent, app.tasks, app.archived = saved["sent"], saved["tasks"], saved["archived"]
            app.archive_refused, app.kf = set(saved["archive_refused"]), kf_sim.restored(saved["kf"])
            app.contact_ways = saved.get("contact_ways", {})
            app.resigned, app.transfers = saved.get("resigned", {}), saved.get("transfers", [])
            app.tag_groups, app.groups = saved.get("tag_groups", {}), saved.get("groups", {})
            app.moments = saved.get("moments", {})
            app.join_ways, app.welcome_templates = saved.get("join_ways", {}), saved.get("welcome_templates", {})
            app.welcome_template_parts = saved.get("welcome_template_parts", {})
        return app

    # ---- kept across restarts ------------------------------------------------

    def save(self) -> None:
        self.kept.save()

    def _snapshot(self) -> dict[str, Any]:
        return {str(agent_id): {"members": app.members, "customers": app.customers, "chats": app.chats,
                                "sent": app.sent[-KEPT_SENDS:], "tasks": app.tasks, "archived": app.archived,
                                "archive_refused": sorted(app.archive_refused), "kf": kf_sim.kept(app.kf),
                                "contact_ways": app.contact_ways, "resigned": app.resigned,
                                "transfers": app.transfers, "tag_groups": app.tag_groups, "groups": app.groups,
                                "moments": app.moments, "join_ways": app.join_ways,
                                "welcome_templates": app.welcome_templates,
                                "welcome_template_parts": app.welcome_template_parts}
                for agent_id, app in self.apps.items()}

    def add_member(self, app: SimApp, userid: str, name: str | None = None) -> None:
        app.members[userid] = name or userid

    def member_writes(self, app: SimApp, userid: str, text: str) -> dict[str, Any]:
        if userid not in app.members:
            raise WeComApiError(60111, f"userid not found: {userid}")
        app.note(userid, "me", text)
        return self._push(app, {"ToUserName": app.corp_id, "FromUserName": userid, "CreateTime": int(time.time()),
                                "MsgType": "text", "Content": text, "MsgId": str(next(app.msg_ids)),
                                "AgentID": app.agent_id})

    def member_clicks(self, app: SimApp, userid: str, key: str, task_id: str = "") -> dict[str, Any]:
        card = next((m for m in reversed(app.sent) if m["to"] == userid and m.get("card")
                     and any(b["key"] == key for b in m["card"].get("button_list", []))), None)
        if card is None:
            raise WeComApiError(40058, f"no card with a button {key!r} was sent to {userid}")
        label = next(b["text"] for b in card["card"]["button_list"] if b["key"] == key)
        app.note(userid, "system", f"clicked “{label}”")
        return self._push(app, {"ToUserName": app.corp_id, "FromUserName": userid, "CreateTime": int(time.time()),
                                "MsgType": "event", "Event": "template_card_event", "EventKey": key,
                                "TaskId": task_id or card["card"].get("task_id", ""),
                                "CardType": "button_interaction", "ResponseCode": random_id("", 20),
                                "AgentID": app.agent_id})

    def customer_adds(self, app: SimApp, external: str, rep: str, *, name: str = "", state: str = "",
                      unionid: str = "") -> dict:
        """The customer adds `rep`; `unionid` is their WeChat unionid, which
        externalcontact/get then reports (as when the corp has bound its Open Platform)."""
        if rep not in app.members:
            raise WeComApiError(60111, f"userid not found: {rep}")
        customer = app.customers.setdefault(external, {"name": name or external, "follow": {}, "unionid": ""})
        customer["follow"][rep] = {"state": state, "createtime": int(time.time())}
        if unionid:
            customer["unionid"] = unionid
        app.note(external, "system", f"you added {app.members[rep]} ({rep}) on WeCom")
        code = random_id("", 32)
        app.welcome_codes[code] = {"external": external, "rep": rep, "expires": time.monotonic() + WELCOME_WINDOW,
                                   "used": False}
        fields: dict[str, Any] = {"ToUserName": app.corp_id, "FromUserName": "sys", "CreateTime": int(time.time()),
                                  "MsgType": "event", "Event": "change_external_contact",
                                  "ChangeType": "add_external_contact", "UserID": rep, "ExternalUserID": external,
                                  "WelcomeCode": code}
        if state:
            fields["State"] = state
        return self._push(app, fields)

    def enable_archive(self, app: SimApp, directory: Path) -> Path:
        """Session archiving for the app's corp; the path of the SDK stand-in the hub loads."""
        app.archive_sdk = build_sdk(directory)
        app.archive = Archive(directory / "data", app.corp_id)
        return app.archive_sdk

    def customer_writes(self, app: SimApp, external: str, text: str) -> dict[str, Any]:
        """The customer writes to their rep in WeChat: the rep sees it in WeCom, and WeCom archives it
        (when the corp has session archiving); the app's callback hears nothing, as in WeCom."""
        customer = app.customers.get(external)
        if customer is None or not customer["follow"]:
            raise WeComApiError(84061, f"{external} is not an external contact of this corp")
        app.note(external, "me", text)
        return self._archive(app, external, [next(iter(customer["follow"]))], text)

    def rep_writes(self, app: SimApp, rep: str, external: str, text: str) -> dict[str, Any]:
        """A rep writes to their customer from the WeCom client: WeChat shows it, WeCom archives it."""
        customer = app.customers.get(external)
        if customer is None or rep not in customer["follow"]:
            raise WeComApiError(84061, f"{external} is not a contact of {rep}")
        app.note(external, "hub", f"{app.members.get(rep, rep)}: {text}")
        return self._archive(app, rep, [external], text)

    def group_writes(self, app: SimApp, roomid: str, sender: str, members: list[str], text: str) -> dict[str, Any]:
        """Someone writes in a customer group (客户群) the corp's members are in: archived with its roomid."""
        return self._archive(app, sender, [m for m in members if m != sender], text, roomid=roomid)

    def recalls(self, app: SimApp, sender: str, msgid: str) -> dict[str, Any]:
        """The sender recalls one of their messages (撤回): the archive records the recall."""
        entry = app.archived.get(msgid)
        if entry is None or entry["from"] != sender:
            raise WeComApiError(40058, f"{sender} has no message {msgid} to recall")
        return self._archive(app, sender, entry["tolist"], None, roomid=entry["roomid"], recalled=msgid)

    def customer_answers_archiving(self, app: SimApp, external: str, agree: bool) -> dict[str, Any]:
        """The customer agrees or refuses to have their chats archived (客户同意存档)."""
        customer = app.customers.get(external)
        if customer is None:
            raise WeComApiError(84061, f"{external} is not an external contact of this corp")
        (app.archive_refused.discard if agree else app.archive_refused.add)(external)
        if app.archive is None:
            return {"archived": None}
        kind = "agree" if agree else "disagree"
        seq = app.archive.append({"msgid": f"{next(app.msg_ids)}_archive", "action": "send", "from": external,
                                  "tolist": list(customer["follow"]), "roomid": "", "msgtime": int(time.time() * 1000),
                                  "msgtype": kind, kind: {"userid": external, "agree_time": int(time.time() * 1000)}})
        return {"archived": seq}

    def _archive(self, app: SimApp, sender: str, targets: list[str], text: str | None, *, roomid: str = "",
                 recalled: str | None = None) -> dict[str, Any]:
        if app.archive is None:
            return {"archived": None, "msgid": None}
        msgid = f"{next(app.msg_ids)}_archive"
        entry: dict[str, Any] = {"msgid": msgid, "action": "recall" if recalled else "send", "from": sender,
                                 "tolist": targets, "roomid": roomid, "msgtime": int(time.time() * 1000)}
        if recalled:
            entry.update(msgtype="revoke", revoke={"pre_msgid": recalled})
        else:
            entry.update(msgtype="text", text={"content": text})
        app.archived[msgid] = entry
        return {"archived": app.archive.append(entry), "msgid": msgid}

    async def _upload(self, app: SimApp, request: Request, *, attachment: bool = False) -> dict[str, Any]:
        """media/upload: a multipart `media` file; images are JPEG or PNG of at most 2 MB. With
        `attachment`, media/upload_attachment: media_type image, video or file, and
        attachment_type 1 (moments) or 2 (product albums); its id serves only that use."""
        if attachment:
            kind = request.query_params.get("media_type", "")
            use = request.query_params.get("attachment_type", "")
            if kind not in ("image", "video", "file") or use not in ("1", "2"):
                raise WeComApiError(40058, "media_type: image, video or file; attachment_type: 1 or 2")
        else:
            kind, use = request.query_params.get("type", ""), ""
        if kind not in ("image", "voice", "video", "file"):
            raise WeComApiError(40004, f"invalid media type {kind!r}")
        form = await request.form()
        media = form.get("media")
        if media is None or isinstance(media, str):
            # 41005 缺少多媒体文件数据 in WeChat's list (41001 is a missing access_token); not seen in WeCom's
            raise WeComApiError(41005, "media data missing")
        data = await media.read()
        if kind == "image" and (len(data) > 2 * 2**20 or not (data.startswith(b"\x89PNG") or data[:2] == b"\xff\xd8")):
            raise WeComApiError(40005, "invalid image: JPEG or PNG of at most 2 MB")
        if kind == "file" and not 5 < len(data) <= 20 * 2**20:
            raise WeComApiError(40006, "invalid file size: more than 5 bytes, at most 20 MB")
        media_id = "3" + secrets.token_urlsafe(40)
        app.kf.media[media_id] = {"type": kind, "size": len(data), "name": media.filename,
                                  **({"attachment_type": int(use)} if use else {})}
        return {"type": kind, "media_id": media_id, "created_at": str(int(time.time()))}

    def _check_single_agree(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        pairs = body.get("info") or []
        if not isinstance(pairs, list) or not 1 <= len(pairs) <= 100:
            raise WeComApiError(40058, "info: 1 to 100 pairs of userid and exteranalopenid")
        return {"agreeinfo": [{"userid": p.get("userid"), "exteranalopenid": p.get("exteranalopenid"),
                               "agree_status": "Disagree" if p.get("exteranalopenid") in app.archive_refused
                               else "Agree", "status_change_time": int(time.time())} for p in pairs]}

    def kf_customer_writes(self, app: SimApp, open_kfid: str, external: str, text: str,
                           menu_id: str | None = None) -> dict[str, Any]:
        """A WeChat user writes to a 微信客服 account (or clicks one of its menu buttons)."""
        return self._push(app, kf_sim.customer_writes(app.kf, open_kfid, external, text, menu_id=menu_id,
                                                      corp_id=app.corp_id))

    def kf_customer_enters(self, app: SimApp, open_kfid: str, external: str, scene_param: str = "") -> dict[str, Any]:
        return self._push(app, kf_sim.customer_enters(app.kf, open_kfid, external, scene_param=scene_param,
                                                      corp_id=app.corp_id))

    def kf_servicer_acts(self, app: SimApp, open_kfid: str, external: str, servicer: str, action: str,
                         text: str = "") -> dict[str, Any]:
        """A servicer in their WeCom client writes to a 微信客服 customer, picks them from the queue, or
        ends the session."""
        if action == "writes":
            return self._push(app, kf_sim.servicer_writes(app.kf, open_kfid, external, servicer, text,
                                                          corp_id=app.corp_id))
        if action == "picks":
            return self._push(app, kf_sim.servicer_picks(app.kf, open_kfid, external, servicer, corp_id=app.corp_id))
        if action == "ends":
            return self._push(app, kf_sim.servicer_ends(app.kf, open_kfid, external, servicer, corp_id=app.corp_id))
        raise kf_sim.KfApiError(404, f"unknown servicer action {action}")

    def kf_servicer_status(self, app: SimApp, servicer: str, receiving: bool) -> list[dict[str, Any]]:
        """A servicer switches 接待中 / 停止接待 in their WeCom client."""
        return [self._push(app, fields) for fields in
                kf_sim.servicer_sets_status(app.kf, servicer, receiving, corp_id=app.corp_id)]

    def customer_deletes_rep(self, app: SimApp, external: str, rep: str) -> dict[str, Any]:
        customer = app.customers.get(external)
        if customer is None or rep not in customer["follow"]:
            raise WeComApiError(84061, f"{external} is not a contact of {rep}")
        customer["follow"].pop(rep, None)
        app.note(external, "system", f"you deleted {app.members.get(rep, rep)}")
        return self._push(app, {"ToUserName": app.corp_id, "FromUserName": "sys", "CreateTime": int(time.time()),
                                "MsgType": "event", "Event": "change_external_contact",
                                "ChangeType": "del_follow_user", "UserID": rep, "ExternalUserID": external})

    # ---- callbacks -------------------------------------------------------

    def _push(self, app: SimApp, fields: dict[str, Any]) -> dict[str, Any]:
        self.kept.changed()
        app.queue.append(fields)
        self._kick(app)
        return fields

    def _kick(self, app: SimApp) -> None:
        if app.callback_url and app.queue:
            task = self._deliverers.get(app.agent_id)
            if task is None or task.done():
                self._deliverers[app.agent_id] = asyncio.get_running_loop().create_task(self._deliver(app))

    def signed_request(self, app: SimApp, fields: dict[str, Any]) -> tuple[dict[str, str], bytes]:
        """Query string and body of the callback WeCom would post for `fields`."""
        envelope = app.cipher.envelope(build_xml(fields))
        query = {"msg_signature": envelope["MsgSignature"], "timestamp": envelope["TimeStamp"],
                 "nonce": envelope["Nonce"]}
        body = build_xml({"ToUserName": app.corp_id, "AgentID": app.agent_id, "Encrypt": envelope["Encrypt"]})
        return query, body.encode()

    async def _deliver(self, app: SimApp) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient(limits=KEEPALIVE)
        while app.queue and app.callback_url:
            fields = app.queue[0]
            query, body = self.signed_request(app, fields)
            if not await post_like_tencent(self._http, app.callback_url, query, body, deadline=self.callback_deadline,
                                           retry_delays=self.retry_delays, record=app.deliveries, fields=fields):
                log.warning("wecom sim: callback %s dropped after retries", fields.get("MsgId") or fields.get("Event"))
            app.queue.popleft()

    # ---- API -------------------------------------------------------------

    async def _gettoken(self, request: Request) -> JSONResponse:
        corp_id = request.query_params.get("corpid", "")
        secret = request.query_params.get("corpsecret", "")
        apps = [a for a in self.apps.values() if a.corp_id == corp_id]
        if not apps:
            return _error(WeComApiError(40013, "invalid corpid"))
        app = next((a for a in apps if secrets.compare_digest(a.secret, secret)), None)
        archive = next((a for a in apps if a.archive is not None and secrets.compare_digest(a.archive.secret, secret)),
                       None)
        if app is None and archive is not None:  # the 会话内容存档 Secret: a token for msgaudit/* only
            token = secrets.token_urlsafe(48)
            archive.tokens[token] = time.monotonic() + TOKEN_LIFETIME
            archive.archive_tokens.add(token)
            return JSONResponse({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": TOKEN_LIFETIME})
        if app is None:
            apps[0].calls.append(("gettoken", 40001))
            return _error(WeComApiError(40001, "invalid credential, access_token is invalid or not latest"))
        token = secrets.token_urlsafe(48)
        app.tokens[token] = time.monotonic() + TOKEN_LIFETIME
        app.calls.append(("gettoken", 0))
        return JSONResponse({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": TOKEN_LIFETIME})

    async def _api(self, request: Request) -> JSONResponse:
        self.base_url = self.base_url or str(request.base_url).rstrip("/")
        path = request.path_params["path"]
        token = request.query_params.get("access_token", "")
        app = next((a for a in self.apps.values() if token in a.tokens), None)
        if app is None:
            return _error(WeComApiError(40014, "invalid access_token"))
        try:
            if app.tokens[token] < time.monotonic():
                raise WeComApiError(42001, "access_token expired")
            if path.startswith("msgaudit/") != (token in app.archive_tokens):
                raise WeComApiError(48002, "api forbidden: the 会话内容存档 Secret's token calls msgaudit/* only")
            for fault in list(app.faults):
                if fault["path"] == path:
                    fault["remaining"] -= 1
                    if fault["remaining"] <= 0:
                        app.faults.remove(fault)
                    raise WeComApiError(fault["errcode"], fault.get("errmsg", "simulated error"))
            if path in ("media/upload", "media/upload_attachment"):
                return JSONResponse({"errcode": 0, "errmsg": "ok", **await self._upload(
                    app, request, attachment=path == "media/upload_attachment")})
            if request.method == "GET":
                body: dict[str, Any] = dict(request.query_params)
                handler = {"externalcontact/get": self._external_contact,
                           "externalcontact/get_moment_task_result": self._moment_task_result}.get(path)
            else:
                try:
                    body = json.loads(await request.body() or b"{}")
                except ValueError:
                    raise WeComApiError(47001, "data format error") from None
                handler = {"message/send": self._message_send,
                           "externalcontact/send_welcome_msg": self._send_welcome,
                           "externalcontact/add_msg_template": self._add_msg_template,
                           "externalcontact/get_groupmsg_send_result": self._groupmsg_send_result,
                           "externalcontact/get_groupmsg_task": self._groupmsg_task,
                           "externalcontact/get_groupmsg_list_v2": self._groupmsg_list,
                           "externalcontact/add_contact_way": self._add_contact_way,
                           "externalcontact/update_contact_way": self._update_contact_way,
                           "externalcontact/get_contact_way": self._get_contact_way,
                           "externalcontact/del_contact_way": self._del_contact_way,
                           "externalcontact/transfer_customer": self._transfer(resigned=False),
                           "externalcontact/resigned/transfer_customer": self._transfer(resigned=True),
                           "externalcontact/transfer_result": self._transfer_result(resigned=False),
                           "externalcontact/resigned/transfer_result": self._transfer_result(resigned=True),
                           "externalcontact/get_unassigned_list": self._unassigned,
                           "externalcontact/groupchat/onjob_transfer": self._group_transfer(resigned=False),
                           "externalcontact/groupchat/transfer": self._group_transfer(resigned=True),
                           "externalcontact/get_corp_tag_list": self._corp_tag_list,
                           "externalcontact/add_corp_tag": self._add_corp_tag,
                           "externalcontact/edit_corp_tag": self._edit_corp_tag,
                           "externalcontact/del_corp_tag": self._del_corp_tag,
                           "externalcontact/mark_tag": self._mark_tag,
                           "externalcontact/groupchat/list": self._group_list,
                           "externalcontact/groupchat/statistic_group_by_day": self._group_statistic,
                           "externalcontact/add_moment_task": self._add_moment_task,
                           "externalcontact/groupchat/add_join_way": self._add_join_way,
                           "externalcontact/groupchat/update_join_way": self._update_join_way,
                           "externalcontact/groupchat/get_join_way": self._get_join_way,
                           "externalcontact/groupchat/del_join_way": self._del_join_way,
                           "externalcontact/group_welcome_template/add": self._welcome_template,
                           "externalcontact/group_welcome_template/edit": self._welcome_template,
                           "externalcontact/get_moment_task": self._moment_task,
                           "externalcontact/get_moment_list": self._moment_list,
                           "externalcontact/get_moment_send_result": self._moment_send_result,
                           "externalcontact/get_moment_comments": self._moment_comments,
                           "externalcontact/groupchat/get": self._group_get,
                           "msgaudit/check_single_agree": self._check_single_agree}.get(path)
            if handler is None and path in kf_sim.HANDLERS:
                try:
                    result = kf_sim.HANDLERS[path](app.kf, body)
                except kf_sim.KfApiError as exc:
                    raise WeComApiError(exc.errcode, exc.errmsg) from None
            elif handler is None:
                raise WeComApiError(48001, f"api forbidden: {path} is not simulated")
            else:
                result = handler(app, body)
        except WeComApiError as exc:
            app.calls.append((path, exc.errcode))
            return _error(exc)
        app.calls.append((path, 0))
        self.kept.changed()  # a send, a session moved, a task
        return JSONResponse({"errcode": 0, "errmsg": "ok", **result})

    def _message_send(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("agentid") != app.agent_id:
            raise WeComApiError(40056, "invalid agentid")
        msgtype = body.get("msgtype")
        if msgtype not in ("text", "markdown", "template_card"):
            raise WeComApiError(40008, f"invalid message type {msgtype}")
        users = [u for u in str(body.get("touser", "")).split("|") if u]
        if not users:
            raise WeComApiError(40003, "invalid userid")
        known = [u for u in users if u in app.members]
        invalid = [u for u in users if u not in app.members]
        if not known:
            raise WeComApiError(81013, "user & party & tag all invalid")
        now = time.monotonic()
        for userid in known:
            window = app.member_rate.setdefault(userid, deque())
            while window and now - window[0] > 60:
                window.popleft()
            if len(window) >= app.per_member_per_minute:
                raise WeComApiError(45009, f"api freq out of limit: {userid} got {len(window)} messages this minute")
        msgid = random_id("", 24)
        for userid in known:
            app.member_rate[userid].append(now)
            entry: dict[str, Any] = {"to": userid, "msgtype": msgtype, "msgid": msgid, "at": time.time()}
            if msgtype == "template_card":
                card = body.get("template_card") or {}
                entry["card"] = card
                entry["text"] = card.get("sub_title_text", "")
                title = (card.get("main_title") or {}).get("title", "")
                app.note(userid, "hub", f"【{title}】\n{entry['text']}", card.get("button_list"))
            else:
                entry["text"] = (body.get(msgtype) or {}).get("content", "")
                app.note(userid, "hub", entry["text"])
            app.sent.append(entry)
        return {"msgid": msgid, "invaliduser": "|".join(invalid)}

    def _external_contact(self, app: SimApp, query: dict[str, Any]) -> dict[str, Any]:
        external = str(query.get("external_userid", ""))
        customer = app.customers.get(external)
        if customer is None or not customer["follow"]:
            raise WeComApiError(84061, "not external contact")
        contact: dict[str, Any] = {"external_userid": external, "name": customer["name"], "type": 1, "gender": 0}
        if customer["unionid"]:
            contact["unionid"] = customer["unionid"]
        names = {t: (g["group_name"], n) for g in app.tag_groups.values() for t, n in g["tags"].items()}
        follow = [{"userid": rep, "remark": "", "description": "", "createtime": f["createtime"], "state": f["state"],
                   "tags": [{"group_name": names[t][0], "tag_name": names[t][1], "tag_id": t, "type": 1}
                            for t in customer.get("tags", {}).get(rep, []) if t in names]}
                  for rep, f in customer["follow"].items()]
        return {"external_contact": contact, "follow_user": follow}

    def _send_welcome(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        code = app.welcome_codes.get(str(body.get("welcome_code", "")))
        if code is None or code["used"]:
            raise WeComApiError(41051, "invalid welcome code")
        if time.monotonic() > code["expires"]:
            raise WeComApiError(41096, "welcome code expired: send within 20 seconds of the add event")
        code["used"] = True
        text = (body.get("text") or {}).get("content", "")
        attachments = body.get("attachments") or []
        self._check_attachments(app, attachments)
        app.sent.append({"to": code["external"], "msgtype": "welcome", "text": text, "from": code["rep"],
                         "attachments": attachments, "at": time.time()})
        app.note(code["external"], "hub", text)
        return {}

    def _add_msg_template(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        sender = body.get("sender")
        if sender not in app.members:
            raise WeComApiError(60111, f"userid not found: {sender}")
        group = body.get("chat_type") == "group"
        if group:  # the sender's customer groups: those named in chat_id_list, else every one they own
            owned = [c for c, g in app.groups.items() if g["owner"] == sender]
            targets = body.get("chat_id_list") or owned
            failed = [t for t in targets if t not in owned]
        else:
            targets = body.get("external_userid") or []
            failed = [t for t in targets if sender not in app.customers.get(t, {}).get("follow", set())]
        msgid = self._task(app, sender, targets=[t for t in targets if t not in failed], group=group,
                           text=(body.get("text") or {}).get("content", ""))
        if app.auto_confirm_tasks:
            self.confirm_task(app, msgid)
        return {"msgid": msgid, "fail_list": failed}

    @staticmethod
    def _task(app: SimApp, sender: str, *, targets: list[str], group: bool, text: str, msgid: str = "",
              create_type: int = 0, creator: str = "") -> str:
        """One rep's part of a 群发 (a msgid is shared by the reps of one made in WeCom's console)."""
        msgid = msgid or "msg" + random_id("", 20)
        app.tasks.append({"msgid": msgid, "sender": sender, "targets": targets, "group": group, "text": text,
                          "confirmed": False, "status": {t: 0 for t in targets},  # 0 waiting for the rep
                          "create_type": create_type, "creator": creator or sender,
                          "create_time": int(time.time())})
        return msgid

    def mass_send_in_wecom(self, app: SimApp, creator: str, targets: dict[str, list[str]], text: str, *,
                           personal: bool = False) -> str:
        """A 群发 made in WeCom itself: by an admin in the console for reps' customers (`targets`:
        rep -> customers), each rep to confirm; or with `personal`, a rep's own, sent at once. Its msgid."""
        msgid = ""
        for sender, externals in targets.items():
            msgid = self._task(app, sender, targets=externals, group=False, text=text, msgid=msgid,
                               create_type=1 if personal else 0, creator=creator)
        if personal:
            self.confirm_task(app, msgid)
        return msgid

    def _groupmsg_list(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        """get_groupmsg_list_v2: chat_type single or group, start_time and end_time required (at most
        31 days apart), filter_type 0 the company's, 1 reps' own, 2 both; 100 a page."""
        try:
            start, end = int(body["start_time"]), int(body["end_time"])
        except (KeyError, TypeError, ValueError):
            raise WeComApiError(40058, "start_time and end_time are required") from None
        if end < start or end - start > 31 * 86400:
            raise WeComApiError(40058, "the time range is at most 31 days")  # WeCom's generic 不合法的参数
        kinds = {0: {0}, 1: {1}}.get(int(body.get("filter_type", 2)), {0, 1})
        group = body.get("chat_type", "single") == "group"
        first: dict[str, dict[str, Any]] = {}
        for task in app.tasks:  # (tasks kept by an older simulator lack the creation fields)
            if task["group"] == group and task.get("create_type", 0) in kinds \
                    and start <= task.get("create_time", 0) <= end:
                first.setdefault(task["msgid"], task)
        rows = list(first.values())
        limit, offset = min(int(body.get("limit") or 100), 100), int(body.get("cursor") or 0)
        return {"next_cursor": str(offset + limit) if offset + limit < len(rows) else "", "group_msg_list": [
            {"msgid": t["msgid"], "creator": t.get("creator", t["sender"]), "create_type": t.get("create_type", 0),
             "create_time": t["create_time"], "text": {"content": t["text"]}} for t in rows[offset:offset + limit]]}

    def _groupmsg_task(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        """Who was to send a 群发 and whether they did: status 0 not yet, 2 sent."""
        tasks = [t for t in app.tasks if t["msgid"] == body.get("msgid")]
        if not tasks:
            raise WeComApiError(40058, "invalid msgid")
        return {"next_cursor": "", "task_list": [{"userid": t["sender"], "status": 2 if t["confirmed"] else 0,
                                                  **({"send_time": int(time.time())} if t["confirmed"] else {})}
                                                 for t in tasks]}

    def _groupmsg_send_result(self, app: SimApp, body: dict[str, Any]) -> dict[str, Any]:
        """What became of a task for one sender: 0 not sent yet, 1 sent, 2 not a contact any more."""
        if not any(t["msgid"] == body.get("msgid") for t in app.tasks):
            raise WeComApiError(40058, "invalid msgid")
        task = next((t for t in app.tasks if t["msgid"] == body.get("msgid") and t["sender"] == body.get("userid")),
                    None)
        if task is None:
            return {"next_cursor": "", "send_list": []}
        key = "chat_id" if task.get("group") else "external_userid"
        return {"next_cursor": "", "send_list": [
            {key: target, "userid": task["sender"], "status": status,
             **({"send_time": int(time.time())} if status == 1 else {})}
            for target, status in task["status"].items()]}

    def confirm_task(self, app: SimApp, msgid: str, sender: str | None = None) -> None:
        """The rep (`sender`, where the 群发 has several) taps "send" on the task in WeCom: the
        customers receive it."""
        task = next(t for t in app.tasks if t["msgid"] == msgid and sender in (None, t["sender"]))
        if task["confirmed"]:
            return
        task["confirmed"] = True
        month = time.strftime("%Y-%m", time.gmtime(time.time() + 8 * 3600))  # China's calendar month
        for target in task["targets"]:
            if task.get("group"):  # to a customer group: 4 a month per group too
                group = app.groups.get(target)
                if group is None:
                    task["status"][target] = 2
                    continue
                received = group.setdefault("mass_received", {})
                task["status"][target] = 3 if received.get(month, 0) >= 4 else 1
                if task["status"][target] == 1:
                    received[month] = received.get(month, 0) + 1
                    app.note(target, "hub", task["text"])
                continue
            if task["sender"] not in app.customers.get(target, {}).get("follow", set()):
                task["status"][target] = 2  # no longer the rep's contact: not sent
                continue
            received = app.customers[target].setdefault("mass_received", {})
            if received.get(month, 0) >= 4:  # the company's 4 群发 a month to one customer are used
                task["status"][target] = 3
                continue
            received[month] = received.get(month, 0) + 1
            task["status"][target] = 1
            app.sent.append({"to": target, "msgtype": "text", "text": task["text"], "from": task["sender"],
                             "at": time.time()})
            app.note(target, "hub", task["text"])

    # ---- control ---------------------------------------------------------

    def _app_of(self, request: Request) -> SimApp:
        app = self.apps.get(request.path_params["agent_id"])
        if app is None:
            raise HTTPException(404, f"no simulated app {request.path_params['agent_id']}")
        return app

    async def _create_app(self, request: Request) -> JSONResponse:
        body = await _json(request)
        app = self.create_app(agent_id=body.get("agent_id"), corp_id=body.get("corp_id"))
        for userid, name in (body.get("members") or {}).items():
            self.add_member(app, userid, name)
        if body.get("callback_url"):
            app.callback_url = body["callback_url"]
        return JSONResponse(_credentials(app))

    async def _list_apps(self, request: Request) -> JSONResponse:
        return JSONResponse([{"agent_id": a.agent_id, "corp_id": a.corp_id, "members": a.members,
                              "callback_url": a.callback_url,
                              "customers": {k: v["name"] for k, v in a.customers.items()},
                              "kf": a.kf.accounts, "servicers": a.kf.servicers}
                             for a in self.apps.values()])

    async def _kf_chat(self, request: Request) -> JSONResponse:
        """A WeChat user's chat with a kf account as they see it, and where the session is."""
        app = self._app_of(request)
        key = (request.path_params["open_kfid"], request.path_params["external"])
        session = app.kf.sessions.get(key)
        return JSONResponse({"messages": app.kf.chats.get(key, []), "state": session.state if session else None,
                             "servicer": session.servicer if session else ""})

    async def _chat(self, request: Request) -> JSONResponse:
        app = self._app_of(request)
        return JSONResponse({"messages": app.chats.get(request.path_params["who"], [])})

    async def _page(self, request: Request) -> HTMLResponse:
        return HTMLResponse(resources.files("channels.simulators").joinpath("wecom.html").read_text(encoding="utf-8"))

    async def _state(self, request: Request) -> JSONResponse:
        app = self._app_of(request)
        return JSONResponse({**_credentials(app), "callback_url": app.callback_url, "members": app.members,
                             "customers": {k: {"name": v["name"], "follow": sorted(v["follow"])}
                                           for k, v in app.customers.items()},
                             "sent": app.sent, "tasks": app.tasks, "pending_callbacks": len(app.queue),
                             "deliveries": [{k: v for k, v in d.items() if k != "fields"} for d in app.deliveries]})

    async def _config(self, request: Request) -> JSONResponse:
        app = self._app_of(request)
        body = await _json(request)
        if "callback_url" in body:
            app.callback_url = body["callback_url"] or None
            self._kick(app)  # deliver what waited for a URL
        if "auto_confirm_tasks" in body:
            app.auto_confirm_tasks = bool(body["auto_confirm_tasks"])
        if body.get("expire_tokens"):
            app.tokens = {t: 0.0 for t in app.tokens}
        for userid, name in (body.get("members") or {}).items():
            self.add_member(app, userid, name)
        return JSONResponse({"ok": True})

    async def _add_fault(self, request: Request) -> JSONResponse:
        app = self._app_of(request)
        body = await _json(request)
        app.faults.append({"path": body["path"], "errcode": int(body["errcode"]), "errmsg": body.get("errmsg", ""),
                           "remaining": int(body.get("count", 1))})
        return JSONResponse({"ok": True})

    async def _member_action(self, request: Request) -> JSONResponse:
        app = self._app_of(request)
        userid, action = request.path_params["userid"], request.path_params["action"]
        body = await _json(request)
        try:
            if action == "messages":
                fields = self.member_writes(app, userid, str(body.get("text", "")))
            elif action == "clicks":
                fields = self.member_clicks(app, userid, str(body.get("key", "")))
            else:
                return JSONResponse({"errcode": 404, "errmsg": f"unknown action {action}"}, status_code=404)
        except WeComApiError as exc:
            return _error(exc, status=400)
        return JSONResponse({"callback": fields})

    async def _customer_action(self, request: Request) -> JSONResponse:
        app = self._app_of(request)
        external, action = request.path_params["external"], request.path_params["action"]
        body = await _json(request)
        try:
            if action == "add":
                fields = self.customer_adds(app, external, str(body.get("rep", "")), name=body.get("name", ""),
                                            state=body.get("state", ""), unionid=body.get("unionid", ""))
            elif action == "messages":  # archived, not posted to the callback
                return JSONResponse(self.customer_writes(app, external, str(body.get("text", ""))))
            elif action == "rep_messages":  # the rep writes to the customer from WeCom: archived
                return JSONResponse(self.rep_writes(app, str(body.get("rep", "")), external,
                                                    str(body.get("text", ""))))
            elif action in ("agree", "disagree"):  # the customer's answer to archiving
                return JSONResponse(self.customer_answers_archiving(app, external, action == "agree"))
            elif action == "delete_rep":
                fields = self.customer_deletes_rep(app, external, str(body.get("rep", "")))
            else:
                return JSONResponse({"errcode": 404, "errmsg": f"unknown action {action}"}, status_code=404)
        except WeComApiError as exc:
            return _error(exc, status=400)
        return JSONResponse({"callback": fields})

    async def _kf_account(self, request: Request) -> JSONResponse:
        """A kf account, and the members who serve it (receiving unless they say otherwise)."""
        app = self._app_of(request)
        body = await _json(request)
        for userid, receiving in (body.get("servicers") or {}).items():
            app.kf.servicers[str(userid)] = bool(receiving)
        return JSONResponse({"open_kfid": kf_sim.add_account(app.kf, str(body.get("name") or "客服"),
                                                             body.get("open_kfid"))})

    async def _list_contact_ways(self, request: Request) -> JSONResponse:
        return JSONResponse(list(self._app_of(request).contact_ways.values()))

    async def _contact_way_qr(self, request: Request) -> Response:
        app = self._app_of(request)
        config_id = request.path_params["config_id"]
        way = app.contact_ways.get(config_id) or app.join_ways.get(config_id)  # 「联系我」 or 加入群聊
        if way is None:
            raise HTTPException(404, "no such contact way")
        out = io.BytesIO()
        segno.make(f"https://work.weixin.qq.com/ca/{way['config_id']}", error="m").save(out, kind="svg", scale=6)
        return Response(out.getvalue(), media_type="image/svg+xml")

    async def _scan(self, request: Request) -> JSONResponse:
        app = self._app_of(request)
        body = await _json(request)
        try:
            fields = self.customer_scans(app, request.path_params["config_id"], str(body.get("external", "")),
                                         name=str(body.get("name", "")))
        except WeComApiError as exc:
            return _error(exc, status=400)
        return JSONResponse({"callback": fields})

    async def _kf_servicer_status(self, request: Request) -> JSONResponse:
        app = self._app_of(request)
        body = await _json(request)
        try:
            callbacks = self.kf_servicer_status(app, request.path_params["userid"], bool(body.get("receiving")))
        except kf_sim.KfApiError as exc:
            return _error(WeComApiError(exc.errcode, exc.errmsg), status=400)
        return JSONResponse({"callbacks": callbacks})

    async def _kf_action(self, request: Request) -> JSONResponse:
        app = self._app_of(request)
        open_kfid, external, action = (request.path_params[k] for k in ("open_kfid", "external", "action"))
        body = await _json(request)
        try:
            if action == "messages":
                fields = self.kf_customer_writes(app, open_kfid, external, str(body.get("text", "")),
                                                 body.get("menu_id"))
            elif action == "enter":
                fields = self.kf_customer_enters(app, open_kfid, external, str(body.get("scene_param", "")))
            elif action == "refuse":  # the customer refuses the account's messages from now on
                app.kf.sessions.setdefault((open_kfid, external), kf_sim.KfSession()).refuses = True
                return JSONResponse({"refuses": True})
            elif action in ("writes", "picks", "ends"):  # a servicer, in their WeCom client
                fields = self.kf_servicer_acts(app, open_kfid, external, str(body.get("servicer", "")), action,
                                               str(body.get("text", "")))
            else:
                return JSONResponse({"errcode": 404, "errmsg": f"unknown action {action}"}, status_code=404)
        except kf_sim.KfApiError as exc:
            return _error(WeComApiError(exc.errcode, exc.errmsg), status=400)
        return JSONResponse({"callback": fields})

    async def aclose(self) -> None:
        self.kept.save()
        for task in self._deliverers.values():
            task.cancel()
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def _credentials(app: SimApp) -> dict[str, Any]:
    return {"corp_id": app.corp_id, "agent_id": app.agent_id, "secret": app.secret, "token": app.token,
            "encoding_aes_key": app.encoding_aes_key}


def _error(exc: WeComApiError, status: int = 200) -> JSONResponse:
    # WeCom answers API errors with HTTP 200 and a non-zero errcode.
    return JSONResponse({"errcode": exc.errcode, "errmsg": exc.errmsg}, status_code=status)


async def _json(request: Request) -> dict[str, Any]:
    body = await request.body()
    if not body:
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
