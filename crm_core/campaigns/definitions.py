"""What a campaign is: its steps (wording per language and channel, timing, conditions),
its caps, and the checks that refuse a campaign that cannot run, each saying what to change.
"""

from __future__ import annotations

import datetime as dt
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.models import CampaignStep


TEMPLATE_VARIABLES = ("name", "rep", "campaign")
EXITS = ("reply", "conversion")   # opt-out and manual exits always apply
SENTIMENTS = ("negative", "neutral", "positive")
CONDITIONS = ("replied", "clicked", "stages", "tag")


class CampaignInvalid(ValueError):
    """A campaign definition that cannot run; the message says what to change."""


class CampaignStarted(CampaignInvalid):
    """A change only a draft may have."""


@dataclass(frozen=True)
class CampaignCaps:
    """A campaign's own limits, under the hub-wide marketing cap (which the dispatcher
    applies at send time): at most `per_contact_messages` of its messages to one person in
    `per_contact_days` days, and at most `per_day` in all per day (the hub's time zone).
    A step that would go over waits until it may go; it is never dropped."""

    per_contact_messages: int | None = None
    per_contact_days: float | None = None
    per_day: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> CampaignCaps:
        data = data or {}
        unknown = set(data) - {"per_contact", "per_day"}
        if unknown:
            raise CampaignInvalid(f"caps: unknown {', '.join(sorted(unknown))}; known: per_contact "
                                  "({\"messages\": 2, \"days\": 7}), per_day (500)")

        def whole(value: Any, where: str, most: int) -> int:
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
                raise CampaignInvalid(f"{where}: a whole number from 1 to {most}")
            return value

        per_contact = data.get("per_contact")
        messages = days = None
        if per_contact is not None:
            if not isinstance(per_contact, dict) or set(per_contact) != {"messages", "days"}:
                raise CampaignInvalid('caps.per_contact: {"messages": 2, "days": 7}: at most this many of the '
                                      "campaign's messages to one person in this many days")
            messages = whole(per_contact["messages"], "caps.per_contact.messages", 1000)
            days = per_contact["days"]
            if isinstance(days, bool) or not isinstance(days, int | float) or not 0 < days <= 365:
                raise CampaignInvalid("caps.per_contact.days: more than 0, at most 365")
        per_day = data.get("per_day")
        if per_day is not None:
            per_day = whole(per_day, "caps.per_day", 10_000_000)
        return cls(messages, days, per_day)

    def to_dict(self) -> dict[str, Any]:
        caps: dict[str, Any] = {}
        if self.per_contact_messages is not None:
            caps["per_contact"] = {"messages": self.per_contact_messages, "days": self.per_contact_days}
        if self.per_day is not None:
            caps["per_day"] = self.per_day
        return caps


@dataclass(frozen=True)
class StepSpec:
    name: str
    template: dict[str, str]
    channel: str | None = None
    # Other wording where the contact is reached on a channel: {"email": {"zh": ..., "en": ...}}.
    channel_templates: dict[str, dict[str, str]] = field(default_factory=dict)
    delay_minutes: int = 0
    delay_from: str = "previous"
    send_at: dt.datetime | None = None
    window_start: str | None = None
    window_end: str | None = None
    condition: dict[str, Any] | None = None
    else_position: int | None = None


def validate_template(template: dict[str, str], where: str) -> None:
    if not isinstance(template, dict) or not template:
        raise CampaignInvalid(f"{where}: a template per language, like {{\"zh\": \"您好 {{name}}\", "
                              "\"en\": \"Hello {name}\"}")
    for language, text in template.items():
        if language not in ("zh", "en"):
            raise CampaignInvalid(f"{where}: language {language!r}; templates are zh and en")
        if not isinstance(text, str) or not text.strip():
            raise CampaignInvalid(f"{where}.{language}: the text is empty")
        try:
            fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(text)
                      if name is not None]
        except ValueError as exc:
            raise CampaignInvalid(f"{where}.{language}: {exc}; write a literal brace as {{{{ or }}}}") from None
        for name, spec, conv in fields:
            if name not in TEMPLATE_VARIABLES or spec or conv:
                raise CampaignInvalid(f"{where}.{language}: unknown variable {{{name}}}; variables: "
                                      + ", ".join(f"{{{v}}}" for v in TEMPLATE_VARIABLES))


def validate_channel_templates(templates: dict[str, dict[str, str]], channel: str | None, kinds: set[str],
                               where: str) -> None:
    if not isinstance(templates, dict):
        raise CampaignInvalid(f"{where}.channel_templates: wording per channel kind, like "
                              '{"email": {"en": "Dear {name}, ..."}}')
    for kind, template in templates.items():
        if kind not in kinds:
            raise CampaignInvalid(f"{where}.channel_templates.{kind}: not a channel kind; one of "
                                  f"{', '.join(sorted(kinds))}")
        if channel is not None and kind != channel:
            raise CampaignInvalid(f"{where}.channel_templates.{kind}: the step sends only on {channel}; "
                                  "choose their latest channel to word it per channel")
        validate_template(template, f"{where}.channel_templates.{kind}")


