"""Lead imports: a CSV or Excel file of people (4,700 business cards after a trade fair).

Each row becomes a lead: a person already known by a phone or email joins their
contact (no duplicate person), others become new contacts; a row repeating an
earlier row's phone or email, or without a usable phone or email, is rejected
with its reason in the report. Rows are committed in chunks with progress, and
importing the same file again (after a crash midway) adds nobody twice: the
rows already in are found by their phones and emails.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core import visibility
from crm_core.consent import service as consent
from crm_core.contacts import tags
from crm_core.db import utcnow
from crm_core.leads import service as leads
from crm_core.leads.service import LeadRules
from crm_core.models import ConsentEvent, Contact, ContactKey, Lead, MessagePurpose, User
from crm_core.sql import insert_ignoring_conflict

# Column names understood, Chinese and English (case and spaces ignored).
COLUMNS = {
    "name": ("name", "full name", "contact", "姓名", "名字", "联系人"),
    "phone": ("phone", "mobile", "tel", "telephone", "手机", "手机号", "电话", "联系电话"),
    "email": ("email", "e-mail", "mail", "邮箱", "电子邮件"),
    "company": ("company", "organisation", "organization", "公司", "单位", "企业"),
    "region": ("region", "area", "province", "地区", "区域", "省份"),
    "industry": ("industry", "sector", "行业"),
    "tags": ("tags", "tag", "标签"),
    "marketing_consent": ("marketing consent", "marketing_consent", "consent", "营销同意", "同意营销"),
}
YES = {"yes", "y", "true", "1", "是", "同意", "已同意", "x", "✓"}

KeyReader = Callable[[str], list[tuple[str, str]]]


class ImportRefused(ValueError):
    """The file cannot be imported at all; the message says what to fix."""


@dataclass
class Rejected:
    row: int          # as a spreadsheet numbers it: the header is row 1
    reason: str       # in English, for the API and the CSV of rejected rows
    values: dict[str, str]
    not_yours: bool = False  # the person is a customer the importing user may not see
    # What the panel says in the user's language: one of REASONS, and the values the text names.
    code: str = ""
    params: dict[str, str] = field(default_factory=dict)


# Why a row was rejected, by code: the panel's catalogues say each as `import_reason_<code>`.
REASONS = ("no_name", "bad_phone", "bad_email", "no_phone_or_email", "same_as_row", "two_contacts", "not_yours")


@dataclass
class ImportReport:
    file: str
    rows: int = 0
    contacts_created: int = 0
    contacts_matched: int = 0
    leads_opened: int = 0
    leads_existing: int = 0
    consents: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    # Rows imported, but whose "consent: yes" was not recorded (the person had opted out).
    consents_refused: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"file": self.file, "rows": self.rows, "contacts_created": self.contacts_created,
                "contacts_matched": self.contacts_matched, "leads_opened": self.leads_opened,
                "leads_existing": self.leads_existing, "marketing_consents": self.consents,
                "rejected": len(self.rejected), "consents_refused": len(self.consents_refused)}

    def rejected_csv(self) -> str:
        """The rejected rows, with their reasons, to fix and import again."""
        out = io.StringIO()
        writer = csv.writer(out)
        names = list(COLUMNS)
        writer.writerow(["row", "reason", *names])
        for item in self.rejected:
            writer.writerow([item.row, item.reason, *(item.values.get(n, "") for n in names)])
        return out.getvalue()


def read_rows(path: Path, data: bytes | None = None) -> tuple[dict[str, int], Iterator[tuple[int, list[str]]]]:
    """The column map and the (row number, cells) of a .csv, .xlsx or .xlsm file."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        import openpyxl  # only imports of Excel files need it

        try:
            book = openpyxl.load_workbook(io.BytesIO(data) if data is not None else path, read_only=True,
                                          data_only=True)
        except Exception as exc:
            raise ImportRefused(f"{path.name}: not a readable Excel file ({type(exc).__name__}: {exc})") from None
        rows = ([("" if v is None else str(v).strip()) for v in row] for row in book.active.iter_rows(values_only=True))
    elif suffix in (".csv", ".txt"):
        raw = data if data is not None else path.read_bytes()
        for encoding in ("utf-8-sig", "gb18030"):  # Excel in China saves CSV as GBK
            try:
                text = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise ImportRefused(f"{path.name}: not UTF-8 or GBK text; save it as CSV UTF-8")
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t") if text.strip() else csv.excel
        rows = ([cell.strip() for cell in row] for row in csv.reader(io.StringIO(text), dialect))
    else:
        raise ImportRefused(f"{path.name}: import .csv or .xlsx files")
    header = next(rows, None)
    if not header:
        raise ImportRefused(f"{path.name}: the file is empty")
    columns: dict[str, int] = {}
    for index, title in enumerate(header):
        key = " ".join(str(title).lower().replace("_", " ").split())
        for name, aliases in COLUMNS.items():
            if key in aliases or key == name.replace("_", " "):
                columns.setdefault(name, index)
    if "phone" not in columns and "email" not in columns:
        raise ImportRefused(f"{path.name}: no phone or email column (found: {', '.join(map(str, header))}); "
                            "name them phone / 手机 and email / 邮箱")
    if "name" not in columns and "company" not in columns:
        raise ImportRefused(f"{path.name}: no name or company column; name them name / 姓名 or company / 公司")
    return columns, ((n, row) for n, row in enumerate(rows, start=2) if any(row))


