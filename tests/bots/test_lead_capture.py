"""A customer's buying signal over Telegram opens their lead, routed to one rep who is
told in WeCom at once (and only once); their later messages score it until it is hot."""

from __future__ import annotations

from sqlalchemy import select

from crm_core.models import Lead, LeadEvent
from tests.fakes.stack import eventually, workspace_stack


async def test_a_buying_signal_becomes_a_routed_scored_lead_and_turns_hot(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path, lead_routing="round_robin", lead_hot_score=30) as ws:
        tg = ws.tg
        await tg.customer_writes(3001, "你好，请给我报价，我们是华为", first_name="Chen")

        async def lead():
            async with tg.hub.sessions() as session:
                return await session.scalar(select(Lead))
        opened = await eventually(lead)
        assert (opened.source_kind, opened.score, opened.stage) == ("signal", 22, "new")
        owner = "li" if opened.owner_user_id == ws.reps["li"] else "wang"
        other = "wang" if owner == "li" else "li"
        card = await ws.rep_receives(owner, f"新线索 L{opened.id}")
        assert "报价" in str(card)
        await eventually(tg.delivered)
        # The owner hears of it once, the other rep not at all: nobody else chases this lead.
        titles = [str(e) for e in ws.rep_inbox(owner)]
        assert sum(f"L{opened.id}" in t for t in titles) == 1
        assert not any("Chen" in str(e) for e in ws.rep_inbox(other))

        for n in range(4):
            await tg.customer_writes(3001, f"还有一个问题 {n}")
        await ws.rep_receives(owner, f"高意向线索 L{opened.id}")
        async with tg.hub.sessions() as session:
            scores = (await session.scalars(select(LeadEvent.details["event"].as_string())
                                            .where(LeadEvent.kind == "score").order_by(LeadEvent.id))).all()
        assert scores == ["buying_signal", "message", "message", "message", "message", "message"]
