"""Email as a channel: one mailbox, read by IMAP, written to by SMTP.

Inbound comes from the IMAP poller (`imap.py`), not a webhook. Each customer
mail becomes one message in the conversation of its thread: the root of its
References / In-Reply-To (the hub's own Message-IDs carry the root, so a
client that drops References still threads), falling back to the subject
from the same sender (`thread_aliases`). Auto-replies, bounces and list mail
are never customer messages.

Outbound: aiosmtplib with implicit TLS, STARTTLS or (local servers) none;
replies carry In-Reply-To / References and "Re: subject" (zh subjects are
RFC 2047-encoded); marketing mail carries List-Unsubscribe and
List-Unsubscribe-Post (RFC 8058 one-click) pointing back at the hub, whose
answer records the opt-out.

The webhook URL of an email account serves only that unsubscribe link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qs, urlencode

import aiosmtplib
from pydantic import BaseModel, Field

from channels.base import (
    AccountSettings,
    Capabilities,
    ConnectionCheck,
    ConnectionFailed,
    InboundSink,
    WebhookOutcome,
    WebhookRejected,
    WebhookRequest,
    numbered_options,
)
from channels.email.parse import ParsedMail, build_reply_headers, parse_mail
from channels.files import FileFetcher, OwnMedia, file_name
from crm_core.models import MessageKind
from crm_core.ports import (
    AccountRef,
    InboundEvent,
    InboundMessage,
    OutboundMessage,
    PermanentFailure,
    Profile,
    RateLimit,
    RecipientUnreachable,
    Sender,
    SendResult,
    TemporaryFailure,
)

OWN_ID_PREFIX = "scrm."
MAX_ATTACHMENT_BYTES = 20 * 2**20  # most mail servers take 25 MB a message, base64 makes it a third larger
REPLY_PREFIX = re.compile(r"^\s*(re|回复|答复)\s*[:：]", re.I)


class EmailCredentials(BaseModel):
    address: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", description="The mailbox's address")
    display_name: str | None = Field(default=None, max_length=200)
    imap_host: str = Field(min_length=1, max_length=255)
    imap_port: int = Field(default=993, ge=1, le=65535)
    imap_security: Literal["ssl", "none"] = "ssl"
    smtp_host: str = Field(min_length=1, max_length=255)
    smtp_port: int = Field(default=465, ge=1, le=65535)
    smtp_security: Literal["tls", "starttls", "none"] = "tls"
    username: str = Field(min_length=1, max_length=255)
    password: str = Field(min_length=1, max_length=1000)
    # Signs unsubscribe links; made once when the account is created.
    link_secret: str = Field(default_factory=lambda: secrets.token_urlsafe(32), min_length=16)


class EmailSettings(AccountSettings):
    folder: str = Field(default="INBOX", max_length=200)
    poll_seconds: float = Field(default=60.0, ge=1, le=3600)
    idle: bool = True  # wait with IMAP IDLE where the server offers it
    max_message_bytes: int = Field(default=40 * 1024 * 1024, ge=1024)
    default_subject: str = Field(default="Re: your message · 您的来信", max_length=300)
    messages_per_minute: int = Field(default=60, ge=1, le=6000)


class EmailAdapter:
    kind: ClassVar[str] = "email"
    capabilities: ClassVar[Capabilities] = Capabilities(max_text_length=100_000, reply_via=True)
    credentials_model: ClassVar[type[BaseModel]] = EmailCredentials
    settings_model: ClassVar[type[BaseModel]] = EmailSettings
    secret_fields: ClassVar[frozenset[str]] = frozenset({"password", "link_secret"})

    def __init__(self, public_base_url: str = "http://127.0.0.1:8080", *, allow_private: bool = False,
                 own_media: OwnMedia | None = None) -> None:
        self.public_base_url = public_base_url.rstrip("/")
        self.files = FileFetcher(allow_private=allow_private, own_media=own_media)

    # ---- inbound -------------------------------------------------------

    def events_from_mail(self, account: AccountRef, raw: bytes) -> tuple[list[InboundEvent], ParsedMail]:
        mail = parse_mail(raw)
        if mail.machine is not None or not mail.from_address:
            return [], mail
        return [mail_event(mail, raw_size=len(raw), own_domain=_domain(account.credentials["address"]))], mail

    def parse_webhook(self, account: AccountRef, request: WebhookRequest) -> WebhookOutcome:
        """The one-click unsubscribe link (RFC 8058): GET shows a confirmation, POST records it."""
        address = request.query.get("unsubscribe", "")
        token = request.query.get("t", "")
        if not address or not token:
            raise WebhookRejected(404, f"email channel account {account.id} has no webhook; only unsubscribe links")
        if not hmac.compare_digest(unsubscribe_token(account, address), token):
            raise WebhookRejected(403, "this unsubscribe link is not valid (altered or for another mailbox)")
        if request.method == "GET":
            query = urlencode({"unsubscribe": address, "t": token})
            page = (f"<!doctype html><meta charset=utf-8><title>Unsubscribe · 退订</title>"
                    f"<form method=post action='?{html.escape(query)}'>"
                    f"<p>Stop marketing email to {html.escape(address)}? · 不再向 {html.escape(address)} 发送营销邮件？</p>"
                    f"<input type=hidden name=List-Unsubscribe value=One-Click>"
                    f"<button>Unsubscribe · 退订</button></form>")
            return WebhookOutcome(events=[], response=page, content_type="text/html; charset=utf-8")
        if request.method != "POST":
            raise WebhookRejected(405, "unsubscribe with POST")
        form = parse_qs(request.body.decode("utf-8", "replace"))
        one_click = form.get("List-Unsubscribe", [""])[0] == "One-Click"
        event = InboundMessage(
            platform_message_id=f"unsubscribe:{address}:{uuid.uuid4().hex}",
            sender=Sender(external_id=address), thread_id=f"unsubscribe:{address}", kind=MessageKind.EVENT,
            text="unsubscribed from marketing email", raw={"form": form},
            attachments=[{"type": "opt_out", "purpose": "marketing", "channel": "email",
                          "source": "list-unsubscribe-post" if one_click else "unsubscribe-link"}])
        return WebhookOutcome(events=[event], response="Unsubscribed · 已退订")

    async def fetch_profile(self, account: AccountRef, external_id: str) -> Profile | None:
        """A sender's address is theirs: the key that joins them to the same person elsewhere."""
        return Profile(keys={"email": external_id.lower()}) if "@" in external_id else None

    def wants_polling(self, account: AccountRef) -> bool:
        return True

    def make_poller(self, account: AccountRef, sink: InboundSink,
                    load_cursor: Callable[[str], Awaitable[str | None]]) -> Any:
        from channels.email.imap import ImapPoller  # the poller builds on this module

        return ImapPoller(self, account, sink, load_cursor)

    # ---- outbound ------------------------------------------------------

    def rate_limits(self, account: AccountRef, recipient: str) -> Sequence[tuple[str, RateLimit]]:
        settings = EmailSettings.model_validate(account.settings)
        return [(f"email:{account.id}", RateLimit(settings.messages_per_minute, 60))]

    def compose(self, account: AccountRef, message: OutboundMessage) -> EmailMessage:
        creds = EmailCredentials.model_validate(account.credentials)
        settings = EmailSettings.model_validate(account.settings)
        via = message.reply_via or {}
        to = via.get("reply_to") if message.recipient.startswith("<") else message.recipient
        if not to:
            raise PermanentFailure(f"no address to write to in thread {message.recipient}: "
                                   "no customer mail to reply to")
        mail = EmailMessage()
        mail["From"] = formataddr((creds.display_name or "", creds.address))
        mail["To"] = to
        if via.get("subject"):
            subject = via["subject"] if REPLY_PREFIX.match(via["subject"]) else f"Re: {via['subject']}"
        else:
            subject = message.title or settings.default_subject
        mail["Subject"] = subject
        mail["Date"] = formatdate(localtime=False)
        root = via.get("thread") or (message.recipient if message.recipient.startswith("<") else None)
        mail["Message-ID"] = own_message_id(root, _domain(creds.address))
        build_reply_headers(mail, parent_id=via.get("message_id"), parent_refs=list(via.get("references") or []))
        if message.options.get("automated"):
            mail["Auto-Submitted"] = "auto-replied"  # RFC 3834: other robots do not answer it
        if message.options.get("marketing"):
            link = self.unsubscribe_url(account, to)
            mail["List-Unsubscribe"] = f"<{link}>"
            mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        mail.set_content(numbered_options(message))
        if message.image_url or message.link_url:
            mail.add_alternative(_html(message), subtype="html")
        return mail

    async def send(self, account: AccountRef, message: OutboundMessage) -> SendResult:
        creds = EmailCredentials.model_validate(account.credentials)
        document = None
        if message.file_url:  # the document itself, attached; its address stays out of the words
            document = await self.files.fetch(message.file_url, what="file", max_bytes=MAX_ATTACHMENT_BYTES,
                                              limit_name="the hub's mail attachments")
            named = file_name(message.file_name, document)
            message = replace(message, file_url=None, file_name=None)
        mail = self.compose(account, message)
        if document is not None:
            main, _, sub = document.content_type.partition("/")
            mail.add_attachment(document.data, maintype=main or "application", subtype=sub or "octet-stream",
                                filename=named)
        try:
            await aiosmtplib.send(mail, hostname=creds.smtp_host, port=creds.smtp_port, username=creds.username,
                                  password=creds.password, use_tls=creds.smtp_security == "tls",
                                  start_tls=creds.smtp_security == "starttls", timeout=30)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            if all(500 <= c < 600 for c in codes):
                raise RecipientUnreachable(f"the mail server refused {mail['To']}: {exc.recipients[0].message}",
                                           code=codes[0]) from None
            raise TemporaryFailure(f"the mail server deferred {mail['To']}: {exc}", code=codes[0]) from None
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise TemporaryFailure(f"SMTP login refused for channel account {account.id} ({exc.code}): "
                                   "check the username and password", code=exc.code) from None
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600:
                raise PermanentFailure(f"the mail server rejected the message: {exc.code} {exc.message}",
                                       code=exc.code) from None
            raise TemporaryFailure(f"the mail server answered {exc.code} {exc.message}", code=exc.code) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TemporaryFailure(f"cannot send through {creds.smtp_host}:{creds.smtp_port}: "
                                   f"{type(exc).__name__}: {exc}") from None
        return SendResult(platform_message_id=str(mail["Message-ID"]))

    def unsubscribe_url(self, account: AccountRef, address: str) -> str:
        query = urlencode({"unsubscribe": address, "t": unsubscribe_token(account, address)})
        return f"{self.public_base_url}/hooks/email/{account.id}?{query}"

    # ---- setup ---------------------------------------------------------

    def destinations(self, credentials: dict[str, Any]) -> list[tuple[str, str]]:
        """The hosts the operator typed, which the hub checks before it connects to them."""
        creds = EmailCredentials.model_validate(credentials)
        return [("imap_host", creds.imap_host), ("smtp_host", creds.smtp_host)]

    async def check_connection(self, api_base: str | None, credentials: dict[str, Any]) -> ConnectionCheck:
        """Sign in to both servers. When nothing that speaks IMAP (or SMTP) answers, the reason
        is one sentence whatever happened (refused, silent, another protocol), so that the
        test does not tell which ports of a host are open."""
        from channels.email.imap import ImapError, open_mailbox

        creds = EmailCredentials.model_validate(credentials)
        try:
            client, _ = await open_mailbox(creds, "INBOX", timeout=15)
            await client.logout()
        except ImapError as exc:  # an IMAP server answered, and refused
            raise ConnectionFailed(f"IMAP {creds.imap_host}:{creds.imap_port}: {exc}") from None
        except Exception:
            raise ConnectionFailed(_no_server("IMAP", creds.imap_host, creds.imap_port,
                                              creds.imap_security)) from None
        try:
            smtp = aiosmtplib.SMTP(hostname=creds.smtp_host, port=creds.smtp_port,
                                   use_tls=creds.smtp_security == "tls",
                                   start_tls=creds.smtp_security == "starttls", timeout=15)
            await smtp.connect()
        except Exception:
            raise ConnectionFailed(_no_server("SMTP", creds.smtp_host, creds.smtp_port,
                                              creds.smtp_security)) from None
        try:
            if creds.smtp_security != "none" or smtp.supports_extension("auth"):
                await smtp.login(creds.username, creds.password)
            await smtp.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise ConnectionFailed(f"SMTP {creds.smtp_host}:{creds.smtp_port}: {exc}") from None
        return ConnectionCheck(platform_account_id=creds.address.lower(), display_name=creds.address)

    async def activate(self, account: AccountRef, webhook_url: str) -> None:
        """Nothing to register: the poller starts by itself."""

    async def close(self) -> None:
        await self.files.close()


