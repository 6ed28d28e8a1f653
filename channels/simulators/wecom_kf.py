"""微信客服 in the WeCom simulator: kf accounts of a corp's app, WeChat users writing to them,
and the kf API the hub calls, as WeCom answers it.

- A customer's message (or entering a session) is kept in the kf account's message log and
  announced with the `kf_msg_or_event` callback, which carries only a pull Token (10 minutes)
  and the OpenKfId, encrypted and signed like every WeCom callback.
- `kf/sync_msg` returns the log from an opaque `cursor`, at most `limit` (≤ 1000) entries,
  `next_cursor` and `has_more`; messages the company sent through the API are not in it.
- `kf/send_msg` answers a customer only within 48 hours of their last message and 5 times at
  most until they write again (95001); a session with a person in WeCom refuses it (95018).
- `kf/send_msg_on_event` sends the welcome with an enter_session `welcome_code`: valid 20 s, once.
- `kf/account/list` lists the kf accounts; `kf/customer/batchget` gives nickname and unionid.
- `kf/service_state/get` and `/trans` move a session between the API (1), the queue (2), a
  servicer (3, one of the account's servicers who is receiving) and ended (4), only along WeCom's
  allowed changes; the first change to 2, 3 or 4 returns a `msg_code` for `send_msg_on_event`.
- A servicer chats from their WeCom client (`servicer_writes`: logged with origin 5), picks a
  customer from the queue or ends the session (`session_status_change` events with a msg_code),
  and switches between receiving and not (`servicer_status_change`).
- A customer who refuses messages still lets `send_msg` succeed; WeCom then logs `msg_send_fail`.

Error codes not confirmed from WeCom's documents (quoted from memory of them) are marked.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from channels.simulators.kept import KEPT_SENDS

ANSWER_WINDOW = 48 * 3600
ANSWERS_PER_MESSAGE = 5
PULL_TOKEN_LIFETIME = 600
WELCOME_WINDOW = 20.0


@dataclass
class KfSession:
    last_customer_at: float = 0.0
    answers: int = 0
    # 0 untreated, 1 smart assistant (the API answers), 2 queued for a servicer, 3 a servicer in
    # WeCom, 4 ended (or not started)
    state: int = 0
    servicer: str = ""
    refuses: bool = False  # the customer refuses the account's messages (msg_send_fail type 10)


# WeCom's allowed changes of a session's state through the API.
TRANSITIONS = {0: {1, 2, 3}, 1: {2, 3, 4}, 2: {3, 4}, 3: {3, 4}, 4: set()}


@dataclass
class KfState:
    accounts: dict[str, str] = field(default_factory=dict)                  # open_kfid -> name
    log: dict[str, list[dict[str, Any]]] = field(default_factory=dict)      # open_kfid -> sync_msg entries
    sessions: dict[tuple[str, str], KfSession] = field(default_factory=dict)
    pull_tokens: dict[str, float] = field(default_factory=dict)             # token -> expires (time.time)
    welcome_codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)                # what customers received
    pulls: list[dict[str, Any]] = field(default_factory=list)               # every sync_msg call
    customers: dict[str, dict[str, str]] = field(default_factory=dict)      # external -> nickname, unionid
    servicers: dict[str, bool] = field(default_factory=dict)                # userid -> receiving (接待中)
    media: dict[str, dict[str, Any]] = field(default_factory=dict)          # media/upload's media_id -> what
    # What the WeChat user sees in each chat (for the simulator's page): from me / hub / a servicer / system.
    chats: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)


def kept(kf: KfState) -> dict[str, Any]:
    """What a restart keeps, as JSON values: accounts, their logs (the hub's cursors point into
    them), sessions, customers, servicers, chats, uploads, the last sends. Pull tokens and event
    codes live minutes and are not kept."""
    return {"accounts": kf.accounts, "log": kf.log, "customers": kf.customers, "servicers": kf.servicers,
            "media": kf.media, "sent": kf.sent[-KEPT_SENDS:],
            "sessions": {f"{o}|{e}": dataclasses.asdict(s) for (o, e), s in kf.sessions.items()},
            "chats": {f"{o}|{e}": lines for (o, e), lines in kf.chats.items()}}


def restored(saved: dict[str, Any]) -> KfState:
    def pair(key: str) -> tuple[str, str]:
        open_kfid, _, external = key.partition("|")
        return open_kfid, external
    return KfState(accounts=saved["accounts"], log=saved["log"], customers=saved["customers"],
                   servicers=saved["servicers"], media=saved["media"], sent=saved["sent"],
                   sessions={pair(k): KfSession(**v) for k, v in saved["sessions"].items()},
                   chats={pair(k): v for k, v in saved["chats"].items()})


def note(kf: KfState, open_kfid: str, external: str, who: str, text: str,
         buttons: list[dict[str, Any]] | None = None) -> None:
    kf.chats.setdefault((open_kfid, external), []).append({"from": who, "text": text, "buttons": buttons or []})


class KfApiError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errmsg)
        self.errcode, self.errmsg = errcode, errmsg


def add_account(kf: KfState, name: str, open_kfid: str | None = None) -> str:
    open_kfid = open_kfid or "wk" + secrets.token_hex(15)
    kf.accounts[open_kfid] = name
    kf.log.setdefault(open_kfid, [])
    return open_kfid


def customer_writes(kf: KfState, open_kfid: str, external: str, text: str, *, menu_id: str | None = None,
                    corp_id: str) -> dict[str, Any]:
    """The customer's message, logged; the callback fields WeCom then posts."""
    kf.customers.setdefault(external, {"nickname": f"微信用户{external[-4:]}", "unionid": ""})
    entry_text: dict[str, Any] = {"content": text}
    if menu_id:
        entry_text["menu_id"] = menu_id
    session = kf.sessions.setdefault((open_kfid, external), KfSession())
    session.last_customer_at, session.answers = time.time(), 0
    if session.state == 4:
        session.state, session.servicer = 0, ""  # writing again opens a new session
    note(kf, open_kfid, external, "me", text)
    return _log(kf, open_kfid, {"external_userid": external, "origin": 3, "msgtype": "text", "text": entry_text},
                corp_id)


