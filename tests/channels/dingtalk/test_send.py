"""DingTalk sends against the simulator: batches of 20, tokens, errors, custom group robots."""

from __future__ import annotations

import time

import pytest

from channels.dingtalk.adapter import DingTalkAdapter
from channels.dingtalk.group_robot import DingTalkGroupRobotAdapter
from channels.simulators.dingtalk import DingTalkSimulator
from crm_core.ports import (
    AccountRef,
    Button,
    OutboundMessage,
    PermanentFailure,
    RateLimit,
    RecipientUnreachable,
    RetryLater,
)
from hub.serving import running


@pytest.fixture
async def sim():
    simulator = DingTalkSimulator()
    async with running(simulator.app) as server:
        simulator.base_url = f"http://127.0.0.1:{server.port}"
        yield simulator


def account_for(sim: DingTalkSimulator, robot) -> AccountRef:
    return AccountRef(id=1, kind="dingtalk", api_base=sim.base_url,
                      credentials={"app_key": robot.app_key, "app_secret": robot.app_secret,
                                   "robot_code": robot.robot_code}, settings={})


async def test_a_team_notice_goes_out_in_calls_of_at_most_twenty_users(sim):
    robot = sim.create_robot()
    staff = [f"staff{n:03d}" for n in range(45)]
    for staff_id in staff:
        sim.add_staff(robot, staff_id)
    adapter = DingTalkAdapter()
    try:
        keys = await adapter.batch_send(account_for(sim, robot), staff, OutboundMessage("", "季度目标已更新"))
    finally:
        await adapter.close()
    assert len(keys) == 3
    assert [c for c in robot.calls if c[0] == "robot/oToMessages/batchSend"] == [
        ("robot/oToMessages/batchSend", "ok")] * 3
    assert sorted(m["to"] for m in robot.sent) == staff
    assert len(robot.calls) == 4  # and one token for all of them


async def test_token_refetched_once_on_401_and_errors_mapped(sim):
    robot = sim.create_robot()
    sim.add_staff(robot, "li01")
    account = account_for(sim, robot)
    adapter = DingTalkAdapter()
    try:
        await adapter.send(account, OutboundMessage("li01", "one"))
        robot.tokens.clear()  # DingTalk forgot the token: 401, a new token, the same call again
        await adapter.send(account, OutboundMessage("li01", "two"))
        assert [c for c in robot.calls if c[0] == "oauth2/accessToken"] == [("oauth2/accessToken", "ok")] * 2
        assert [m["text"] for m in robot.transcript("li01")] == ["one", "two"]

        with pytest.raises(RecipientUnreachable, match="not a member"):
            await adapter.send(account, OutboundMessage("stranger", "hello"))
        robot.faults.append({"path": "robot/oToMessages/batchSend", "status": 403,
                             "code": "Forbidden.AccessDenied.QpsLimitForApi", "remaining": 1})
        with pytest.raises(RetryLater):
            await adapter.send(account, OutboundMessage("li01", "too fast"))
        with pytest.raises(PermanentFailure, match="not in conversation"):
            await adapter.send(account, OutboundMessage("cidNoSuchGroup==", "hello group"))

        # Buttons make an interactive card whose button ids come back on a click.
        await adapter.send(account, OutboundMessage("li01", "New lead #4", (Button("Claim", "claim:4"),),
                                                    title="New lead"))
        card = robot.transcript("li01")[-1]
        assert card["via"] == "interactiveCard" and card["buttons"] == [{"id": "claim:4", "label": "Claim"}]
        click = sim.staff_clicks(robot, "li01", "claim:4")
        assert click["userId"] == "li01" and click["outTrackId"] == card["card_id"]
    finally:
        await adapter.close()

    limits = adapter.rate_limits(account, "cidGroup==")
    assert limits[1][1] == RateLimit(20, 60)  # per group, as DingTalk limits robots in a group


async def test_custom_group_robot_signs_and_is_held_to_twenty_a_minute(sim):
    custom = sim.create_custom_robot()
    webhook = f"{sim.base_url}/robot/send?access_token={custom.token}"
    account = AccountRef(id=2, kind="dingtalk_group_robot", api_base=None,
                         credentials={"webhook_url": webhook, "secret": custom.secret}, settings={})
    adapter = DingTalkGroupRobotAdapter()
    try:
        assert adapter.rate_limits(account, "group") == [("dingtalk-group-robot:2", RateLimit(20, 60))]
        started = time.monotonic()
        for n in range(20):
            await adapter.send(account, OutboundMessage("group", f"alert {n}", title="舆情预警"))
        assert time.monotonic() - started < 10
        assert custom.received[0]["msgtype"] == "markdown"
        assert custom.received[0]["markdown"]["title"] == "舆情预警"
        with pytest.raises(RetryLater, match="20 messages a minute"):
            await adapter.send(account, OutboundMessage("group", "one too many"))
        wrong = AccountRef(id=3, kind="dingtalk_group_robot", api_base=None,
                           credentials={"webhook_url": webhook, "secret": "SECwrong"}, settings={})
        with pytest.raises(PermanentFailure, match="加签"):
            await adapter.send(wrong, OutboundMessage("group", "forged"))
        assert len(custom.received) == 20
    finally:
        await adapter.close()


async def test_the_simulator_page_shows_rep_and_group_chats(sim):
    import httpx

    robot = sim.create_robot()
    sim.add_staff(robot, "li01", "Li Lei")
    sim.customer_writes_in_group(robot, "cidG==", "$:c1", "陈", "hello")
    async with httpx.AsyncClient() as client:
        page = await client.get(f"{sim.base_url}/")
        chat = await client.get(f"{sim.base_url}/_sim/robots/{robot.robot_code}/chats/cidG==")
    assert page.status_code == 200 and "钉钉" in page.text
    assert chat.json()["messages"][0]["text"] == "陈: hello"


async def test_a_session_webhook_that_ended_early_falls_back_to_the_openapi(sim):
    robot = sim.create_robot()
    body = sim.customer_writes_in_group(robot, "cidGroupX==", "$:c9", "陈", "hi")
    robot.sessions.clear()  # DingTalk ended the session before its announced expiry
    adapter = DingTalkAdapter()
    via = {"type": "reply_via", "session_webhook": body["sessionWebhook"],
           "expires_at_ms": body["sessionWebhookExpiredTime"]}
    try:
        await adapter.send(account_for(sim, robot), OutboundMessage("cidGroupX==", "您好", reply_via=via))
    finally:
        await adapter.close()
    assert [m["via"] for m in robot.transcript("cidGroupX==")] == ["groupMessages"]