def _no_server(protocol: str, host: str, port: int, security: str) -> str:
    return (f"{protocol} {host}:{port}: no {protocol} server answered there with {security} security; check the "
            "host, the port and the security setting your mail provider gives")


def mail_event(mail: ParsedMail, *, raw_size: int, own_domain: str) -> InboundMessage:
    references = [r for r in mail.references if r]
    parents = references + ([mail.in_reply_to] if mail.in_reply_to and mail.in_reply_to not in references else [])
    root = next((r for r in (own_root(p) for p in parents) if r), None) \
        or (references[0] if references else None) or mail.in_reply_to or mail.message_id
    message_id = mail.message_id or f"<{hashlib.sha256(mail.full_text.encode()).hexdigest()}@no-message-id>"
    root = root or message_id
    aliases = [p for p in parents if not own_root(p)] + [message_id]
    if mail.thread_subject:
        aliases.append(f"subject:{mail.from_address}:{mail.thread_subject}"[:200])
    attachments: list[dict[str, Any]] = [{"type": "file", "name": a.name, "content_type": a.content_type,
                                          "size": a.size} for a in mail.attachments]
    attachments.append({"type": "reply_via", "reply_to": mail.from_address, "message_id": message_id,
                        "references": references[-20:], "subject": mail.subject[:300], "thread": root})
    raw = {"message_id": message_id, "in_reply_to": mail.in_reply_to, "references": references[-50:],
           "subject": mail.subject, "from": mail.from_address, "to": mail.to, "size": raw_size,
           "defects": mail.defects, "full_text": mail.full_text,
           "date": mail.date.isoformat() if mail.date else None}
    return InboundMessage(platform_message_id=message_id[:200], sender=Sender(external_id=mail.from_address,
                                                                              display_name=mail.from_name),
                          thread_id=root[:200], kind=MessageKind.TEXT if mail.text else MessageKind.FILE,
                          text=mail.text or None, raw=raw, sent_at=mail.date, attachments=attachments,
                          thread_aliases=tuple(a[:200] for a in aliases))