def customer_enters(kf: KfState, open_kfid: str, external: str, *, scene: str = "", scene_param: str = "",
                    corp_id: str) -> dict[str, Any]:
    """The customer opens the kf chat (from a link with `scene_param`): an enter_session event."""
    code = secrets.token_urlsafe(24)
    kf.welcome_codes[code] = {"open_kfid": open_kfid, "external": external,
                              "expires": time.monotonic() + WELCOME_WINDOW, "used": False}
    event = {"event_type": "enter_session", "open_kfid": open_kfid, "external_userid": external, "scene": scene,
             "scene_param": scene_param, "welcome_code": code}
    return _log(kf, open_kfid, {"origin": 4, "msgtype": "event", "event": event}, corp_id)


def servicer_writes(kf: KfState, open_kfid: str, external: str, servicer: str, text: str, *,
                    corp_id: str) -> dict[str, Any]:
    """A servicer answers from their WeCom client: WeCom delivers it, and sync_msg returns it with
    origin 5. Only the servicer who has the session may (state 3), or one reopening an ended one."""
    session = kf.sessions.get((open_kfid, external))
    if session is None or not (session.state == 3 and session.servicer == servicer or session.state == 4):
        raise KfApiError(95018, f"{servicer} does not serve {external} now")
    change = session.state == 4
    session.state, session.servicer = 3, servicer
    note(kf, open_kfid, external, "servicer", f"{servicer}: {text}")
    kf.sent.append({"to": external, "open_kfid": open_kfid, "msgtype": "text", "text": text, "buttons": [],
                    "msgid": secrets.token_hex(16), "at": time.time(), "servicer": servicer})
    fields = _log(kf, open_kfid, {"external_userid": external, "origin": 5, "servicer_userid": servicer,
                                  "msgtype": "text", "text": {"content": text}}, corp_id)
    if change:
        fields = _status_event(kf, open_kfid, external, 4, "", servicer, corp_id)
    return fields


