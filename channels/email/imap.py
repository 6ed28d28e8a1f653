"""The IMAP side of an email account: fetch new mail, store it, mark it, wait.

For the account's folder the poller remembers UIDVALIDITY and the last UID it
stored (the cursor `uid:<folder>`, committed with the messages themselves), so
a restart neither misses nor repeats mail; if the server renumbers the folder
(a new UIDVALIDITY) it reads the folder again and the Message-ID dedupe keeps
each mail once. Stored mail is flagged \\Seen. Then it waits with IDLE where
the server offers it (re-issued every few minutes), else polls; errors
reconnect with backoff. Mail larger than the account's limit is recorded by
its headers only, with its size.

aioimaplib speaks IMAP over implicit TLS (993) or, for local servers, plain
TCP; it has no STARTTLS.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aioimaplib

from channels.base import InboundSink
from crm_core.ports import AccountRef
from crm_core.waiting import wait_any

if TYPE_CHECKING:
    from channels.email.adapter import EmailAdapter, EmailCredentials

log = logging.getLogger(__name__)

FETCH_BATCH = 20
_EXISTS = re.compile(rb"(?:\* )?(\d+) EXISTS")
IDLE_SECONDS = 300.0


class ImapError(Exception):
    pass


async def open_mailbox(creds: EmailCredentials, folder: str, *,
                       timeout: float = 30) -> tuple[aioimaplib.IMAP4, str]:
    """Connected, logged in, `folder` selected, with its UIDVALIDITY; ImapError with
    the server's words otherwise."""
    cls = aioimaplib.IMAP4_SSL if creds.imap_security == "ssl" else aioimaplib.IMAP4
    client = cls(host=creds.imap_host, port=creds.imap_port, timeout=timeout)
    await client.wait_hello_from_server()
    response = await client.login(creds.username, creds.password)
    if response.result != "OK":
        raise ImapError(f"login refused: {_words(response)}")
    response = await client.select(folder)
    if response.result != "OK":
        raise ImapError(f"cannot open folder {folder!r}: {_words(response)}")
    return client, _uidvalidity(response)


def _words(response: aioimaplib.Response) -> str:
    return " ".join(line.decode("utf-8", "replace") if isinstance(line, bytes | bytearray) else str(line)
                    for line in response.lines)[:300]


def _uidvalidity(response: aioimaplib.Response) -> str:
    for line in response.lines:
        found = re.search(rb"UIDVALIDITY (\d+)", bytes(line))
        if found:
            return found.group(1).decode()
    return "0"


