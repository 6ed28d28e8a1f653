"""The dispatcher beside a scripted gateway, shared by the dispatcher and consent tests."""

from __future__ import annotations

import pytest

from crm_core.outbox.dispatcher import Dispatcher
from tests.crm_core.test_dispatcher import FAST, ScriptedGateway
from tests.crm_core.test_ingest import CIPHER, make_account


@pytest.fixture
async def setup(sessions):
    account_id = await make_account(sessions)
    gateway = ScriptedGateway()
    dispatcher = Dispatcher(sessions, gateway, CIPHER, policy=FAST)
    return sessions, account_id, gateway, dispatcher