def servicer_picks(kf: KfState, open_kfid: str, external: str, servicer: str, *, corp_id: str) -> dict[str, Any]:
    """A servicer takes a queued customer in WeCom (接入): session_status_change type 1."""
    session = kf.sessions.get((open_kfid, external))
    if session is None or session.state != 2:
        raise KfApiError(95016, "the session is not in the queue")  # code from memory of WeCom's list
    session.state, session.servicer = 3, servicer
    note(kf, open_kfid, external, "system", f"{servicer} 已接入 · joined")
    return _status_event(kf, open_kfid, external, 1, "", servicer, corp_id)


def servicer_ends(kf: KfState, open_kfid: str, external: str, servicer: str, *, corp_id: str) -> dict[str, Any]:
    """The servicer ends the session in WeCom: session_status_change type 3 with a msg_code."""
    session = kf.sessions.get((open_kfid, external))
    if session is None or session.state != 3 or session.servicer != servicer:
        raise KfApiError(95016, f"{servicer} does not serve {external} now")
    session.state, session.servicer = 4, ""
    note(kf, open_kfid, external, "system", f"{servicer} 结束了会话 · ended the session")
    return _status_event(kf, open_kfid, external, 3, servicer, "", corp_id)


def servicer_sets_status(kf: KfState, servicer: str, receiving: bool, *, corp_id: str) -> list[dict[str, Any]]:
    """A servicer switches 接待中 / 停止接待 in their WeCom client: a servicer_status_change event
    (status 1 receiving, 2 stopped; stop_type 0 stopped) in each kf account's log; the callbacks."""
    if servicer not in kf.servicers:
        raise KfApiError(95014, f"{servicer} is not a servicer")  # code from memory of WeCom's list
    kf.servicers[servicer] = receiving
    event: dict[str, Any] = {"event_type": "servicer_status_change", "servicer_userid": servicer,
                             "status": 1 if receiving else 2}
    if not receiving:
        event["stop_type"] = 0
    return [_log(kf, open_kfid, {"origin": 4, "msgtype": "event", "event": {**event, "open_kfid": open_kfid}},
                 corp_id) for open_kfid in kf.accounts]


def _status_event(kf: KfState, open_kfid: str, external: str, change: int, old: str, new: str,
                  corp_id: str) -> dict[str, Any]:
    event = {"event_type": "session_status_change", "open_kfid": open_kfid, "external_userid": external,
             "change_type": change, "old_servicer_userid": old, "new_servicer_userid": new,
             "msg_code": _event_code(kf, open_kfid, external)}
    return _log(kf, open_kfid, {"origin": 4, "msgtype": "event", "event": event}, corp_id)


def _event_code(kf: KfState, open_kfid: str, external: str) -> str:
    code = secrets.token_urlsafe(24)
    kf.welcome_codes[code] = {"open_kfid": open_kfid, "external": external,
                              "expires": time.monotonic() + WELCOME_WINDOW, "used": False}
    return code


def service_state_get(kf: KfState, body: dict[str, Any]) -> dict[str, Any]:
    session = _session_of(kf, body)
    return {"service_state": session.state, "servicer_userid": session.servicer if session.state == 3 else ""}


def service_state_trans(kf: KfState, body: dict[str, Any]) -> dict[str, Any]:
    session = _session_of(kf, body)
    state, servicer = body.get("service_state"), str(body.get("servicer_userid") or "")
    if state not in TRANSITIONS or state not in TRANSITIONS[session.state] \
            or (state == 3 and session.state == 3 and servicer == session.servicer):
        raise KfApiError(95016, f"session state {session.state} cannot change to {state}")  # code from memory
    if state == 3 and not kf.servicers.get(servicer):
        # code from memory of WeCom's list: the servicer is not one of the account's, or not receiving
        raise KfApiError(95014, f"{servicer or '(none)'} is not a receiving servicer")
    first = session.state in (0, 1)
    session.state, session.servicer = state, servicer if state == 3 else ""
    open_kfid, external = str(body["open_kfid"]), str(body["external_userid"])
    note(kf, open_kfid, external, "system", {2: "排队等待人工 · queued for a person", 3: f"转接 {servicer} · passed to "
                                             f"{servicer}", 4: "会话已结束 · session ended"}.get(state, ""))
    return {"msg_code": _event_code(kf, open_kfid, external)} if first or state == 4 else {}