def own_message_id(root: str | None, domain: str) -> str:
    """A Message-ID that carries its thread's root, so replies thread even without References."""
    token = base64.urlsafe_b64encode((root or "").encode()).decode().rstrip("=") if root else "new"
    return f"<{OWN_ID_PREFIX}{uuid.uuid4().hex[:16]}.{token}@{domain}>"


def own_root(message_id: str) -> str | None:
    """The thread root inside one of the hub's own Message-IDs, else None."""
    local = message_id.strip("<>").split("@", 1)[0]
    if not local.startswith(OWN_ID_PREFIX):
        return None
    token = local[len(OWN_ID_PREFIX):].split(".", 1)[-1]
    if token == "new":
        return message_id
    try:
        root = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return root if root.startswith("<") and root.endswith(">") else None


def unsubscribe_token(account: AccountRef, address: str) -> str:
    key = account.credentials["link_secret"].encode()
    return hmac.new(key, f"{account.id}:{address.lower()}".encode(), hashlib.sha256).hexdigest()[:32]


def _domain(address: str) -> str:
    return parseaddr(address)[1].rsplit("@", 1)[-1] or "localhost"


def _html(message: OutboundMessage) -> str:
    """The HTML part of a message with a picture or link; the plain part says the same."""
    parts = [f"<h3>{html.escape(message.title)}</h3>"] if message.title else []
    if message.image_url:
        parts.append(f'<p><img src="{html.escape(message.image_url)}" alt="" style="max-width:100%"></p>')
    parts.append("<p>" + html.escape(numbered_options(message, with_media=False)).replace("\n", "<br>") + "</p>")
    if message.link_url:
        url = html.escape(message.link_url)
        parts.append(f'<p><a href="{url}">{url}</a></p>')
    return "<!doctype html><html><body>" + "".join(parts) + "</body></html>"
