"""Conversation tests written as transcripts, played against a running hub.

    > 你好，退货流程是什么？          the customer writes
    [press] Talk to a person         the customer presses a button (or writes its number)
    < 您好 | 退货请在订单页          the bot's next message contains each part
    < (silence)                      the bot says nothing more
    @li < 转人工 | 退货流程是什么     rep li (WeCom or DingTalk) gets a message containing each part
    @li > /claim {conversation}      rep li writes; {conversation} is the customer's conversation id
    ~ 1 day later                    the clock moves on (the hub's, not the event loop's)

Each line waits for the hub to settle (every inbound message processed, every
send delivered) before it checks, so a transcript reads like the conversation.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import time_machine
from sqlalchemy import func, select

from crm_core.db import utcnow
from crm_core.models import Conversation, Identity, Message, OutboxMessage, OutboxStatus
from tests.fakes.stack import eventually


class CustomerChat(Protocol):
    external_id: str
    account_id: int

    async def writes(self, text: str) -> None: ...
    async def presses(self, label: str) -> None: ...
    def bot_lines(self) -> list[str]: ...


@dataclass
class RepChat:
    writes: Callable[[str], Awaitable[None]]
    inbox: Callable[[], list[str]]


@dataclass
class Transcript:
    hub: object
    chat: CustomerChat
    reps: dict[str, RepChat] = field(default_factory=dict)
    seen: int = 0                                          # bot lines already checked
    rep_seen: dict[str, int] = field(default_factory=dict)
    _clock: time_machine.travel | None = None
    log: list[str] = field(default_factory=list)

    async def play(self, script: str) -> None:
        try:
            for raw in script.strip().splitlines():
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                self.log.append(line)
                await self._step(line)
        finally:
            if self._clock is not None:
                self._clock.stop()
                self._clock = None

    async def _step(self, line: str) -> None:
        if line.startswith("> "):
            before = await self._inbound()
            await self.chat.writes(line[2:])
            await self.settled(before)
        elif line.startswith("[press] "):
            before = await self._inbound()
            await self.chat.presses(line[len("[press] "):])
            await self.settled(before)
        elif line.startswith("< "):
            await self._bot_says(line[2:])
        elif line.startswith("@"):
            who, _, rest = line[1:].partition(" ")
            if rest.startswith("> "):
                before = await self._inbound()
                await self.reps[who].writes(rest[2:].replace("{conversation}", str(await self.conversation_id())))
                await self.settled(before)
            elif rest.startswith("< "):
                await self._rep_gets(who, rest[2:])
            else:
                raise ValueError(f"transcript line {line!r}: '@rep > text' or '@rep < expected'")
        elif line.startswith("~ "):
            amount, unit = re.fullmatch(r"~ (\d+) (minute|hour|day)s? later", line).groups()
            later = dt.datetime.now(dt.UTC) + dt.timedelta(**{f"{unit}s": int(amount)})
            if self._clock is not None:
                self._clock.stop()
            self._clock = time_machine.travel(later, tick=True)
            self._clock.start()
        else:
            raise ValueError(f"transcript line {line!r} is not one of > < [press] @rep ~")

    async def _bot_says(self, expected: str) -> None:
        lines = self.chat.bot_lines()
        if expected == "(silence)":
            assert len(lines) == self.seen, f"{self._where()}: expected silence, the bot said {lines[self.seen:]}"
            return
        if len(lines) <= self.seen:  # a send queued by something other than a line here (a reminder)
            async def more() -> bool:
                return len(self.chat.bot_lines()) > self.seen
            try:
                await eventually(more, timeout=10)
            except AssertionError:
                raise AssertionError(f"{self._where()}: the bot said nothing; expected {expected!r}") from None
            lines = self.chat.bot_lines()
        said = lines[self.seen]
        self.seen += 1
        for part in expected.split(" | "):
            assert part.strip() in said, f"{self._where()}: {part.strip()!r} not in the bot's {said!r}"

    async def _rep_gets(self, who: str, expected: str) -> None:
        parts = [p.strip() for p in expected.split(" | ")]

        async def arrived() -> str | None:
            for n, text in enumerate(self.reps[who].inbox()[self.rep_seen.get(who, 0):]):
                if all(p in text for p in parts):
                    self.rep_seen[who] = self.rep_seen.get(who, 0) + n + 1
                    return text
            return None

        try:
            await eventually(arrived, timeout=15)
        except AssertionError:
            raise AssertionError(f"{self._where()}: rep {who} got no message with {parts}; "
                                 f"their inbox: {self.reps[who].inbox()}") from None

    def _where(self) -> str:
        return "after\n    " + "\n    ".join(self.log[-6:]) + "\n"

    async def conversation_id(self) -> int:
        async with self.hub.sessions() as session:
            return await session.scalar(
                select(Conversation.id).join(Identity, Identity.id == Conversation.identity_id)
                .where(Identity.external_id == self.chat.external_id,
                       Identity.channel_account_id == self.chat.account_id)
                .order_by(Conversation.id.desc()).limit(1))

    async def _inbound(self) -> int:
        async with self.hub.sessions() as session:
            return await session.scalar(select(func.count()).select_from(Message).where(Message.direction == "in"))

    async def settled(self, inbound_before: int) -> None:
        """The message just written stored, every inbound message processed, and every
        send due now out (delivered or given up)."""
        async def quiet() -> bool:
            if await self._inbound() <= inbound_before:
                return False
            async with self.hub.sessions() as session:
                unprocessed = await session.scalar(select(func.count()).select_from(Message).where(
                    Message.direction == "in", Message.processed_at.is_(None)))
                # Sends due now; one scheduled for later (a snoozed reminder) is not waited for.
                unsent = await session.scalar(select(func.count()).select_from(OutboxMessage).where(
                    OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.CLAIMED, OutboxStatus.SENDING]),
                    OutboxMessage.next_attempt_at <= utcnow() + dt.timedelta(seconds=5)))
            return unprocessed == 0 and unsent == 0

        try:
            await eventually(quiet, timeout=30)  # a loaded machine (IMAP polls, SMTP) may take its time
        except AssertionError:
            raise AssertionError(f"the hub did not settle within 30 s\n{await self._unsettled()}") from None

    async def _unsettled(self) -> str:
        """What the hub still holds, and where each of its tasks waits: a failure that says why."""
        async with self.hub.sessions() as session:
            sends = (await session.execute(select(
                OutboxMessage.id, OutboxMessage.status, OutboxMessage.channel_account_id, OutboxMessage.recipient,
                OutboxMessage.attempts, OutboxMessage.next_attempt_at, OutboxMessage.claimed_by,
                OutboxMessage.claimed_at, OutboxMessage.last_error).where(
                OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.CLAIMED, OutboxStatus.SENDING])))).all()
            messages = (await session.execute(select(Message.id, Message.text, Message.processing_error).where(
                Message.direction == "in", Message.processed_at.is_(None)))).all()
        return "\n".join([f"now {utcnow()}", *(f"unsent {row}" for row in sends),
                          *(f"unprocessed {row}" for row in messages),
                          *(f"task {task.get_name()}: {_awaiting(task.get_coro())}" for task in asyncio.all_tasks())])


def _awaiting(coro: object) -> str:
    """Where a task waits: its chain of awaits, outermost first."""
    frames = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            frames.append(f"{frame.f_code.co_name} ({frame.f_code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno})")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return " > ".join(frames)
