"""Sending to Telegram costs the same at the ten-thousandth message as at the first: aiogram's
model of the Bot API's answer is built once, not again after each garbage collection."""

from __future__ import annotations

import gc

from pydantic._internal import _generics

from channels.simulators.telegram import TelegramSimulator
from channels.telegram.adapter import TelegramAdapter
from crm_core.ports import AccountRef, OutboundMessage
from hub.serving import running


async def test_sends_do_not_build_aiograms_answer_model_again_after_a_garbage_collection(monkeypatch):
    sim = TelegramSimulator()
    async with running(sim.app) as server:
        bot = sim.create_bot()
        for user in range(501, 505):  # one message each: Telegram allows a chat about one a second
            sim.user_writes(bot, sim.user(user, "Wang"), "/start")
        account = AccountRef(id=1, kind="telegram", api_base=f"http://127.0.0.1:{server.port}",
                             credentials={"bot_token": bot.token}, settings={})
        adapter = TelegramAdapter()
        adapter.prepare_to_send()  # aiogram imported, as a dispatcher does when it starts
        built: list[str] = []
        build = _generics.create_generic_submodel

        def counted(name, *args):
            built.append(name)
            return build(name, *args)

        monkeypatch.setattr(_generics, "create_generic_submodel", counted)
        try:
            for n in range(4):
                await adapter.send(account, OutboundMessage(str(501 + n), f"hello {n}"))
                gc.collect()  # a busy process collects often: it must not cost a model each time
        finally:
            await adapter.close()
    assert [m["text"] for m in bot.sent] == [f"hello {n}" for n in range(4)]
    assert [name for name in built if name.startswith("Response[")] == []
