"""Opinion monitoring: a generated week of traffic with a complaint burst on day 6
raises exactly one spike alert, at the burst's first hour, and none before."""

from __future__ import annotations

import datetime as dt
import random

from nlp.opinion import ProductMatcher, Scored, hourly, rule_alerts, spike_alerts, top_terms

START = dt.datetime(2026, 11, 16, tzinfo=dt.UTC)  # a Monday
COMPLAINTS = ["X200 充电器坏了，要求退款", "X200 charger broke after a day, refund please", "X200 又坏了，太差了",
              "充电器发烫，X200 质量有问题"]
ORDINARY = ["请问什么时候发货？", "when will my order ship?", "发票怎么开", "thanks, received", "能便宜点吗"]


def generated_week(seed: int = 7, burst_day: int = 5, burst_hours: range = range(14, 17)):
    """Traffic with a daily rhythm, about 8% negative, and a complaint burst on day `burst_day + 1`."""
    rng = random.Random(seed)
    messages, texts = [], []
    for day in range(7):
        for hour in range(24):
            at = START + dt.timedelta(days=day, hours=hour)
            busy = 8 <= hour <= 21
            volume = rng.randint(35, 70) if busy else rng.randint(5, 15)
            negative_rate = 0.08
            if day == burst_day and hour in burst_hours:
                volume, negative_rate = 90, 0.55
            for _ in range(volume):
                negative = rng.random() < negative_rate
                minute = dt.timedelta(minutes=rng.randint(0, 59))
                messages.append(Scored(at + minute, "negative" if negative else rng.choice(["neutral", "positive"]),
                                       -0.8 if negative else 0.3))
                if day == burst_day and hour in burst_hours:
                    texts.append(rng.choice(COMPLAINTS) if negative else rng.choice(ORDINARY))
    return messages, texts


def test_a_complaint_burst_raises_exactly_one_alert_at_its_first_hour():
    messages, burst_texts = generated_week()
    series = hourly(messages, start=START, end=START + dt.timedelta(days=7))
    assert len(series) == 7 * 24 and sum(h.volume for h in series) == len(messages)
    [alert] = spike_alerts(series)
    assert alert.first_hour == START + dt.timedelta(days=5, hours=14)
    assert alert.hours == [START + dt.timedelta(days=5, hours=h) for h in (14, 15, 16)]
    assert alert.peak_share > 0.4 and alert.baseline_mean < 0.12 and alert.threshold < alert.peak_share
    top = [term for term, _ in top_terms(burst_texts, 5)]
    assert "x200" in top and ("充电器" in top or "退款" in top)


def test_quiet_weeks_and_quiet_hours_raise_nothing():
    for seed in range(5):
        messages, _ = generated_week(seed=seed, burst_day=99)
        assert spike_alerts(hourly(messages, start=START, end=START + dt.timedelta(days=7))) == [], seed
    # A night hour with 3 of 4 messages negative is below the minimum volume: no alert on noise.
    messages, _ = generated_week(burst_day=99)
    night = START + dt.timedelta(days=6, hours=3)
    messages = [m for m in messages if not (night <= m.at < night + dt.timedelta(hours=1))]
    messages += [Scored(night, "negative", -0.9)] * 3 + [Scored(night, "neutral")]
    assert spike_alerts(hourly(messages, start=START, end=START + dt.timedelta(days=7))) == []


def test_two_bursts_are_two_alerts_and_the_first_day_has_no_baseline():
    messages, _ = generated_week(burst_day=5)
    later, _ = generated_week(seed=8, burst_day=6, burst_hours=range(10, 12))
    # Day 7's burst from the second generation replaces day 7 of the first.
    day7 = START + dt.timedelta(days=6)
    merged = [m for m in messages if m.at < day7] + [m for m in later if m.at >= day7]
    alerts = spike_alerts(hourly(merged, start=START, end=START + dt.timedelta(days=7)))
    assert [a.first_hour for a in alerts] == [START + dt.timedelta(days=5, hours=14),
                                              START + dt.timedelta(days=6, hours=10)]
    # The first day alone: no baseline yet, so nothing, however bad an hour looks.
    first_day = [m for m in merged if m.at < START + dt.timedelta(hours=20)]
    first_day += [Scored(START + dt.timedelta(hours=19, minutes=n % 60), "negative") for n in range(80)]
    assert spike_alerts(hourly(first_day, start=START, end=START + dt.timedelta(hours=20))) == []


def test_products_are_found_by_name_and_alias_in_both_languages():
    matcher = ProductMatcher({"X200": ["x200", "X200充电器"], "云盒": ["cloudbox", "云盒子"]})
    assert matcher.products("X200 charger broke") == ["X200"]
    assert matcher.products("我的x200坏了") == ["X200"]  # no spaces around it in Chinese
    assert matcher.products("the X2000 is fine, so is bx200") == []  # a Latin name is a whole word
    assert matcher.products("云盒子连不上，cloudbox 也一样") == ["云盒"]
    assert matcher.products("X200 和 云盒 都有问题") == ["X200", "云盒"]
    assert matcher.products(None) == [] and not ProductMatcher(None) and not ProductMatcher({})


def test_a_keyword_rule_fires_on_the_count_of_complaints_in_an_hour():
    at = START + dt.timedelta(days=2, hours=10)
    messages = ([Scored(at - dt.timedelta(hours=5), "negative")] * 2  # two complaints: below the rule
                + [Scored(at + dt.timedelta(minutes=m), "negative") for m in (1, 20, 40)]
                + [Scored(at + dt.timedelta(minutes=50), "other")]
                + [Scored(at + dt.timedelta(hours=1, minutes=5), "negative")] * 4)
    [alert] = rule_alerts(hourly(messages, start=START, end=START + dt.timedelta(days=7)), min_messages=3)
    assert (alert.first_hour, alert.last_hour, alert.volume) == (at, at + dt.timedelta(hours=1), 8)
    assert alert.peak_share == 1.0 and alert.threshold == 3


def test_tied_terms_come_in_the_order_customers_wrote_them_on_every_run():
    # Ties once followed set order, which changes with PYTHONHASHSEED: an alert's "top term" flipped between runs.
    assert top_terms(["X200 充电器坏了，要求退款"] * 3 + ["退款"], 4) == [
        ("退款", 4), ("x200", 3), ("充电器", 3), ("要求", 3)]