async def import_leads(path: Path, *, sessions: async_sessionmaker[AsyncSession], key_of: KeyReader,
                       rules: LeadRules, data: bytes | None = None, source: str | None = None,
                       actor: User | None = None, chunk: int = 500,
                       progress: Callable[[int, ImportReport], None] | None = None) -> ImportReport:
    columns, rows = read_rows(path, data)
    report = ImportReport(file=path.name)
    source = source or path.name
    seen: dict[tuple[str, str], int] = {}  # key -> the row that gave it first
    batch: list[tuple[int, dict[str, str]]] = []

    async def flush() -> None:
        async with sessions() as session, session.begin():
            for number, values in batch:
                await _import_row(number, values, session, report, key_of, rules, source, actor, seen)
        report.rows += len(batch)
        batch.clear()
        if progress is not None:
            progress(report.rows, report)

    for number, cells in rows:
        values = {name: cells[index] if index < len(cells) else "" for name, index in columns.items()}
        batch.append((number, values))
        if len(batch) >= chunk:
            await flush()
    if batch:
        await flush()
    return report


async def import_one(values: dict[str, str], *, session: AsyncSession, key_of: KeyReader, rules: LeadRules,
                     source: str, actor: User | None) -> tuple[ImportReport, Lead | None]:
    """One person given through the API: the same checks and matching as a file's row."""
    report = ImportReport(file=source, rows=1)
    return report, await _import_row(1, values, session, report, key_of, rules, source, actor, {},
                                     source_kind="api")


async def _import_row(number: int, values: dict[str, str], session: AsyncSession, report: ImportReport,
                      key_of: KeyReader, rules: LeadRules, source: str, actor: User | None,
                      seen: dict[tuple[str, str], int], source_kind: str = "import") -> Lead | None:
    """The row's lead, or None (rejected, with the reason in the report)."""
    def reject(code: str, reason: str, **params: object) -> None:
        report.rejected.append(Rejected(number, reason, values, code == "not_yours", code,
                                        {k: str(v) for k, v in params.items()}))

    name, company = values.get("name", ""), values.get("company", "")
    if not name and not company:
        return reject("no_name", "no name and no company")
    keys: list[tuple[str, str]] = []
    for column, kind in (("phone", "phone"), ("email", "email")):
        cell = values.get(column, "")
        if not cell:
            continue
        found = [k for k in key_of(cell) if k[0] == kind]
        if not found:
            what = "a phone number" if kind == "phone" else "an email address"
            return reject(f"bad_{kind}", f"{column} {cell!r} is not {what}", value=cell)
        keys.extend(found)
    if not keys:
        return reject("no_phone_or_email", "no phone and no email")
    repeated = next((seen[k] for k in keys if k in seen), None)
    if repeated is not None:
        return reject("same_as_row", f"the same person as row {repeated} (same phone or email)", row=repeated)
    for key in keys:
        seen[key] = number
    owners = set((await session.scalars(select(ContactKey.contact_id).where(
        ContactKey.kind.in_({k for k, _ in keys}), ContactKey.value.in_({v for _, v in keys})))).all())
    owners = {c for c in owners if (await session.get(Contact, c)).merged_into_id is None} if owners else set()
    if len(owners) > 1:
        contacts = ", ".join(map(str, sorted(owners)))
        return reject("two_contacts", f"its phone and email belong to two different contacts ({contacts}); "
                      "merge them first", contacts=contacts)
    created = False
    if owners:
        contact = await session.get(Contact, owners.pop())
        # Matched by a phone or email: the importer must be allowed to see the person, as by id.
        if actor is not None and not await visibility.may_see_contact(actor, contact.id, db_session=session):
            return reject("not_yours", leads.NOT_YOURS)
    else:
        created = True
        contact = Contact(display_name=name or company, source=f"{source_kind}: {source}", stage=rules.stages[0])
        session.add(contact)
        await session.flush()
        report.contacts_created += 1
    try:
        opened = await leads.open_lead(contact.id, source_kind=source_kind, source=source, company=company or None,
                                       region=values.get("region") or None, industry=values.get("industry") or None,
                                       rules=rules, actor=actor, db_session=session)
    except leads.LeadNotYours as exc:
        return reject("not_yours", str(exc))
    for kind, value in keys:
        await insert_ignoring_conflict(session, ContactKey.__table__,
                                       {"contact_id": contact.id, "kind": kind, "value": value, "identity_id": None,
                                        "created_at": utcnow()}, conflict_columns=["kind", "value"])
    report.contacts_matched += not created
    if opened.created:
        report.leads_opened += 1
    else:
        report.leads_existing += 1
    wanted_tags = [t.strip() for t in values.get("tags", "").replace("，", ",").split(",") if t.strip()]
    if wanted_tags:
        current = await tags.tags_of(contact.id, db_session=session)
        await tags.set_tags(contact.id, sorted(set(current) | set(wanted_tags)), actor=actor, db_session=session)
    if values.get("marketing_consent", "").strip().lower() in YES:
        latest = await session.scalar(select(ConsentEvent).where(
            ConsentEvent.contact_id == contact.id, ConsentEvent.purpose == MessagePurpose.MARKETING)
            .order_by(ConsentEvent.id.desc()).limit(1))
        if latest is not None:
            # A list never overrides what the person said themselves (an opt-out above all).
            if not latest.granted:
                report.consents_refused.append((number, f"marketing consent not recorded: withdrawn "
                                                        f"{latest.created_at:%Y-%m-%d} via {latest.source}"))
            return opened.lead
        await consent.record(contact.id, purpose=MessagePurpose.MARKETING, granted=True, source=source_kind,
                             evidence={"file": source, "row": number}, actor_label=actor.username if actor else "import",
                             db_session=session)
        report.consents += 1
    return opened.lead
