"""The FAQ API: operators maintain the customer bot's answers with clear errors, try a
question to see what the bot would say, and reps may not touch it."""

from __future__ import annotations

import pytest

from crm_core.models import Role
from tests.admin.test_api import token_for
from tests.fakes.stack import telegram_stack

RETURNS = {"questions": {"zh": ["怎么退货"], "en": ["How do I return an item?"]},
           "answers": {"zh": "在订单页申请退货。", "en": "Open the order and press Return."},
           "synonyms": [["退货", "退换货", "return", "refund"]]}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_operators_maintain_answers_and_try_questions(database_url, tmp_path):
    async with telegram_stack(database_url, tmp_path) as stack:
        base, client = f"{stack.hub_base}/api/v1/faq", stack.client
        operator, _ = await token_for(stack, Role.OPERATOR, "op")
        rep, _ = await token_for(stack, Role.REP, "li")

        created = await client.post(base, json=RETURNS, headers=stack.api(operator))
        assert created.status_code == 201, created.text
        entry = created.json()
        assert entry["questions"] == RETURNS["questions"] and entry["channel_account_id"] is None

        tried = await client.post(f"{base}/search", json={"text": "我想退换货"}, headers=stack.api(operator))
        [match] = tried.json()
        assert match["id"] == entry["id"] and match["confident"] and match["answers"]["zh"] == "在订单页申请退货。"
        unsure = await client.post(f"{base}/search", json={"text": "今天天气怎么样"}, headers=stack.api(operator))
        assert all(not m["confident"] for m in unsure.json())

        # Errors say what to fix.
        for body, message in (
                ({**RETURNS, "questions": {}}, "at least one question"),
                ({**RETURNS, "answers": {}}, "need an answer (answers.zh)"),
                ({**RETURNS, "questions": {"fr": ["retour"]}}, "'zh' and / or 'en'"),
                ({**RETURNS, "synonyms": [["退货"]]}, "synonym group 1 needs at least two words"),
                ({**RETURNS, "channel_account_id": 999}, "channel account 999 does not exist"),
                ({**RETURNS, "answers": {"zh": "长" * 2001}}, "keep it under 2,000")):
            resp = await client.post(base, json=body, headers=stack.api(operator))
            assert resp.status_code == 422 and message in resp.text, (message, resp.text)

        # Retired: the bot no longer finds it.
        retired = await client.put(f"{base}/{entry['id']}", json={**RETURNS, "is_active": False},
                                   headers=stack.api(operator))
        assert retired.status_code == 200 and retired.json()["is_active"] is False
        assert (await client.post(f"{base}/search", json={"text": "怎么退货"}, headers=stack.api(operator))).json() == []

        # Reps work customers, not the knowledge base.
        assert (await client.get(base, headers=stack.api(rep))).status_code == 403
        assert (await client.delete(f"{base}/{entry['id']}", headers=stack.api(rep))).status_code == 403
        assert (await client.delete(f"{base}/{entry['id']}", headers=stack.api(operator))).status_code == 204
        assert (await client.get(f"{base}/{entry['id']}", headers=stack.api(operator))).status_code == 404