class ImapPoller:
    def __init__(self, adapter: EmailAdapter, account: AccountRef, sink: InboundSink,
                 load_cursor: Callable[[str], Awaitable[str | None]], *, first_backoff: float = 1.0) -> None:
        from channels.email.adapter import EmailCredentials, EmailSettings

        self.adapter = adapter
        self.account = account
        self.sink = sink
        self.load_cursor = load_cursor
        self.creds = EmailCredentials.model_validate(account.credentials)
        self.settings = EmailSettings.model_validate(account.settings)
        self.cursor_name = f"uid:{self.settings.folder}"
        self.first_backoff = first_backoff
        self.stored = 0        # mails stored since start, for logs and tests
        self.skipped = 0       # machine mail (auto-replies, bounces, lists) passed over
        self._news = False     # the server said a mail came, outside a command we waited for (_notice_news)
        self._exists: int | None = None  # the mailbox's size as the server last said it there

    @property
    def label(self) -> str:
        return f"email account {self.account.id} ({self.creds.address}, {self.settings.folder})"

    async def run(self, stop: asyncio.Event) -> None:
        delay = self.first_backoff
        while not stop.is_set():
            client = None
            try:
                client, validity = await open_mailbox(self.creds, self.settings.folder)
                self._notice_news(client)
                log.info("%s: connected", self.label)
                delay = self.first_backoff
                while not stop.is_set():
                    await self.fetch_new(client, validity)
                    await self._wait(client, stop)
            except (ImapError, aioimaplib.AioImapException, OSError, TimeoutError, ValueError) as exc:
                log.warning("%s: %s: %s; reconnecting in %.0fs", self.label, type(exc).__name__, exc, delay)
            except Exception:
                log.exception("%s: failed; reconnecting in %.0fs", self.label, delay)
            finally:
                if client is not None:
                    await self._logout(client)
            if not stop.is_set():
                await wait_any(stop, timeout=delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, 300.0)
        log.info("%s: stopped", self.label)

    def _notice_news(self, client: aioimaplib.IMAP4) -> None:
        """A mail that lands while the poller runs a command (its SEARCH, FETCH or STORE) is announced
        by an untagged EXISTS in that command's answer, or between two commands. aioimaplib gives it
        to no command and drops it ("ignored untagged response"), and the server, having said it,
        says nothing more in the IDLE that follows: the poller idled over the mail for IDLE_SECONDS.
        Noted here, so that it looks again at once; only when the size it says changed, so that a
        server that repeats it in every answer does not keep the poller searching."""
        protocol = client.protocol
        untagged = protocol._untagged_response

        def noticing(line: bytes) -> Any:
            said = _EXISTS.match(line) if protocol.pending_sync_command is None else None
            if said is not None and int(said.group(1)) != self._exists:
                self._exists, self._news = int(said.group(1)), True
            return untagged(line)

        protocol._untagged_response = noticing

    async def fetch_new(self, client: aioimaplib.IMAP4, validity: str) -> int:
        """Store every mail after the cursor, oldest first; how many were read."""
        self._news = False  # what comes from now on, the search below or the next one finds
        saved = await self.load_cursor(self.cursor_name)
        last = 0
        if saved:
            saved_validity, _, saved_uid = saved.partition(":")
            if saved_validity == validity:
                last = int(saved_uid or 0)
            else:
                log.warning("%s: UIDVALIDITY changed (%s -> %s); reading the folder again", self.label,
                            saved_validity, validity)
        response = await client.uid_search(f"UID {last + 1}:*")
        if response.result != "OK":
            raise ImapError(f"UID SEARCH failed: {_words(response)}")
        uids = sorted(int(u) for line in response.lines[:-1] for u in bytes(line).split() if u.isdigit())
        uids = [u for u in uids if u > last]  # "n:*" always matches the last mail
        for start in range(0, len(uids), FETCH_BATCH):
            for uid, raw in await self._fetch(client, uids[start:start + FETCH_BATCH]):
                events, mail = self.adapter.events_from_mail(self.account, raw)
                if not events:
                    self.skipped += 1
                    log.info("%s: uid %s from %s is %s mail; not a customer message", self.label, uid,
                             mail.from_address or "?", mail.machine or "unaddressed")
                # The cursor is committed with the message: a crash in between repeats nothing.
                await self.sink(self.account.id, events, (self.cursor_name, f"{validity}:{uid}"))
                self.stored += len(events)
                flagged = await client.uid("store", str(uid), "+FLAGS.SILENT (\\Seen)")
                if flagged.result != "OK":
                    log.warning("%s: could not flag uid %s as seen: %s", self.label, uid, _words(flagged))
        return len(uids)

    async def _fetch(self, client: aioimaplib.IMAP4, uids: list[int]) -> list[tuple[int, bytes]]:
        uid_set = ",".join(map(str, uids))
        sizes = await client.uid("fetch", uid_set, "(UID RFC822.SIZE)")
        too_big = set()
        for line in sizes.lines:
            uid = re.search(rb"UID (\d+)", bytes(line))
            if uid and _size(bytes(line)) > self.settings.max_message_bytes:
                too_big.add(int(uid.group(1)))
        found: dict[int, bytes] = {}
        small = [u for u in uids if u not in too_big]
        if small:
            found.update(_literals(await client.uid("fetch", ",".join(map(str, small)), "(UID BODY.PEEK[])")))
        for uid in too_big:
            headers = _literals(await client.uid("fetch", str(uid), "(UID BODY.PEEK[HEADER])"))
            note = (f"\r\n[This mail is larger than {self.settings.max_message_bytes // (1024 * 1024)} MB; "
                    "only its headers were read. It is still in the mailbox.]\r\n").encode()
            found[uid] = headers.get(uid, b"") + note
        missing = [u for u in uids if u not in found]
        if missing:
            raise ImapError(f"the server did not return uids {missing[:5]}")
        return [(u, found[u]) for u in uids]

    async def _wait(self, client: aioimaplib.IMAP4, stop: asyncio.Event) -> None:
        if not (self.settings.idle and client.has_capability("IDLE")):
            await wait_any(stop, timeout=self.settings.poll_seconds)
            return
        if self._news:
            return
        idle = await client.idle_start(timeout=IDLE_SECONDS + 30)
        push = asyncio.ensure_future(client.wait_server_push(timeout=IDLE_SECONDS))
        stopper = asyncio.ensure_future(stop.wait())
        try:
            if not self._news:  # (announced while IDLE was being asked for)
                await asyncio.wait({push, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not push.done():
                push.cancel()
            client.idle_done()
            await asyncio.wait_for(idle, 10)

    @staticmethod
    async def _logout(client: aioimaplib.IMAP4) -> None:
        try:
            await asyncio.wait_for(client.logout(), 5)
        except Exception:  # the connection may already be gone; nothing to keep
            pass


def _size(line: bytes) -> int:
    found = re.search(rb"RFC822\.SIZE (\d+)", line)
    return int(found.group(1)) if found else 0


def _literals(response: aioimaplib.Response) -> dict[int, bytes]:
    """uid -> literal body from a FETCH response (a header line, then its literal)."""
    found: dict[int, bytes] = {}
    lines = response.lines
    for n, line in enumerate(lines[:-1]):
        if isinstance(line, bytes) and b"FETCH" in line and isinstance(lines[n + 1], bytearray):
            uid = re.search(rb"UID (\d+)", line)
            if uid:
                found[int(uid.group(1))] = bytes(lines[n + 1])
    return found