def _session_of(kf: KfState, body: dict[str, Any]) -> KfSession:
    open_kfid, external = str(body.get("open_kfid") or ""), str(body.get("external_userid") or "")
    if open_kfid not in kf.accounts:
        raise KfApiError(95000, f"invalid open_kfid {open_kfid}")
    session = kf.sessions.get((open_kfid, external))
    if session is None:
        raise KfApiError(95002, f"invalid external_userid {external}")  # code from memory
    return session


def _log(kf: KfState, open_kfid: str, entry: dict[str, Any], corp_id: str) -> dict[str, Any]:
    if open_kfid not in kf.accounts:
        raise KfApiError(95000, f"invalid open_kfid {open_kfid}")
    kf.log[open_kfid].append({"msgid": secrets.token_hex(16), "open_kfid": open_kfid, "send_time": int(time.time()),
                              **entry})
    token = "ENC" + secrets.token_urlsafe(32)
    kf.pull_tokens[token] = time.time() + PULL_TOKEN_LIFETIME
    return {"ToUserName": corp_id, "CreateTime": int(time.time()), "MsgType": "event", "Event": "kf_msg_or_event",
            "Token": token, "OpenKfId": open_kfid}


def sync_msg(kf: KfState, body: dict[str, Any]) -> dict[str, Any]:
    open_kfid = str(body.get("open_kfid") or "")
    if open_kfid not in kf.accounts:
        raise KfApiError(95000, f"invalid open_kfid {open_kfid}")
    limit = body.get("limit", 1000)
    if not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise KfApiError(40058, "invalid limit: between 1 and 1000")
    cursor = str(body.get("cursor") or "")
    start = _position(cursor)
    entries = kf.log[open_kfid][start:start + limit]
    end = start + len(entries)
    kf.pulls.append({"open_kfid": open_kfid, "cursor": cursor, "token": body.get("token"), "returned": len(entries)})
    return {"next_cursor": _cursor(end), "has_more": int(end < len(kf.log[open_kfid])), "msg_list": entries}


def send_msg(kf: KfState, body: dict[str, Any]) -> dict[str, Any]:
    open_kfid, external = str(body.get("open_kfid") or ""), str(body.get("touser") or "")
    if open_kfid not in kf.accounts:
        raise KfApiError(95000, f"invalid open_kfid {open_kfid}")
    session = kf.sessions.get((open_kfid, external))
    if session is not None and session.state in (2, 3, 4):
        raise KfApiError(95018, "send msg session status invalid")
    if session is None or time.time() - session.last_customer_at > ANSWER_WINDOW \
            or session.answers >= ANSWERS_PER_MESSAGE:
        raise KfApiError(95001, "send msg count exceed limit: wait for the customer's message")
    session.answers += 1
    session.state = 1  # the API answered: the smart assistant serves
    return _deliver(kf, open_kfid, external, body)


def send_msg_on_event(kf: KfState, body: dict[str, Any]) -> dict[str, Any]:
    code = kf.welcome_codes.get(str(body.get("code") or ""))
    if code is None or code["used"] or time.monotonic() > code["expires"]:
        # The code WeCom gives here is not confirmed from its documents: its generic "invalid parameter".
        raise KfApiError(40058, "invalid welcome code: used, or more than 20 seconds old")
    code["used"] = True
    return _deliver(kf, code["open_kfid"], code["external"], body)


def customer_batchget(kf: KfState, body: dict[str, Any]) -> dict[str, Any]:
    wanted = [str(x) for x in body.get("external_userid_list") or []]
    if not 1 <= len(wanted) <= 100:
        raise KfApiError(40058, "external_userid_list: 1 to 100 ids")
    known = [x for x in wanted if x in kf.customers]
    return {"customer_list": [{"external_userid": x, "nickname": kf.customers[x].get("nickname", ""),
                               "avatar": "", "gender": 0, "unionid": kf.customers[x].get("unionid", "")}
                              for x in known],
            "invalid_external_userid": [x for x in wanted if x not in kf.customers]}


