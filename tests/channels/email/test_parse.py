"""Mail to what the customer wrote: MIME, charsets, quotes, signatures, attachments,
machine mail, and threading keys."""

from __future__ import annotations

import base64
from email.message import EmailMessage

from channels.email.adapter import mail_event, own_message_id, own_root
from channels.email.parse import html_to_text, normalize_subject, parse_mail


def b64word(text: str, charset: str) -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset if charset != 'gb2312' else 'gb18030')).decode()}?="


def raw_mail(body: bytes, *, charset: str = "utf-8", subject: str = "Hello", extra: str = "",
             content_type: str = "text/plain") -> bytes:
    head = (f"From: Customer <c@example.com>\r\nTo: sales@hub.example\r\nSubject: {subject}\r\n"
            f"Message-ID: <m1@example.com>\r\nDate: Mon, 23 Nov 2026 08:00:00 +0800\r\n{extra}"
            f"MIME-Version: 1.0\r\nContent-Type: {content_type}; charset={charset}\r\n"
            f"Content-Transfer-Encoding: 8bit\r\n\r\n")
    return head.encode() + body


def test_chinese_charsets_and_encoded_headers():
    # GBK characters (镕) in mail labelled gb2312, as Chinese clients send it.
    mail = parse_mail(raw_mail("请问镕铭型号的报价？".encode("gb18030"), charset="gb2312",
                               subject=b64word("询价：镕铭", "gb2312")))
    assert mail.text == "请问镕铭型号的报价？" and mail.subject == "询价：镕铭"
    big5 = parse_mail(raw_mail("請問價格多少？".encode("big5"), charset="big5", subject=b64word("詢價", "big5")))
    assert big5.text == "請問價格多少？" and big5.subject == "詢價"
    gb18030 = parse_mail(raw_mail("𠀀 生僻字也要收到".encode("gb18030"), charset="gb18030"))
    assert gb18030.text == "𠀀 生僻字也要收到"
    # A wrong label is survived, not fatal.
    wrong = parse_mail(raw_mail("你好".encode("gbk"), charset="x-unknown-charset"))
    assert wrong.text == "你好"


def test_quotes_and_signatures_are_cut_in_english_and_chinese():
    cases = {
        "Yes, 50 seats please.\n\nOn Mon, 23 Nov 2026 at 09:00, Sales <s@hub> wrote:\n> How many seats?\n":
            "Yes, 50 seats please.",
        "好的，下周签合同。\n\n在 2026年11月23日 09:00，销售 <s@hub> 写道：\n> 请确认\n": "好的，下周签合同。",
        "收到\n\n------------------ 原始邮件 ------------------\n发件人: 销售\n发送时间: 今天\n主题: 报价\n":
            "收到",
        "Thanks!\n\nFrom: Sales <s@hub>\nSent: Monday\nTo: me\nSubject: quote\n\nold text": "Thanks!",
        "Call me at 13800138000\n-- \nZhang Wei\nACME Ltd.": "Call me at 13800138000",
        "Ok\n\n发自我的iPhone": "Ok",
        "> only a quote\n> nothing else": "> only a quote\n> nothing else",
    }
    for body, expected in cases.items():
        assert parse_mail(raw_mail(body.encode())).text == expected, body


def test_html_only_mail_becomes_clean_text():
    markup = ("<html><head><style>p{color:red}</style><script>alert(1)</script></head><body>"
              "<p>Dear team,</p><div>we need <b>20</b> licences&nbsp;&amp; training.</div>"
              "<blockquote>earlier mail</blockquote></body></html>")
    mail = parse_mail(raw_mail(markup.encode(), content_type="text/html"))
    assert mail.text == "Dear team,\n\nwe need 20 licences & training."
    assert "alert" not in mail.full_text and "color" not in mail.full_text
    assert html_to_text("<p>a<br>b</p><ul><li>x</li></ul>&lt;tag&gt;").split() == ["a", "b", "x", "<tag>"]


