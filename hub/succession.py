"""Customer transfers asked of WeCom and followed until they end (crm_core/people/succession.py
keeps who moves): pending rows are sent with transfer_customer 100 at a time, grouped by app,
reps and kind; waiting rows are checked with transfer_result each minute."""

from __future__ import annotations

import logging
from itertools import groupby

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.registry import ChannelRegistry
from channels.tencent_client import ApiError, ApiUnavailable, busy
from crm_core import accounts
from crm_core.crypto import CredentialCipher
from crm_core.models import ChannelAccount, CustomerTransfer
from crm_core.people.succession import settle
from hub.claiming import claim, give_up_stale

log = logging.getLogger(__name__)

# transfer_result's per-customer status, as the hub names it.
RESULT = {1: ("done", None), 2: ("waiting", None), 3: ("refused", "the customer refused to move"),
          4: ("over_limit", "the new rep is at WeCom's limit of customers"),
          5: ("failed", "WeCom has no record of this transfer")}
# transfer_customer's per-customer refusals.
REFUSED = {84061: "not a customer of the departing rep in WeCom", 40096: "not a WeCom customer id"}


def _key(row: CustomerTransfer) -> tuple[int, str, str, bool]:
    return row.channel_account_id, row.handover_userid, row.takeover_userid, row.resigned


class Succession:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], channels: ChannelRegistry,
                 cipher: CredentialCipher) -> None:
        self.sessions, self.channels, self.cipher = sessions, channels, cipher

    async def run_once(self) -> int:
        """Ask WeCom for the pending transfers and follow the waiting ones; how many rows changed."""
        return await self._ask() + await self._follow()

    async def _ask(self) -> int:
        changed = await give_up_stale(self.sessions, CustomerTransfer, taken="asking", stamp="updated_at")
        async with self.sessions() as session:
            pending = (await session.scalars(select(CustomerTransfer.id).where(CustomerTransfer.status == "pending")
                                             .order_by(CustomerTransfer.id).limit(1000))).all()
        mine = [row_id for row_id in pending if await claim(self.sessions, CustomerTransfer, row_id, before="pending",
                                                            after="asking", stamp="updated_at")]
        if not mine:
            return changed  # nothing to ask, or another process asks
        async with self.sessions() as session, session.begin():
            rows = (await session.scalars(select(CustomerTransfer).where(CustomerTransfer.id.in_(mine))
                                          .order_by(CustomerTransfer.id))).all()
            for key, group in groupby(sorted(rows, key=_key), key=_key):
                account_id, handover, takeover, resigned = key
                adapter, ref = await self._adapter(account_id, session)
                batch = list(group)
                for start in range(0, len(batch), 100):
                    chunk = batch[start:start + 100]
                    groups = [r for r in chunk if r.is_group]
                    chunk = [r for r in chunk if not r.is_group]
                    changed += await self._move_groups(adapter, ref, groups, takeover, resigned)
                    if not chunk:
                        continue
                    try:
                        codes = await adapter.transfer_customers(
                            ref, handover=handover, takeover=takeover, externals=[r.external_userid for r in chunk],
                            resigned=resigned)
                    except ApiUnavailable as exc:  # never asked twice: given up in 10 minutes (hub/claiming.py)
                        log.warning("customer transfer %s -> %s: WeCom unreachable (%s); whether it was asked is "
                                    "not known", handover, takeover, exc)
                        continue
                    except ApiError as exc:
                        if busy(exc):  # nothing was asked: asked again next minute
                            for row in chunk:
                                settle(row, "pending", f"WeCom was busy ({exc.errcode}); asked again each minute")
                            continue
                        for row in chunk:
                            settle(row, "failed", f"WeCom refused ({exc.errcode}): {exc.errmsg}"[:300], exc.errcode)
                        changed += len(chunk)
                        continue
                    for row in chunk:
                        code = codes.get(row.external_userid, 0)
                        if code:
                            settle(row, "failed", f"{REFUSED.get(code, 'WeCom refused')} ({code})", code)
                        else:
                            settle(row, "waiting")
                        changed += 1
        return changed

    async def _follow(self) -> int:
        changed = 0
        async with self.sessions() as session, session.begin():
            rows = (await session.scalars(select(CustomerTransfer).where(CustomerTransfer.status == "waiting")
                                          .order_by(CustomerTransfer.id).limit(5000))).all()
            for key, group in groupby(sorted(rows, key=_key), key=_key):
                account_id, handover, takeover, resigned = key
                adapter, ref = await self._adapter(account_id, session)
                try:
                    statuses = await adapter.transfer_results(ref, handover=handover, takeover=takeover,
                                                              resigned=resigned)
                except (ApiError, ApiUnavailable) as exc:
                    log.warning("customer transfer %s -> %s: result not read (%s); read again next minute",
                                handover, takeover, exc)
                    continue
                for row in group:
                    status, reason = RESULT.get(statuses.get(row.external_userid, 2), ("waiting", None))
                    if status != "waiting":
                        settle(row, status, reason)
                        changed += 1
        return changed

    @staticmethod
    async def _move_groups(adapter, ref, rows: list[CustomerTransfer], new_owner: str, resigned: bool) -> int:
        """Customer groups change owner at once (no one is asked): done, or failed with WeCom's errcode."""
        if not rows:
            return 0
        try:
            codes = await adapter.transfer_groups(ref, chat_ids=[r.external_userid for r in rows], new_owner=new_owner,
                                                  resigned=resigned)
        except ApiUnavailable as exc:
            log.warning("customer groups to %s: WeCom unreachable (%s); whether they moved is not known", new_owner,
                        exc)
            return 0
        except ApiError as exc:
            if busy(exc):  # nothing was moved: asked again next minute
                for row in rows:
                    settle(row, "pending", f"WeCom was busy ({exc.errcode}); asked again each minute")
                return 0
            codes = {r.external_userid: exc.errcode for r in rows}
        for row in rows:
            code = codes.get(row.external_userid, 0)
            if code:
                settle(row, "failed", f"WeCom refused the group ({code})", code)
            else:
                settle(row, "done")
        return len(rows)

    async def unassigned(self, account_id: int) -> list[dict]:
        """Customers of people who left WeCom, not handed to anyone yet (WeCom's list)."""
        async with self.sessions() as session:
            adapter, ref = await self._adapter(account_id, session)
        return await adapter.unassigned_customers(ref)

    async def _adapter(self, account_id: int, session: AsyncSession):
        account = await session.get(ChannelAccount, account_id)
        return self.channels.get(account.kind), accounts.to_ref(account, self.cipher)
