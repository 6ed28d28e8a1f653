"""The FAQ knowledge base operators maintain for the customer bot.

An entry holds ways of asking a question and its answer, in Chinese and / or
English, with synonym groups for its key words; it applies to every channel
account or to one. The customer bot searches them with `nlp.faq`
(`bots/customer/faq.py` builds and caches the index).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import audit
from crm_core.db import utcnow
from crm_core.models import ChannelAccount, FaqEntry, User

LANGUAGES = ("zh", "en")


class FaqInvalid(ValueError):
    """An entry that cannot be saved; the message says what to fix."""


@dataclass(frozen=True)
class FaqSpec:
    questions: dict[str, list[str]]
    answers: dict[str, str]
    synonyms: list[list[str]]
    channel_account_id: int | None = None
    is_active: bool = True
    image_url: str | None = None
    link_url: str | None = None


def _web_address(value: str | None, field: str) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FaqInvalid(f"{field} must be a web address starting with https:// (got {value[:80]!r})")
    if len(value) > 1000:
        raise FaqInvalid(f"{field} is {len(value)} characters; keep it under 1,000")
    return value


def _clean(spec: FaqSpec) -> FaqSpec:
    questions = {lang: [q.strip() for q in spec.questions.get(lang, []) if q and q.strip()] for lang in LANGUAGES}
    answers = {lang: (spec.answers.get(lang) or "").strip() for lang in LANGUAGES}
    unknown = sorted((set(spec.questions) | set(spec.answers)) - set(LANGUAGES))
    if unknown:
        raise FaqInvalid(f"languages {unknown} are not supported: use 'zh' and / or 'en'")
    if not any(questions.values()):
        raise FaqInvalid("an entry needs at least one question (questions.zh or questions.en)")
    for lang in LANGUAGES:
        if questions[lang] and not answers[lang]:
            other = next((o for o in LANGUAGES if o != lang and answers[o]), None)
            if other is None:
                raise FaqInvalid(f"questions in '{lang}' need an answer (answers.{lang})")
    if not any(answers.values()):
        raise FaqInvalid("an entry needs an answer (answers.zh or answers.en)")
    for lang, answer in answers.items():
        if len(answer) > 2000:
            raise FaqInvalid(f"answers.{lang} is {len(answer)} characters; keep it under 2,000 (chat apps cut "
                             "long messages)")
    synonyms = []
    for n, group in enumerate(spec.synonyms, 1):
        words = list(dict.fromkeys(w.strip() for w in group if w and w.strip()))
        if len(words) < 2:
            raise FaqInvalid(f"synonym group {n} needs at least two words, e.g. [\"价格\", \"价钱\", \"price\"]")
        synonyms.append(words)
    return FaqSpec({k: v for k, v in questions.items() if v}, {k: v for k, v in answers.items() if v}, synonyms,
                   spec.channel_account_id, spec.is_active, _web_address(spec.image_url, "image_url"),
                   _web_address(spec.link_url, "link_url"))


async def _check_account(account_id: int | None, db_session: AsyncSession) -> None:
    if account_id is not None and await db_session.get(ChannelAccount, account_id) is None:
        raise FaqInvalid(f"channel account {account_id} does not exist")


async def create(spec: FaqSpec, *, actor: User | None, db_session: AsyncSession) -> FaqEntry:
    spec = _clean(spec)
    await _check_account(spec.channel_account_id, db_session)
    entry = FaqEntry(questions=spec.questions, answers=spec.answers, synonyms=spec.synonyms,
                     channel_account_id=spec.channel_account_id, is_active=spec.is_active,
                     image_url=spec.image_url, link_url=spec.link_url)
    db_session.add(entry)
    await db_session.flush()
    await audit.record("faq.create", entity_type="faq_entry", entity_id=entry.id, actor=actor,
                       details={"questions": spec.questions}, db_session=db_session)
    return entry


async def update(entry: FaqEntry, spec: FaqSpec, *, actor: User | None, db_session: AsyncSession) -> FaqEntry:
    spec = _clean(spec)
    await _check_account(spec.channel_account_id, db_session)
    entry.questions, entry.answers, entry.synonyms = spec.questions, spec.answers, spec.synonyms
    entry.channel_account_id, entry.is_active = spec.channel_account_id, spec.is_active
    entry.image_url, entry.link_url = spec.image_url, spec.link_url
    entry.updated_at = utcnow()
    await db_session.flush()
    await audit.record("faq.update", entity_type="faq_entry", entity_id=entry.id, actor=actor,
                       details={"questions": spec.questions}, db_session=db_session)
    return entry


async def delete(entry: FaqEntry, *, actor: User | None, db_session: AsyncSession) -> None:
    await audit.record("faq.delete", entity_type="faq_entry", entity_id=entry.id, actor=actor,
                       details={"questions": entry.questions}, db_session=db_session)
    await db_session.delete(entry)
    await db_session.flush()


def visible_to(channel_account_id: int | None) -> Any:
    if channel_account_id is None:
        return FaqEntry.channel_account_id.is_(None)
    return or_(FaqEntry.channel_account_id.is_(None), FaqEntry.channel_account_id == channel_account_id)


async def entries_for(channel_account_id: int | None, *, db_session: AsyncSession) -> Sequence[FaqEntry]:
    return (await db_session.scalars(
        select(FaqEntry).where(FaqEntry.is_active.is_(True), visible_to(channel_account_id))
        .order_by(FaqEntry.id))).all()