def test_attachments_are_recorded_not_kept_and_a_25_mb_one_is_fine():
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = "c@example.com", "s@hub", "files", "<f1@x>"
    msg.set_content("See the attached spec.")
    msg.add_attachment(b"%PDF-1.4 spec", maintype="application", subtype="pdf", filename="规格书.pdf")
    msg.add_attachment(b"\0" * (25 * 1024 * 1024), maintype="application", subtype="zip", filename="big.zip")
    mail = parse_mail(msg.as_bytes())
    assert mail.text == "See the attached spec."
    assert [(a.name, a.content_type, a.size) for a in mail.attachments] == [
        ("规格书.pdf", "application/pdf", 13), ("big.zip", "application/zip", 25 * 1024 * 1024)]
    event = mail_event(mail, raw_size=len(msg.as_bytes()), own_domain="hub")
    assert {"type": "file", "name": "big.zip", "content_type": "application/zip", "size": 25 * 1024 * 1024} \
        in event.attachments
    assert len(str(event.raw)) < 10_000  # the attachment's bytes are not in the stored message


def test_broken_mime_is_read_as_far_as_it_goes():
    broken = (b"From: c@example.com\r\nSubject: broken\r\nMessage-ID: <b1@x>\r\nMIME-Version: 1.0\r\n"
              b"Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n\r\n--XYZ\r\nContent-Type: text/plain\r\n"
              b"Content-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=!!!\r\n--XYZ\r\n"
              b"Content-Type: application/octet-stream; name=\"x.bin\"\r\n\r\n\x00\x01")
    mail = parse_mail(broken)
    assert mail.text.startswith("hello world")
    assert mail.defects  # recorded, not fatal
    assert parse_mail(b"not a mail at all").text == "not a mail at all"
    assert parse_mail(b"").text == ""


def test_machine_mail_is_classified():
    assert parse_mail(raw_mail(b"I am away", extra="Auto-Submitted: auto-replied\r\n")).machine == "auto-reply"
    assert parse_mail(raw_mail(b"away", extra="X-Autoreply: yes\r\n")).machine == "auto-reply"
    assert parse_mail(raw_mail(b"away", subject=b64word("自动回复：我正在休假", "utf-8"))).machine == "auto-reply"
    assert parse_mail(raw_mail(b"Out of office until Monday", subject="Out of Office: quote")).machine == "auto-reply"
    assert parse_mail(raw_mail(b"news", extra="List-Id: <news.example.com>\r\n")).machine == "list"
    assert parse_mail(raw_mail(b"news", extra="Precedence: bulk\r\n")).machine == "list"
    bounce = (b"From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\nSubject: Undelivered\r\n"
              b"Message-ID: <d1@x>\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
              b"--B\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n"
              b"Final-Recipient: rfc822; gone@example.com\r\nAction: failed\r\n--B--\r\n")
    assert parse_mail(bounce).machine == "bounce"
    assert parse_mail(raw_mail(b"real question")).machine is None


def test_threading_keys():
    assert normalize_subject("Re: 回复：RE:  [ext] Quote   for 50 seats") == "quote for 50 seats"
    first = parse_mail(raw_mail(b"question", subject="Quote"))
    event = mail_event(first, raw_size=1, own_domain="hub.example")
    assert event.thread_id == "<m1@example.com>" and event.platform_message_id == "<m1@example.com>"
    assert event.thread_aliases == ("<m1@example.com>", "subject:c@example.com:quote")

    ours = own_message_id("<m1@example.com>", "hub.example")
    assert ours.endswith("@hub.example>") and own_root(ours) == "<m1@example.com>"
    assert own_root("<m1@example.com>") is None
    # A client that keeps only In-Reply-To (our reply's id) still threads to the root.
    answer = parse_mail(raw_mail(b"answer", subject="Re: Quote", extra=f"In-Reply-To: {ours}\r\n")
                        .replace(b"<m1@example.com>", b"<m2@example.com>"))
    assert mail_event(answer, raw_size=1, own_domain="hub.example").thread_id == "<m1@example.com>"
    # With References, the root is the first.
    chained = parse_mail(raw_mail(b"x", extra="References: <r0@a> <r1@a>\r\nIn-Reply-To: <r1@a>\r\n")
                         .replace(b"<m1@example.com>", b"<m3@example.com>"))
    assert mail_event(chained, raw_size=1, own_domain="hub").thread_id == "<r0@a>"
