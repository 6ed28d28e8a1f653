"""Opinion monitoring, the arithmetic: hourly series, spikes against a learned
baseline, and the terms behind them.

A spike hour: at least `min_volume` messages, and a negative share above the
trailing baseline (the previous `baseline_hours` hours with traffic, at least
`min_baseline_hours` of them) mean + k standard deviations, the deviation
floored so that a very quiet baseline does not alert on noise. Consecutive
spike hours are one alert, open from its first hour until an hour falls back
under the threshold: a burst raises one alert, not one per hour.

Keyword rules: a configured product named in complaints (`ProductMatcher`,
`rule_alerts`) fires on a count in one hour, without a baseline.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

_STOPWORDS = frozenset(
    "the a an and or but to of in on at for with is are was were be been it this that i you we they he she my your our "
    "me us them please hi hello thanks thank can could would will do does did not no yes so just have has had from by "
    "about as if what when how why which who there here am pm ok "
    "的 了 是 我 你 您 他 她 它 们 我们 你们 在 和 也 就 都 而 及 与 着 或 一个 没有 吗 呢 吧 啊 呀 哦 嗯 请问 请 "
    "这 那 这个 那个 有 还 又 很 太 不 没 个 把 被 让 给 对 说 要 会 能 可以 什么 怎么 为什么 已经 还是 一下 一直".split())


@dataclass(frozen=True)
class Hour:
    start: dt.datetime
    volume: int
    negative: int
    sentiment_sum: float = 0.0

    @property
    def negative_share(self) -> float:
        return self.negative / self.volume if self.volume else 0.0

    @property
    def mean_sentiment(self) -> float:
        return self.sentiment_sum / self.volume if self.volume else 0.0


@dataclass(frozen=True)
class Scored:
    """One message as the series sees it."""

    at: dt.datetime
    sentiment: str
    score: float = 0.0


@dataclass
class SpikeAlert:
    first_hour: dt.datetime
    last_hour: dt.datetime
    peak_share: float
    baseline_mean: float
    threshold: float
    volume: int
    hours: list[dt.datetime] = field(default_factory=list)


def hourly(messages: Iterable[Scored], *, start: dt.datetime, end: dt.datetime) -> list[Hour]:
    """Every hour from `start` to `end` (hours without messages included, empty)."""
    start = start.replace(minute=0, second=0, microsecond=0)
    buckets: dict[dt.datetime, list[Scored]] = {}
    for message in messages:
        buckets.setdefault(message.at.replace(minute=0, second=0, microsecond=0), []).append(message)
    hours = []
    at = start
    while at < end:
        chosen = buckets.get(at, [])
        hours.append(Hour(at, len(chosen), sum(m.sentiment == "negative" for m in chosen),
                          sum(m.score for m in chosen)))
        at += dt.timedelta(hours=1)
    return hours


def spike_alerts(series: Sequence[Hour], *, k: float = 3.0, baseline_hours: int = 7 * 24,
                 min_baseline_hours: int = 24, min_volume: int = 20, std_floor: float = 0.03) -> list[SpikeAlert]:
    firing: list[tuple[float, float] | None] = []  # per hour: (baseline mean, threshold) when it spikes
    for index, hour in enumerate(series):
        window = [h for h in series[max(0, index - baseline_hours):index] if h.volume > 0]
        if len(window) < min_baseline_hours or hour.volume < min_volume:
            firing.append(None)
            continue
        shares = [h.negative_share for h in window]
        mean = sum(shares) / len(shares)
        std = math.sqrt(sum((s - mean) ** 2 for s in shares) / len(shares))
        threshold = mean + k * max(std, std_floor)
        firing.append((mean, threshold) if hour.negative_share > threshold else None)
    return _runs(series, firing)


def _runs(series: Sequence[Hour], firing: Sequence[tuple[float, float] | None]) -> list[SpikeAlert]:
    """Consecutive firing hours as one alert each; a quiet hour ends it, the next firing hour opens a new one."""
    alerts: list[SpikeAlert] = []
    open_alert: SpikeAlert | None = None
    for hour, fired in zip(series, firing, strict=True):
        if fired is None:
            open_alert = None
        elif open_alert is None:
            open_alert = SpikeAlert(hour.start, hour.start, hour.negative_share, round(fired[0], 4),
                                    round(fired[1], 4), hour.volume, [hour.start])
            alerts.append(open_alert)
        else:
            open_alert.last_hour = hour.start
            open_alert.hours.append(hour.start)
            open_alert.volume += hour.volume
            open_alert.peak_share = max(open_alert.peak_share, hour.negative_share)
    return alerts


def terms(text: str) -> list[str]:
    """Words of a message: Chinese segmented with jieba, Latin words as they are."""
    import jieba  # loads its dictionary on first use (about 1 s)

    words = []
    for token in jieba.lcut((text or "").lower()):
        token = token.strip()
        if len(token) < 2 and not re.fullmatch(r"[\u4e00-\u9fff]", token):
            continue
        if token in _STOPWORDS or not re.search(r"[\w\u4e00-\u9fff]", token) or token.isdigit():
            continue
        words.append(token)
    return words


def top_terms(texts: Iterable[str], n: int = 10) -> list[tuple[str, int]]:
    """The most frequent terms, each counted once per message; ties in order of first use
    (not in set order, which changes from run to run)."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(list(dict.fromkeys(t for t in terms(text) if len(t) > 1)))
    return counts.most_common(n)


def rule_alerts(series: Sequence[Hour], *, min_messages: int = 3) -> list[SpikeAlert]:
    """Keyword rules: an hour with at least `min_messages` complaints naming one product fires,
    whatever the baseline (a product is rarely talked about enough for one). Consecutive
    firing hours are one alert, as with spikes; `negative` counts the complaints."""
    return _runs(series, [(0.0, float(min_messages)) if h.negative >= min_messages else None for h in series])


class ProductMatcher:
    """Which configured products a message names: {"X200": ["x200", "X200充电器"], ...}.

    Case-insensitive. A Latin name matches as a whole word ("x200" not in "x2000");
    a Chinese name matches anywhere, as Chinese has no spaces.
    """

    def __init__(self, products: Mapping[str, Sequence[str]] | None) -> None:
        self.patterns: list[tuple[str, re.Pattern[str]]] = []
        for product, aliases in (products or {}).items():
            names = sorted({product, *aliases}, key=len, reverse=True)
            parts = [re.escape(n.lower()) if re.search(r"[\u4e00-\u9fff]", n)
                     else rf"(?<![a-z0-9]){re.escape(n.lower())}(?![a-z0-9])" for n in names if n.strip()]
            if parts:
                self.patterns.append((product, re.compile("|".join(parts))))

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def products(self, text: str | None) -> list[str]:
        lowered = (text or "").lower()
        return [product for product, pattern in self.patterns if pattern.search(lowered)]