def validate_condition(condition: dict[str, Any], where: str) -> None:
    for key in ("replied", "clicked"):
        if key in condition and not isinstance(condition[key], bool):
            raise CampaignInvalid(f"{where}.condition.{key}: true or false")
    stages = condition.get("stages")
    if "stages" in condition and (not isinstance(stages, list) or not stages
                                  or not all(isinstance(x, str) and x.strip() for x in stages)):
        raise CampaignInvalid(f"{where}.condition.stages: a list of stage names, like [\"qualified\"]")
    if "tag" in condition and (not isinstance(condition["tag"], str) or not condition["tag"].strip()):
        raise CampaignInvalid(f"{where}.condition.tag: the tag's name")


def step_template(step: CampaignStep | StepSpec, kind: str) -> dict[str, str]:
    """The step's wording for a contact reached on `kind`."""
    return (step.channel_templates or {}).get(kind) or step.template


def validate_steps(steps: list[StepSpec], channel_kinds: Iterable[str]) -> None:
    kinds = set(channel_kinds)
    if not steps:
        raise CampaignInvalid("a campaign needs at least one step")
    for position, step in enumerate(steps, start=1):
        where = f"step {position}"
        if not step.name.strip():
            raise CampaignInvalid(f"{where}: give it a name")
        validate_template(step.template, f"{where}.template")
        if step.channel is not None and step.channel not in kinds:
            raise CampaignInvalid(f"{where}.channel {step.channel!r}: one of {', '.join(sorted(kinds))}, "
                                  "or none for the contact's latest channel")
        validate_channel_templates(step.channel_templates, step.channel, kinds, where)
        if step.delay_minutes < 0:
            raise CampaignInvalid(f"{where}.delay_minutes: 0 or more")
        if step.delay_from not in ("previous", "enrolment"):
            raise CampaignInvalid(f"{where}.delay_from: previous or enrolment")
        if step.send_at is not None and step.send_at.tzinfo is None:
            raise CampaignInvalid(f"{where}.send_at: give a time zone, like 2026-12-01T09:00:00+08:00")
        if (step.window_start is None) != (step.window_end is None):
            raise CampaignInvalid(f"{where}: a send window needs both window_start and window_end")
        if step.window_start is not None:
            try:
                start, end = dt.time.fromisoformat(step.window_start), dt.time.fromisoformat(step.window_end)
            except ValueError:
                raise CampaignInvalid(f"{where}: window times as HH:MM, like 09:00 and 18:00") from None
            if start == end:
                raise CampaignInvalid(f"{where}: the send window starts and ends at the same time")
        if step.condition is not None:
            unknown = set(step.condition) - set(CONDITIONS)
            if unknown or not step.condition:
                raise CampaignInvalid(f"{where}.condition: keys among {', '.join(CONDITIONS)}")
            validate_condition(step.condition, where)
        if step.else_position is not None:
            if step.condition is None:
                raise CampaignInvalid(f"{where}.else_position: only a step with a condition branches")
            # Forward only: a campaign always ends.
            if not position < step.else_position <= len(steps):
                raise CampaignInvalid(f"{where}.else_position: a later step, {position + 1}..{len(steps)}")


def spec_of(step: CampaignStep) -> StepSpec:
    """A stored step as the definition it was made from."""
    return StepSpec(name=step.name, template=dict(step.template), channel=step.channel,
                    channel_templates=dict(step.channel_templates or {}), delay_minutes=step.delay_minutes,
                    delay_from=step.delay_from, send_at=step.send_at, window_start=step.window_start,
                    window_end=step.window_end, condition=step.condition, else_position=step.else_position)


def step_rows(campaign_id: int, steps: list[StepSpec]) -> list[CampaignStep]:
    return [CampaignStep(campaign_id=campaign_id, position=position, name=spec.name.strip(), channel=spec.channel,
                         template=spec.template, channel_templates=spec.channel_templates,
                         delay_minutes=spec.delay_minutes, delay_from=spec.delay_from, send_at=spec.send_at,
                         window_start=spec.window_start, window_end=spec.window_end, condition=spec.condition,
                         else_position=spec.else_position)
            for position, spec in enumerate(steps, start=1)]


async def steps_of(campaign_id: int, *, db_session: AsyncSession) -> list[CampaignStep]:
    return list((await db_session.scalars(
        select(CampaignStep).where(CampaignStep.campaign_id == campaign_id).order_by(CampaignStep.position))).all())


def first_due(step: CampaignStep, enrolled_at: dt.datetime) -> dt.datetime:
    return step.send_at if step.send_at is not None else enrolled_at + dt.timedelta(minutes=step.delay_minutes)