def add_contact_way(kf: KfState, body: dict[str, Any]) -> dict[str, Any]:
    open_kfid, scene = str(body.get("open_kfid") or ""), str(body.get("scene") or "")
    if open_kfid not in kf.accounts:
        raise KfApiError(95000, f"invalid open_kfid {open_kfid}")
    if scene and (len(scene) > 32 or not all(c.isascii() and (c.isalnum() or c in "_-") for c in scene)):
        raise KfApiError(40058, "invalid scene: at most 32 of [0-9a-zA-Z_-]")
    url = f"https://work.weixin.qq.com/kfid/kfc{secrets.token_hex(8)}"
    return {"url": url + (f"?enc_scene=ENC{secrets.token_urlsafe(12)}" if scene else "")}


def account_list(kf: KfState, body: dict[str, Any]) -> dict[str, Any]:
    return {"account_list": [{"open_kfid": k, "name": n} for k, n in kf.accounts.items()]}


def _deliver(kf: KfState, open_kfid: str, external: str, body: dict[str, Any]) -> dict[str, Any]:
    msgtype = body.get("msgtype")
    if msgtype == "text":
        text, buttons = str((body.get("text") or {}).get("content") or ""), []
    elif msgtype == "msgmenu":
        menu = body.get("msgmenu") or {}
        text = str(menu.get("head_content") or "")
        buttons = [item["click"] for item in menu.get("list") or [] if item.get("type") == "click"]
    elif msgtype == "link":
        link = body.get("link") or {}
        if not link.get("title") or not link.get("url") or link.get("thumb_media_id") not in kf.media:
            raise KfApiError(40058, "link: title, url and an uploaded thumb_media_id are required")
        text, buttons = f"[{link['title']}] {link.get('desc', '')} {link['url']}".strip(), []
    elif msgtype == "image":
        if (body.get("image") or {}).get("media_id") not in kf.media:
            raise KfApiError(40007, "invalid media_id")
        text, buttons = "[image]", []
    elif msgtype == "file":
        medium = kf.media.get((body.get("file") or {}).get("media_id"))
        if medium is None or medium["type"] != "file":
            raise KfApiError(40007, "invalid media_id")
        text, buttons = f"[file] {medium['name']}", []
    else:
        raise KfApiError(40008, f"invalid message type {msgtype}")
    msgid = secrets.token_hex(16)
    session = kf.sessions.get((open_kfid, external))
    if session is not None and session.refuses:  # accepted, then reported as not delivered
        kf.log[open_kfid].append({"msgid": secrets.token_hex(16), "open_kfid": open_kfid, "origin": 4,
                                  "send_time": int(time.time()), "msgtype": "event",
                                  "event": {"event_type": "msg_send_fail", "open_kfid": open_kfid,
                                            "external_userid": external, "fail_msgid": msgid, "fail_type": 10}})
        return {"msgid": msgid}
    kf.sent.append({"to": external, "open_kfid": open_kfid, "msgtype": msgtype, "text": text, "buttons": buttons,
                    "msgid": msgid, "at": time.time(), "body": body})
    note(kf, open_kfid, external, "hub", text, buttons)
    return {"msgid": msgid}


def _cursor(position: int) -> str:
    return f"kf{position:x}" + secrets.token_hex(2)  # opaque to the hub, as WeCom's are


def _position(cursor: str) -> int:
    if not cursor:
        return 0
    try:
        return int(cursor[2:-4], 16)
    except ValueError:
        raise KfApiError(40058, "invalid cursor") from None


HANDLERS = {"kf/sync_msg": sync_msg, "kf/send_msg": send_msg, "kf/send_msg_on_event": send_msg_on_event,
            "kf/account/list": account_list, "kf/customer/batchget": customer_batchget,
            "kf/service_state/get": service_state_get, "kf/service_state/trans": service_state_trans,
            "kf/add_contact_way": add_contact_way}
