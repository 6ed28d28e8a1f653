"""Inbound mail to what the customer wrote, with the standard library only.

- MIME: multipart of any depth; text/plain preferred, HTML-only mail turned
  into clean text; RFC 2047 headers; charsets used in China (GB2312 / GBK
  mail decoded as GB18030, their superset, since clients label GBK text as
  GB2312; Big5 as Big5-HKSCS) and a lenient fallback, so broken MIME never
  loses a message.
- What the customer wrote: quoted replies ("On ... wrote:", "在 ... 写道：",
  "-----Original Message-----", "------------------ 原始邮件 ------------------",
  Outlook's "From: / 发件人:" block, ">" lines) and signatures ("-- ",
  "Sent from my iPhone", "发自我的iPhone") are cut; the whole body is kept in raw.
- Attachments are recorded (name, type, size), never stored in the database.
- Threading: Message-ID, In-Reply-To, References and the subject without
  "Re:" / "回复：" prefixes.
- Machine mail: auto-replies (Auto-Submitted, X-Autoreply, X-Autorespond,
  Precedence auto_reply, out-of-office subjects), bounces (multipart/report
  delivery-status, MAILER-DAEMON, empty Return-Path) and mailing-list traffic
  (List-Id, Precedence bulk / list) are classified, so the hub never treats
  them as a customer writing.
"""

from __future__ import annotations

import email
import email.header
import email.policy
import email.utils
import html
import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from html.parser import HTMLParser
from typing import Any

CHARSET_ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030",
                   "euc-cn": "gb18030", "big5": "big5hkscs", "x-big5": "big5hkscs"}
MAX_TEXT = 20_000  # characters of customer text kept in a message

_QUOTE_HEADERS = [
    re.compile(r"^\s*On .{3,300}wrote:\s*$", re.I),
    re.compile(r"^\s*在.{3,300}写道[：:]\s*$"),
    re.compile(r"^\s*-{2,}\s*Original Message\s*-{2,}\s*$", re.I),
    re.compile(r"^\s*-{2,}\s*原始邮件\s*-{2,}\s*$"),
    re.compile(r"^\s*-{2,}\s*Forwarded message\s*-{2,}\s*$", re.I),
    re.compile(r"^\s*_{10,}\s*$"),
]
_OUTLOOK_BLOCK = re.compile(r"^\s*(From|发件人)\s*[:：]\s*.+$", re.I)
_OUTLOOK_NEXT = re.compile(r"^\s*(Sent|Date|发送时间|日期|To|收件人|Subject|主题)\s*[:：]", re.I)
_SIGNATURES = [
    re.compile(r"^-- ?$"),
    re.compile(r"^\s*(Sent from my \w+|Get Outlook for \w+|发自我的\s*\w+|来自我的\s*\w+)\s*$", re.I),
]
_REPLY_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|sv|答复|回复|转发)\s*[:：]\s*|\[[^\]]{1,40}\]\s*)+", re.I)
_AUTO_SUBJECT = re.compile(r"(out of (the )?office|automatic reply|auto[- ]?reply|autoreply|自动回复|"
                           r"不在办公室|休假|vacation reply)", re.I)


@dataclass
class Attachment:
    name: str
    content_type: str
    size: int


@dataclass
class ParsedMail:
    message_id: str
    in_reply_to: str | None
    references: list[str]
    subject: str
    from_address: str
    from_name: str | None
    to: list[str]
    date: Any
    text: str                       # what the customer wrote
    full_text: str                  # the whole text body, quotes included
    attachments: list[Attachment] = field(default_factory=list)
    machine: str | None = None      # "auto-reply", "bounce", "list": not a customer writing
    defects: list[str] = field(default_factory=list)

    @property
    def thread_subject(self) -> str:
        return normalize_subject(self.subject)


def parse_mail(raw: bytes) -> ParsedMail:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    defects = [type(d).__name__ for d in msg.defects]
    from_name, from_address = email.utils.parseaddr(_header(msg, "From"))
    message_id = _first_id(_header(msg, "Message-ID"))
    references = _ids(_header(msg, "References"))
    in_reply_to = _first_id(_header(msg, "In-Reply-To")) or None
    plain, html_body, attachments = _walk(msg, defects)
    full = plain if plain.strip() else html_to_text(html_body)
    full = _clean_whitespace(full)
    date = None
    try:
        date = email.utils.parsedate_to_datetime(_header(msg, "Date")) if _header(msg, "Date") else None
    except (TypeError, ValueError):
        defects.append("BadDate")
    to = [addr for _, addr in email.utils.getaddresses([_header(msg, "To"), _header(msg, "Cc")]) if addr]
    mail = ParsedMail(message_id=message_id, in_reply_to=in_reply_to, references=references,
                      subject=_header(msg, "Subject"), from_address=from_address.strip().lower(),
                      from_name=from_name or None, to=to, date=date, text=strip_quotes(full)[:MAX_TEXT],
                      full_text=full[:MAX_TEXT * 5], attachments=attachments, defects=defects)
    mail.machine = classify(msg, mail)
    return mail


def _header(msg: Message, name: str) -> str:
    """A header as text, RFC 2047 words decoded with the charset aliases (a
    "gb2312" word holding GBK characters); a broken one is read raw, not lost."""
    raw = None
    for key, value in msg.raw_items() if hasattr(msg, "raw_items") else msg.items():
        if key.lower() == name.lower():
            raw = str(value)
            break
    if raw is None:
        return ""
    try:
        parts = email.header.decode_header(raw.replace("\r\n", "").replace("\n", ""))
    except (ValueError, LookupError, TypeError, IndexError):
        return raw.strip()
    text = []
    for chunk, charset in parts:
        if isinstance(chunk, str):
            text.append(chunk)
            continue
        charset = CHARSET_ALIASES.get((charset or "ascii").lower(), (charset or "ascii").lower())
        try:
            text.append(chunk.decode(charset))
        except (LookupError, UnicodeDecodeError):
            text.append(chunk.decode("utf-8", errors="replace"))
    return "".join(text).strip()


