"""A simulated WeCom app's state (its members, customers, chats, sends, tasks, and what its
customer operations hold) and WeCom's API error, shared by the simulator's modules."""

from __future__ import annotations

import itertools
import secrets
import string
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from channels.simulators import wecom_kf as kf_sim
from channels.simulators.wecom_archive import Archive
from channels.tencent import MessageCipher


@dataclass
class SimApp:
    corp_id: str
    agent_id: int
    secret: str
    token: str
    encoding_aes_key: str
    callback_url: str | None = None
    members: dict[str, str] = field(default_factory=dict)          # userid -> name
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)  # external userid -> {name, follow}
    tokens: dict[str, float] = field(default_factory=dict)          # access_token -> expires (monotonic)
    archive_tokens: set[str] = field(default_factory=set)           # those got with the archive's Secret
    archive_refused: set[str] = field(default_factory=set)          # customers who refused archiving
    archived: dict[str, dict[str, Any]] = field(default_factory=dict)  # msgid -> entry (for recalls)
    sent: list[dict[str, Any]] = field(default_factory=list)         # what the hub sent, accepted
    calls: list[tuple[str, int]] = field(default_factory=list)       # (path, errcode) of every API call
    welcome_codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    auto_confirm_tasks: bool = True
    faults: list[dict[str, Any]] = field(default_factory=list)
    member_rate: dict[str, deque[float]] = field(default_factory=dict)
    per_member_per_minute: int = 30
    queue: deque[dict[str, Any]] = field(default_factory=deque)
    deliveries: list[dict[str, Any]] = field(default_factory=list)   # every callback attempt
    msg_ids: itertools.count = field(default_factory=lambda: itertools.count(int(time.time()) * 1000))
    # What each member or customer sees in their chat with the app / with their rep.
    chats: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    kf: kf_sim.KfState = field(default_factory=kf_sim.KfState)  # 微信客服 accounts served through this app
    contact_ways: dict[str, dict[str, Any]] = field(default_factory=dict)  # config_id -> 「联系我」 way
    resigned: dict[str, int] = field(default_factory=dict)           # members who left -> when (epoch s)
    transfers: list[dict[str, Any]] = field(default_factory=list)    # 在职 / 离职继承 asked of WeCom
    # Corp customer tags: group_id -> {"group_name", "tags": {tag_id: name}}; a customer's tags per rep
    # are customers[external]["tags"][userid] = [tag_id, ...].
    tag_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    # 客户群: chat_id -> {"name", "owner", "create_time", "notice", "members": [groupchat/get's member_list]}
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    # 朋友圈: jobid -> {"moment_id", "checked"}; moment_id -> {"text", "senders", "tags", "published": {userid: bool}}
    moment_jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    moments: dict[str, dict[str, Any]] = field(default_factory=dict)
    join_ways: dict[str, dict[str, Any]] = field(default_factory=dict)  # config_id -> 加入群聊 way
    welcome_templates: dict[str, str] = field(default_factory=dict)     # template_id -> text
    welcome_template_parts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # -> its picture, card
    group_size: int = 200  # members a customer group holds (WeCom: 200 by default)
    group_messages: dict[str, int] = field(default_factory=dict)  # "owner|YYYY-MM-DD" -> messages in their groups
    archive: Archive | None = None  # 会话存档, when the corp has it
    archive_sdk: Path | None = None  # the stand-in SDK the hub loads to read it

    @property
    def cipher(self) -> MessageCipher:
        return MessageCipher(self.token, self.encoding_aes_key, self.corp_id)

    def note(self, who: str, author: str, text: str, buttons: list[dict[str, Any]] | None = None) -> None:
        self.chats.setdefault(who, []).append({"from": author, "text": text, "buttons": buttons or [],
                                               "at": time.time()})

    def transcript(self, who: str) -> list[dict[str, Any]]:
        """What one member or customer received from the hub, oldest first."""
        return [m for m in self.sent if m["to"] == who]


class WeComApiError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errmsg)
        self.errcode = errcode
        self.errmsg = errmsg


def random_id(prefix: str, n: int = 16) -> str:
    return prefix + "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(n))
