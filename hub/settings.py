"""Settings from the environment (prefix SCRM_) or a .env file."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from crm_core.consent.marketing_rules import MarketingRules
from crm_core.deals.service import DEFAULT_DEAL_STAGES, DealRules
from crm_core.followups.tasks import Rules as FollowUpRules
from crm_core.leads.service import CLOSED_STAGES, DEFAULT_SCORING, LeadRules, ScoringRule


class ScoringSetting(BaseModel):
    """One lead scoring rule as the panel and SCRM_LEAD_SCORING give it."""

    event: str
    points: int = Field(ge=-100, le=1000)
    repeatable: bool = False
    cap: int | None = Field(default=None, ge=1, le=100_000, description="a repeatable rule's points on one lead")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCRM_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; default: a SQLite file in the data directory. "
                    "PostgreSQL: postgresql+asyncpg://user:pass@host:5432/db",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Encrypts channel credentials. Default: generated once and kept in the data directory.",
    )
    base_url: str = Field(default="http://127.0.0.1:8080",
                          description="Public URL of this hub; webhook URLs given to platforms start with it")
    data_dir: Path = Field(default=Path("var"), description="Where the SQLite file and generated secret live")
    host: str = "127.0.0.1"
    port: int = 8080
    worker_nice: int = Field(default=10, ge=0, le=19,
                             description="How much lower the CPU priority of the worker `scrm serve` starts is (a "
                                         "nice value, 0-19): on a busy machine webhooks are answered first, and "
                                         "the worker takes the CPU they leave")
    inprocess_worker: bool = Field(default=False,
                                   description="Run the worker inside `scrm serve`'s process instead of as its "
                                               "child process (it then competes with webhook ingest for one core)")
    redis_url: str | None = Field(default=None, description="redis://host:6379/0: the platforms' rate limits (and "
                                  "their 429 pauses) shared by every dispatcher process; unset: each process its own")
    redis_fallback_share: float = Field(default=0.25, gt=0, le=1,
                                        description="With Redis unreachable, the share of each platform limit one "
                                                    "process keeps to until it is back")
    dispatch_lease_seconds: float = Field(default=60.0, gt=1)
    dispatch_concurrency: int = Field(default=16, ge=1, le=512)
    dispatch_batch_size: int = Field(default=100, ge=1, le=5000)
    max_send_attempts: int = Field(default=10, ge=1, le=100)
    max_webhook_body_bytes: int = Field(default=1_048_576, ge=1024)
    # API base URLs, mail servers and platform-given URLs on loopback, private or link-local
    # addresses are refused unless this is set (the demo's and the tests' simulators are local).
    allow_private_api_base: bool = False
    # First-response SLA: a customer unanswered by a person this long reminds the
    # owner (every rep if unclaimed); this long escalates to the manager.
    sla_first_response_minutes: float = Field(default=30.0, gt=0, le=7 * 24 * 60)
    sla_escalate_minutes: float = Field(default=120.0, gt=0, le=30 * 24 * 60)
    sla_check_seconds: float = Field(default=30.0, gt=0, le=3600)
    # The default sentiment model (`scrm nlp train-sentiment` makes it; `./dev` does
    # when it is missing). Unset: <data_dir>/models/sentiment-default.joblib.
    sentiment_model: Path | None = None
    # "transformers": the small BERT-style model `scrm nlp train-transformer` saves in
    # SCRM_SENTIMENT_TRANSFORMER_DIR (unset: <data_dir>/models/sentiment-transformer);
    # needs torch and the `transformers` extra. Only a local directory is ever loaded.
    sentiment_backend: Literal["default", "transformers"] = "default"
    sentiment_transformer_dir: Path | None = None
    # Negative messages at least this sure make an alert card to the owner and manager.
    negative_alert_confidence: float = Field(default=0.7, ge=0.34, le=1.0)
    # Wording in reps' replies flagged to their manager, as JSON {"category": ["term", ...]};
    # unset: nlp.compliance.DEFAULT_TERMS (discounts, refunds, guarantees; zh and en).
    compliance_terms: dict[str, list[str]] | None = None
    # Opinion monitoring: an hour with at least this many scored messages whose negative
    # share is above the trailing week's mean + k standard deviations alerts the managers.
    opinion_check_seconds: float = Field(default=300.0, gt=0, le=3600)
    opinion_k: float = Field(default=3.0, gt=0, le=10)
    opinion_min_volume: int = Field(default=20, ge=1)
    # Products watched, as JSON {"X200": ["x200", "X200充电器"], ...}: each is a slice of its own,
    # and this many complaints naming one in an hour alert whatever the baseline.
    opinion_products: dict[str, list[str]] | None = None
    opinion_rule_min_messages: int = Field(default=3, ge=1)
    # Marketing at send time, across channels: at most this many per contact in this many
    # days; none in the quiet hours of the contact's time zone (unset: the default zone).
    marketing_cap_count: int = Field(default=2, ge=1, le=1000)
    marketing_cap_days: float = Field(default=7.0, gt=0, le=365)
    marketing_quiet_hours: str = Field(default="21:00-08:00", description='"HH:MM-HH:MM", or "" for none')
    default_timezone: str = "Asia/Shanghai"
    # Nurture campaigns: how often due steps are planned, and how often active campaigns'
    # audiences are looked at again for new contacts to enrol.
    nurture_plan_seconds: float = Field(default=10.0, gt=0, le=3600)
    nurture_audience_minutes: float = Field(default=10.0, gt=0, le=24 * 60)
    # Each rep's daily digest (open conversations, customers waiting, new leads), local time.
    rep_digest_time: str = Field(default="09:00", description='"HH:MM" in SCRM_DEFAULT_TIMEZONE')

    # Leads: the pipeline (comma-separated, first stage first; must include won and lost),
    # how new leads are routed after the sticky owner (claim: a card every rep may claim;
    # round_robin / load, preferring reps whose territory covers the lead),
    # the hot score, and the first-response deadline and escalation.
    lead_stages: str = "new,contacted,qualified,proposal,won,lost"
    lead_routing: Literal["claim", "round_robin", "load"] = "claim"
    lead_hot_score: int = Field(default=50, ge=1)
    lead_first_response_minutes: float = Field(default=60.0, gt=0, le=30 * 24 * 60)
    lead_escalate_minutes: float = Field(default=240.0, gt=0, le=60 * 24 * 60)
    # The deal pipeline: stage:probability (percent), in order; won:100 and lost:0 close a deal.
    deal_stages: str = Field(default=DEFAULT_DEAL_STAGES, description="stage:percent or stage:percent:中文名:English "
                                                                      "name, comma-separated, in order")
    # The lead scoring rules, as JSON [{"event": "message", "points": 2, "repeatable": true, "cap": 20}, ...]
    # (events: crm_core.leads.service.SCORING_EVENTS; an event left out scores nothing).
    lead_scoring: list[ScoringSetting] = Field(default_factory=lambda: [
        ScoringSetting(event=r.event, points=r.delta, repeatable=r.repeatable, cap=r.cap) for r in DEFAULT_SCORING])
    # Automatic tags, as JSON {"tag": ["word", ...]}: a customer whose message names one of the
    # words gets the tag; {"tag": ["stage", ...]}: a lead moved to one of the stages tags its contact.
    tag_keywords: dict[str, list[str]] | None = None
    # A WeCom 群发 task (a reply to an external contact) still waiting for its rep's Send this long
    # earns the rep a reminder in their chat app (one a day).
    wecom_confirm_remind_minutes: float = Field(default=60.0, ge=5, le=7 * 24 * 60)
    stage_tags: dict[str, list[str]] | None = None
    # {"tag": ["campaign name", ...]}: everyone enrolled in one of the campaigns gets the tag.
    campaign_tags: dict[str, list[str]] | None = None
    # Follow-up rules: a task for the owner of an open lead nobody has written to for this many
    # days, and of a lead in the quote stage whose customer has not answered for this many; 0: off.
    follow_up_untouched_days: int = Field(default=3, ge=0, le=365)
    follow_up_quote_days: int = Field(default=2, ge=0, le=365)
    follow_up_quote_stage: str = Field(default="", description="the stage a quote is sent in; empty: the last "
                                                              "open stage of the pipeline (proposal by default)")

    @property
    def lead_rules(self) -> LeadRules:
        return LeadRules(stages=tuple(s.strip().lower() for s in self.lead_stages.split(",") if s.strip()),
                         routing=self.lead_routing, hot_score=self.lead_hot_score,
                         first_response=dt.timedelta(minutes=self.lead_first_response_minutes),
                         escalate_after=dt.timedelta(minutes=self.lead_escalate_minutes),
                         scoring=tuple(ScoringRule(r.event, r.points, r.repeatable, r.cap) for r in self.lead_scoring),
                         stage_tags=tuple((stage.strip().lower(), tag)
                                          for tag, stages in (self.stage_tags or {}).items() for stage in stages))

    @model_validator(mode="after")
    def _lead_rules(self) -> Settings:
        try:
            self.lead_rules  # noqa: B018  (validates the stages and their order at start)
        except ValueError as exc:
            names = "SCRM_LEAD_SCORING" if str(exc).startswith("scoring") else "SCRM_LEAD_STAGES / SCRM_LEAD_ROUTING"
            raise ValueError(f"{names}: {exc}") from None
        if self.lead_escalate_minutes < self.lead_first_response_minutes:
            raise ValueError("SCRM_LEAD_ESCALATE_MINUTES must not be shorter than SCRM_LEAD_FIRST_RESPONSE_MINUTES")
        if self.follow_up_quote_stage.strip() and \
                self.follow_up_quote_stage.strip().lower() not in self.lead_rules.stages:
            raise ValueError(f"SCRM_FOLLOW_UP_QUOTE_STAGE {self.follow_up_quote_stage!r} is not a stage of the "
                             f"pipeline ({', '.join(self.lead_rules.stages)}): name one, or leave it empty for "
                             "the last open stage")
        return self

    @property
    def deal_rules(self) -> DealRules:
        return DealRules.parse(self.deal_stages)

    @field_validator("deal_stages")
    @classmethod
    def _deal_stages(cls, value: str) -> str:
        try:
            DealRules.parse(value)
        except ValueError as exc:
            raise ValueError(f"SCRM_DEAL_STAGES: {exc}") from None
        return value

    @property
    def follow_up_rules(self) -> FollowUpRules:
        stages = self.lead_rules.stages
        last_open = [stage for stage in stages if stage not in CLOSED_STAGES][-1]
        return FollowUpRules(untouched_days=self.follow_up_untouched_days, quote_days=self.follow_up_quote_days,
                             quote_stage=self.follow_up_quote_stage.strip().lower() or last_open)

    @field_validator("tag_keywords", "stage_tags", "campaign_tags")
    @classmethod
    def _tag_rules(cls, value: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        for tag, words in (value or {}).items():
            if not tag.strip() or len(tag) > 64:
                raise ValueError(f"tag {tag!r}: 1 to 64 characters")
            if not words or any(not str(w).strip() for w in words):
                raise ValueError(f"tag {tag!r}: list one or more words or stages")
        return value

    @field_validator("rep_digest_time")
    @classmethod
    def _digest_time(cls, value: str) -> str:
        try:
            dt.time.fromisoformat(value)
        except ValueError:
            raise ValueError(f"SCRM_REP_DIGEST_TIME {value!r}: expected HH:MM, like 09:00") from None
        return value[:5]

    @field_validator("marketing_quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str) -> str:
        MarketingRules.parse_quiet_hours(value)  # a clear error at start, not at the first send
        return value

    @field_validator("default_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}: use an IANA name such as Asia/Shanghai") from None
        return value

    @property
    def marketing_rules(self) -> MarketingRules:
        start, end = MarketingRules.parse_quiet_hours(self.marketing_quiet_hours)
        return MarketingRules(cap_count=self.marketing_cap_count, cap_days=self.marketing_cap_days,
                              quiet_start=start, quiet_end=end, default_timezone=self.default_timezone)

    @model_validator(mode="after")
    def _sla_order(self) -> Settings:
        if self.sla_escalate_minutes < self.sla_first_response_minutes:
            raise ValueError("SCRM_SLA_ESCALATE_MINUTES must not be shorter than SCRM_SLA_FIRST_RESPONSE_MINUTES")
        return self
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = Field(default="text", description="json: one JSON object a line, with "
                                                "the request id that follows a message from webhook to send")

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("SCRM_REDIS_URL must start with redis://, rediss:// or unix:// "
                             "(for example redis://127.0.0.1:6379/0)")
        return value or None

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("SCRM_BASE_URL must start with http:// or https://")
        return value.rstrip("/")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            # Accept the URLs people paste; the hub needs the async drivers.
            if url.startswith("postgres://"):
                url = "postgresql+asyncpg://" + url[len("postgres://"):]
            elif url.startswith("postgresql://"):
                url = "postgresql+asyncpg://" + url[len("postgresql://"):]
            elif url.startswith("sqlite:///"):
                url = "sqlite+aiosqlite:///" + url[len("sqlite:///"):]
            return url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'scrm.db').resolve()}"

    def resolved_secret_key(self) -> str:
        """The configured key, or one generated on first start and kept in the data directory."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        if not self.resolved_database_url.startswith("sqlite"):
            raise RuntimeError(
                "SCRM_SECRET_KEY is required with a shared database: every API and worker process must use the "
                "same key. Generate one with `scrm secret` and set it everywhere."
            )
        self.ensure_data_dir()
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
        return key

    @property
    def media_dir(self) -> Path:
        """Pictures and files uploaded to send (admin/api/media.py), read from here when sent."""
        return self.data_dir / "media"

    @property
    def resolved_sentiment_model(self) -> Path:
        return self.sentiment_model or self.data_dir / "models" / "sentiment-default.joblib"

    @property
    def resolved_sentiment_transformer_dir(self) -> Path:
        return self.sentiment_transformer_dir or self.data_dir / "models" / "sentiment-transformer"

    def ensure_data_dir(self) -> None:
        """The data directory, readable by this user alone (it holds the database and the key)."""
        if not self.resolved_database_url.startswith("sqlite"):
            return
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.data_dir.stat().st_uid == os.getuid():
            self.data_dir.chmod(0o700)