def _first_id(value: str) -> str:
    ids = _ids(value)
    return ids[0] if ids else ""


def _ids(value: str) -> list[str]:
    return re.findall(r"<[^<>\s]+>", value or "")


def _walk(msg: Message, defects: list[str]) -> tuple[str, str, list[Attachment]]:
    plain: list[str] = []
    html_parts: list[str] = []
    attachments: list[Attachment] = []
    parts = msg.walk() if msg.is_multipart() else [msg]
    for part in parts:
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        filename = _filename(part)
        if disposition == "attachment" or (filename and content_type not in ("text/plain", "text/html")):
            payload = part.get_payload(decode=True) or b""
            attachments.append(Attachment(name=filename or "unnamed", content_type=content_type, size=len(payload)))
            continue
        if content_type == "text/plain":
            plain.append(decode_part(part, defects))
        elif content_type == "text/html":
            html_parts.append(decode_part(part, defects))
        elif content_type.startswith(("message/", "text/")):
            continue
        else:
            payload = part.get_payload(decode=True) or b""
            attachments.append(Attachment(name=filename or "unnamed", content_type=content_type, size=len(payload)))
    return "\n".join(plain), "\n".join(html_parts), attachments


def _filename(part: Message) -> str | None:
    try:
        return part.get_filename()
    except (ValueError, LookupError, TypeError):
        return None


def decode_part(part: Message, defects: list[str]) -> str:
    payload = part.get_payload(decode=True)
    if payload is None:
        return ""
    declared = (part.get_content_charset() or "utf-8").lower()
    charset = CHARSET_ALIASES.get(declared, declared)
    for candidate in (charset, "utf-8", "gb18030"):
        try:
            return payload.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    defects.append(f"UndecodableText({declared})")
    return payload.decode(charset if _known(charset) else "utf-8", errors="replace")


def _known(charset: str) -> bool:
    try:
        "".encode(charset)
        return True
    except LookupError:
        return False


class _TextExtractor(HTMLParser):
    BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "hr"}
    SKIP = {"script", "style", "head", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0
        self.quote_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag == "blockquote":
            self.quote_depth += 1
            self.out.append("\n")
        elif tag in self.BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag == "blockquote":
            self.quote_depth = max(0, self.quote_depth - 1)
            self.out.append("\n")
        elif tag in self.BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if self.quote_depth:  # quoted earlier mail in HTML replies: marked like plain-text quotes
            self.out.append("\n".join("> " + line if line.strip() else line for line in data.split("\n")))
        else:
            self.out.append(data)


def html_to_text(markup: str) -> str:
    if not markup:
        return ""
    parser = _TextExtractor()
    try:
        parser.feed(markup)
        parser.close()
    except (AssertionError, ValueError):
        return html.unescape(re.sub(r"<[^>]+>", " ", markup))
    return "".join(parser.out)


def _clean_whitespace(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    lines = [line.rstrip() for line in text.split("\n")]
    cleaned: list[str] = []
    for line in lines:
        if not line.strip() and cleaned and not cleaned[-1].strip():
            continue
        cleaned.append(line)
    return "\n".join(cleaned).strip()


def strip_quotes(text: str) -> str:
    """What the sender wrote above quoted mail and their signature."""
    lines = text.split("\n")
    kept: list[str] = []
    for n, line in enumerate(lines):
        if any(p.match(line) for p in _QUOTE_HEADERS):
            break
        if _OUTLOOK_BLOCK.match(line) and any(_OUTLOOK_NEXT.match(x) for x in lines[n + 1:n + 4]):
            break
        if any(p.match(line) for p in _SIGNATURES):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    result = _clean_whitespace("\n".join(kept))
    return result or _clean_whitespace(text)  # all quote: keep it rather than nothing


def normalize_subject(subject: str) -> str:
    return re.sub(r"\s+", " ", _REPLY_PREFIX.sub("", subject or "")).strip().lower()


def classify(msg: Message, mail: ParsedMail) -> str | None:
    """Why this mail is not a customer writing, or None."""
    header = lambda name: _header(msg, name).lower()  # noqa: E731
    content_type = msg.get_content_type()
    if content_type == "multipart/report" and "delivery-status" in str(msg.get_param("report-type") or "").lower():
        return "bounce"
    local = mail.from_address.split("@", 1)[0]
    if local in ("mailer-daemon", "postmaster") or (header("return-path") in ("<>", "")
                                                     and msg.get("Return-Path") is not None):
        return "bounce"
    auto = header("auto-submitted")
    if auto and auto != "no":
        return "auto-reply"
    if msg.get("X-Autoreply") or msg.get("X-Autorespond") or msg.get("X-Auto-Response-Suppress") == "All":
        return "auto-reply"
    precedence = header("precedence")
    if precedence in ("auto_reply", "auto-reply"):
        return "auto-reply"
    if _AUTO_SUBJECT.search(mail.subject or ""):
        return "auto-reply"
    if msg.get("List-Id") or msg.get("List-Post") or precedence in ("bulk", "list", "junk"):
        return "list"
    return None


def build_reply_headers(message: EmailMessage, *, parent_id: str | None, parent_refs: list[str]) -> None:
    """In-Reply-To and References for a reply to `parent_id`."""
    if not parent_id:
        return
    message["In-Reply-To"] = parent_id
    refs = [r for r in parent_refs if r != parent_id][-20:] + [parent_id]
    message["References"] = " ".join(refs)
