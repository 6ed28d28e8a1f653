"""Importing leads from a trade fair's business cards: known people are not duplicated,
bad and repeated rows come back with their reasons, an opt-out is never overridden by
a list, and importing the file again after a crash adds nobody twice."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select

from crm_core.consent import service as consent
from crm_core.leads.imports import ImportRefused, import_leads
from crm_core.leads.service import LeadRules
from crm_core.models import ConsentEvent, Contact, ContactKey, ContactTag, Lead, MessagePurpose
from nlp.entities import stated_contact_keys
from tests.fakes.stack import SECRET

ROOT = Path(__file__).resolve().parents[2]
HEADER = ["姓名", "手机", "邮箱", "公司", "地区", "行业", "标签", "营销同意"]


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8-sig") -> Path:
    out = io.StringIO()
    csv.writer(out).writerows([HEADER, *rows])
    path.write_bytes(out.getvalue().encode(encoding))
    return path


async def count(sessions, model, *where) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def test_business_cards_become_leads_with_a_report_of_what_was_rejected(sessions, tmp_path):
    async with sessions() as session, session.begin():
        known = Contact(display_name="Chen (WeChat)", stage="new")
        opted_out = Contact(display_name="Zhou", stage="new")
        session.add_all([known, opted_out])
        await session.flush()
        session.add_all([ContactKey(contact_id=known.id, kind="phone", value="+8613800138000"),
                         ContactKey(contact_id=opted_out.id, kind="email", value="zhou@example.cn")])
        await consent.record(opted_out.id, purpose=MessagePurpose.MARKETING, granted=False, source="message",
                             db_session=session)
    rows = [
        ["陈静", "138 0013 8000", "", "华为", "华东", "零售", "expo", "是"],         # 2: known by phone
        ["Anna Schmidt", "+49 151 2345 6789", "anna@contoso.de", "Contoso", "", "", "expo, vip", "yes"],
        ["李娜", "12345", "", "阿里巴巴", "", "", "", ""],                            # 4: bad phone
        ["", "", "", "", "", "", "", ""],                                              # blank line: skipped
        ["王伟", "", "wang@example", "", "", "", "", ""],                              # 6: bad email
        ["Anna S.", "", "anna@contoso.de", "Contoso", "", "", "", ""],                 # 7: same as row 3
        ["", "13912345678", "", "", "", "", "", ""],                                  # 8: no name, no company
        ["周", "", "zhou@example.cn", "", "", "", "", "是"],                           # 9: opted out before
        ["赵敏", "", "", "腾讯", "", "", "", ""],                                       # 10: nothing to reach
    ]
    path = write_csv(tmp_path / "expo.csv", rows, encoding="gb18030")
    seen = []
    report = await import_leads(path, sessions=sessions, key_of=stated_contact_keys, rules=LeadRules(),
                                chunk=3, progress=lambda done, r: seen.append(done))
    assert seen == [3, 6, 8]
    assert [(r.row, r.reason) for r in report.rejected] == [
        (4, "phone '12345' is not a phone number"),
        (6, "email 'wang@example' is not an email address"),
        (7, "the same person as row 3 (same phone or email)"),
        (8, "no name and no company"),
        (10, "no phone and no email"),
    ]
    assert (report.contacts_created, report.contacts_matched, report.leads_opened) == (1, 2, 3)
    assert report.consents == 2 and report.consents_refused[0][0] == 9
    assert "withdrawn" in report.consents_refused[0][1]
    async with sessions() as session:
        anna = await session.scalar(select(Contact).where(Contact.display_name == "Anna Schmidt"))
        lead = await session.scalar(select(Lead).where(Lead.contact_id == anna.id))
        anna_tags = (await session.scalars(select(ContactTag.tag).where(ContactTag.contact_id == anna.id))).all()
        keys = (await session.scalars(select(ContactKey.value).where(ContactKey.contact_id == anna.id)
                                      .order_by(ContactKey.value))).all()
        zhou_latest = await session.scalar(select(ConsentEvent.granted).where(ConsentEvent.contact_id == opted_out.id)
                                           .order_by(ConsentEvent.id.desc()).limit(1))
    assert (lead.source_kind, lead.source, lead.company) == ("import", "expo.csv", "Contoso")
    assert sorted(anna_tags) == ["expo", "vip"] and keys == ["+4915123456789", "anna@contoso.de"]
    assert zhou_latest is False  # still opted out
    assert "row,reason" in report.rejected_csv() and "阿里巴巴" in report.rejected_csv()

    # The same file again (as after a crash midway): nobody new, no second lead.
    again = await import_leads(path, sessions=sessions, key_of=stated_contact_keys, rules=LeadRules())
    assert (again.contacts_created, again.leads_opened, again.contacts_matched, again.leads_existing) == (0, 0, 3, 3)
    assert await count(sessions, Lead) == 3 and await count(sessions, Contact) == 3


async def test_an_excel_file_with_english_headers_imports_and_a_file_without_phones_is_refused(sessions, tmp_path):
    book = openpyxl.Workbook()
    book.active.append(["Name", "Mobile", "E-mail", "Company", "Region", "Industry"])
    book.active.append(["Li Lei", 13712345678, None, "Lenovo", "North China", "IT"])
    book.save(tmp_path / "cards.xlsx")
    report = await import_leads(tmp_path / "cards.xlsx", sessions=sessions, key_of=stated_contact_keys,
                                rules=LeadRules())
    assert (report.rows, report.leads_opened, report.rejected) == (1, 1, [])
    async with sessions() as session:
        lead = await session.scalar(select(Lead))
    assert (lead.company, lead.region, lead.industry) == ("Lenovo", "North China", "IT")
    (tmp_path / "bad.csv").write_text("name,city\nLi,Beijing\n")
    with pytest.raises(ImportRefused, match="no phone or email column"):
        await import_leads(tmp_path / "bad.csv", sessions=sessions, key_of=stated_contact_keys, rules=LeadRules())
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")
    with pytest.raises(ImportRefused, match="import .csv or .xlsx"):
        await import_leads(tmp_path / "notes.pdf", sessions=sessions, key_of=stated_contact_keys, rules=LeadRules())


def test_4700_cards_through_the_command_line_with_progress(tmp_path):
    rows = [[f"客户{n}", f"139{n:08d}", f"c{n}@expo.example", f"公司{n % 300}", "", "", "", ""] for n in range(4700)]
    rows[100][1] = "not a phone"
    rows[200] = [*rows[199][:1], rows[199][1], "", "公司", "", "", "", ""]  # a card scanned twice
    path = write_csv(tmp_path / "expo-2026.csv", rows)
    env = {**os.environ, "SCRM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
           "SCRM_SECRET_KEY": SECRET, "SCRM_DATA_DIR": str(tmp_path)}
    migrate = subprocess.run([sys.executable, "-m", "hub.cli", "migrate"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=120)
    assert migrate.returncode == 0, migrate.stderr
    done = subprocess.run([sys.executable, "-m", "hub.cli", "leads", "import", str(path), "--source", "Expo 2026"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "  4,700 rows: 4,698 new leads" in done.stderr and "  500 rows:" in done.stderr
    assert "leads opened: 4698" in done.stdout and "rejected: 2" in done.stdout
    report = (tmp_path / "expo-2026.rejected.csv").read_text(encoding="utf-8-sig")
    assert "102,phone 'not a phone' is not a phone number" in report
    assert "202,the same person as row 201 (same phone or email)" in report
