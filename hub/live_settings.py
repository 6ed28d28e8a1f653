"""Settings operators change in the admin panel while the hub runs: SLA times, the lead
pipeline's stages and routing, the follow-up rules, marketing caps and quiet hours, the
alert threshold, watched products (keyword rules) and the wording flagged in reps' replies
(sensitive-word lists).

The environment (SCRM_*) gives the starting values; a value saved in the panel
(crm_core/hub_settings.py) overrides it in every process: the process that saved it
at once, the others within `RELOAD_SECONDS` (the worker's scheduler looks). A value is
checked with the same rules as at start, so a bad one is refused with the reason
instead of stopping a worker later.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from hub.settings import Settings

if TYPE_CHECKING:
    from hub.context import Hub

RELOAD_SECONDS = 15.0
SECTIONS: dict[str, tuple[str, ...]] = {
    "sla": ("sla_first_response_minutes", "sla_escalate_minutes", "wecom_confirm_remind_minutes"),
    "routing": ("lead_stages", "lead_routing", "lead_hot_score", "lead_first_response_minutes",
                "lead_escalate_minutes", "lead_scoring"),
    "marketing": ("marketing_cap_count", "marketing_cap_days", "marketing_quiet_hours"),
    "monitoring": ("negative_alert_confidence", "opinion_products", "compliance_terms"),
    "tagging": ("tag_keywords", "stage_tags", "campaign_tags"),
    "deals": ("deal_stages",),
    "follow_ups": ("follow_up_untouched_days", "follow_up_quote_days", "follow_up_quote_stage"),
}
EDITABLE = frozenset(name for names in SECTIONS.values() for name in names)


class SettingsRefused(ValueError):
    """Values that may not be saved; the message says which and why."""


def effective(base: Settings, stored: dict[str, Any]) -> Settings:
    """`base` with the stored values over it, validated as a whole. Raises SettingsRefused."""
    unknown = sorted(set(stored) - EDITABLE)
    if unknown:
        raise SettingsRefused(f"not settable here: {', '.join(unknown)}; settable: {', '.join(sorted(EDITABLE))}")
    values = {name: getattr(base, name) for name in type(base).model_fields}
    try:
        return type(base)(**{**values, **stored})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
                             for e in exc.errors(include_url=False, include_input=False))
        raise SettingsRefused(problems) from None


def public_values(settings: Settings) -> dict[str, Any]:
    """The editable values, as JSON."""
    return {name: settings.model_dump(mode="json", include={name})[name] for name in sorted(EDITABLE)}


class HubLiveSettings:
    """What the API needs of them (admin.api.deps.LiveSettings), for one hub."""

    sections = SECTIONS

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def values(self) -> dict[str, Any]:
        return public_values(self.hub.settings)

    def environment(self) -> dict[str, Any]:
        return public_values(self.hub.base_settings)

    def check(self, stored: dict[str, Any]) -> None:
        effective(self.hub.base_settings, stored)

    def lead_stages(self, stored: dict[str, Any]) -> tuple[str, ...]:
        return effective(self.hub.base_settings, stored).lead_rules.stages

    async def reload(self) -> bool:
        return await self.hub.reload_settings()
